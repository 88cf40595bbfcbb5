#include "daemon/delivery/spool_segment.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "daemon/delivery/crc32c.h"
#include "daemon/otlp/wire_format.h"

namespace spanrelay::delivery::spool {
namespace {

namespace wire = otlp::wire;

constexpr std::size_t kNameDigits = 20;  // every u64 fits; names sort like numbers
constexpr std::string_view kSegmentSuffix = ".seg";
constexpr std::string_view kAckSuffix = ".ack";

void append_header(std::string& out, const RecordHeader& header) {
  wire::append_fixed64(out, header.id);
  wire::append_fixed32(out, header.spans);
  wire::append_fixed64(out, static_cast<std::uint64_t>(header.created_unix_ms));
  out.push_back(static_cast<char>(header.encoding));
  wire::append_fixed32(out, header.raw_size);
}

// The CRC input other than the body: version, length, header.
std::uint32_t record_crc(std::uint32_t body_crc, std::string_view version_and_length,
                         std::string_view header) {
  return crc32c_extend(crc32c_extend(body_crc, version_and_length), header);
}

std::string file_name(std::uint64_t seq, std::string_view suffix) {
  std::string digits = std::to_string(seq);
  std::string name(kNameDigits - digits.size(), '0');
  name += digits;
  name += suffix;
  return name;
}

}  // namespace

std::string encode_record_prefix(const RecordHeader& header, std::size_t body_size,
                                 std::uint32_t body_crc) {
  std::string out;
  out.reserve(kFrameBytes + kHeaderBytes);
  out.append(kRecordMagic);
  out.push_back(static_cast<char>(kFormatVersion));
  wire::append_fixed32(out, static_cast<std::uint32_t>(kHeaderBytes + body_size));
  const std::size_t crc_offset = out.size();
  wire::append_fixed32(out, 0);  // patched below, once the header is known
  append_header(out, header);
  const std::string_view view(out);
  const std::uint32_t crc = record_crc(body_crc, view.substr(kRecordMagic.size(), 5),
                                       view.substr(kFrameBytes, kHeaderBytes));
  std::string crc_bytes;
  wire::append_fixed32(crc_bytes, crc);
  out.replace(crc_offset, 4, crc_bytes);
  return out;
}

std::optional<DecodedRecord> decode_record_at(std::string_view bytes, std::uint64_t offset) {
  if (offset > bytes.size() || bytes.size() - offset < kFrameBytes + kHeaderBytes) {
    return std::nullopt;
  }
  const std::string_view rest = bytes.substr(offset);
  if (rest.substr(0, kRecordMagic.size()) != kRecordMagic) return std::nullopt;
  if (static_cast<std::uint8_t>(rest[kRecordMagic.size()]) != kFormatVersion) return std::nullopt;
  wire::Reader frame(rest.substr(kRecordMagic.size() + 1, 8));
  const std::uint32_t payload_size = *frame.read_fixed32();
  const std::uint32_t stored_crc = *frame.read_fixed32();
  if (payload_size < kHeaderBytes || payload_size > kMaxPayloadBytes ||
      payload_size > rest.size() - kFrameBytes) {
    return std::nullopt;
  }
  const std::string_view header_bytes = rest.substr(kFrameBytes, kHeaderBytes);
  const std::string_view body =
      rest.substr(kFrameBytes + kHeaderBytes, payload_size - kHeaderBytes);
  if (record_crc(crc32c(body), rest.substr(kRecordMagic.size(), 5), header_bytes) != stored_crc) {
    return std::nullopt;
  }
  wire::Reader reader(header_bytes);
  DecodedRecord record;
  record.header.id = *reader.read_fixed64();
  record.header.spans = *reader.read_fixed32();
  record.header.created_unix_ms = static_cast<std::int64_t>(*reader.read_fixed64());
  const auto encoding = static_cast<std::uint8_t>(header_bytes[20]);
  if (encoding != static_cast<std::uint8_t>(BodyEncoding::kZstdExportTraceServiceRequest)) {
    return std::nullopt;  // a future encoding this build cannot read
  }
  record.header.encoding = static_cast<BodyEncoding>(encoding);
  reader = wire::Reader(header_bytes.substr(21));
  record.header.raw_size = *reader.read_fixed32();
  record.body = body;
  record.offset = offset;
  record.size = kFrameBytes + payload_size;
  return record;
}

SegmentScan scan_segment(std::string_view bytes) {
  SegmentScan scan;
  std::uint64_t offset = 0;
  bool in_corrupt_run = false;
  while (offset < bytes.size()) {
    if (auto record = decode_record_at(bytes, offset)) {
      offset += record->size;
      scan.records.push_back(*record);
      in_corrupt_run = false;
      continue;
    }
    if (!in_corrupt_run) ++scan.corrupt_regions;
    in_corrupt_run = true;
    // Resynchronise: the next record can only start where the magic appears
    // (its length field cannot be trusted), and only a valid CRC confirms it.
    const std::size_t next = bytes.find(kRecordMagic, offset + 1);
    offset = next == std::string_view::npos ? bytes.size() : next;
  }
  return scan;
}

std::string encode_ack(std::uint64_t id) {
  std::string out;
  wire::append_fixed64(out, id);
  wire::append_fixed32(out, crc32c(out));
  return out;
}

std::vector<std::uint64_t> decode_acks(std::string_view bytes) {
  std::vector<std::uint64_t> ids;
  for (std::size_t at = 0; at + kAckEntryBytes <= bytes.size(); at += kAckEntryBytes) {
    const std::string_view entry = bytes.substr(at, kAckEntryBytes);
    wire::Reader reader(entry);
    const std::uint64_t id = *reader.read_fixed64();
    if (*reader.read_fixed32() == crc32c(entry.substr(0, 8))) ids.push_back(id);
  }
  return ids;
}

std::string segment_file_name(std::uint64_t seq) { return file_name(seq, kSegmentSuffix); }
std::string ack_file_name(std::uint64_t seq) { return file_name(seq, kAckSuffix); }

std::optional<SpoolFileName> parse_spool_file_name(std::string_view name) {
  if (name.size() != kNameDigits + kSegmentSuffix.size()) return std::nullopt;
  const std::string_view suffix = name.substr(kNameDigits);
  SpoolFileName parsed;
  if (suffix == kAckSuffix) {
    parsed.is_ack = true;
  } else if (suffix != kSegmentSuffix) {
    return std::nullopt;
  }
  std::uint64_t seq = 0;
  for (char c : name.substr(0, kNameDigits)) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::uint64_t digit = static_cast<std::uint64_t>(c - '0');
    if (seq > (UINT64_MAX - digit) / 10) return std::nullopt;
    seq = seq * 10 + digit;
  }
  parsed.seq = seq;
  return parsed;
}

Result<File> File::open(const std::string& path, int flags, mode_t mode) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
  if (fd < 0) {
    const int err = errno;
    return Error{"cannot open " + path + ": " + std::strerror(err)};
  }
  return File(fd, path);
}

File::File(File&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)) {}

File& File::operator=(File&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
  }
  return *this;
}

File::~File() { close(); }

void File::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Error File::error(std::string_view what, int err) const {
  return Error{std::string(what) + " " + path_ + ": " + std::strerror(err)};
}

Status File::write_at(std::uint64_t offset, std::string_view first, std::string_view second) {
  std::array<iovec, 2> parts{iovec{const_cast<char*>(first.data()), first.size()},
                             iovec{const_cast<char*>(second.data()), second.size()}};
  std::size_t index = 0;
  while (index < parts.size()) {
    if (parts[index].iov_len == 0) {
      ++index;
      continue;
    }
    const ssize_t n = ::pwritev(fd_, &parts[index], static_cast<int>(parts.size() - index),
                                static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return error("cannot write", errno);
    }
    auto written = static_cast<std::size_t>(n);
    offset += written;
    while (written > 0 && index < parts.size()) {
      const std::size_t step = std::min(written, parts[index].iov_len);
      parts[index].iov_base = static_cast<char*>(parts[index].iov_base) + step;
      parts[index].iov_len -= step;
      written -= step;
      if (parts[index].iov_len == 0) ++index;
    }
  }
  return Ok{};
}

Status File::append(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return error("cannot write", errno);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Ok{};
}

Status File::read_at(std::uint64_t offset, std::size_t size, std::string& out) const {
  out.resize(size);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, size - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return error("cannot read", errno);
    }
    if (n == 0) return Error{"unexpected end of file in " + path_};
    done += static_cast<std::size_t>(n);
  }
  return Ok{};
}

Result<std::string> File::read_all() const {
  auto file_size = size();
  if (!file_size) return file_size.error();
  std::string bytes;
  if (auto read = read_at(0, static_cast<std::size_t>(file_size.value()), bytes); !read) {
    return read.error();
  }
  return bytes;
}

Result<std::uint64_t> File::size() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) return error("cannot stat", errno);
  return static_cast<std::uint64_t>(st.st_size);
}

Status File::truncate(std::uint64_t size) {
  if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return error("cannot truncate", errno);
  return Ok{};
}

Status File::sync() {
  if (::fdatasync(fd_) != 0) return error("cannot fsync", errno);
  return Ok{};
}

Status sync_directory(const std::string& path) {
  auto dir = File::open(path, O_RDONLY | O_DIRECTORY);
  if (!dir) return dir.error();
  if (::fsync(dir.value().fd()) != 0) {
    const int err = errno;
    return Error{"cannot fsync directory " + path + ": " + std::strerror(err)};
  }
  return Ok{};
}

}  // namespace spanrelay::delivery::spool
