// spanrelay-spool-bench: write and replay throughput of the disk spool, per
// fsync policy, with batches shaped like the relay's (about 1 MiB of span
// bytes, zstd-compressed on the way in). Prints figures; never fails on them.
//
//   spanrelay-spool-bench [--dir DIR] [--mib N] [--writers W]
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "daemon/delivery/spool.h"
#include "daemon/telemetry/metrics.h"

namespace {

using Clock = std::chrono::steady_clock;

// Span-like bytes: attribute keys and values repeat, ids do not; compresses
// roughly as real OTLP does (3-6x), unlike random or constant bytes.
std::string make_batch(std::mt19937_64& rng, std::size_t size) {
  static const char* words[] = {
      "http.route", "/api/v1/items", "GET",          "service.name",
      "checkout",   "net.peer.name", "db.statement", "SELECT * FROM orders WHERE id = ?"};
  std::string out;
  out.reserve(size + 64);
  while (out.size() < size) {
    for (int i = 0; i < 16; ++i) out.push_back(static_cast<char>(rng()));
    for (int i = 0; i < 6; ++i) out += words[rng() % 8];
  }
  out.resize(size);
  return out;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void run(const std::string& dir, spanrelay::config::FsyncPolicy fsync, const char* name, int mib,
         int writers) {
  std::filesystem::remove_all(dir);
  spanrelay::config::SpoolConfig config;
  config.dir = dir;
  config.max_size = 8ull << 30;
  config.fsync = fsync;
  spanrelay::telemetry::Registry metrics;
  auto opened = spanrelay::delivery::Spool::open(config, metrics);
  if (!opened.ok()) {
    std::fprintf(stderr, "cannot open spool: %s\n", opened.error().message.c_str());
    return;
  }
  auto spool = std::move(opened).value();
  const std::size_t batch_size = 1 << 20;
  std::mt19937_64 rng(1);
  std::vector<std::string> batches;
  for (int i = 0; i < 8; ++i) batches.push_back(make_batch(rng, batch_size));

  const int total = mib;
  const auto write_start = Clock::now();
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      for (int i = w; i < total; i += writers) spool->append(batches[i % batches.size()], 1000);
    });
  }
  for (auto& t : threads) t.join();
  const double write_s = seconds_since(write_start);
  const auto on_disk = spool->stats().bytes;

  const auto read_start = Clock::now();
  std::uint64_t read_bytes = 0;
  while (auto record = spool->lease_next()) {
    read_bytes += record->request.size();
    spool->ack(record->id);
  }
  const double read_s = seconds_since(read_start);
  std::printf("| %-8s | %7d | %9.1f | %9.1f | %6.2f |\n", name, writers, total / write_s,
              static_cast<double>(read_bytes) / (1 << 20) / read_s,
              static_cast<double>(total) * (1 << 20) / static_cast<double>(on_disk));
  spool.reset();  // its background flusher must stop before the files go
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/spanrelay-spool-bench";
  int mib = 256;
  int writers = 4;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
    if (!std::strcmp(argv[i], "--mib")) mib = std::stoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--writers")) writers = std::stoi(argv[i + 1]);
  }
  std::printf("spool: %d MiB of 1 MiB batches (uncompressed), %u cores\n\n", mib,
              std::thread::hardware_concurrency());
  std::printf(
      "| fsync    | writers | write MiB/s | replay MiB/s | zstd ratio |\n|---|---|---|---|---|\n");
  using spanrelay::config::FsyncPolicy;
  run(dir, FsyncPolicy::kNever, "never", mib, writers);
  run(dir, FsyncPolicy::kInterval, "interval", mib, writers);
  run(dir, FsyncPolicy::kAlways, "always", mib, writers);
  run(dir, FsyncPolicy::kAlways, "always", mib, 1);
  return 0;
}
