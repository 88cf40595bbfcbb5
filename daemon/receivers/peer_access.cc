#include "daemon/receivers/peer_access.h"

#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace spanrelay::receivers {
namespace {

constexpr const char* kRefusedConnections = "spanrelay_receiver_refused_connections_total";
constexpr const char* kRefusedConnectionsHelp =
    "Connections closed at accept, by listener and reason (cidr, peer_uid, peer_gid, "
    "max_connections).";

bool contains(const std::vector<std::uint32_t>& ids, std::uint32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

bool is_loopback_host(std::string host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  std::uint8_t bytes[16];
  if (inet_pton(AF_INET, host.c_str(), bytes) == 1) return bytes[0] == 127;
  if (inet_pton(AF_INET6, host.c_str(), bytes) == 1) {
    static constexpr std::uint8_t kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    return std::memcmp(bytes, kLoopback, 16) == 0;
  }
  return false;  // a host name or an empty host: all interfaces or unknown
}

}  // namespace

PeerAccess::PeerAccess(const config::ListenerConfig& config, std::uint32_t max_connections,
                       std::string listener, telemetry::Registry& metrics)
    : uids_(config.allowed_uids),
      gids_(config.allowed_gids),
      max_connections_(max_connections),
      listener_(std::move(listener)),
      metrics_(metrics) {
  for (const auto& text : config.allowed_cidrs) {
    if (auto cidr = config::parse_cidr(text); cidr.ok()) cidrs_.push_back(cidr.value());
  }
  // Zeros up front, so that dashboards see the series before the first refusal.
  for (const char* reason : {"cidr", "peer_uid", "peer_gid", "max_connections"}) {
    metrics_.counter(kRefusedConnections, kRefusedConnectionsHelp,
                     {{"listener", listener_}, {"reason", reason}});
  }
}

void PeerAccess::count_refused(const char* reason) {
  metrics_
      .counter(kRefusedConnections, kRefusedConnectionsHelp,
               {{"listener", listener_}, {"reason", reason}})
      .add();
}

const char* PeerAccess::check(int connection_fd) {
  sockaddr_storage peer{};
  socklen_t size = sizeof(peer);
  if (getpeername(connection_fd, reinterpret_cast<sockaddr*>(&peer), &size) != 0) {
    return nullptr;  // already gone: the server sees the error on its first read
  }
  const char* refused = nullptr;
  if (peer.ss_family == AF_UNIX) {
    if (!uids_.empty() || !gids_.empty()) {
      ucred credentials{};
      socklen_t length = sizeof(credentials);
      if (getsockopt(connection_fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
        refused = !uids_.empty() ? "peer_uid" : "peer_gid";
      } else if (!uids_.empty() && !contains(uids_, credentials.uid)) {
        refused = "peer_uid";
      } else if (!gids_.empty() && !contains(gids_, credentials.gid)) {
        refused = "peer_gid";
      }
      if (refused != nullptr) {
        spdlog::debug("otlp-{}: refused a Unix connection from uid {} gid {} ({})", listener_,
                      credentials.uid, credentials.gid, refused);
      }
    }
  } else if (peer.ss_family == AF_INET || peer.ss_family == AF_INET6) {
    const std::uint8_t* address;
    std::size_t length;
    if (peer.ss_family == AF_INET) {
      address = reinterpret_cast<const std::uint8_t*>(
          &reinterpret_cast<const sockaddr_in*>(&peer)->sin_addr);
      length = 4;
    } else {
      address = reinterpret_cast<const sockaddr_in6*>(&peer)->sin6_addr.s6_addr;
      length = 16;
    }
    const bool allowed = std::any_of(cidrs_.begin(), cidrs_.end(), [&](const config::Cidr& cidr) {
      return config::cidr_contains(cidr, address, length);
    });
    if (!allowed) {
      refused = "cidr";
      char text[INET6_ADDRSTRLEN] = {};
      inet_ntop(peer.ss_family, address, text, sizeof(text));
      spdlog::debug("otlp-{}: refused a connection from {} (not in allowed_cidrs)", listener_,
                    text);
    }
  }
  if (refused != nullptr) count_refused(refused);
  return refused;
}

std::shared_ptr<void> PeerAccess::take_connection_slot() {
  if (max_connections_ == 0)
    return std::make_shared<int>(0);  // unlimited: a slot that counts nothing
  std::uint32_t live = live_->load();
  do {
    if (live >= max_connections_) {
      count_refused("max_connections");
      spdlog::debug("otlp-{}: refused a connection: max_connections ({}) reached", listener_,
                    max_connections_);
      return nullptr;
    }
  } while (!live_->compare_exchange_weak(live, live + 1));
  // The deleter owns the counter, so a slot may outlive this PeerAccess.
  return std::shared_ptr<void>(live_.get(), [live = live_](void*) { live->fetch_sub(1); });
}

std::string wide_bind_warning(const std::string& endpoint, const config::ListenerConfig& config,
                              const std::string& name) {
  const auto colon = endpoint.rfind(':');
  const std::string host = colon == std::string::npos ? endpoint : endpoint.substr(0, colon);
  if (is_loopback_host(host)) return {};
  std::string cidrs;
  for (const auto& cidr : config.allowed_cidrs) cidrs += (cidrs.empty() ? "" : ", ") + cidr;
  return name + ": listening on " + endpoint +
         ", wider than loopback: connections are accepted only from " + cidrs +
         " (receivers.otlp." + name.substr(name.find('-') + 1) + ".allowed_cidrs)";
}

Status apply_socket_group(const std::string& path, const std::string& group) {
  if (group.empty()) return Ok{};
  gid_t gid = 0;
  unsigned long number = 0;
  const auto [ptr, ec] = std::from_chars(group.data(), group.data() + group.size(), number);
  if (ec == std::errc() && ptr == group.data() + group.size()) {
    gid = static_cast<gid_t>(number);
  } else {
    struct group entry {};
    struct group* found = nullptr;
    std::vector<char> buffer(16384);
    const int error = getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (error != 0 || found == nullptr) {
      return Error{"socket_group: no group named '" + group + "'"};
    }
    gid = found->gr_gid;
  }
  if (::chown(path.c_str(), static_cast<uid_t>(-1), gid) != 0) {
    return Error{"socket_group: cannot set the group of " + path + " to " + group + ": " +
                 std::strerror(errno)};
  }
  return Ok{};
}

}  // namespace spanrelay::receivers
