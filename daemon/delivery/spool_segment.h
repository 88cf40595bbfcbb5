#pragma once
// The spool's on-disk format and file plumbing. A spool directory holds
//   <seq:20 digits>.seg  append-only segment files of records,
//   <seq:20 digits>.ack  the ids acknowledged out of that segment (an ack log),
//   LOCK                 held with flock() so two daemons never share a spool.
//
// Record (all integers little-endian):
//   frame:  magic "\x8eSPL" | version u8 = 1 | payload length u32 | crc32c u32
//   header: record id u64 | span count u32 | created unix ms i64 |
//           encoding u8 (1 = zstd ExportTraceServiceRequest) | raw (decompressed) size u32
//   body:   payload length - header size bytes
// The CRC covers version, length, header and body; it is computed as
// crc32c_extend(crc32c(body), version|length|header) so that the body's part
// can be computed before the record id is assigned (outside the spool lock).
//
// Ack entry: record id u64 | crc32c(id bytes) u32, so a torn or flipped entry
// is ignored (at worst a duplicate delivery) instead of acknowledging a wrong id.
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/result.h"

namespace spanrelay::delivery::spool {

inline constexpr std::string_view kRecordMagic{"\x8eSPL", 4};
inline constexpr std::uint8_t kFormatVersion = 1;
inline constexpr std::size_t kFrameBytes = 13;   // magic 4, version 1, length 4, crc 4
inline constexpr std::size_t kHeaderBytes = 25;  // id 8, spans 4, created 8, encoding 1, raw 4
// A sanity bound on the length field: a corrupt length must not make recovery
// allocate or skip gigabytes. Far above any batch the relay builds.
inline constexpr std::uint32_t kMaxPayloadBytes = 256u << 20;
inline constexpr std::size_t kAckEntryBytes = 12;

enum class BodyEncoding : std::uint8_t { kZstdExportTraceServiceRequest = 1 };

struct RecordHeader {
  std::uint64_t id = 0;
  std::uint32_t spans = 0;
  std::int64_t created_unix_ms = 0;
  BodyEncoding encoding = BodyEncoding::kZstdExportTraceServiceRequest;
  std::uint32_t raw_size = 0;
};

// Frame + header of a record whose body has `body_size` bytes and CRC
// `body_crc` (crc32c of the body alone). The body follows on disk.
std::string encode_record_prefix(const RecordHeader& header, std::size_t body_size,
                                 std::uint32_t body_crc);

struct DecodedRecord {
  RecordHeader header;
  std::string_view body;     // borrowed from the scanned bytes
  std::uint64_t offset = 0;  // of the frame, within the scanned bytes
  std::uint64_t size = 0;    // frame + header + body
};

// Decodes the record starting exactly at `offset`: nullopt when the magic,
// version, length or CRC is wrong or the record runs past the end.
std::optional<DecodedRecord> decode_record_at(std::string_view bytes, std::uint64_t offset);

struct SegmentScan {
  std::vector<DecodedRecord> records;  // valid records, in file order
  // Runs of bytes that are not valid records (a torn tail, a flipped byte, a
  // garbage file): each run counts once, and scanning resumes at the next
  // offset where a valid record starts.
  std::uint64_t corrupt_regions = 0;
};
SegmentScan scan_segment(std::string_view bytes);

std::string encode_ack(std::uint64_t id);
// Valid entries of an ack log; a bad entry is skipped, a partial tail ignored.
std::vector<std::uint64_t> decode_acks(std::string_view bytes);

std::string segment_file_name(std::uint64_t seq);
std::string ack_file_name(std::uint64_t seq);
struct SpoolFileName {
  std::uint64_t seq = 0;
  bool is_ack = false;
};
// nullopt for any name that is not a segment or ack file (left alone).
std::optional<SpoolFileName> parse_spool_file_name(std::string_view name);

// An owned file descriptor. Errors name the path and the errno text.
class File {
 public:
  static Result<File> open(const std::string& path, int flags, mode_t mode = 0640);
  File() = default;
  File(File&& other) noexcept;
  File& operator=(File&& other) noexcept;
  File(const File&) = delete;
  File& operator=(const File&) = delete;
  ~File();

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Writes all of `first` then `second` at `offset` (retrying short writes).
  Status write_at(std::uint64_t offset, std::string_view first, std::string_view second = {});
  // Appends at the end (the file must be opened with O_APPEND).
  Status append(std::string_view bytes);
  Status read_at(std::uint64_t offset, std::size_t size, std::string& out) const;
  Result<std::string> read_all() const;
  Result<std::uint64_t> size() const;
  Status truncate(std::uint64_t size);
  // fdatasync: the data and the size (needed to read it back), not the mtime.
  Status sync();

 private:
  File(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  Error error(std::string_view what, int err) const;
  void close();

  int fd_ = -1;
  std::string path_;
};

// fsync of a directory, so that created files survive a power loss.
Status sync_directory(const std::string& path);

}  // namespace spanrelay::delivery::spool
