// The load balancer's membership and health: the maintenance thread applies
// resolver updates, ejects failing members, lets them rejoin, and moves the
// spool records that no member in the ring owns any more.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "daemon/common/thread_role.h"
#include "daemon/delivery/load_balancer.h"
#include "daemon/delivery/load_balancer_member.h"

namespace spanrelay::delivery {
namespace {

// Records moved per partition and maintenance pass, so that ring changes and
// rejoins are never stuck behind a long transfer.
constexpr std::size_t kTransferBatch = 256;
// How soon to look again at a partition with records still leased elsewhere.
constexpr auto kTransferRetry = std::chrono::milliseconds(100);
constexpr auto kIdleWake = std::chrono::seconds(1);

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

// --- membership and health (maintenance thread) -------------------------------

void LoadBalancer::wake_maintenance() {
  {
    std::lock_guard lock(mutex_);
    work_ = true;
  }
  wake_.notify_one();
}

void LoadBalancer::on_members(const std::vector<std::string>& members) {
  {
    std::lock_guard lock(mutex_);
    pending_members_ = members;
    work_ = true;
  }
  wake_.notify_one();
}

void LoadBalancer::maintenance_loop() {
  set_current_thread_role("sr-lb-maint", ThreadRole::kBackground);
  for (;;) {
    const Clock::time_point next = maintain();
    std::unique_lock lock(mutex_);
    if (stopping_) return;
    wake_.wait_until(lock, next, [this] { return work_ || stopping_; });
    if (stopping_) return;
    work_ = false;
  }
}

LoadBalancer::Clock::time_point LoadBalancer::maintain() {
  const auto now = Clock::now();
  std::optional<std::vector<std::string>> pending;
  {
    std::lock_guard lock(mutex_);
    pending.swap(pending_members_);
  }
  if (pending) apply_members(*pending);

  // Health: ejections first (they shrink the ring), then rejoins.
  std::vector<std::shared_ptr<Member>> members;
  {
    std::lock_guard lock(members_mutex_);
    for (const auto& [endpoint, member] : members_) members.push_back(member);
  }
  Clock::time_point next = now + kIdleWake;
  for (const auto& member : members) {
    if (member->recovered.exchange(false)) member->ejections_in_a_row = 0;
    if (!member->in_ring || !member->eject_requested.exchange(false)) continue;
    const auto current = routing();
    if (current && current->owners.size() > 1) {
      eject(*member, now);
    } else if (auto suppressed = log_limiter_.allow("last:" + member->endpoint)) {
      // The last member stays: there is nowhere else to send to.
      spdlog::warn(
          "load balancing: {} keeps failing but stays, as the last member in the ring ({} similar "
          "suppressed)",
          member->endpoint, *suppressed);
    }
  }
  for (const auto& member : members) {
    if (member->in_ring || member->retired) continue;
    if (now >= member->ejected_until) {
      rejoin(*member);
    } else {
      next = std::min(next, member->ejected_until);
    }
  }

  // Batches that arrived while no member was known.
  std::deque<batching::Batch> waiting;
  if (const auto current = routing(); current && !current->owners.empty()) {
    std::lock_guard lock(mutex_);
    waiting.swap(waiting_);
  }
  for (auto& batch : waiting) route(std::move(batch));

  // Spool records that no member in the ring owns any more move to the ones
  // that do: ejected and removed members, orphaned partitions, unrouted.
  bool more = false;
  for (const auto& member : members) {
    if (member->in_ring) continue;
    if (member->retired) {
      close_member(member);
      continue;
    }
    if (member->partition && !drain_partition(*member->partition, kTransferBatch)) more = true;
  }
  if (unrouted_ && !drain_partition(*unrouted_, kTransferBatch)) more = true;
  for (auto it = orphans_.begin(); it != orphans_.end();) {
    if (drain_partition(**it, kTransferBatch)) {
      spdlog::info("spool partition {} ({}) is drained; removing it", (*it)->dir, (*it)->label);
      partitions_->remove(std::move(*it));
      it = orphans_.erase(it);
    } else {
      more = true;
      ++it;
    }
  }
  return more ? std::min(next, now + kTransferRetry) : next;
}

void LoadBalancer::apply_members(const std::vector<std::string>& members) {
  const std::set<std::string> wanted(members.begin(), members.end());
  bool changed = false;
  for (const auto& endpoint : wanted) {
    std::shared_ptr<Member> existing;
    {
      std::lock_guard lock(members_mutex_);
      if (const auto it = members_.find(endpoint); it != members_.end()) existing = it->second;
    }
    if (existing) {
      if (existing->retired) {  // back before it was closed
        existing->retired = false;
        existing->ejected_until = {};
        changed = true;
      }
      continue;
    }
    auto created = create_member(endpoint, wanted.size());
    if (!created.ok()) {
      spdlog::error("load balancing: cannot add member {}: {}", endpoint, created.error().message);
      continue;
    }
    spdlog::info("load balancing: member {} joins", endpoint);
    std::lock_guard lock(members_mutex_);
    members_.emplace(endpoint, std::move(created).value());
    changed = true;
  }
  std::vector<std::shared_ptr<Member>> leaving;
  {
    std::lock_guard lock(members_mutex_);
    for (const auto& [endpoint, member] : members_) {
      if (wanted.count(endpoint) == 0 && !member->retired) leaving.push_back(member);
    }
  }
  for (const auto& member : leaving) {
    retire(*member);
    changed = true;
  }
  if (changed) publish_routing();
}

void LoadBalancer::eject(Member& member, Clock::time_point now) {
  ++member.ejections_in_a_row;
  // base_time * 2^(ejections in a row - 1), capped at max_time.
  auto backoff = config_.ejection.base_time;
  for (unsigned i = 1; i < member.ejections_in_a_row && backoff < config_.ejection.max_time; ++i) {
    backoff *= 2;
  }
  backoff = std::min(backoff, config_.ejection.max_time);
  member.ejected_until = now + backoff;
  member.in_ring = false;
  member.in_ring_gauge->set(0);
  member.ejections->add();
  // Ring first, then suspend: a batch routed in between lands in the queue
  // and is taken back below; one routed after is given back by push().
  publish_routing();
  member.queue->suspend();
  std::vector<batching::Batch> queued = member.queue->take_queued();
  const auto current = routing();
  for (auto& batch : queued) route_on(*current, std::move(batch), true);
  spdlog::warn(
      "load balancing: {} ejected for {} ms after failed exports ({} in a row); {} queued "
      "batches re-routed, members in the ring: [{}]",
      member.endpoint, backoff.count(), member.ejections_in_a_row, queued.size(),
      join(current->ring->members()));
}

void LoadBalancer::rejoin(Member& member) {
  // On probation: the queue's failure count is still past the threshold, so
  // its next failed attempt ejects it again (for longer).
  member.eject_requested = false;
  member.in_ring = true;
  member.in_ring_gauge->set(1);
  member.queue->resume();
  publish_routing();
  spdlog::info("load balancing: {} rejoins the ring", member.endpoint);
}

void LoadBalancer::retire(Member& member) {
  member.retired = true;
  if (member.in_ring) {
    member.in_ring = false;
    member.in_ring_gauge->set(0);
    publish_routing();
  }
  member.queue->suspend();
  std::vector<batching::Batch> queued = member.queue->take_queued();
  if (const auto current = routing(); current && !current->owners.empty()) {
    for (auto& batch : queued) route_on(*current, std::move(batch), true);
  } else {
    // The resolver never reports an empty list, so this is not expected;
    // keep the batches rather than lose them.
    for (auto& batch : queued) route(std::move(batch));
  }
  spdlog::info("load balancing: member {} leaves ({} queued batches re-routed)", member.endpoint,
               queued.size());
}

void LoadBalancer::close_member(const std::shared_ptr<Member>& member) {
  const auto current = routing();
  if (!current || current->owners.empty()) return;  // keep it until others exist
  // Attempts in flight finish; failing ones give their batch back. This may
  // wait for one export timeout.
  member->queue->shutdown(Clock::now());
  {
    // Out of the map first: spool_writable() reads members' partitions.
    std::lock_guard lock(members_mutex_);
    members_.erase(member->endpoint);
  }
  if (member->partition) {
    if (drain_partition(*member->partition, SIZE_MAX)) {
      partitions_->remove(member->partition);
    } else {
      // Not expected (nothing leases from it now): drain it as an orphan.
      orphans_.push_back(member->partition);
    }
  }
}

}  // namespace spanrelay::delivery
