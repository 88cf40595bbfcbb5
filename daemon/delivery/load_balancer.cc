#include "daemon/delivery/load_balancer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "daemon/delivery/batch_splitter.h"
#include "daemon/delivery/load_balancer_member.h"

namespace spanrelay::delivery {
namespace {

constexpr const char* kDropped = detail::kDroppedSpans;
constexpr const char* kDroppedHelp = detail::kDroppedSpansHelp;

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::uint64_t share_of(std::uint64_t total, std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return 0;
  return static_cast<std::uint64_t>(static_cast<unsigned __int128>(total) * part / whole);
}

}  // namespace

bool uses_load_balancing(const config::ExporterConfig& config) {
  return !config.endpoints.empty() || !config.dns.hostname.empty();
}

LoadBalancer::LoadBalancer(config::ExporterConfig config, MemoryBudget& budget,
                           telemetry::Registry& metrics, std::unique_ptr<MemberResolver> resolver,
                           Options options)
    : config_(std::move(config)),
      budget_(budget),
      metrics_(metrics),
      resolver_(std::move(resolver)),
      options_(std::move(options)),
      members_in_ring_(metrics.gauge("spanrelay_lb_members",
                                     "Load-balancing members in the ring (not ejected).")),
      rebalances_(metrics.counter("spanrelay_lb_rebalances_total",
                                  "Changes of the load-balancing ring (a member joined, left, "
                                  "was ejected or rejoined).")),
      rerouted_spans_(metrics.counter("spanrelay_lb_rerouted_spans_total",
                                      "Spans moved from a member that left the ring (ejected or "
                                      "removed) or from an orphaned spool partition to the "
                                      "members that own their keys now.")),
      pending_spans_(metrics.gauge("spanrelay_queue_spans",
                                   "Spans accepted and not yet delivered or dropped (open batch, "
                                   "queue, in flight, retrying).")) {
  if (!options_.make_exporter) {
    options_.make_exporter =
        [](const config::ExporterConfig& member) -> Result<std::shared_ptr<exporters::Exporter>> {
      auto made = exporters::make_exporter(member);
      if (!made.ok()) return made.error();
      return std::shared_ptr<exporters::Exporter>(std::move(made).value());
    };
  }
  for (const char* reason : {"retry_exhausted", "non_retryable", "upstream_rejected",
                             "shutdown_timeout", "spool_full", "spool_corrupt"}) {
    metrics.counter(kDropped, kDroppedHelp, {{"reason", reason}});
  }
  metrics.callback_gauge("spanrelay_queue_bytes",
                         "Bytes of accepted spans held in memory (open batch and queue).",
                         [&budget] { return static_cast<double>(budget.used()); });
  metrics.callback_gauge("spanrelay_queue_capacity_bytes", "The memory budget for accepted spans.",
                         [&budget] { return static_cast<double>(budget.limit()); });
  if (!config_.queue.spool.dir.empty()) {
    partitions_ = std::make_unique<SpoolPartitions>(config_.queue.spool, metrics);
  }
}

LoadBalancer::~LoadBalancer() { shutdown(Clock::now()); }

std::string LoadBalancer::describe() const {
  return "load balancing by " +
         std::string(config_.routing_key == config::RoutingKey::kService ? "service.name"
                                                                         : "trace id") +
         " over " + resolver_->describe();
}

config::ExporterConfig LoadBalancer::member_config(const std::string& endpoint,
                                                   std::size_t member_count) const {
  config::ExporterConfig member = config_;
  member.endpoint = endpoint;
  member.endpoints.clear();
  member.dns = {};
  // The memory queue's spill-to-spool threshold is a share of the budget, so
  // that one slow member's backlog goes to disk before it fills memory.
  member.queue.memory_limit = std::max<std::uint64_t>(
      config_.queue.memory_limit / std::max<std::size_t>(1, member_count), 1);
  if (partitions_) member.queue.spool.dir = partitions_->dir_for(endpoint);
  return member;
}

// --- start -------------------------------------------------------------------

Status LoadBalancer::start() {
  if (started_ || stopped_) return Ok{};
  started_ = true;
  if (partitions_) {
    auto unrouted = partitions_->open(std::string(kUnroutedPartition), partitions_->unrouted_dir());
    if (!unrouted.ok()) return Error{"spool: " + unrouted.error().message};
    unrouted_ = std::move(unrouted).value();
    // Every partition an earlier run left: a current member adopts its own,
    // the others are drained to the members that own their keys now.
    for (const auto& found : partitions_->discover()) {
      auto opened = partitions_->open(found.label, found.dir);
      if (!opened.ok()) return Error{"spool: " + opened.error().message};
      orphans_.push_back(std::move(opened).value());
    }
  }
  resolver_->start([this](const std::vector<std::string>& members) { on_members(members); });
  std::optional<std::vector<std::string>> first;
  {
    std::lock_guard lock(mutex_);
    first.swap(pending_members_);
  }
  if (first) {
    // At start-up a member that cannot be set up is a configuration error.
    for (const auto& endpoint : *first) {
      auto created = create_member(endpoint, first->size());
      if (!created.ok()) return created.error();
      std::lock_guard lock(members_mutex_);
      members_.emplace(endpoint, std::move(created).value());
    }
    publish_routing();
  }
  spdlog::info("exporter: {}; members in the ring: [{}]", describe(), join(ring_members()));
  maintenance_ = std::thread([this] { maintenance_loop(); });
  return Ok{};
}

Result<std::shared_ptr<LoadBalancer::Member>> LoadBalancer::create_member(
    const std::string& endpoint, std::size_t member_count) {
  config::ExporterConfig config;
  {
    std::lock_guard lock(members_mutex_);
    config = member_config(endpoint, member_count);
  }
  auto exporter = options_.make_exporter(config);
  if (!exporter.ok()) return Error{"exporter " + endpoint + ": " + exporter.error().message};
  auto member = std::make_shared<Member>();
  member->endpoint = endpoint;
  if (partitions_) {
    // A partition found on disk at start-up is this member's own.
    const auto adopted = std::find_if(orphans_.begin(), orphans_.end(),
                                      [&](const auto& p) { return p->label == endpoint; });
    if (adopted != orphans_.end()) {
      member->partition = *adopted;
      orphans_.erase(adopted);
    } else {
      auto opened = partitions_->open(endpoint, config.queue.spool.dir);
      if (!opened.ok()) return Error{"spool: " + opened.error().message};
      member->partition = std::move(opened).value();
    }
  }
  const telemetry::Labels labels{{"endpoint", endpoint}};
  Member* raw = member.get();
  const unsigned threshold = config_.ejection.consecutive_failures;
  DeliveryQueueOptions hooks;
  hooks.labels = labels;
  hooks.on_failure = [this, raw, threshold](unsigned in_a_row) {
    if (in_a_row < threshold || raw->eject_requested.exchange(true)) return;
    wake_maintenance();
  };
  hooks.on_recovered = [this, raw] {
    raw->recovered = true;
    wake_maintenance();
  };
  hooks.give_back = [this](batching::Batch& batch) {
    if (stopping_) return false;
    const auto current = routing();
    if (!current || current->owners.empty()) return false;
    route_on(*current, std::move(batch), true);
    return true;
  };
  member->queue = std::make_unique<DeliveryQueue>(
      std::move(exporter).value(), config, budget_, metrics_,
      member->partition ? member->partition->spool.get() : nullptr, std::move(hooks));

  // Gauges read through a weak pointer: a member the resolver removed reads 0.
  const std::weak_ptr<Member> weak = member;
  metrics_.callback_gauge(
      "spanrelay_queue_batches", "Batches waiting in the memory queue.",
      [weak] {
        const auto m = weak.lock();
        return m ? static_cast<double>(m->queue->queued_batches()) : 0.0;
      },
      labels);
  metrics_.callback_gauge(
      "spanrelay_exporter_queue_bytes",
      "Bytes of batches waiting in this member's memory queue (part of spanrelay_queue_bytes).",
      [weak] {
        const auto m = weak.lock();
        return m ? static_cast<double>(m->queue->queued_bytes()) : 0.0;
      },
      labels);
  member->in_ring_gauge = &metrics_.gauge(
      "spanrelay_lb_member_in_ring", "1 while the member is in the ring, 0 while ejected.", labels);
  member->ejections = &metrics_.counter(
      "spanrelay_lb_ejections_total",
      "Times a member left the ring after consecutive failed export attempts.", labels);
  member->in_ring = true;
  member->in_ring_gauge->set(1);
  member->queue->start();
  return member;
}

// --- routing -----------------------------------------------------------------

std::shared_ptr<const LoadBalancer::Routing> LoadBalancer::routing() const {
  std::lock_guard lock(routing_mutex_);
  return routing_;
}

void LoadBalancer::publish_routing() {
  auto next = std::make_shared<Routing>();
  {
    std::lock_guard lock(members_mutex_);
    std::vector<std::string> names;
    for (const auto& [endpoint, member] : members_) {
      if (member->in_ring) names.push_back(endpoint);
    }
    next->ring = std::make_shared<HashRing>(std::move(names), options_.virtual_nodes);
    for (const auto& endpoint : next->ring->members()) next->owners.push_back(members_[endpoint]);
  }
  std::shared_ptr<const Routing> previous;
  {
    std::lock_guard lock(routing_mutex_);
    previous = routing_;
    routing_ = next;
  }
  members_in_ring_.set(static_cast<std::int64_t>(next->owners.size()));
  if (previous && previous->ring->members() != next->ring->members()) rebalances_.add();
}

void LoadBalancer::route(batching::Batch&& batch) {
  const auto current = routing();
  if (!current || current->owners.empty()) {
    // No member known yet (the first DNS answer failed): hold it; its memory
    // is reserved, so admission stops before this grows without bound.
    {
      std::lock_guard lock(mutex_);
      waiting_.push_back(std::move(batch));
    }
    wake_maintenance();
    return;
  }
  route_on(*current, std::move(batch), false);
}

void LoadBalancer::route_on(const Routing& routing, batching::Batch&& batch, bool rerouted) {
  const std::uint32_t spans = batch.spans;
  // Counted before the push: an exporter thread may deliver the batch at once.
  if (rerouted) rerouted_spans_.add(spans);
  if (routing.owners.size() == 1) {
    routing.owners[0]->queue->push(std::move(batch));
  } else {
    SplitResult split = split_by_owner(batch.request, *routing.ring, config_.routing_key);
    if (split.single_owner) {
      routing.owners[*split.single_owner]->queue->push(std::move(batch));
    } else {
      // The parts share the batch's memory reservation, in proportion to
      // their size; the last one takes the remainder so the sum is exact.
      std::uint64_t whole = 0;
      for (const auto& part : split.parts) whole += part.request.size();
      std::uint64_t left = batch.reserved_bytes;
      for (std::size_t i = 0; i < split.parts.size(); ++i) {
        SplitPart& part = split.parts[i];
        const std::uint64_t reserved =
            i + 1 == split.parts.size()
                ? left
                : std::min(left, share_of(batch.reserved_bytes, part.request.size(), whole));
        left -= reserved;
        batching::Batch piece{std::move(part.request), part.spans, reserved, batch.created};
        routing.owners[part.owner]->queue->push(std::move(piece));
      }
    }
  }
}

bool LoadBalancer::spill_request(std::string_view request, std::uint32_t spans) {
  if (!unrouted_ || stopping_) return false;
  const auto result = unrouted_->spool->append(request, spans);
  if (result.evicted_spans > 0) {
    metrics_.counter(kDropped, kDroppedHelp, {{"reason", "spool_full"}}).add(result.evicted_spans);
  }
  if (result.status != Spool::AppendStatus::kOk) return false;
  wake_maintenance();
  return true;
}

void LoadBalancer::transfer(SpoolRecord& record, const Routing& routing) {
  if (record.corrupt) {
    metrics_.counter(kDropped, kDroppedHelp, {{"reason", "spool_corrupt"}}).add(record.spans);
    return;
  }
  SplitResult split = split_by_owner(record.request, *routing.ring, config_.routing_key);
  if (split.single_owner) {
    split.parts.push_back({*split.single_owner, std::move(record.request), record.spans});
  }
  for (SplitPart& part : split.parts) {
    Member& owner = *routing.owners[part.owner];
    // Disk to disk: a crash before the source's ack duplicates, never loses.
    if (owner.queue->spill_request(part.request, part.spans)) continue;
    // The owner's partition is full: memory if the budget allows, else the
    // spans are lost for good, like any record a full spool cannot keep.
    const std::uint64_t bytes = part.request.size();
    if (budget_.try_reserve(bytes)) {
      pending_spans_.add(part.spans);
      owner.queue->push(batching::Batch{std::move(part.request), part.spans, bytes, Clock::now()});
    } else {
      metrics_.counter(kDropped, kDroppedHelp, {{"reason", "spool_full"}}).add(part.spans);
    }
  }
}

bool LoadBalancer::drain_partition(SpoolPartition& partition, std::size_t limit) {
  const auto current = routing();
  if (!current || current->owners.empty() || !partition.spool) return false;
  const bool is_unrouted = &partition == unrouted_.get();
  for (std::size_t moved = 0; moved < limit; ++moved) {
    auto record = partition.spool->lease_next();
    if (!record) break;
    // Counted before the move: once acked, the spans are visible elsewhere.
    if (!is_unrouted) rerouted_spans_.add(record->spans);
    transfer(*record, *current);
    partition.spool->ack(record->id);
  }
  return partition.spool->stats().records == 0;
}

// --- reload, shutdown, status ---------------------------------------------------

Status LoadBalancer::replace_exporters(const config::ExporterConfig& next) {
  std::lock_guard lock(members_mutex_);
  const config::ExporterConfig previous = config_;
  config_.compression = next.compression;
  config_.timeout = next.timeout;
  config_.headers = next.headers;
  std::vector<std::pair<Member*, std::shared_ptr<exporters::Exporter>>> built;
  for (const auto& [endpoint, member] : members_) {
    auto exporter = options_.make_exporter(member_config(endpoint, members_.size()));
    if (!exporter.ok()) {
      config_ = previous;
      return Error{"exporter " + endpoint + ": " + exporter.error().message};
    }
    built.emplace_back(member.get(), std::move(exporter).value());
  }
  for (auto& [member, exporter] : built) member->queue->replace_exporter(std::move(exporter));
  return Ok{};
}

void LoadBalancer::shutdown(Clock::time_point deadline) {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;  // from here on, nothing is given back or re-routed
  if (resolver_) resolver_->shutdown();
  {
    std::lock_guard lock(mutex_);
    work_ = true;
  }
  wake_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();

  // Batches that never had a member: the unrouted partition keeps them for
  // the next run; without a spool they are lost, and counted.
  std::deque<batching::Batch> waiting;
  {
    std::lock_guard lock(mutex_);
    waiting.swap(waiting_);
  }
  for (auto& batch : waiting) {
    const bool kept = unrouted_ && unrouted_->spool->append(batch.request, batch.spans).status ==
                                       Spool::AppendStatus::kOk;
    if (!kept) {
      metrics_.counter(kDropped, kDroppedHelp, {{"reason", "shutdown_timeout"}}).add(batch.spans);
    }
    pending_spans_.add(-static_cast<std::int64_t>(batch.spans));
    budget_.release(batch.reserved_bytes);
  }

  std::vector<std::shared_ptr<Member>> members;
  {
    std::lock_guard lock(members_mutex_);
    for (const auto& [endpoint, member] : members_) members.push_back(member);
  }
  // Every member drains at the same time, each until the same deadline.
  for (const auto& member : members) member->queue->begin_shutdown(deadline);
  for (const auto& member : members) member->queue->shutdown(deadline);
}

bool LoadBalancer::spool_writable() const {
  std::lock_guard lock(members_mutex_);
  if (unrouted_ && !unrouted_->spool->writable()) return false;
  for (const auto& [endpoint, member] : members_) {
    if (member->partition && member->partition->spool && !member->partition->spool->writable()) {
      return false;
    }
  }
  return true;
}

std::vector<std::string> LoadBalancer::ring_members() const {
  const auto current = routing();
  return current ? current->ring->members() : std::vector<std::string>{};
}

std::vector<std::string> LoadBalancer::members() const {
  std::lock_guard lock(members_mutex_);
  std::vector<std::string> out;
  for (const auto& [endpoint, member] : members_) out.push_back(endpoint);
  return out;
}

}  // namespace spanrelay::delivery
