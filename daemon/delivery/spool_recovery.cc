// Spool recovery at open(): rebuild the queue of unacknowledged records from
// the segment files and their ack logs, skipping (and counting) what is torn
// or corrupt.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <system_error>

#include "daemon/delivery/spool.h"

namespace spanrelay::delivery {
namespace {
namespace fs = std::filesystem;
}  // namespace

Status Spool::recover() {
  std::set<std::uint64_t> segment_seqs;
  std::set<std::uint64_t> ack_seqs;
  std::error_code ec;
  for (fs::directory_iterator it(config_.dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const auto parsed = spool::parse_spool_file_name(name);
    std::error_code type_ec;
    if (!parsed || !it->is_regular_file(type_ec)) {
      if (name != "LOCK") spdlog::warn("spool: ignoring unexpected file {}/{}", config_.dir, name);
      continue;
    }
    (parsed->is_ack ? ack_seqs : segment_seqs).insert(parsed->seq);
  }
  if (ec) return Error{"spool directory " + config_.dir + ": cannot list: " + ec.message()};

  std::uint64_t max_seq = 0;
  std::uint64_t max_id = 0;
  for (const std::uint64_t seq : segment_seqs) {
    max_seq = std::max(max_seq, seq);
    if (auto recovered = recover_segment(seq, ack_seqs.count(seq) > 0, max_id); !recovered) {
      return recovered;
    }
  }
  for (const std::uint64_t seq : ack_seqs) {
    max_seq = std::max(max_seq, seq);
    // An ack log whose segment is gone: the process died between the two unlinks.
    if (segment_seqs.count(seq) == 0) fs::remove(ack_path(seq), ec);
  }
  std::lock_guard<std::mutex> lock(mutex_);
  next_seq_ = max_seq + 1;
  next_id_ = max_id + 1;
  durable_id_ = max_id;
  recovered_ = entries_.size();
  publish_gauges();
  if (recovered_ > 0) {
    spdlog::info("spool: {} unacknowledged record(s) ({} spans) to replay from {}", recovered_,
                 spans_, config_.dir);
  }
  return Ok{};
}

Status Spool::recover_segment(std::uint64_t seq, bool has_ack_file, std::uint64_t& max_id) {
  auto opened = spool::File::open(segment_path(seq), O_RDWR);
  if (!opened) return Error{"spool: " + opened.error().message};
  auto file = std::make_shared<spool::File>(std::move(opened).value());
  auto bytes = file->read_all();
  if (!bytes) return Error{"spool: " + bytes.error().message};
  read_bytes_.add(bytes.value().size());

  Segment segment;
  segment.file = file;
  segment.size = bytes.value().size();
  std::set<std::uint64_t> acked;
  if (has_ack_file) {
    // A bad ack log costs duplicates, not data: warn and go on without it.
    auto ack_file = spool::File::open(ack_path(seq), O_RDWR | O_APPEND);
    auto ack_bytes = ack_file ? ack_file.value().read_all() : Result<std::string>(ack_file.error());
    if (ack_bytes) {
      read_bytes_.add(ack_bytes.value().size());
      for (const std::uint64_t id : spool::decode_acks(ack_bytes.value())) acked.insert(id);
      // Drop a torn entry at the tail so that later entries stay aligned.
      const std::size_t whole = ack_bytes.value().size() / spool::kAckEntryBytes;
      if (whole * spool::kAckEntryBytes != ack_bytes.value().size()) {
        (void)ack_file.value().truncate(whole * spool::kAckEntryBytes);
      }
      segment.ack_file = std::make_shared<spool::File>(std::move(ack_file).value());
    } else {
      spdlog::warn("spool: ack log unreadable, its records will be replayed: {}",
                   ack_bytes.error().message);
    }
  }

  const spool::SegmentScan scan = spool::scan_segment(bytes.value());
  if (scan.corrupt_regions > 0) {
    corrupt_records_.add(scan.corrupt_regions);
    spdlog::warn("spool: {}: skipped {} torn or corrupt record(s)", segment_path(seq),
                 scan.corrupt_regions);
  }
  for (const spool::DecodedRecord& record : scan.records) {
    const std::uint64_t id = record.header.id;
    max_id = std::max(max_id, id);
    if (acked.count(id) > 0 || entries_.count(id) > 0) continue;
    if (segment.live_records == 0) segment.first_id = id;
    segment.last_id = std::max(segment.last_id, id);
    ++segment.live_records;
    entries_.emplace(id, Entry{seq, record.offset, record.size, record.header.spans, false});
    ready_.insert(id);
    spans_ += record.header.spans;
  }
  if (segment.live_records == 0) {
    std::error_code ec;
    fs::remove(segment_path(seq), ec);
    fs::remove(ack_path(seq), ec);
    return Ok{};
  }
  bytes_ += segment.size;
  segments_.emplace(seq, std::move(segment));
  return Ok{};
}

}  // namespace spanrelay::delivery
