#include "daemon/delivery/spool_partitions.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <system_error>

#include "daemon/delivery/spool_segment.h"

namespace spanrelay::delivery {
namespace {

namespace fs = std::filesystem;
constexpr std::string_view kMemberPrefix = "lb-";
constexpr char kHexDigits[] = "0123456789ABCDEF";

bool is_plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string partition_dir_name(std::string_view endpoint) {
  std::string name(kMemberPrefix);
  for (const char c : endpoint) {
    if (is_plain(c)) {
      name += c;
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    name += '_';
    name += kHexDigits[byte >> 4];
    name += kHexDigits[byte & 15];
  }
  return name;
}

std::optional<std::string> endpoint_of_partition_dir(std::string_view name) {
  if (name.substr(0, kMemberPrefix.size()) != kMemberPrefix) return std::nullopt;
  name.remove_prefix(kMemberPrefix.size());
  if (name.empty()) return std::nullopt;
  std::string endpoint;
  for (std::size_t i = 0; i < name.size(); ++i) {
    if (is_plain(name[i])) {
      endpoint += name[i];
      continue;
    }
    if (name[i] != '_' || i + 2 >= name.size()) return std::nullopt;
    const int high = hex_value(name[i + 1]);
    const int low = hex_value(name[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    endpoint += static_cast<char>(high * 16 + low);
    i += 2;
  }
  return endpoint;
}

struct SpoolPartitions::Exposed {
  // The spool's own series live here, read through the labelled callbacks
  // below, so that several spools never write the same gauge.
  std::shared_ptr<telemetry::Registry> registry = std::make_shared<telemetry::Registry>();
  // Held while a callback reads the spool, and by remove() while it
  // unpublishes it, so that no scrape reads a spool being closed.
  std::mutex mutex;
  std::weak_ptr<SpoolPartition> current;

  template <class Read>
  double read_open(Read read) {
    std::lock_guard lock(mutex);
    const auto partition = current.lock();
    return partition && partition->spool ? read(*partition) : 0.0;
  }
};

SpoolPartitions::SpoolPartitions(config::SpoolConfig spool, telemetry::Registry& metrics)
    : spool_(std::move(spool)),
      metrics_(metrics),
      recovered_spans_(
          metrics.counter("spanrelay_spool_recovered_spans_total",
                          "Spans found in the spool at start-up (accepted by an earlier run).")) {}

std::string SpoolPartitions::dir_for(std::string_view endpoint) const {
  return spool_.dir + "/" + partition_dir_name(endpoint);
}

std::string SpoolPartitions::unrouted_dir() const {
  return spool_.dir + "/" + std::string(kUnroutedPartition);
}

SpoolPartitions::Exposed& SpoolPartitions::exposed(const std::string& label) {
  std::lock_guard lock(mutex_);
  auto& slot = exposed_[label];
  if (slot) return *slot;
  slot = std::make_shared<Exposed>();
  const telemetry::Labels labels{{"endpoint", label}};
  // Gauges read 0 once the partition is closed; counters keep their totals.
  const auto gauge_of = [slot](const char* name) {
    return [slot, name]() -> double {
      return slot->read_open([&](SpoolPartition&) { return slot->registry->value(name); });
    };
  };
  metrics_.callback_gauge(
      "spanrelay_spool_spans", "Spans in the disk spool, waiting for the upstream.",
      [slot]() -> double {
        return slot->read_open([](SpoolPartition& partition) {
          return static_cast<double>(partition.spool->stats().spans);
        });
      },
      labels);
  metrics_.callback_gauge("spanrelay_spool_bytes", "Bytes of segment files in the spool.",
                          gauge_of("spanrelay_spool_bytes"), labels);
  metrics_.callback_gauge("spanrelay_spool_records",
                          "Records in the spool not yet acknowledged (leased included).",
                          gauge_of("spanrelay_spool_records"), labels);
  for (const auto& [name, help] : std::initializer_list<std::pair<const char*, const char*>>{
           {"spanrelay_spool_corrupt_records_total",
            "Spool records skipped: torn by a crash or failing their CRC check."},
           {"spanrelay_spool_fsyncs_total", "fsync calls made by the spool."},
           {"spanrelay_spool_write_bytes_total", "Bytes written to spool files."},
           {"spanrelay_spool_read_bytes_total", "Bytes read from spool files."}}) {
    metrics_.callback_counter(
        name, help,
        [registry = slot->registry, name = std::string(name)] { return registry->value(name); },
        labels);
  }
  metrics_
      .gauge("spanrelay_spool_capacity_bytes",
             "Configured size limit of the disk spool (exporter.queue.spool.max_size).", labels)
      .set(static_cast<std::int64_t>(spool_.max_size));
  return *slot;
}

Result<std::shared_ptr<SpoolPartition>> SpoolPartitions::open(const std::string& label,
                                                              const std::string& dir) {
  Exposed& slot = exposed(label);
  config::SpoolConfig config = spool_;
  config.dir = dir;
  auto spool = Spool::open(config, *slot.registry);
  if (!spool.ok()) return spool.error();
  auto partition = std::make_shared<SpoolPartition>();
  partition->label = label;
  partition->dir = dir;
  partition->spool = std::move(spool).value();
  const auto recovered = partition->spool->stats();
  // Spans accepted by an earlier run: they enter this run's accounting here.
  recovered_spans_.add(recovered.spans);
  if (recovered.records > 0) {
    spdlog::info("spool partition {}: {} records, {} spans to replay", dir, recovered.records,
                 recovered.spans);
  }
  {
    std::lock_guard lock(slot.mutex);
    slot.current = partition;
  }
  return partition;
}

std::vector<FoundPartition> SpoolPartitions::discover() const {
  std::vector<FoundPartition> found;
  std::error_code ec;
  bool root_has_segments = false;
  for (fs::directory_iterator it(spool_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (it->is_directory(type_ec)) {
      if (auto endpoint = endpoint_of_partition_dir(name)) {
        found.push_back({std::move(*endpoint), it->path().string()});
      }
    } else if (spool::parse_spool_file_name(name)) {
      root_has_segments = true;
    }
  }
  if (root_has_segments) found.push_back({std::string(kLegacyPartition), spool_.dir});
  return found;
}

void SpoolPartitions::remove(std::shared_ptr<SpoolPartition> partition) {
  if (!partition) return;
  {
    std::shared_ptr<Exposed> slot;
    {
      std::lock_guard lock(mutex_);
      slot = exposed_[partition->label];
    }
    if (slot) {
      std::lock_guard lock(slot->mutex);
      if (slot->current.lock() == partition) slot->current.reset();
    }
  }
  const std::string dir = partition->dir;
  const bool is_root = fs::path(dir).lexically_normal() == fs::path(spool_.dir).lexically_normal();
  partition->spool.reset();  // flushes and unlocks before the files go
  if (is_root) return;       // a one-endpoint run's root: its (acknowledged) files stay
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (ec) spdlog::warn("spool partition {}: cannot remove: {}", dir, ec.message());
}

std::uint64_t move_partitions_into(Spool& root, const config::SpoolConfig& spool,
                                   telemetry::Registry& metrics) {
  std::vector<std::string> dirs;
  std::error_code ec;
  for (fs::directory_iterator it(spool.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!it->is_directory(type_ec)) continue;
    if (endpoint_of_partition_dir(name) || name == kUnroutedPartition) {
      dirs.push_back(it->path().string());
    }
  }
  std::uint64_t corrupt_spans = 0;
  for (const auto& dir : dirs) {
    config::SpoolConfig config = spool;
    config.dir = dir;
    telemetry::Registry own;  // a partition's series are not this relay's
    auto partition = Spool::open(config, own);
    if (!partition.ok()) {
      spdlog::error("spool partition {} left in place: {}", dir, partition.error().message);
      continue;
    }
    bool complete = true;
    while (auto record = partition.value()->lease_next()) {
      if (record->corrupt) {
        metrics
            .counter("spanrelay_dropped_spans_total",
                     "Spans accepted and then lost for good, by reason (a retried span is not "
                     "dropped).",
                     {{"reason", "spool_corrupt"}})
            .add(record->spans);
        corrupt_spans += record->spans;
      } else if (root.append(record->request, record->spans).status != Spool::AppendStatus::kOk) {
        complete = false;  // the root is full: the rest stays for a later run
        partition.value()->release(record->id);
        break;
      }
      partition.value()->ack(record->id);
    }
    partition.value().reset();
    if (complete) {
      fs::remove_all(dir, ec);
      spdlog::info("spool partition {} moved into {}", dir, spool.dir);
    }
  }
  return corrupt_spans;
}

}  // namespace spanrelay::delivery
