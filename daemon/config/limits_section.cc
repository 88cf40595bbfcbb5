#include "daemon/config/limits_section.h"

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

#include "daemon/config/units.h"

namespace spanrelay::config {
namespace {

constexpr std::uint64_t kKiB = 1ull << 10;
constexpr std::uint64_t kMiB = 1ull << 20;

// uid_t / gid_t are 32-bit; (uid_t)-1 means "no change" to chown and is never a real id.
constexpr std::uint64_t kMaxId = 0xfffffffeull;

void read_ids(YamlReader& reader, const Field* field, std::vector<std::uint32_t>* out) {
  if (field == nullptr) return;
  std::vector<std::uint32_t> ids;
  for (const Field& item : reader.open_list(field, "a list of numeric ids")) {
    const auto value = reader.text(&item, "a numeric id such as 1000", Empty::kRejected);
    if (!value) return;
    std::uint64_t id = 0;
    const char* end = value->data() + value->size();
    const auto [ptr, ec] = std::from_chars(value->data(), end, id);
    if (value->empty() || ec != std::errc() || ptr != end || id > kMaxId) {
      return reader.fail(item, "expected a numeric id such as 1000, got " + quoted(*value));
    }
    ids.push_back(static_cast<std::uint32_t>(id));
  }
  if (!reader.failed()) *out = std::move(ids);
}

void read_cidrs(YamlReader& reader, const Field* field, std::vector<std::string>* out) {
  if (field == nullptr) return;
  std::vector<std::string> cidrs;
  for (const Field& item : reader.open_list(field, "a list of address blocks such as 10.0.0.0/8")) {
    const auto value = reader.text(&item, "an address block such as 10.0.0.0/8", Empty::kRejected);
    if (!value) return;
    if (auto parsed = parse_cidr(*value); !parsed.ok()) {
      return reader.fail(item, parsed.error().message);
    }
    cidrs.push_back(*value);
  }
  if (!reader.failed()) *out = std::move(cidrs);
}

void read_mode(YamlReader& reader, const Field* mode, std::uint32_t* out) {
  // Written "0660" or "660"; an unquoted 0660 is still text to yaml-cpp.
  const std::string expected = "an octal file mode such as \"0660\"";
  const auto value = reader.text(mode, expected, Empty::kRejected);
  if (!value) return;
  std::uint32_t bits = 0;
  bool valid = value->size() <= 4;
  for (const char c : *value) {
    if (c < '0' || c > '7') valid = false;
    if (valid) bits = bits * 8 + static_cast<std::uint32_t>(c - '0');
  }
  if (!valid || bits > 0777) {
    return reader.fail(*mode, "expected " + expected + ", got " + quoted(*value));
  }
  *out = bits;
}

}  // namespace

void read_receiver_limits(YamlReader& reader, const Section& otlp, ReceiverLimitsConfig* out) {
  reader.read_integer(otlp, "max_decompression_ratio", &out->max_decompression_ratio, 1, 100000);
  reader.read_integer(otlp, "max_spans_per_request", &out->max_spans_per_request, 1, 10'000'000);
  reader.read_integer(otlp, "max_attributes_per_span", &out->max_attributes_per_span, 1, 1'000'000);
  reader.read_size(otlp, "max_attribute_value_length", &out->max_attribute_value_length, 1,
                   1ull << 30);
  // Deeper than 64 would only serve an attacker; the scanner walks without
  // recursion either way.
  reader.read_integer(otlp, "max_anyvalue_depth", &out->max_anyvalue_depth, 1, 64);
  reader.read_integer(otlp, "max_connections", &out->max_connections, 1, 1'000'000);
  reader.read_integer(otlp, "max_concurrent_streams", &out->max_concurrent_streams, 1, 100000);
  reader.read_size(otlp, "max_header_size", &out->max_header_size, kKiB, kMiB);
  reader.read_duration(otlp, "read_timeout", &out->read_timeout, Duration(1));
  reader.read_duration(otlp, "idle_timeout", &out->idle_timeout, Duration(1));
}

void read_listener_access(YamlReader& reader, const Section& listener, ListenerConfig* out) {
  const Field* mode = listener.get("socket_mode");
  const Field* old_mode = listener.get("unix_socket_mode");
  if (mode != nullptr && old_mode != nullptr) {
    return reader.fail_at(old_mode->key_mark,
                          old_mode->path +
                              ": give socket_mode or unix_socket_mode (its older "
                              "name), not both");
  }
  read_mode(reader, mode != nullptr ? mode : old_mode, &out->unix_socket_mode);
  if (const Field* group = listener.get("socket_group")) {
    const auto value = reader.text(group, "a group name or gid", Empty::kRejected);
    if (value && value->find('\0') != std::string::npos) {
      return reader.fail(*group, "the group name contains a NUL byte");
    }
    if (value) out->socket_group = *value;
  }
  read_ids(reader, listener.get("allowed_uids"), &out->allowed_uids);
  read_ids(reader, listener.get("allowed_gids"), &out->allowed_gids);
  read_cidrs(reader, listener.get("allowed_cidrs"), &out->allowed_cidrs);
}

Result<Cidr> parse_cidr(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return Error{"expected an address block such as 10.0.0.0/8 or ::1/128, got " + quoted(text) +
                 (why.empty() ? "" : " (" + why + ")")};
  };
  const auto slash = text.find('/');
  const std::string address(text.substr(0, slash));
  Cidr cidr;
  if (inet_pton(AF_INET, address.c_str(), cidr.address.data()) == 1) {
    cidr.v6 = false;
  } else if (inet_pton(AF_INET6, address.c_str(), cidr.address.data()) == 1) {
    cidr.v6 = true;
  } else {
    return bad("");
  }
  const unsigned max_prefix = cidr.v6 ? 128 : 32;
  cidr.prefix_length = max_prefix;
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    unsigned prefix = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() ||
        prefix > max_prefix) {
      return bad("prefix length 0-" + std::to_string(max_prefix));
    }
    cidr.prefix_length = prefix;
  }
  return cidr;
}

bool cidr_contains(const Cidr& cidr, const std::uint8_t* address, std::size_t size) {
  static constexpr std::uint8_t kV4MappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!cidr.v6 && size == 16 && std::memcmp(address, kV4MappedPrefix, 12) == 0) {
    address += 12;
    size = 4;
  }
  if (size != (cidr.v6 ? 16u : 4u)) return false;
  const unsigned full_bytes = cidr.prefix_length / 8;
  if (std::memcmp(address, cidr.address.data(), full_bytes) != 0) return false;
  const unsigned rest = cidr.prefix_length % 8;
  if (rest == 0) return true;
  const auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (address[full_bytes] & mask) == (cidr.address[full_bytes] & mask);
}

}  // namespace spanrelay::config
