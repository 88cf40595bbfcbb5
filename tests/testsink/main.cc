// spanrelay-testsink: an OTLP/gRPC + OTLP/HTTP upstream stand-in for the
// end-to-end tests and the bench. It records every span it accepts (JSON
// lines), injects faults on demand, and exits 0 on SIGTERM/SIGINT.
#include <signal.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdio>
#include <fstream>
#include <thread>
#include <vector>

#include "tests/testsink/answers.h"
#include "tests/testsink/grpc_listener.h"
#include "tests/testsink/http_listener.h"
#include "tests/testsink/sink_options.h"
#include "tests/testsink/span_recorder.h"

namespace spanrelay::testsink {
namespace {

// tmp + rename, so a test polling for the file never reads half of it.
Status write_ready_file(const std::string& path, const std::string& content) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content << "\n";
    if (!out.flush()) return Error{"cannot write " + tmp};
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return Error{"cannot rename to " + path};
  return Ok{};
}

int run(int argc, char** argv) {
  auto parsed = parse_sink_options(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "spanrelay-testsink: %s\n", parsed.error().message.c_str());
    return 2;
  }
  const SinkOptions& options = parsed.value();

  // Block the stop signals in every thread (gRPC and Asio threads inherit the
  // mask) so that only sigwait() below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto recorder_or = SpanRecorder::open(options);
  if (!recorder_or) {
    std::fprintf(stderr, "spanrelay-testsink: %s\n", recorder_or.error().message.c_str());
    return 2;
  }
  SpanRecorder& recorder = *recorder_or.value();

  boost::asio::io_context io;
  auto work = boost::asio::make_work_guard(io);
  DelayedAnswers delays(io);

  std::unique_ptr<GrpcListener> grpc_listener;
  std::unique_ptr<HttpListener> http_listener;
  std::string ready = "{";
  if (options.grpc_address) {
    auto started = GrpcListener::start(*options.grpc_address, recorder, delays);
    if (!started) {
      std::fprintf(stderr, "spanrelay-testsink: %s\n", started.error().message.c_str());
      return 1;
    }
    grpc_listener = std::move(started.value());
    ready += "\"grpc\":\"" + grpc_listener->bound_address() + "\"";
  }
  if (options.http_address) {
    auto started = HttpListener::start(*options.http_address, io, recorder, delays);
    if (!started) {
      std::fprintf(stderr, "spanrelay-testsink: %s\n", started.error().message.c_str());
      if (grpc_listener) grpc_listener->shutdown();
      return 1;
    }
    http_listener = std::move(started.value());
    if (ready.size() > 1) ready += ",";
    ready += "\"http\":\"" + http_listener->bound_address() + "\"";
  }
  ready += "}";

  std::vector<std::thread> io_threads;
  for (int i = 0; i < options.http_threads; ++i) io_threads.emplace_back([&io] { io.run(); });

  if (options.ready_file) {
    if (auto written = write_ready_file(*options.ready_file, ready); !written) {
      std::fprintf(stderr, "spanrelay-testsink: %s\n", written.error().message.c_str());
    }
  }
  std::fprintf(stderr, "spanrelay-testsink: listening %s\n", ready.c_str());

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);

  // Stop taking new work, answer everything held back by --delay-ms now, let
  // gRPC finish its calls, then stop the I/O threads.
  if (http_listener) http_listener->close();
  delays.cancel_all();
  if (grpc_listener) grpc_listener->shutdown();
  work.reset();
  io.stop();
  for (auto& thread : io_threads) thread.join();
  const SinkStats stats = recorder.stats();
  std::fprintf(stderr, "spanrelay-testsink: stopping: %llu requests, %llu spans accepted\n",
               static_cast<unsigned long long>(stats.requests),
               static_cast<unsigned long long>(stats.spans));
  return 0;  // line files are written with one write(2) per request: nothing to flush
}

}  // namespace
}  // namespace spanrelay::testsink

int main(int argc, char** argv) { return spanrelay::testsink::run(argc, argv); }
