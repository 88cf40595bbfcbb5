#include "bench/loadgen/loadgen_options.h"

#include <charconv>
#include <cmath>
#include <string_view>

namespace spanrelay::loadgen {
namespace {

template <class Number>
std::optional<Number> parse_number(std::string_view text) {
  if constexpr (std::is_floating_point_v<Number>) {
    const std::string copy(text);
    char* end = nullptr;
    const double value = std::strtod(copy.c_str(), &end);
    if (copy.empty() || *end != '\0' || !std::isfinite(value)) return std::nullopt;
    return static_cast<Number>(value);
  } else {
    Number value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
    return value;
  }
}

Result<Target> parse_host_port(Target target, std::string_view rest) {
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos) return Error{"target needs HOST:PORT: " + target.text};
  target.host = std::string(rest.substr(0, colon));
  if (target.host.size() >= 2 && target.host.front() == '[' && target.host.back() == ']') {
    target.host = target.host.substr(1, target.host.size() - 2);
  }
  const auto port = parse_number<std::uint16_t>(rest.substr(colon + 1));
  if (!port || *port == 0 || target.host.empty()) return Error{"bad HOST:PORT in " + target.text};
  target.port = *port;
  return target;
}

}  // namespace

Result<Target> parse_target(const std::string& text) {
  Target target;
  target.text = text;
  const std::string_view view = text;
  const auto unix_path = [&](std::string_view rest) -> Result<Target> {
    if (rest.empty() || rest.front() != '/') return Error{"unix target needs an absolute path"};
    target.path = std::string(rest);
    return target;
  };
  if (view.rfind("grpc://", 0) == 0) {
    target.kind = Target::Kind::kGrpcTcp;
    return parse_host_port(target, view.substr(7));
  }
  if (view.rfind("http://", 0) == 0) {
    target.kind = Target::Kind::kHttpTcp;
    std::string_view rest = view.substr(7);
    if (rest.ends_with("/v1/traces")) rest.remove_suffix(10);
    if (rest.ends_with("/")) rest.remove_suffix(1);
    return parse_host_port(target, rest);
  }
  if (view.rfind("grpc-unix://", 0) == 0) {
    target.kind = Target::Kind::kGrpcUnix;
    return unix_path(view.substr(12));
  }
  if (view.rfind("http-unix://", 0) == 0) {
    target.kind = Target::Kind::kHttpUnix;
    return unix_path(view.substr(12));
  }
  return Error{"unsupported --target " + text +
               " (grpc://HOST:PORT, grpc-unix:///path, http://HOST:PORT, http-unix:///path)"};
}

std::string loadgen_usage() {
  return R"(usage: spanrelay-loadgen --target URL [options]
  --target URL              grpc://HOST:PORT | grpc-unix:///abs/path | http://HOST:PORT |
                            http-unix:///abs/path
  --encoding E              protobuf (default) | json (HTTP only)
  --compression C           none (default) | gzip | zstd (zstd: HTTP only)
  --concurrency C           worker threads, one connection each (default 4)
  --spans-per-request N     default 100
  --spans-per-trace N       default 5 (root + children)
  --traces-per-request N    sets --spans-per-request to N * spans-per-trace
  --duration S              seconds of load (default 10)
  --rate R                  requests/s over all workers, open loop; 0 = as fast as acked (default)
  --daemon-pid PID          report the daemon's CPU time and peak RSS
  --error-ratio X           share of traces holding one error span (default 0.01)
  --seed N                  random seed for the request pool (default 1)
  --pool N                  distinct prebuilt requests (default 64)
  --timeout S               per-request timeout (default 10)
)";
}

Result<LoadgenOptions> parse_loadgen_options(int argc, char** argv) {
  LoadgenOptions options;
  bool have_target = false;
  std::optional<int> traces_per_request;
  for (int i = 1; i < argc; ++i) {
    const std::string_view flag = argv[i];
    if (flag == "--help" || flag == "-h") return Error{loadgen_usage()};
    if (i + 1 >= argc) return Error{"missing value for " + std::string(flag)};
    const std::string value = argv[++i];
    const auto bad = [&] { return Error{"bad value for " + std::string(flag) + ": " + value}; };
    const auto positive_int = [&](int& out, int max) -> bool {
      const auto n = parse_number<int>(value);
      if (!n || *n < 1 || *n > max) return false;
      out = *n;
      return true;
    };
    if (flag == "--target") {
      auto target = parse_target(value);
      if (!target) return target.error();
      options.target = target.value();
      have_target = true;
    } else if (flag == "--encoding") {
      if (value == "protobuf") {
        options.encoding = BodyEncoding::kProtobuf;
      } else if (value == "json") {
        options.encoding = BodyEncoding::kJson;
      } else {
        return bad();
      }
    } else if (flag == "--compression") {
      if (value == "none") {
        options.compression = Codec::kIdentity;
      } else if (value == "gzip") {
        options.compression = Codec::kGzip;
      } else if (value == "zstd") {
        options.compression = Codec::kZstd;
      } else {
        return bad();
      }
    } else if (flag == "--concurrency") {
      if (!positive_int(options.concurrency, 4096)) return bad();
    } else if (flag == "--spans-per-request") {
      if (!positive_int(options.spans_per_request, 1'000'000)) return bad();
    } else if (flag == "--spans-per-trace") {
      if (!positive_int(options.spans_per_trace, 10'000)) return bad();
    } else if (flag == "--traces-per-request") {
      int traces = 0;
      if (!positive_int(traces, 100'000)) return bad();
      traces_per_request = traces;
    } else if (flag == "--duration") {
      const auto s = parse_number<double>(value);
      if (!s || *s <= 0) return bad();
      options.duration_s = *s;
    } else if (flag == "--rate") {
      const auto r = parse_number<double>(value);
      if (!r || *r < 0) return bad();
      options.rate = *r;
    } else if (flag == "--daemon-pid") {
      const auto pid = parse_number<int>(value);
      if (!pid || *pid <= 0) return bad();
      options.daemon_pid = static_cast<pid_t>(*pid);
    } else if (flag == "--error-ratio") {
      const auto x = parse_number<double>(value);
      if (!x || *x < 0 || *x > 1) return bad();
      options.error_ratio = *x;
    } else if (flag == "--seed") {
      const auto n = parse_number<std::uint64_t>(value);
      if (!n) return bad();
      options.seed = *n;
    } else if (flag == "--pool") {
      if (!positive_int(options.pool_size, 100'000)) return bad();
    } else if (flag == "--timeout") {
      const auto s = parse_number<double>(value);
      if (!s || *s <= 0) return bad();
      options.timeout_s = *s;
    } else {
      return Error{"unknown option " + std::string(flag) + "\n" + loadgen_usage()};
    }
  }
  if (!have_target) return Error{"--target is required\n" + loadgen_usage()};
  if (traces_per_request) options.spans_per_request = *traces_per_request * options.spans_per_trace;
  if (options.target.is_grpc() && options.encoding == BodyEncoding::kJson) {
    return Error{"--encoding json is OTLP/HTTP only"};
  }
  // gRPC C++ offers gzip and deflate only (see DESIGN.md), so zstd is HTTP only.
  if (options.target.is_grpc() && options.compression == Codec::kZstd) {
    return Error{"--compression zstd is OTLP/HTTP only"};
  }
  return options;
}

}  // namespace spanrelay::loadgen
