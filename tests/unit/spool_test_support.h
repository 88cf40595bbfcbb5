#pragma once
// Shared helpers of the spool tests: a fresh temporary directory, spool
// configs, recognisable requests, and shortcuts that assert as they go.
#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "daemon/delivery/spool.h"
#include "daemon/delivery/spool_segment.h"

namespace spanrelay::delivery::spool_test {

namespace fs = std::filesystem;
using config::FsyncPolicy;
using config::SpoolConfig;
using config::WhenFull;
using delivery::Spool;
using delivery::SpoolHooks;
using delivery::SpoolRecord;
using telemetry::Registry;
using AppendStatus = Spool::AppendStatus;
namespace format = delivery::spool;

class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/spool_test.XXXXXX";
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string spool_dir() const { return path_ + "/spool"; }

 private:
  std::string path_;
};

inline SpoolConfig spool_config(const std::string& dir, FsyncPolicy fsync = FsyncPolicy::kNever,
                                std::uint64_t max_size = 64ull << 20,
                                WhenFull when_full = WhenFull::kDropOldest) {
  SpoolConfig config;
  config.dir = dir;
  config.max_size = max_size;
  config.fsync = fsync;
  config.fsync_interval = std::chrono::hours(1);  // tests that want it set their own
  config.when_full = when_full;
  return config;
}

// "req-<index>;" then `size` pseudo-random bytes (incompressible, so record
// sizes on disk are predictable).
inline std::string make_request(std::uint32_t index, std::size_t size = 64) {
  std::string request = "req-" + std::to_string(index) + ";";
  std::mt19937 random(index);
  for (std::size_t i = 0; i < size; ++i) request.push_back(static_cast<char>(random() & 0xff));
  return request;
}

inline std::uint32_t request_index(const std::string& request) {
  REQUIRE(request.rfind("req-", 0) == 0);
  return static_cast<std::uint32_t>(std::stoul(request.substr(4, request.find(';') - 4)));
}

inline std::unique_ptr<Spool> open_spool(const SpoolConfig& config, Registry& registry,
                                         SpoolHooks hooks = {}) {
  auto spool = Spool::open(config, registry, std::move(hooks));
  REQUIRE_MESSAGE(spool.ok(), (spool.ok() ? "" : spool.error().message));
  return std::move(spool).value();
}

inline void append_ok(Spool& spool, std::uint32_t index, std::size_t size = 64,
                      std::uint32_t spans = 1) {
  const auto result = spool.append(make_request(index, size), spans);
  REQUIRE_MESSAGE(result.status == AppendStatus::kOk, result.error);
  CHECK(result.evicted_spans == 0);
}

// Leases everything that is left; returns the request indices in lease order.
inline std::vector<std::uint32_t> lease_all(Spool& spool, bool ack = false) {
  std::vector<std::uint32_t> indices;
  while (auto record = spool.lease_next()) {
    REQUIRE_FALSE(record->corrupt);
    indices.push_back(request_index(record->request));
    if (ack) spool.ack(record->id);
  }
  return indices;
}

inline std::vector<std::uint32_t> range(std::uint32_t first, std::uint32_t end) {
  std::vector<std::uint32_t> out;
  for (std::uint32_t i = first; i < end; ++i) out.push_back(i);
  return out;
}

inline std::vector<fs::path> segment_files(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() == ".seg") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

inline std::uint64_t total_size(const std::vector<fs::path>& files) {
  std::uint64_t total = 0;
  for (const auto& file : files) total += fs::file_size(file);
  return total;
}

inline std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
  REQUIRE(out.good());
}

}  // namespace spanrelay::delivery::spool_test
