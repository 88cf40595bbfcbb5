// spanrelay-loadgen: sends prebuilt OTLP trace requests to a receiver (the
// daemon, or the test sink) from C worker threads for a fixed duration and
// reports throughput, ack latency and, given --daemon-pid, the daemon's CPU
// and memory. It measures and never judges: exit 0 even when requests fail.
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "bench/loadgen/clients.h"
#include "bench/loadgen/loadgen_options.h"
#include "bench/loadgen/process_stats.h"
#include "bench/loadgen/report.h"
#include "bench/loadgen/request_pool.h"

namespace spanrelay::loadgen {
namespace {

using Clock = std::chrono::steady_clock;

// How long after --duration the workers may still wait for answers before
// their connections are cut: bounds the run even against a hung receiver.
constexpr auto kGracePeriod = std::chrono::seconds(5);

struct Worker {
  std::unique_ptr<Client> client;
  Tally tally;
  Clock::time_point last_answer{};
};

// One worker's loop. Open loop when --rate is set: request k is due at
// first_due + k * interval whether or not earlier answers were slow (a late
// worker sends at once to catch up); latency is measured from the actual
// send. Closed loop otherwise: the next request leaves when the ack arrives.
void run_worker(Worker& worker, const LoadgenOptions& options, const RequestPool& pool,
                std::size_t worker_index, Clock::time_point start, Clock::time_point end) {
  const auto interval =
      options.rate > 0 ? std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
                             static_cast<double>(options.concurrency) / options.rate))
                       : Clock::duration::zero();
  // Stagger the workers' schedules so that paced requests are spread evenly.
  Clock::time_point due = start + interval * worker_index / options.concurrency;
  const auto timeout =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.timeout_s));
  std::size_t next_request = worker_index * 7919;  // different starting points in the pool
  for (;;) {
    if (interval != Clock::duration::zero()) {
      if (due >= end) break;
      std::this_thread::sleep_until(due);
      due += interval;
    } else if (Clock::now() >= end) {
      break;
    }
    const PreparedRequest& request = pool.requests[next_request++ % pool.requests.size()];
    const auto sent = Clock::now();
    const SendOutcome outcome =
        worker.client->send(request, std::min(sent + timeout, end + kGracePeriod));
    worker.last_answer = Clock::now();
    worker.tally.add(
        outcome,
        std::chrono::duration_cast<std::chrono::nanoseconds>(worker.last_answer - sent).count(),
        request.spans);
  }
}

int run(int argc, char** argv) {
  auto parsed = parse_loadgen_options(argc, argv);
  if (!parsed) {
    std::fprintf(stderr, "spanrelay-loadgen: %s\n", parsed.error().message.c_str());
    return 2;
  }
  const LoadgenOptions& options = parsed.value();
  ::signal(SIGPIPE, SIG_IGN);

  auto pool_or = build_request_pool(options);
  if (!pool_or) {
    std::fprintf(stderr, "spanrelay-loadgen: %s\n", pool_or.error().message.c_str());
    return 2;
  }
  const RequestPool& pool = pool_or.value();

  std::vector<Worker> workers(static_cast<std::size_t>(options.concurrency));
  for (auto& worker : workers) {
    worker.client = make_client(options);
    if (!worker.client) {
      std::fprintf(stderr, "spanrelay-loadgen: cannot resolve %s\n", options.target.text.c_str());
      return 2;
    }
  }

  RunSummary summary;
  std::optional<double> cpu_before;
  if (options.daemon_pid) {
    auto cpu = process_cpu_seconds(*options.daemon_pid);
    if (cpu) {
      cpu_before = cpu.value();
    } else {
      summary.daemon_note = cpu.error().message;
    }
  }

  const auto start = Clock::now() + std::chrono::milliseconds(20);
  const auto end = start + std::chrono::duration_cast<Clock::duration>(
                               std::chrono::duration<double>(options.duration_s));
  std::mutex mutex;
  std::condition_variable all_done;
  std::size_t running = workers.size();
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < workers.size(); ++i) {
    threads.emplace_back([&, i] {
      std::this_thread::sleep_until(start);
      run_worker(workers[i], options, pool, i, start, end);
      std::lock_guard lock(mutex);
      if (--running == 0) all_done.notify_all();
    });
  }
  {
    std::unique_lock lock(mutex);
    if (!all_done.wait_until(lock, end + kGracePeriod, [&] { return running == 0; })) {
      for (auto& worker : workers) worker.client->abort();
    }
  }
  for (auto& thread : threads) thread.join();

  Clock::time_point last_answer = start;
  for (auto& worker : workers) {
    last_answer = std::max(last_answer, worker.last_answer);
    summary.tally.merge(std::move(worker.tally));
  }
  summary.elapsed_s = std::chrono::duration<double>(last_answer - start).count();

  if (options.daemon_pid && cpu_before) {
    auto cpu_after = process_cpu_seconds(*options.daemon_pid);
    if (cpu_after) {
      summary.daemon_cpu_s = cpu_after.value() - *cpu_before;
    } else {
      summary.daemon_note = cpu_after.error().message;
    }
    auto rss = process_peak_rss_kib(*options.daemon_pid);
    if (rss) summary.daemon_peak_rss_kib = rss.value();
  }

  const std::string report = format_report(options, pool, summary);
  std::fwrite(report.data(), 1, report.size(), stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace spanrelay::loadgen

int main(int argc, char** argv) { return spanrelay::loadgen::run(argc, argv); }
