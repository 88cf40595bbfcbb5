#pragma once
// The receiver limits and socket-access keys (issue 7): receivers.otlp.max_*
// and the per-listener socket_mode / socket_group / allowed_* keys. Split
// from config_loader.cc to keep that file to the overall schema.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {

// Reads the max_* / *_timeout keys of receivers.otlp (see config.h).
void read_receiver_limits(YamlReader& reader, const Section& otlp, ReceiverLimitsConfig* out);

// socket_mode (and its older spelling unix_socket_mode: giving both is an
// error), socket_group, allowed_uids, allowed_gids, allowed_cidrs.
void read_listener_access(YamlReader& reader, const Section& listener, ListenerConfig* out);

// An address block such as "10.0.0.0/8" or "::1/128" (a bare address is a
// /32 or /128). IPv4-mapped IPv6 peers (::ffff:a.b.c.d) match IPv4 blocks.
struct Cidr {
  bool v6 = false;
  std::array<std::uint8_t, 16> address{};  // IPv4 in the first 4 bytes
  unsigned prefix_length = 0;
};
Result<Cidr> parse_cidr(std::string_view text);
// `address` is 4 bytes (IPv4) or 16 (IPv6), network order.
bool cidr_contains(const Cidr& cidr, const std::uint8_t* address, std::size_t size);

}  // namespace spanrelay::config
