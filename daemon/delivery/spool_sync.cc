// Spool durability: group commit for fsync `always`, the background flusher
// for `interval` (and for ack logs), segment rolls, fsync failures.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "daemon/common/thread_role.h"
#include "daemon/delivery/spool.h"

namespace spanrelay::delivery {
namespace {

using config::FsyncPolicy;

constexpr std::size_t kSyncFailuresKept = 64;

}  // namespace

// Group commit, leader/follower: the first appender to find no fsync running
// becomes the leader and fsyncs everything written so far; appenders that
// arrive meanwhile wait, and the next leader covers all of them at once.
std::optional<std::string> Spool::wait_durable(std::unique_lock<std::mutex>& lock,
                                               std::uint64_t id) {
  while (durable_id_ < id) {
    if (group_sync_running_) {
      durable_cv_.wait(lock);
      continue;
    }
    group_sync_running_ = true;
    if (hooks_.before_group_fsync) {
      lock.unlock();
      hooks_.before_group_fsync();
      lock.lock();
    }
    if (durable_id_ >= id || !active_seq_) {  // a segment roll synced it meanwhile
      group_sync_running_ = false;
      durable_cv_.notify_all();
      continue;
    }
    // Ids above durable_id_ are all in the active segment: a roll syncs the
    // old segment and advances durable_id_ before switching.
    const std::shared_ptr<spool::File> file = segments_.at(*active_seq_).file;
    const std::uint64_t target = next_id_ - 1;
    lock.unlock();
    const Status synced = file->sync();
    lock.lock();
    count_fsync(synced);
    group_sync_running_ = false;
    if (synced) {
      durable_id_ = std::max(durable_id_, target);
    } else {
      fail_unsynced(target, synced.error().message);
    }
    durable_cv_.notify_all();
  }
  for (const SyncFailure& failure : sync_failures_) {
    if (id >= failure.first_id && id <= failure.last_id) return failure.message;
  }
  return std::nullopt;
}

// fsync always only. After a failed fsync the records' state on disk is
// unknown (the kernel may have dropped the dirty pages): their appenders are
// told, so the caller keeps or drops the data with a reason, and the records
// leave the queue so they are not counted twice. Leased ones stay with their
// lessee (at worst a duplicate). A new segment takes the next appends.
void Spool::fail_unsynced(std::uint64_t last_id, const std::string& message) {
  if (last_id <= durable_id_) return;
  SyncFailure failure{durable_id_ + 1, last_id, "spool: " + message};
  for (auto it = entries_.lower_bound(failure.first_id);
       it != entries_.end() && it->first <= last_id;) {
    auto next = std::next(it);
    if (!it->second.leased) acknowledge(it);
    it = next;
  }
  spdlog::error("spool: {} (records {}..{} refused)", message, failure.first_id, last_id);
  sync_failures_.push_back(std::move(failure));
  if (sync_failures_.size() > kSyncFailuresKept) sync_failures_.pop_front();
  durable_id_ = last_id;
  writable_ = false;
  active_sealed_ = true;
  publish_gauges();
}

void Spool::roll_active_segment() {
  if (!active_seq_) return;
  const std::uint64_t seq = *active_seq_;
  active_seq_.reset();
  Segment& segment = segments_.at(seq);
  const bool unsynced = config_.fsync == FsyncPolicy::kAlways
                            ? durable_id_ + 1 < next_id_
                            : config_.fsync == FsyncPolicy::kInterval && data_dirty_;
  data_dirty_ = false;
  if (unsynced) {
    const Status synced = segment.file->sync();
    count_fsync(synced);
    if (config_.fsync == FsyncPolicy::kAlways) {
      if (synced) {
        durable_id_ = next_id_ - 1;
        durable_cv_.notify_all();
      } else {
        fail_unsynced(next_id_ - 1, synced.error().message);
        durable_cv_.notify_all();
      }
    } else if (!synced) {
      writable_ = false;
    }
  }
  active_sealed_ = false;
  if (segments_.count(seq) > 0 && segments_.at(seq).live_records == 0) delete_segment(seq);
}

void Spool::flusher_loop() {
  set_current_thread_role("sr-spool-sync", ThreadRole::kBackground);
  const auto interval = std::max(config_.fsync_interval, config::Duration(1));
  std::unique_lock<std::mutex> lock(mutex_);
  while (!stopping_) {
    flusher_cv_.wait_for(lock, interval, [this] { return stopping_; });
    if (stopping_) break;
    sync_dirty(lock);
  }
}

void Spool::sync_dirty(std::unique_lock<std::mutex>& lock) {
  std::shared_ptr<spool::File> data;
  if (config_.fsync == FsyncPolicy::kInterval && data_dirty_ && active_seq_) {
    data = segments_.at(*active_seq_).file;
    data_dirty_ = false;
  }
  std::vector<std::shared_ptr<spool::File>> acks;
  for (auto& [seq, segment] : segments_) {
    if (segment.ack_dirty && segment.ack_file) acks.push_back(segment.ack_file);
    segment.ack_dirty = false;
  }
  const bool dir = std::exchange(dir_dirty_, false);
  if (!data && acks.empty() && !dir) return;
  lock.unlock();
  bool data_failed = false;
  if (data) {
    const Status synced = data->sync();
    count_fsync(synced);
    data_failed = !synced;
  }
  for (const auto& ack_file : acks) count_fsync(ack_file->sync());
  if (dir) count_fsync(spool::sync_directory(config_.dir));
  lock.lock();
  if (data_failed) {
    // The written records stay queued (their appenders were told ok); new
    // ones go to a fresh file whose state is known.
    writable_ = false;
    active_sealed_ = true;
  }
}

void Spool::count_fsync(const Status& status) {
  fsyncs_.add();
  if (!status) spdlog::error("spool: {}", status.error().message);
}

}  // namespace spanrelay::delivery
