#pragma once
// The requests the load generator sends, built before the clock starts so
// that building and encoding them is never part of what is measured.
#include <cstddef>
#include <string>
#include <vector>

#include "bench/loadgen/loadgen_options.h"
#include "daemon/common/result.h"

namespace spanrelay::loadgen {

struct PreparedRequest {
  // Exactly what goes on the wire: protobuf or OTLP/JSON, compressed for
  // HTTP. gRPC bodies stay uncompressed protobuf: gRPC compresses them itself.
  std::string body;
  std::size_t spans = 0;
  std::size_t error_spans = 0;
};

struct RequestPool {
  std::vector<PreparedRequest> requests;
  std::size_t protobuf_bytes = 0;  // sum of the uncompressed protobuf encodings
  std::size_t span_bytes = 0;      // sum of the serialized spans alone
  std::size_t spans = 0;
  std::size_t body_bytes = 0;  // sum of the bodies as sent
};

// Spans of ~300-500 bytes with ~10 attributes, `spans_per_trace` per trace
// (a SERVER root and CLIENT/INTERNAL children), `error_ratio` of traces with
// one ERROR span, one service's Resource per request. Deterministic per seed.
Result<RequestPool> build_request_pool(const LoadgenOptions& options);

}  // namespace spanrelay::loadgen
