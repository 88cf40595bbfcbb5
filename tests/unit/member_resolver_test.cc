#include "daemon/delivery/member_resolver.h"

#include <doctest/doctest.h>

#include <atomic>
#include <fstream>
#include <mutex>

#include "daemon/delivery/spool_partitions.h"
#include "tests/unit/load_balancer_test_support.h"

using namespace spanrelay::delivery;  // NOLINT(google-build-using-namespace)
using spanrelay::Error;
using spanrelay::Result;
using spanrelay::config::DnsResolverConfig;
using spanrelay::config::ExporterType;
using spanrelay::delivery::lb_test::TempDir;
using spanrelay::delivery::lb_test::wait_until;
using namespace std::chrono_literals;

namespace {

// What a resolver reported, for the test thread to await.
struct Reports {
  std::mutex mutex;
  std::vector<std::vector<std::string>> lists;
  MemberResolver::Listener listener() {
    return [this](const std::vector<std::string>& members) {
      std::lock_guard lock(mutex);
      lists.push_back(members);
    };
  }
  std::size_t count() {
    std::lock_guard lock(mutex);
    return lists.size();
  }
  std::vector<std::string> last() {
    std::lock_guard lock(mutex);
    return lists.empty() ? std::vector<std::string>{} : lists.back();
  }
};

void write_hosts(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << text;
  std::filesystem::rename(tmp, path);  // a lookup never reads half a file
}

DnsResolverConfig dns(const std::string& host, std::uint16_t port) {
  DnsResolverConfig config;
  config.hostname = host;
  config.port = port;
  config.interval = 5ms;
  return config;
}

}  // namespace

TEST_CASE("member_resolver: getaddrinfo resolves localhost (hosts file entries) to loopback") {
  const auto addresses = system_address_lookup("localhost");
  REQUIRE_MESSAGE(addresses.ok(), (addresses.ok() ? "" : addresses.error().message));
  REQUIRE_FALSE(addresses.value().empty());
  for (const auto& address : addresses.value()) {
    CAPTURE(address);
    CHECK((address.rfind("127.", 0) == 0 || address == "::1"));
  }
  const auto missing = system_address_lookup("no-such-host.invalid");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().message.find("no-such-host.invalid") != std::string::npos);
}

TEST_CASE("member_resolver: member endpoints are spelled as the exporter type expects") {
  CHECK(member_endpoint("10.0.0.7", 4317, ExporterType::kOtlpGrpc) == "10.0.0.7:4317");
  CHECK(member_endpoint("fd00::7", 4317, ExporterType::kOtlpGrpc) == "[fd00::7]:4317");
  CHECK(member_endpoint("10.0.0.7", 4318, ExporterType::kOtlpHttp) == "http://10.0.0.7:4318");
  CHECK(member_endpoint("::1", 4318, ExporterType::kOtlpHttp) == "http://[::1]:4318");
}

TEST_CASE("member_resolver: a hosts file answers like DNS, comments and aliases included") {
  TempDir tmp;
  const std::string path = tmp.path() + "/hosts";
  write_hosts(path,
              "# gateway pods\n"
              "10.0.0.2   gateway-headless gw  # second\n"
              "10.0.0.1 gateway-headless\n"
              "fd00::3 gateway-headless\n"
              "10.0.0.9 other\n"
              "\n");
  const auto lookup = hosts_file_lookup(path);
  const auto found = lookup("gateway-headless");
  REQUIRE(found.ok());
  CHECK(found.value() == std::vector<std::string>{"10.0.0.1", "10.0.0.2", "fd00::3"});
  CHECK(lookup("gw").value() == std::vector<std::string>{"10.0.0.2"});
  CHECK_FALSE(lookup("missing").ok());
  CHECK_FALSE(hosts_file_lookup(tmp.path() + "/absent")("gw").ok());
}

TEST_CASE(
    "member_resolver: DNS resolution follows the records and keeps the last list on failure") {
  TempDir tmp;
  const std::string path = tmp.path() + "/hosts";
  write_hosts(path, "10.0.0.1 gw\n10.0.0.2 gw\n");
  std::atomic<int> failures{0};
  DnsResolver resolver(dns("gw", 4317), ExporterType::kOtlpGrpc, hosts_file_lookup(path),
                       [&] { ++failures; });
  Reports reports;
  resolver.start(reports.listener());
  // The first answer is there when start() returns.
  REQUIRE(reports.count() == 1);
  CHECK(reports.last() == std::vector<std::string>{"10.0.0.1:4317", "10.0.0.2:4317"});

  write_hosts(path, "10.0.0.1 gw\n10.0.0.2 gw\n10.0.0.3 gw\n");
  REQUIRE(wait_until([&] { return reports.count() == 2; }));
  CHECK(reports.last() ==
        std::vector<std::string>{"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"});

  // NXDOMAIN (the name vanished) keeps the members: more likely a DNS hiccup.
  write_hosts(path, "10.0.0.9 other\n");
  REQUIRE(wait_until([&] { return failures.load() >= 3; }));
  CHECK(reports.count() == 2);
  CHECK(resolver.failed_lookups() >= 3);

  write_hosts(path, "10.0.0.3 gw\n");
  REQUIRE(wait_until([&] { return reports.count() == 3; }));
  CHECK(reports.last() == std::vector<std::string>{"10.0.0.3:4317"});
  resolver.shutdown();
  resolver.shutdown();  // twice is fine
}

TEST_CASE("member_resolver: DNS through getaddrinfo gives localhost's members") {
  DnsResolver resolver(dns("localhost", 4318), ExporterType::kOtlpHttp);
  Reports reports;
  resolver.start(reports.listener());
  REQUIRE(reports.count() == 1);
  for (const auto& member : reports.last()) {
    CAPTURE(member);
    CHECK((member.rfind("http://127.", 0) == 0 || member == "http://[::1]:4318"));
  }
}

TEST_CASE("member_resolver: a static list is reported once, sorted") {
  StaticResolver resolver({"b:1", "a:1", "b:1"});
  Reports reports;
  resolver.start(reports.listener());
  CHECK(reports.count() == 1);
  CHECK(reports.last() == std::vector<std::string>{"a:1", "b:1"});
  CHECK(resolver.describe() == "endpoints [a:1, b:1]");
}

TEST_CASE("load_balancer: spool partition directory names round-trip and stay plain") {
  for (const std::string endpoint :
       {"127.0.0.1:4317", "[fd00::1]:4317", "http://gw.obs.svc:4318/prefix", "a_b:1"}) {
    const std::string name = partition_dir_name(endpoint);
    CAPTURE(name);
    CHECK(name.rfind("lb-", 0) == 0);
    CHECK(name.find('/') == std::string::npos);
    CHECK(name.find(':') == std::string::npos);
    CHECK(endpoint_of_partition_dir(name) == endpoint);
  }
  CHECK(partition_dir_name("127.0.0.1:4317") == "lb-127.0.0.1_3A4317");
  CHECK_FALSE(endpoint_of_partition_dir("unrouted").has_value());
  CHECK_FALSE(endpoint_of_partition_dir("lb-").has_value());
  CHECK_FALSE(endpoint_of_partition_dir("lb-bad_4").has_value());
  CHECK_FALSE(endpoint_of_partition_dir("lb-bad_ZZ").has_value());
}
