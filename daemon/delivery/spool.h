#pragma once
// The disk spool: the durable part of delivery (DESIGN.md "Delivery").
// Batches that do not fit the memory queue, or are still unsent at shutdown,
// are appended here as records in append-only segment files and replayed
// (after a restart too) until the upstream acknowledges them.
//
// Guarantees:
//  - A record leaves the spool only through ack() (delivered, or dropped for
//    good by the caller) or drop_oldest eviction (reported to the appender).
//  - Acknowledged records are written to a per-segment ack log, so a restart
//    does not replay them; an ack lost in a crash means a duplicate, never a loss.
//  - A torn tail (crash mid-write) or a corrupt record is skipped and counted
//    (spanrelay_spool_corrupt_records_total); the records after it, in the same
//    and later segments, are still replayed.
//  - fsync `always`: append() returns only after an fsync covering its record;
//    concurrent appenders share one fsync (group commit, leader/follower).
//    `interval`: a background fsync every fsync_interval. `never`: page cache.
// Thread-safe; one Spool per directory (a LOCK file is held with flock()).
// Implemented in spool.cc (append, lease, ack, eviction), spool_recovery.cc
// (open-time scan) and spool_sync.cc (fsync policies); format in spool_segment.h.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/delivery/spool_segment.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::delivery {

struct SpoolRecord {
  std::uint64_t id = 0;
  std::string request;  // decompressed ExportTraceServiceRequest
  std::uint32_t spans = 0;
  std::int64_t created_unix_ms = 0;
  // The record could not be read back (the disk changed it after it was
  // written; counted as corrupt): `request` is empty. The caller drops
  // `spans` with a reason and acks it, so the accounting stays whole.
  bool corrupt = false;
};

struct SpoolStats {
  std::uint64_t bytes = 0;    // sum of segment file sizes
  std::uint64_t records = 0;  // not yet acknowledged (leased ones included)
  std::uint64_t spans = 0;
};

// Test seams; the daemon leaves them empty.
struct SpoolHooks {
  // Called by the group-commit leader before it takes the set of records its
  // fsync will cover (fsync `always` only), without the spool lock held.
  std::function<void()> before_group_fsync;
};

class Spool {
 public:
  // Creates dir if needed, scans existing segments (recovery): counts corrupt
  // or torn records, rebuilds the queue of unacknowledged records in order.
  // Errors (dir not writable, locked by another process, unreadable segment)
  // name the path.
  static Result<std::unique_ptr<Spool>> open(const config::SpoolConfig& config,
                                             telemetry::Registry& metrics, SpoolHooks hooks = {});
  ~Spool();  // flushes (unless fsync never), closes
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  enum class AppendStatus { kOk, kFull, kError };
  struct AppendResult {
    AppendStatus status = AppendStatus::kOk;
    std::uint64_t evicted_spans = 0;  // drop_oldest victims: the caller counts them dropped
    std::string error;
  };
  // Thread-safe. kFull: over max_size with refuse_new, or nothing evictable
  // (all older records leased) with drop_oldest; nothing was evicted then.
  AppendResult append(std::string_view request, std::uint32_t spans);

  // The oldest unacknowledged record that is not leased, in append order.
  std::optional<SpoolRecord> lease_next();
  // Done for good (delivered or dropped). Unknown ids are ignored.
  void ack(std::uint64_t id);
  // The lease is returned: the record will be leased again, at its position.
  void release(std::uint64_t id);

  SpoolStats stats() const;
  bool writable() const;                    // for /readyz
  std::uint64_t recovered_records() const;  // found at open

  struct PrivateTag {};  // open() is the constructor
  Spool(PrivateTag, const config::SpoolConfig& config, telemetry::Registry& metrics,
        SpoolHooks hooks, spool::File lock_file);

 private:
  struct Segment {
    std::shared_ptr<spool::File> file;
    std::uint64_t size = 0;
    std::uint64_t first_id = 0;  // ids in a segment are a contiguous range
    std::uint64_t last_id = 0;
    std::uint64_t live_records = 0;  // not acknowledged
    std::uint64_t leased_records = 0;
    std::shared_ptr<spool::File> ack_file;  // opened at the first ack
    bool ack_dirty = false;                 // acks written since the last fsync
  };
  struct Entry {
    std::uint64_t segment_seq = 0;
    std::uint64_t offset = 0;
    std::uint64_t size = 0;
    std::uint32_t spans = 0;
    bool leased = false;
  };
  struct SyncFailure {
    std::uint64_t first_id = 0, last_id = 0;
    std::string message;
  };

  Status recover();
  Status recover_segment(std::uint64_t seq, bool has_ack_file, std::uint64_t& max_id);

  // All below run with mutex_ held.
  bool make_room(std::uint64_t record_size, std::uint64_t& evicted_spans);
  Status ensure_active_segment(std::uint64_t record_size);
  void roll_active_segment();
  void evict_segment(std::uint64_t seq, std::uint64_t& evicted_spans);
  void delete_segment(std::uint64_t seq);
  // Takes the record out of the queue for good (ack log, or the whole
  // segment once nothing in it is left).
  void acknowledge(std::map<std::uint64_t, Entry>::iterator it);
  void write_ack(std::uint64_t seq, Segment& segment, std::uint64_t id);
  void fail_unsynced(std::uint64_t last_id, const std::string& message);
  std::optional<std::string> wait_durable(std::unique_lock<std::mutex>& lock, std::uint64_t id);
  void publish_gauges();
  std::string segment_path(std::uint64_t seq) const;
  std::string ack_path(std::uint64_t seq) const;

  void flusher_loop();
  void sync_dirty(std::unique_lock<std::mutex>& lock);
  void count_fsync(const Status& status);

  const config::SpoolConfig config_;
  const std::uint64_t segment_limit_;
  const SpoolHooks hooks_;
  spool::File lock_file_;  // flock()ed for our lifetime

  telemetry::Gauge& bytes_gauge_;
  telemetry::Gauge& records_gauge_;
  telemetry::Counter& corrupt_records_;
  telemetry::Counter& fsyncs_;
  telemetry::Counter& write_bytes_;
  telemetry::Counter& read_bytes_;

  mutable std::mutex mutex_;
  std::map<std::uint64_t, Segment> segments_;  // by sequence number = age
  std::optional<std::uint64_t> active_seq_;    // the segment appends go to
  bool active_sealed_ = false;                 // a failed write: roll before the next append
  std::map<std::uint64_t, Entry> entries_;     // unacknowledged, by id = append order
  std::set<std::uint64_t> ready_;              // unacknowledged and not leased
  std::uint64_t next_seq_ = 1;
  std::uint64_t next_id_ = 1;
  std::uint64_t bytes_ = 0;
  std::uint64_t spans_ = 0;
  std::uint64_t recovered_ = 0;
  bool writable_ = true;

  // Durability (fsync always): every id <= durable_id_ is synced or failed.
  std::uint64_t durable_id_ = 0;
  bool group_sync_running_ = false;
  std::condition_variable durable_cv_;
  std::deque<SyncFailure> sync_failures_;  // recent ones, for the waiters to find
  // Background fsync (interval: data and acks; always: acks only).
  bool data_dirty_ = false;
  bool dir_dirty_ = false;
  bool stopping_ = false;
  std::condition_variable flusher_cv_;
  std::thread flusher_;
};

}  // namespace spanrelay::delivery
