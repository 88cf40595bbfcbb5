#include "daemon/delivery/spool.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <utility>
#include <vector>

#include "daemon/common/compression.h"
#include "daemon/delivery/crc32c.h"

namespace spanrelay::delivery {
namespace {

using config::FsyncPolicy;
namespace fs = std::filesystem;

constexpr std::uint64_t kMaxSegmentBytes = 16ull << 20;

// Segments are the unit of deletion and of drop_oldest eviction: at most 1/8
// of the cap each, so eviction frees space in small steps and a mostly
// acknowledged segment does not hold much disk.
std::uint64_t segment_limit_for(std::uint64_t max_size) {
  return std::max<std::uint64_t>(1, std::min(kMaxSegmentBytes, max_size / 8));
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Result<std::unique_ptr<Spool>> Spool::open(const config::SpoolConfig& config,
                                           telemetry::Registry& metrics, SpoolHooks hooks) {
  if (config.dir.empty()) return Error{"spool: no directory configured"};
  std::error_code ec;
  fs::create_directories(config.dir, ec);
  if (ec) return Error{"spool directory " + config.dir + ": cannot create: " + ec.message()};
  if (::access(config.dir.c_str(), W_OK | X_OK) != 0) {
    const int err = errno;
    return Error{"spool directory " + config.dir + " is not writable: " + std::strerror(err)};
  }
  auto lock_file = spool::File::open(config.dir + "/LOCK", O_RDWR | O_CREAT);
  if (!lock_file) return Error{"spool directory " + config.dir + ": " + lock_file.error().message};
  if (::flock(lock_file.value().fd(), LOCK_EX | LOCK_NB) != 0) {
    return Error{"spool directory " + config.dir + " is in use by another process (" +
                 lock_file.value().path() + " is locked)"};
  }
  auto spool = std::make_unique<Spool>(PrivateTag{}, config, metrics, std::move(hooks),
                                       std::move(lock_file).value());
  if (auto recovered = spool->recover(); !recovered) return recovered.error();
  if (config.fsync != FsyncPolicy::kNever) {
    spool->flusher_ = std::thread([raw = spool.get()] { raw->flusher_loop(); });
  }
  return Result<std::unique_ptr<Spool>>(std::move(spool));
}

Spool::Spool(PrivateTag, const config::SpoolConfig& config, telemetry::Registry& metrics,
             SpoolHooks hooks, spool::File lock_file)
    : config_(config),
      segment_limit_(segment_limit_for(config.max_size)),
      hooks_(std::move(hooks)),
      lock_file_(std::move(lock_file)),
      bytes_gauge_(metrics.gauge("spanrelay_spool_bytes", "Bytes of segment files in the spool.")),
      records_gauge_(metrics.gauge("spanrelay_spool_records",
                                   "Records in the spool not yet acknowledged (leased included).")),
      corrupt_records_(metrics.counter("spanrelay_spool_corrupt_records_total",
                                       "Spool records skipped: torn by a crash or failing their "
                                       "CRC check.")),
      fsyncs_(metrics.counter("spanrelay_spool_fsyncs_total", "fsync calls made by the spool.")),
      write_bytes_(
          metrics.counter("spanrelay_spool_write_bytes_total", "Bytes written to spool files.")),
      read_bytes_(
          metrics.counter("spanrelay_spool_read_bytes_total", "Bytes read from spool files.")) {}

Spool::~Spool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  flusher_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  std::unique_lock<std::mutex> lock(mutex_);
  roll_active_segment();  // fsyncs it (policy permitting), deletes it if fully acknowledged
  if (config_.fsync != FsyncPolicy::kNever) sync_dirty(lock);
}

std::string Spool::segment_path(std::uint64_t seq) const {
  return config_.dir + "/" + spool::segment_file_name(seq);
}

std::string Spool::ack_path(std::uint64_t seq) const {
  return config_.dir + "/" + spool::ack_file_name(seq);
}

// ---- append -----------------------------------------------------------------

Spool::AppendResult Spool::append(std::string_view request, std::uint32_t spans) {
  if (request.size() > UINT32_MAX) return {AppendStatus::kError, 0, "spool: request too large"};
  // Compression and the body's CRC happen before the lock: appenders overlap there.
  auto body = compress(Codec::kZstd, request);
  if (!body) return {AppendStatus::kError, 0, "spool: cannot compress: " + body.error().message};
  const std::string& compressed = body.value();
  if (spool::kHeaderBytes + compressed.size() > spool::kMaxPayloadBytes) {
    return {AppendStatus::kError, 0, "spool: record too large"};
  }
  const std::uint32_t body_crc = crc32c(compressed);
  const std::uint64_t record_size = spool::kFrameBytes + spool::kHeaderBytes + compressed.size();
  spool::RecordHeader header;
  header.spans = spans;
  header.created_unix_ms = now_unix_ms();
  header.raw_size = static_cast<std::uint32_t>(request.size());

  std::unique_lock<std::mutex> lock(mutex_);
  AppendResult result;
  if (bytes_ + record_size > config_.max_size) {
    if (config_.when_full == config::WhenFull::kRefuseNew ||
        !make_room(record_size, result.evicted_spans)) {
      return {AppendStatus::kFull, 0,
              "spool is full (max_size " + std::to_string(config_.max_size) + " bytes)"};
    }
  }
  if (auto active = ensure_active_segment(record_size); !active) {
    writable_ = false;
    spdlog::error("spool: {}", active.error().message);
    result.status = AppendStatus::kError;
    result.error = "spool: " + active.error().message;
    publish_gauges();
    return result;
  }
  const std::uint64_t seq = *active_seq_;
  Segment& segment = segments_.at(seq);
  header.id = next_id_++;
  const std::string prefix = spool::encode_record_prefix(header, compressed.size(), body_crc);
  if (auto written = segment.file->write_at(segment.size, prefix, compressed); !written) {
    // Cut the partial record off; if even that fails, start a new segment
    // next time (recovery would skip the torn bytes anyway).
    if (!segment.file->truncate(segment.size)) active_sealed_ = true;
    writable_ = false;
    spdlog::error("spool: {}", written.error().message);
    result.status = AppendStatus::kError;
    result.error = "spool: " + written.error().message;
    publish_gauges();
    return result;
  }
  write_bytes_.add(record_size);
  writable_ = true;
  if (segment.live_records == 0) segment.first_id = header.id;
  segment.last_id = header.id;
  ++segment.live_records;
  entries_.emplace(header.id, Entry{seq, segment.size, record_size, spans, false});
  ready_.insert(header.id);
  segment.size += record_size;
  bytes_ += record_size;
  spans_ += spans;
  data_dirty_ = true;
  publish_gauges();
  if (config_.fsync == FsyncPolicy::kAlways) {
    if (auto failure = wait_durable(lock, header.id)) {
      result.status = AppendStatus::kError;
      result.error = std::move(*failure);
    }
  }
  return result;
}

bool Spool::make_room(std::uint64_t record_size, std::uint64_t& evicted_spans) {
  if (record_size > config_.max_size) return false;
  const std::uint64_t needed = bytes_ + record_size - config_.max_size;
  // Whole segments, oldest first, skipping those with a leased record (its
  // lessee will ack or release it): decide first, so a refusal evicts nothing.
  std::vector<std::uint64_t> victims;
  std::uint64_t freeable = 0;
  for (const auto& [seq, segment] : segments_) {
    if (freeable >= needed) break;
    if (segment.leased_records > 0) continue;
    victims.push_back(seq);
    freeable += segment.size;
  }
  if (freeable < needed) return false;
  for (const std::uint64_t seq : victims) {
    if (active_seq_ == seq) roll_active_segment();  // may delete it when fully acknowledged
    if (segments_.count(seq) > 0) evict_segment(seq, evicted_spans);
  }
  return true;
}

void Spool::evict_segment(std::uint64_t seq, std::uint64_t& evicted_spans) {
  const Segment& segment = segments_.at(seq);
  for (auto it = entries_.lower_bound(segment.first_id);
       it != entries_.end() && it->first <= segment.last_id;) {
    if (it->second.segment_seq != seq) {
      ++it;
      continue;
    }
    evicted_spans += it->second.spans;
    spans_ -= it->second.spans;
    ready_.erase(it->first);
    it = entries_.erase(it);
  }
  delete_segment(seq);
}

Status Spool::ensure_active_segment(std::uint64_t record_size) {
  if (active_seq_) {
    const Segment& active = segments_.at(*active_seq_);
    if (!active_sealed_ && (active.size == 0 || active.size + record_size <= segment_limit_)) {
      return Ok{};
    }
    roll_active_segment();
  }
  const std::uint64_t seq = next_seq_++;
  auto file = spool::File::open(segment_path(seq), O_RDWR | O_CREAT | O_EXCL);
  if (!file) return file.error();
  if (config_.fsync == FsyncPolicy::kAlways) {
    // The new file's directory entry must be durable before records in it are.
    const Status synced = spool::sync_directory(config_.dir);
    count_fsync(synced);
    if (!synced) {
      std::error_code ec;
      fs::remove(segment_path(seq), ec);
      return synced.error();
    }
  } else {
    dir_dirty_ = true;
  }
  Segment segment;
  segment.file = std::make_shared<spool::File>(std::move(file).value());
  segments_.emplace(seq, std::move(segment));
  active_seq_ = seq;
  active_sealed_ = false;
  return Ok{};
}

void Spool::delete_segment(std::uint64_t seq) {
  auto it = segments_.find(seq);
  if (it == segments_.end()) return;
  bytes_ -= it->second.size;
  segments_.erase(it);
  // Segment first: a crash in between leaves an orphan ack log (removed at
  // open), never a segment without its acks (which would replay them).
  std::error_code ec;
  if (!fs::remove(segment_path(seq), ec) && ec) {
    spdlog::warn("spool: cannot delete {}: {}", segment_path(seq), ec.message());
  }
  fs::remove(ack_path(seq), ec);
}

// ---- lease / ack ------------------------------------------------------------

std::optional<SpoolRecord> Spool::lease_next() {
  SpoolRecord record;
  Entry entry;
  std::shared_ptr<spool::File> file;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (ready_.empty()) return std::nullopt;
    record.id = *ready_.begin();
    ready_.erase(ready_.begin());
    Entry& stored = entries_.at(record.id);
    stored.leased = true;
    Segment& segment = segments_.at(stored.segment_seq);
    ++segment.leased_records;
    entry = stored;
    file = segment.file;
  }
  // Read outside the lock; the shared file stays readable even if the
  // segment is deleted meanwhile.
  record.spans = entry.spans;
  std::string bytes;
  std::string problem;
  if (auto read = file->read_at(entry.offset, entry.size, bytes); !read) {
    problem = read.error().message;
  } else {
    read_bytes_.add(bytes.size());
    const auto decoded = spool::decode_record_at(bytes, 0);
    if (!decoded || decoded->header.id != record.id) {
      problem = "failed its CRC check";
    } else {
      record.created_unix_ms = decoded->header.created_unix_ms;
      Decompressed raw = decompress(Codec::kZstd, decoded->body, decoded->header.raw_size);
      if (raw.status != DecompressStatus::kOk || raw.bytes.size() != decoded->header.raw_size) {
        problem = "body does not decompress: " + raw.message;
      } else {
        record.request = std::move(raw.bytes);
        return record;
      }
    }
  }
  corrupt_records_.add();
  spdlog::warn("spool: record {} in {} cannot be read back ({}): its {} span(s) are lost",
               record.id, file->path(), problem, record.spans);
  record.corrupt = true;
  return record;
}

void Spool::ack(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  acknowledge(it);
  publish_gauges();
}

void Spool::release(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.leased) return;
  it->second.leased = false;
  --segments_.at(it->second.segment_seq).leased_records;
  ready_.insert(id);
}

void Spool::acknowledge(std::map<std::uint64_t, Entry>::iterator it) {
  const std::uint64_t id = it->first;
  const Entry entry = it->second;
  Segment& segment = segments_.at(entry.segment_seq);
  if (entry.leased) {
    --segment.leased_records;
  } else {
    ready_.erase(id);
  }
  --segment.live_records;
  spans_ -= entry.spans;
  entries_.erase(it);
  if (segment.live_records == 0 && active_seq_ != entry.segment_seq) {
    delete_segment(entry.segment_seq);
    return;
  }
  write_ack(entry.segment_seq, segment, id);
}

void Spool::write_ack(std::uint64_t seq, Segment& segment, std::uint64_t id) {
  // Not fsynced here: a lost ack costs a duplicate delivery, not data, so
  // ack logs are synced in the background (policy permitting).
  if (!segment.ack_file) {
    auto file = spool::File::open(ack_path(seq), O_WRONLY | O_CREAT | O_APPEND);
    if (!file) {
      spdlog::warn("spool: {} (the record may be delivered again after a restart)",
                   file.error().message);
      return;
    }
    segment.ack_file = std::make_shared<spool::File>(std::move(file).value());
    dir_dirty_ = true;
  }
  if (auto written = segment.ack_file->append(spool::encode_ack(id)); !written) {
    spdlog::warn("spool: {} (the record may be delivered again after a restart)",
                 written.error().message);
    return;
  }
  write_bytes_.add(spool::kAckEntryBytes);
  segment.ack_dirty = true;
}

// ---- observers ----------------------------------------------------------------

void Spool::publish_gauges() {
  bytes_gauge_.set(static_cast<std::int64_t>(bytes_));
  records_gauge_.set(static_cast<std::int64_t>(entries_.size()));
}

SpoolStats Spool::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return SpoolStats{bytes_, entries_.size(), spans_};
}

bool Spool::writable() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return writable_;
}

std::uint64_t Spool::recovered_records() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return recovered_;
}

}  // namespace spanrelay::delivery
