#pragma once
// The disk spool of a load-balanced exporter, one partition per member (issue
// 8): <spool.dir>/lb-<escaped endpoint>/ holds what waits for that member, and
// <spool.dir>/unrouted/ what was accepted before it could be routed (admission
// overflow, or no member known yet). Each partition is a whole Spool with its
// own segments, LOCK and size cap (spool.max_size per partition).
//
// A partition whose member is gone (removed from the config or from DNS, or
// written by a one-endpoint run into the root of spool.dir) is found at
// start-up and its records are re-routed by the balancer, so a restart with a
// different member list still replays everything.
//
// Metrics: each partition's spool series carry {endpoint="<label>"}.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/delivery/spool.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::delivery {

// Label of the partition for spans not routed yet.
inline constexpr std::string_view kUnroutedPartition = "unrouted";
// Label of the records a one-endpoint run left in the root of spool.dir.
inline constexpr std::string_view kLegacyPartition = "single-endpoint";

// "lb-" + the endpoint with every byte outside [A-Za-z0-9.-] written as _XX
// (hex): "127.0.0.1:4317" -> "lb-127.0.0.1_3A4317". Reversible.
std::string partition_dir_name(std::string_view endpoint);
// The endpoint of an "lb-..." directory name; nullopt for anything else.
std::optional<std::string> endpoint_of_partition_dir(std::string_view name);

struct SpoolPartition {
  std::string label;  // the member's endpoint, kUnroutedPartition or kLegacyPartition
  std::string dir;
  std::unique_ptr<Spool> spool;
};

struct FoundPartition {
  std::string label;
  std::string dir;
};

class SpoolPartitions {
 public:
  // `spool.dir` is the root; every partition takes the other settings.
  SpoolPartitions(config::SpoolConfig spool, telemetry::Registry& metrics);

  // The directory of a member's partition.
  std::string dir_for(std::string_view endpoint) const;
  std::string unrouted_dir() const;

  // Opens (creating it if needed) the partition, adds the spans it recovered
  // to spanrelay_spool_recovered_spans_total and exposes its series. Opening
  // a label again after close() continues the same counters.
  Result<std::shared_ptr<SpoolPartition>> open(const std::string& label, const std::string& dir);

  // Partitions left on disk: every lb-* directory, and the root itself when
  // it holds segment files of a one-endpoint run.
  std::vector<FoundPartition> discover() const;

  // Closes a drained partition and deletes its directory (never the root).
  void remove(std::shared_ptr<SpoolPartition> partition);

 private:
  struct Exposed;  // one label's metric slots
  Exposed& exposed(const std::string& label);

  const config::SpoolConfig spool_;
  telemetry::Registry& metrics_;
  telemetry::Counter& recovered_spans_;
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Exposed>> exposed_;
};

// A one-endpoint relay whose spool.dir holds partitions of a load-balancing
// run: moves their records into `root` (the one upstream's spool), acks and
// deletes them. Corrupt records are counted as dropped{reason="spool_corrupt"};
// returns their spans, which were accepted by that earlier run just as the
// ones now in root.stats() were.
std::uint64_t move_partitions_into(Spool& root, const config::SpoolConfig& spool,
                                   telemetry::Registry& metrics);

}  // namespace spanrelay::delivery
