#pragma once
// Who may connect to a receiver listener (issue 7, socket access): checked on
// each accepted connection before any byte of it is read.
//   TCP:  the peer address must be inside one of allowed_cidrs.
//   Unix: the peer's credentials (SO_PEERCRED, taken by the kernel at
//         connect()) must match allowed_uids / allowed_gids (empty = any).
// Plus a cap on the live connections of each receiver, its TCP and Unix
// listeners together (max_connections, 0 = unlimited).
// Refusals are counted in spanrelay_receiver_refused_connections_total
// {listener, reason="cidr"|"peer_uid"|"peer_gid"|"max_connections"} and the
// connection is closed.
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/config/limits_section.h"
#include "daemon/telemetry/metrics.h"

namespace spanrelay::receivers {

class PeerAccess {
 public:
  // `listener` is the label value ("grpc" or "http"). Invalid CIDRs were
  // refused by the config loader; any left are skipped.
  PeerAccess(const config::ListenerConfig& config, std::uint32_t max_connections,
             std::string listener, telemetry::Registry& metrics);

  // nullptr when `connection_fd` may proceed, else the refusal reason (the
  // refusal is already counted and logged at debug; the caller closes it).
  const char* check(int connection_fd);

  // A slot among max_connections for one live connection: released when the
  // last copy of the returned pointer goes away. nullptr (and counted) when
  // the listener is full.
  std::shared_ptr<void> take_connection_slot();

  void count_refused(const char* reason);
  const std::string& listener() const { return listener_; }

 private:
  std::vector<config::Cidr> cidrs_;
  std::vector<std::uint32_t> uids_;
  std::vector<std::uint32_t> gids_;
  const std::uint32_t max_connections_;
  const std::string listener_;
  telemetry::Registry& metrics_;
  std::shared_ptr<std::atomic<std::uint32_t>> live_ =
      std::make_shared<std::atomic<std::uint32_t>>(0);
};

// "listening on 0.0.0.0:4317 (all interfaces): connections are accepted from
// 127.0.0.0/8, ::1/128 (allowed_cidrs)" when `endpoint`'s host is not a
// loopback address; empty otherwise.
std::string wide_bind_warning(const std::string& endpoint, const config::ListenerConfig& config,
                              const std::string& name);

// Sets the group of a Unix socket file: `group` is a name or a numeric gid.
Status apply_socket_group(const std::string& path, const std::string& group);

}  // namespace spanrelay::receivers
