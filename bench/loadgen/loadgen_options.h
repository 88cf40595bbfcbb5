#pragma once
// Command line of spanrelay-loadgen.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/common/compression.h"
#include "daemon/common/result.h"

namespace spanrelay::loadgen {

struct Target {
  enum class Kind { kGrpcTcp, kGrpcUnix, kHttpTcp, kHttpUnix };
  Kind kind = Kind::kGrpcTcp;
  std::string host;  // tcp kinds
  std::uint16_t port = 0;
  std::string path;  // unix kinds: absolute socket path
  std::string text;  // as given, for the report

  bool is_grpc() const { return kind == Kind::kGrpcTcp || kind == Kind::kGrpcUnix; }
  bool is_unix() const { return kind == Kind::kGrpcUnix || kind == Kind::kHttpUnix; }
};

// grpc://HOST:PORT | grpc-unix:///abs/path | http://HOST:PORT | http-unix:///abs/path
Result<Target> parse_target(const std::string& text);

enum class BodyEncoding { kProtobuf, kJson };

struct LoadgenOptions {
  Target target;
  BodyEncoding encoding = BodyEncoding::kProtobuf;
  Codec compression = Codec::kIdentity;
  int concurrency = 4;
  int spans_per_request = 100;
  int spans_per_trace = 5;
  double duration_s = 10;
  double rate = 0;  // requests/s over all workers; 0 = as fast as acks come back
  std::optional<pid_t> daemon_pid;
  double error_ratio = 0.01;  // share of traces with one error span
  std::uint64_t seed = 1;
  int pool_size = 64;     // distinct prebuilt requests
  double timeout_s = 10;  // per request
};

std::string loadgen_usage();

Result<LoadgenOptions> parse_loadgen_options(int argc, char** argv);

}  // namespace spanrelay::loadgen
