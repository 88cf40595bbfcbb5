#include "daemon/delivery/member_resolver.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <fstream>
#include <memory>
#include <sstream>

namespace spanrelay::delivery {
namespace {

void sort_unique(std::vector<std::string>& items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
}

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

}  // namespace

// --- static ------------------------------------------------------------------

StaticResolver::StaticResolver(std::vector<std::string> members) : members_(std::move(members)) {
  sort_unique(members_);
}

void StaticResolver::start(Listener listener) {
  if (!members_.empty()) listener(members_);
}

std::string StaticResolver::describe() const { return "endpoints [" + join(members_) + "]"; }

// --- lookups -----------------------------------------------------------------

Result<std::vector<std::string>> system_address_lookup(const std::string& host) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;  // A and AAAA records
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* raw = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &raw);
  if (rc != 0) return Error{"cannot resolve " + host + ": " + ::gai_strerror(rc)};
  const std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> results(raw, ::freeaddrinfo);
  std::vector<std::string> addresses;
  for (const addrinfo* ai = results.get(); ai != nullptr; ai = ai->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    const void* address = nullptr;
    if (ai->ai_family == AF_INET) {
      address = &reinterpret_cast<const sockaddr_in*>(ai->ai_addr)->sin_addr;
    } else if (ai->ai_family == AF_INET6) {
      address = &reinterpret_cast<const sockaddr_in6*>(ai->ai_addr)->sin6_addr;
    } else {
      continue;
    }
    if (::inet_ntop(ai->ai_family, address, text, sizeof text) != nullptr) {
      addresses.emplace_back(text);
    }
  }
  sort_unique(addresses);
  return addresses;
}

AddressLookup hosts_file_lookup(std::string path) {
  return [path = std::move(path)](const std::string& host) -> Result<std::vector<std::string>> {
    std::ifstream in(path);
    if (!in) return Error{"cannot read hosts file " + path};
    std::vector<std::string> addresses;
    for (std::string line; std::getline(in, line);) {
      if (const auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
      std::istringstream words(line);
      std::string address;
      if (!(words >> address)) continue;
      for (std::string name; words >> name;) {
        if (name == host) addresses.push_back(address);
      }
    }
    if (addresses.empty()) return Error{"cannot resolve " + host + ": not in " + path};
    sort_unique(addresses);
    return addresses;
  };
}

std::string member_endpoint(const std::string& address, std::uint16_t port,
                            config::ExporterType type) {
  const bool ipv6 = address.find(':') != std::string::npos;
  std::string host_port = (ipv6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
  return type == config::ExporterType::kOtlpHttp ? "http://" + host_port : host_port;
}

// --- DNS ---------------------------------------------------------------------

DnsResolver::DnsResolver(config::DnsResolverConfig config, config::ExporterType type,
                         AddressLookup lookup, std::function<void()> on_failed_lookup)
    : config_(std::move(config)),
      type_(type),
      lookup_(std::move(lookup)),
      on_failed_lookup_(std::move(on_failed_lookup)) {}

DnsResolver::~DnsResolver() { shutdown(); }

void DnsResolver::start(Listener listener) {
  {
    std::lock_guard lock(mutex_);
    if (thread_.joinable() || stopping_) return;
    listener_ = std::move(listener);
  }
  resolve_once();
  std::lock_guard lock(mutex_);
  thread_ = std::thread([this] { loop(); });
}

void DnsResolver::shutdown() {
  std::thread thread;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    thread.swap(thread_);
  }
  wake_.notify_all();
  if (thread.joinable()) thread.join();
}

std::string DnsResolver::describe() const {
  return "dns " + config_.hostname + " port " + std::to_string(config_.port) + " every " +
         std::to_string(config_.interval.count()) + "ms";
}

std::uint64_t DnsResolver::failed_lookups() const {
  std::lock_guard lock(mutex_);
  return failed_lookups_;
}

void DnsResolver::resolve_once() {
  auto addresses = lookup_(config_.hostname);
  std::vector<std::string> members;
  if (addresses.ok()) {
    for (const auto& address : addresses.value()) {
      members.push_back(member_endpoint(address, config_.port, type_));
    }
    sort_unique(members);
  }
  Listener listener;
  {
    std::unique_lock lock(mutex_);
    if (members.empty()) {
      ++failed_lookups_;
      const std::size_t known = current_.size();
      lock.unlock();
      const std::string why =
          addresses.ok() ? "no A/AAAA records for " + config_.hostname : addresses.error().message;
      if (auto suppressed = log_limiter_.allow("lookup")) {
        spdlog::warn("load balancing: {}; keeping {} known member(s) ({} similar suppressed)", why,
                     known, *suppressed);
      }
      if (on_failed_lookup_) on_failed_lookup_();
      return;
    }
    if (members == current_ || stopping_) return;
    current_ = members;
    listener = listener_;
  }
  spdlog::info("load balancing: {} resolves to [{}]", config_.hostname, join(members));
  // Outside the lock: the listener takes the balancer's lock, and the
  // balancer's shutdown calls ours.
  listener(members);
}

void DnsResolver::loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, config_.interval, [this] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    resolve_once();
    lock.lock();
  }
}

}  // namespace spanrelay::delivery
