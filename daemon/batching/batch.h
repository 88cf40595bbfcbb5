#pragma once
// A batch on its way to the upstream: one encoded ExportTraceServiceRequest.
#include <chrono>
#include <cstdint>
#include <string>

namespace spanrelay::batching {

struct Batch {
  std::string request;  // ExportTraceServiceRequest bytes, uncompressed
  std::uint32_t spans = 0;
  std::uint64_t reserved_bytes = 0;  // what this batch holds of the memory budget
  std::chrono::steady_clock::time_point created{};
};

}  // namespace spanrelay::batching
