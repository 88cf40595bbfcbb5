#pragma once
// Where the load balancer's member list comes from (issue 8): a static list
// (exporter.endpoints) or the A/AAAA records of a DNS name re-resolved on an
// interval (exporter.resolver.dns, e.g. a Kubernetes headless Service).
//
// A resolver reports the whole list each time it changes; the balancer
// compares it with the ring. Members are endpoint strings in the exporter's
// spelling: "10.0.0.7:4317" / "[fd00::7]:4317" for otlp_grpc,
// "http://10.0.0.7:4318" for otlp_http.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/telemetry/log_setup.h"

namespace spanrelay::delivery {

class MemberResolver {
 public:
  // Called with the full, sorted member list: once from start() when the
  // first list is known, then on every change. Never with an empty list: a
  // resolver that finds nothing keeps the last list (pods that vanish from
  // DNS all at once are far more often a DNS hiccup than a tier scaled to 0).
  using Listener = std::function<void(const std::vector<std::string>& members)>;

  virtual ~MemberResolver() = default;
  // May call `listener` before it returns (the static list, the first lookup).
  virtual void start(Listener listener) = 0;
  // No call to the listener begins after this returns. Safe twice.
  virtual void shutdown() = 0;
  virtual std::string describe() const = 0;
};

class StaticResolver final : public MemberResolver {
 public:
  explicit StaticResolver(std::vector<std::string> members);
  void start(Listener listener) override;
  void shutdown() override {}
  std::string describe() const override;

 private:
  std::vector<std::string> members_;
};

// The addresses a name resolves to ("10.0.0.7", "fd00::7"), sorted, without
// duplicates; an error (e.g. NXDOMAIN) names the host.
using AddressLookup = std::function<Result<std::vector<std::string>>(const std::string& host)>;

// getaddrinfo(3): DNS, /etc/hosts and whatever nsswitch.conf says.
Result<std::vector<std::string>> system_address_lookup(const std::string& host);

// Reads an /etc/hosts-style file at each lookup ("ADDRESS NAME [ALIAS...]",
// '#' comments): a stand-in for a DNS server in tests and a way to drive the
// member list from a file. A name with no line is an error, like NXDOMAIN.
AddressLookup hosts_file_lookup(std::string path);

// "10.0.0.7" + 4317 -> "10.0.0.7:4317" (otlp_grpc), "http://10.0.0.7:4317"
// (otlp_http); IPv6 addresses get brackets.
std::string member_endpoint(const std::string& address, std::uint16_t port,
                            config::ExporterType type);

class DnsResolver final : public MemberResolver {
 public:
  // `on_failed_lookup` (may be empty) is called for each lookup that failed
  // or found nothing, e.g. to count it.
  DnsResolver(config::DnsResolverConfig config, config::ExporterType type,
              AddressLookup lookup = system_address_lookup,
              std::function<void()> on_failed_lookup = {});
  ~DnsResolver() override;
  // Resolves once before returning (so a working DNS gives the members at
  // start-up), then again every interval on its own thread.
  void start(Listener listener) override;
  void shutdown() override;
  std::string describe() const override;

  // Lookups that failed or found no address (the last list was kept).
  std::uint64_t failed_lookups() const;

 private:
  void resolve_once();
  void loop();

  const config::DnsResolverConfig config_;
  const config::ExporterType type_;
  const AddressLookup lookup_;
  const std::function<void()> on_failed_lookup_;
  Listener listener_;
  std::vector<std::string> current_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::uint64_t failed_lookups_ = 0;
  // A DNS outage fails every lookup: one line per minute.
  telemetry::RateLimitedLog log_limiter_{std::chrono::minutes(1)};
  std::thread thread_;
};

}  // namespace spanrelay::delivery
