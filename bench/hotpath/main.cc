// spanrelay-hotpath-bench: the per-span cost of each step of the relay's hot
// path, single-threaded, on the load generator's span mix (bench/loadgen:
// ~490-byte spans with ~10 attributes, 100 spans per request). No sockets and
// no threads, so the figures hold on a busy machine better than the
// end-to-end runs of bench/run.sh: each step runs for --seconds and the best
// of three rounds is printed, in nanoseconds per span. Issue 6 compares them
// with the physical estimates (wire scan ~50 ns, zstd-1 ~400 ns, gzip-1
// ~1.3 us, libprotobuf parse + serialize ~0.9 us per ~300-byte span).
//
//   build/bench/spanrelay-hotpath-bench [--seconds 0.5] [--spans-per-request 100]
#include <google/protobuf/arena.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "bench/loadgen/request_pool.h"
#include "daemon/common/compression.h"
#include "daemon/config/config.h"
#include "daemon/otlp/request_writer.h"
#include "daemon/otlp/wire_scanner.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace collector = opentelemetry::proto::collector::trace::v1;

struct Options {
  double seconds = 0.5;
  int spans_per_request = 100;
};

// One step over the whole pool; returns the spans it handled.
using Step = std::function<std::size_t()>;

// Best of three rounds of at least `seconds` each, in ns per span.
double measure(const Step& step, double seconds) {
  double best = 0;
  for (int round = 0; round < 3; ++round) {
    std::size_t spans = 0;
    const auto start = Clock::now();
    auto elapsed = Clock::duration::zero();
    do {
      spans += step();
      elapsed = Clock::now() - start;
    } while (elapsed < std::chrono::duration<double>(seconds));
    const double ns =
        std::chrono::duration<double, std::nano>(elapsed).count() / static_cast<double>(spans);
    if (round == 0 || ns < best) best = ns;
  }
  return best;
}

Options parse(int argc, char** argv) {
  Options options;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view flag = argv[i];
    if (flag == "--seconds") {
      options.seconds = std::atof(argv[i + 1]);
    } else if (flag == "--spans-per-request") {
      options.spans_per_request = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: %s [--seconds S] [--spans-per-request N]\n", argv[0]);
      std::exit(2);
    }
  }
  return options;
}

}  // namespace

int main(int argc, char** argv) {
  const Options options = parse(argc, argv);
  spanrelay::loadgen::LoadgenOptions pool_options;
  pool_options.spans_per_request = options.spans_per_request;
  pool_options.pool_size = 64;
  auto pool = spanrelay::loadgen::build_request_pool(pool_options);
  if (!pool.ok()) {
    std::fprintf(stderr, "cannot build the request pool: %s\n", pool.error().message.c_str());
    return 1;
  }
  std::vector<std::shared_ptr<const std::string>> bodies;
  for (const auto& request : pool.value().requests) {
    bodies.push_back(std::make_shared<const std::string>(request.body));
  }
  const std::size_t pool_spans = pool.value().spans;

  // The receivers' default limits (receivers.otlp.*), as the daemon scans.
  const spanrelay::config::ReceiverLimitsConfig defaults;
  const spanrelay::otlp::ScanLimits limits{
      defaults.max_spans_per_request, defaults.max_attributes_per_span,
      defaults.max_attribute_value_length, defaults.max_anyvalue_depth};

  // Batches as the exporter sends them: ~1024 spans (10 requests) each.
  std::vector<std::string> batches;
  {
    spanrelay::otlp::RequestWriter writer;
    for (const auto& body : bodies) {
      auto scanned = spanrelay::otlp::scan_export_request(body, limits);
      if (!scanned.ok()) {
        std::fprintf(stderr, "scan failed: %s\n", scanned.error().message.c_str());
        return 1;
      }
      writer.add_request(scanned.value());
      if (writer.span_count() >= 1000) batches.push_back(writer.finish());
    }
    if (!writer.empty()) batches.push_back(writer.finish());
  }

  struct Row {
    const char* name;
    Step step;
  };
  std::vector<Row> rows;
  rows.push_back({"wire scan, no limits", [&] {
                    for (const auto& body : bodies) {
                      auto scanned = spanrelay::otlp::scan_export_request(body, {});
                      if (!scanned.ok()) std::abort();
                    }
                    return pool_spans;
                  }});
  rows.push_back({"wire scan, default limits", [&] {
                    for (const auto& body : bodies) {
                      auto scanned = spanrelay::otlp::scan_export_request(body, limits);
                      if (!scanned.ok()) std::abort();
                    }
                    return pool_spans;
                  }});
  spanrelay::otlp::RequestWriter reused_writer;
  rows.push_back({"wire scan + batch writer", [&] {
                    for (const auto& body : bodies) {
                      auto scanned = spanrelay::otlp::scan_export_request(body, limits);
                      if (!scanned.ok()) std::abort();
                      reused_writer.add_request(scanned.value());
                      if (reused_writer.span_count() >= 1000) (void)reused_writer.finish();
                    }
                    return pool_spans;
                  }});
  const auto compress_row = [&](spanrelay::Codec codec) {
    return [&batches, pool_spans, codec] {
      for (const auto& batch : batches) {
        auto compressed = spanrelay::compress(codec, batch);
        if (!compressed.ok()) std::abort();
      }
      return pool_spans;
    };
  };
  rows.push_back({"zstd-1 of the batches", compress_row(spanrelay::Codec::kZstd)});
  rows.push_back({"gzip-1 of the batches", compress_row(spanrelay::Codec::kGzip)});
  rows.push_back({"libprotobuf parse + serialize (for comparison)", [&] {
                    std::string out;
                    for (const auto& body : bodies) {
                      collector::ExportTraceServiceRequest request;
                      if (!request.ParseFromString(*body)) std::abort();
                      out.clear();
                      request.SerializeToString(&out);
                    }
                    return pool_spans;
                  }});
  rows.push_back(
      {"libprotobuf parse + serialize, arena", [&] {
         std::string out;
         for (const auto& body : bodies) {
           google::protobuf::Arena arena;
           auto* request =
               google::protobuf::Arena::CreateMessage<collector::ExportTraceServiceRequest>(&arena);
           if (!request->ParseFromString(*body)) std::abort();
           out.clear();
           request->SerializeToString(&out);
         }
         return pool_spans;
       }});

  std::printf("spans: %zu in %zu requests, %.0f bytes per span (protobuf), batches of ~1000\n",
              pool_spans, bodies.size(),
              static_cast<double>(pool.value().protobuf_bytes) / static_cast<double>(pool_spans));
  std::printf("| step | ns per span |\n|---|---|\n");
  for (const auto& row : rows) {
    std::printf("| %s | %.0f |\n", row.name, measure(row.step, options.seconds));
    std::fflush(stdout);
  }
  return 0;
}
