#pragma once
// Load balancing to a gateway tier (issue 8): batches from the batcher (after
// sampling) are split by the consistent-hash ring owner of each span's key
// (trace id, or service.name) and each part goes to that member's own
// DeliveryQueue: its own exporter, retry and (with a spool) spool partition.
//
// Health: a member whose export attempts fail `ejection.consecutive_failures`
// times in a row leaves the ring for ejection.base_time, doubled for each
// ejection in a row up to max_time (reset by a success). Its keys then belong
// to the other members, and so do its batches: the ones waiting in memory,
// the ones in flight (given back when their attempt fails) and the records in
// its spool partition are re-split and handed to the new owners, never
// dropped. When its time is up it rejoins the ring on probation: its next
// failure ejects it again at once, a success clears its record. The last
// member in the ring is never ejected (there would be nowhere to send to).
//
// Membership comes from a MemberResolver (a static list or DNS). A member the
// resolver drops is handled like an ejected one for good: its batches and
// records move to the others, then it is closed and its partition deleted.
// Partitions found on disk that belong to no member are drained the same way.
//
// Threads: route() runs on the batcher's threads; ring changes, rejoins and
// spool transfers run on one maintenance thread; health hooks only flag work
// for it. Membership changes publish a new immutable routing snapshot.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/batching/batch.h"
#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/delivery/delivery_queue.h"
#include "daemon/delivery/hash_ring.h"
#include "daemon/delivery/member_resolver.h"
#include "daemon/delivery/memory_budget.h"
#include "daemon/delivery/spool_partitions.h"
#include "daemon/exporters/exporter.h"
#include "daemon/telemetry/log_setup.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::delivery {

// True when the exporter names several upstreams (endpoints or a resolver).
bool uses_load_balancing(const config::ExporterConfig& config);

class LoadBalancer {
 public:
  using Clock = std::chrono::steady_clock;
  using ExporterFactory = std::function<Result<std::shared_ptr<exporters::Exporter>>(
      const config::ExporterConfig& member_config)>;

  struct Options {
    // Builds a member's exporter; empty = exporters::make_exporter.
    ExporterFactory make_exporter;
    unsigned virtual_nodes = kDefaultVirtualNodes;
  };

  LoadBalancer(config::ExporterConfig config, MemoryBudget& budget, telemetry::Registry& metrics,
               std::unique_ptr<MemberResolver> resolver, Options options);
  ~LoadBalancer();
  LoadBalancer(const LoadBalancer&) = delete;
  LoadBalancer& operator=(const LoadBalancer&) = delete;

  // Opens the spool partitions on disk, starts the resolver (a static list,
  // or a first DNS answer, gives the members before this returns) and the
  // maintenance thread. An error (a member's exporter or partition cannot be
  // set up) leaves it safe to shut down.
  Status start();

  // The batcher's sink. Always takes the batch (its memory was reserved at
  // admission): with no member known yet it waits in memory until one is.
  void route(batching::Batch&& batch);

  // Admission overflow with a spool: the whole request goes to the unrouted
  // partition and is re-routed from there. False without a spool or when full.
  bool spill_request(std::string_view request, std::uint32_t spans);

  // Reload: every member's next attempt uses an exporter built from `next`
  // (headers, timeout, compression). Errors leave the running exporters.
  Status replace_exporters(const config::ExporterConfig& next);

  // Stops the resolver and the maintenance thread, then drains every
  // member's queue in parallel until `deadline` (the rest goes to its spool
  // partition, or is dropped{reason="shutdown_timeout"}). Safe twice.
  void shutdown(Clock::time_point deadline);

  // For /readyz: every open spool partition accepts writes.
  bool spool_writable() const;
  // The members in the ring now, sorted.
  std::vector<std::string> ring_members() const;
  // Every member known (in the ring or ejected), sorted.
  std::vector<std::string> members() const;
  std::string describe() const;

 private:
  struct Member;
  struct Routing {
    std::shared_ptr<const HashRing> ring;
    std::vector<std::shared_ptr<Member>> owners;  // owners[i] has ring->members()[i]
  };

  std::shared_ptr<const Routing> routing() const;
  // Splits `batch` on `routing` and queues the parts; `rerouted` counts them.
  void route_on(const Routing& routing, batching::Batch&& batch, bool rerouted);
  // Moves one spool record to the partitions (or queues) of its owners.
  void transfer(SpoolRecord& record, const Routing& routing);
  // Moves up to `limit` records of `partition`; true when it has no record left.
  bool drain_partition(SpoolPartition& partition, std::size_t limit);

  void on_members(const std::vector<std::string>& members);
  void maintenance_loop();
  // One pass of the maintenance work; returns when it should run again.
  Clock::time_point maintain();
  void apply_members(const std::vector<std::string>& members);
  Result<std::shared_ptr<Member>> create_member(const std::string& endpoint,
                                                std::size_t member_count);
  void eject(Member& member, Clock::time_point now);
  void rejoin(Member& member);
  void retire(Member& member);
  void close_member(const std::shared_ptr<Member>& member);
  // Publishes the ring of members that are in it; counts a rebalance.
  void publish_routing();
  void wake_maintenance();
  // The members' own config: one endpoint, its share of the memory queue.
  config::ExporterConfig member_config(const std::string& endpoint, std::size_t member_count) const;

  config::ExporterConfig config_;  // guarded by members_mutex_ after start()
  MemoryBudget& budget_;
  telemetry::Registry& metrics_;
  std::unique_ptr<MemberResolver> resolver_;
  Options options_;
  std::unique_ptr<SpoolPartitions> partitions_;  // null without a spool

  telemetry::Gauge& members_in_ring_;
  telemetry::Counter& rebalances_;
  telemetry::Counter& rerouted_spans_;
  telemetry::Gauge& pending_spans_;

  // Membership: changed only by start(), the maintenance thread and shutdown().
  mutable std::mutex members_mutex_;
  std::map<std::string, std::shared_ptr<Member>> members_;
  std::shared_ptr<SpoolPartition> unrouted_;
  std::vector<std::shared_ptr<SpoolPartition>> orphans_;  // belonging to no member

  mutable std::mutex routing_mutex_;
  std::shared_ptr<const Routing> routing_;

  // Work for the maintenance thread, and batches with no member yet.
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool work_ = false;
  std::optional<std::vector<std::string>> pending_members_;
  std::deque<batching::Batch> waiting_;
  std::thread maintenance_;
  std::atomic<bool> stopping_{false};
  telemetry::RateLimitedLog log_limiter_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace spanrelay::delivery
