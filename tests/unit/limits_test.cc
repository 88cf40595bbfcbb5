// Issue 7: receiver limits in the wire scanner and the config, and the
// peer-access checks (allowed_cidrs, allowed_uids, max_connections).
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "daemon/config/config_loader.h"
#include "daemon/config/limits_section.h"
#include "daemon/otlp/wire_format.h"
#include "daemon/otlp/wire_scanner.h"
#include "daemon/receivers/ingest.h"
#include "daemon/receivers/peer_access.h"
#include "daemon/telemetry/metrics.h"
#include "tests/unit/otlp_test_requests.h"

namespace spanrelay {
namespace {

namespace pb = otlp::testing::pb;

pb::ExportTraceServiceRequest one_span() {
  pb::ExportTraceServiceRequest request;
  pb::Span* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, '\x01'));
  span->set_span_id(std::string(8, '\x02'));
  return request;
}

pb::Span* span_of(pb::ExportTraceServiceRequest& request) {
  return request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0);
}

struct Scanned {
  bool ok;
  std::string limit_hit;
  std::string error;
};

Scanned scan(const std::string& bytes, const otlp::ScanLimits& limits) {
  std::string limit_hit;
  auto result =
      otlp::scan_export_request(std::make_shared<const std::string>(bytes), limits, &limit_hit);
  return {result.ok(), limit_hit, result.ok() ? "" : result.error().message};
}

// A span attribute value nested `depth` levels deep (kvlist inside array...),
// built as raw bytes so that depths beyond libprotobuf's own limit are possible.
std::string nested_attribute(int depth) {
  std::string any_value;
  otlp::wire::append_tag(any_value, 2, otlp::wire::WireType::kVarint);  // bool_value
  otlp::wire::append_varint(any_value, 1);
  for (int level = 1; level < depth; ++level) {
    std::string array_value;
    otlp::wire::append_bytes_field(array_value, 1, any_value);
    std::string outer;
    otlp::wire::append_bytes_field(outer, 5, array_value);
    any_value = std::move(outer);
  }
  std::string key_value;
  otlp::wire::append_bytes_field(key_value, 1, "k");
  otlp::wire::append_bytes_field(key_value, 2, any_value);
  return key_value;
}

std::string request_with_attribute(const std::string& key_value) {
  std::string span;
  otlp::wire::append_bytes_field(span, 1, std::string(16, '\x01'));
  otlp::wire::append_bytes_field(span, 2, std::string(8, '\x02'));
  otlp::wire::append_bytes_field(span, 9, key_value);
  std::string scope_spans;
  otlp::wire::append_bytes_field(scope_spans, 2, span);
  std::string resource_spans;
  otlp::wire::append_bytes_field(resource_spans, 2, scope_spans);
  std::string request;
  otlp::wire::append_bytes_field(request, 1, resource_spans);
  return request;
}

}  // namespace

TEST_CASE("limits: the scanner refuses too many attributes on a span, naming the limit") {
  auto request = one_span();
  for (int i = 0; i < 3; ++i) {
    auto* attribute = span_of(request)->add_attributes();
    attribute->set_key("k" + std::to_string(i));
    attribute->mutable_value()->set_int_value(i);
  }
  const std::string bytes = request.SerializeAsString();
  CHECK(scan(bytes, {.max_attributes_per_span = 3}).ok);
  const Scanned refused = scan(bytes, {.max_attributes_per_span = 2});
  CHECK_FALSE(refused.ok);
  CHECK(refused.limit_hit == "max_attributes_per_span");
  CHECK(refused.error.find("max_attributes_per_span") != std::string::npos);
}

TEST_CASE("limits: the scanner refuses a long string or bytes value, nested ones too") {
  auto request = one_span();
  auto* attribute = span_of(request)->add_attributes();
  attribute->set_key("list");
  auto* list = attribute->mutable_value()->mutable_kvlist_value();
  auto* inner = list->add_values();
  inner->set_key("inner");
  inner->mutable_value()->set_bytes_value(std::string(50, 'b'));
  const std::string bytes = request.SerializeAsString();
  CHECK(scan(bytes, {.max_attribute_value_length = 50}).ok);
  const Scanned refused = scan(bytes, {.max_attribute_value_length = 49});
  CHECK_FALSE(refused.ok);
  CHECK(refused.limit_hit == "max_attribute_value_length");
}

TEST_CASE("limits: the scanner bounds AnyValue nesting without recursion") {
  CHECK(scan(request_with_attribute(nested_attribute(16)), {.max_anyvalue_depth = 16}).ok);
  const Scanned refused =
      scan(request_with_attribute(nested_attribute(17)), {.max_anyvalue_depth = 16});
  CHECK_FALSE(refused.ok);
  CHECK(refused.limit_hit == "max_anyvalue_depth");
  // Far deeper than the limit: refused at the limit, without walking further.
  const Scanned deep =
      scan(request_with_attribute(nested_attribute(3000)), {.max_anyvalue_depth = 16});
  CHECK(deep.limit_hit == "max_anyvalue_depth");
  // And with no depth limit, the explicit stack still walks it.
  CHECK(scan(request_with_attribute(nested_attribute(3000)), {.max_attribute_value_length = 1}).ok);
}

TEST_CASE(
    "limits: resource, scope, event and link attributes have the span's limits, each counted "
    "on its own") {
  using Filler = void (*)(pb::ExportTraceServiceRequest&, int);
  const std::pair<const char*, Filler> containers[] = {
      {"resource",
       [](pb::ExportTraceServiceRequest& r, int n) {
         auto* resource = r.mutable_resource_spans(0)->mutable_resource();
         for (int i = 0; i < n; ++i) {
           auto* a = resource->add_attributes();
           a->set_key("r" + std::to_string(i));
           a->mutable_value()->set_string_value(std::string(20, 'r'));
         }
       }},
      {"scope",
       [](pb::ExportTraceServiceRequest& r, int n) {
         auto* scope = r.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_scope();
         for (int i = 0; i < n; ++i) {
           auto* a = scope->add_attributes();
           a->set_key("s" + std::to_string(i));
           a->mutable_value()->set_string_value(std::string(20, 's'));
         }
       }},
      {"event",
       [](pb::ExportTraceServiceRequest& r, int n) {
         auto* event = span_of(r)->add_events();
         for (int i = 0; i < n; ++i) {
           auto* a = event->add_attributes();
           a->set_key("e" + std::to_string(i));
           a->mutable_value()->set_string_value(std::string(20, 'e'));
         }
       }},
      {"link",
       [](pb::ExportTraceServiceRequest& r, int n) {
         auto* link = span_of(r)->add_links();
         link->set_trace_id(std::string(16, '\x03'));
         link->set_span_id(std::string(8, '\x04'));
         for (int i = 0; i < n; ++i) {
           auto* a = link->add_attributes();
           a->set_key("l" + std::to_string(i));
           a->mutable_value()->set_string_value(std::string(20, 'l'));
         }
       }},
  };
  for (const auto& [name, fill] : containers) {
    const std::string container = name;
    CAPTURE(container);
    auto request = one_span();
    // Two attributes on the span and three on the container: the counts are
    // separate, so a limit of 3 passes.
    for (int i = 0; i < 2; ++i) {
      auto* attribute = span_of(request)->add_attributes();
      attribute->set_key("k" + std::to_string(i));
      attribute->mutable_value()->set_int_value(i);
    }
    fill(request, 3);
    const std::string bytes = request.SerializeAsString();
    CHECK(scan(bytes, {.max_attributes_per_span = 3}).ok);
    const Scanned too_many = scan(bytes, {.max_attributes_per_span = 2});
    CHECK_FALSE(too_many.ok);
    CHECK(too_many.limit_hit == "max_attributes_per_span");
    CHECK(too_many.error.find(std::string("attributes on one ") + name) != std::string::npos);
    CHECK(scan(bytes, {.max_attribute_value_length = 20}).ok);
    const Scanned too_long = scan(bytes, {.max_attribute_value_length = 19});
    CHECK(too_long.limit_hit == "max_attribute_value_length");
    // Without limits nothing is walked, and the request passes.
    CHECK(scan(bytes, {}).ok);
  }
}

TEST_CASE("limits: a malformed attribute is a decode error, not a limit") {
  std::string key_value;
  otlp::wire::append_bytes_field(key_value, 1, "k");
  key_value += "\x12\x05\x0a";  // value: length 5, one byte present
  const Scanned result = scan(request_with_attribute(key_value), {.max_anyvalue_depth = 4});
  CHECK_FALSE(result.ok);
  CHECK(result.limit_hit.empty());
}

TEST_CASE("limits: max_spans_per_request is reported as a limit") {
  auto request = one_span();
  *request.mutable_resource_spans(0)->mutable_scope_spans(0)->add_spans() = *span_of(request);
  const Scanned refused = scan(request.SerializeAsString(), {.max_spans = 1});
  CHECK_FALSE(refused.ok);
  CHECK(refused.limit_hit == "max_spans_per_request");
}

TEST_CASE("limits: the decompression cap is the smaller of max_request_size and the ratio") {
  receivers::IngestLimits limits;
  limits.max_request_size = 1000;
  limits.max_decompression_ratio = 10;
  CHECK(limits.inflate_cap(50) == 500);
  CHECK(limits.cap_is_ratio(limits.inflate_cap(50)));
  CHECK(limits.inflate_cap(100) == 1000);
  CHECK_FALSE(limits.cap_is_ratio(limits.inflate_cap(100)));
  CHECK(limits.inflate_cap(std::size_t{1} << 62) == 1000);  // no overflow
  limits.max_decompression_ratio = 0;
  CHECK(limits.inflate_cap(1) == 1000);
}

TEST_CASE("limits: config keys under receivers.otlp with their defaults") {
  const auto defaults = config::load_config_string("", "<test>");
  REQUIRE(defaults.ok());
  const auto& d = defaults.value().receivers;
  CHECK(d.limits.max_decompression_ratio == 100);
  CHECK(d.limits.max_anyvalue_depth == 16);
  CHECK(d.limits.max_header_size == 16 * 1024);
  CHECK(d.grpc.allowed_cidrs == std::vector<std::string>{"127.0.0.0/8", "::1/128"});
  CHECK(d.http.allowed_uids.empty());

  const auto loaded = config::load_config_string(
      "receivers:\n  otlp:\n"
      "    max_spans_per_request: 10\n    max_attributes_per_span: 5\n"
      "    max_attribute_value_length: 1KiB\n    max_anyvalue_depth: 4\n"
      "    max_decompression_ratio: 20\n    max_connections: 7\n"
      "    max_concurrent_streams: 3\n    max_header_size: 8KiB\n"
      "    read_timeout: 2s\n    idle_timeout: 5s\n"
      "    grpc: { socket_mode: \"0600\", socket_group: \"123\", allowed_uids: [1, 2],"
      " allowed_gids: [3], allowed_cidrs: [10.0.0.0/8, \"fd00::/8\"] }\n"
      "    http: { unix_socket_mode: \"0640\" }\n",
      "<test>");
  REQUIRE_MESSAGE(loaded.ok(), (loaded.ok() ? "" : loaded.error().message));
  const auto& rx = loaded.value().receivers;
  CHECK(rx.limits.max_spans_per_request == 10);
  CHECK(rx.limits.max_attribute_value_length == 1024);
  CHECK(rx.limits.max_connections == 7);
  CHECK(rx.limits.read_timeout == std::chrono::seconds(2));
  CHECK(rx.grpc.unix_socket_mode == 0600);
  CHECK(rx.grpc.socket_group == "123");
  CHECK(rx.grpc.allowed_uids == std::vector<std::uint32_t>{1, 2});
  CHECK(rx.grpc.allowed_cidrs.size() == 2);
  CHECK(rx.http.unix_socket_mode == 0640);  // the older key still works
}

TEST_CASE("peer_access: CIDR blocks parse and match, IPv4-mapped peers included") {
  const auto ten = config::parse_cidr("10.0.0.0/8");
  REQUIRE(ten.ok());
  const std::uint8_t inside[4] = {10, 1, 2, 3};
  const std::uint8_t outside[4] = {11, 0, 0, 1};
  const std::uint8_t mapped[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 9, 9, 9};
  CHECK(config::cidr_contains(ten.value(), inside, 4));
  CHECK_FALSE(config::cidr_contains(ten.value(), outside, 4));
  CHECK(config::cidr_contains(ten.value(), mapped, 16));
  const auto odd = config::parse_cidr("192.168.4.0/22");
  REQUIRE(odd.ok());
  const std::uint8_t in22[4] = {192, 168, 7, 255};
  const std::uint8_t out22[4] = {192, 168, 8, 0};
  CHECK(config::cidr_contains(odd.value(), in22, 4));
  CHECK_FALSE(config::cidr_contains(odd.value(), out22, 4));
  const auto any6 = config::parse_cidr("::/0");
  REQUIRE(any6.ok());
  CHECK(config::cidr_contains(any6.value(), mapped, 16));
  CHECK_FALSE(config::parse_cidr("10.0.0.0/33").ok());
  CHECK_FALSE(config::parse_cidr("ten/8").ok());
  CHECK_FALSE(config::parse_cidr("10.0.0.0/").ok());
}

TEST_CASE("peer_access: a Unix peer outside allowed_uids is refused and counted") {
  telemetry::Registry metrics;
  int pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM, 0, pair) == 0);
  config::ListenerConfig allowed_me;
  allowed_me.allowed_uids = {::getuid()};
  receivers::PeerAccess me(allowed_me, 0, "test", metrics);
  CHECK(me.check(pair[0]) == nullptr);

  config::ListenerConfig someone_else;
  someone_else.allowed_uids = {::getuid() + 1};
  receivers::PeerAccess other(someone_else, 0, "http", metrics);
  CHECK(std::string(other.check(pair[0])) == "peer_uid");
  config::ListenerConfig other_group;
  other_group.allowed_gids = {::getgid() + 1};
  receivers::PeerAccess group(other_group, 0, "http", metrics);
  CHECK(std::string(group.check(pair[0])) == "peer_gid");
  ::close(pair[0]);
  ::close(pair[1]);
  CHECK(metrics
            .counter("spanrelay_receiver_refused_connections_total", "",
                     {{"listener", "http"}, {"reason", "peer_uid"}})
            .value() == 1);
}

TEST_CASE("peer_access: max_connections hands out slots until full, then counts refusals") {
  telemetry::Registry metrics;
  receivers::PeerAccess access(config::ListenerConfig{}, 2, "grpc", metrics);
  auto first = access.take_connection_slot();
  auto second = access.take_connection_slot();
  CHECK(first != nullptr);
  CHECK(second != nullptr);
  CHECK(access.take_connection_slot() == nullptr);
  first.reset();  // a connection closed
  CHECK(access.take_connection_slot() != nullptr);
  CHECK(metrics
            .counter("spanrelay_receiver_refused_connections_total", "",
                     {{"listener", "grpc"}, {"reason", "max_connections"}})
            .value() == 1);
}

TEST_CASE("peer_access: a listener wider than loopback is warned about, with its CIDRs") {
  config::ListenerConfig listener;
  CHECK(receivers::wide_bind_warning("127.0.0.1:4317", listener, "otlp-grpc").empty());
  CHECK(receivers::wide_bind_warning("[::1]:4317", listener, "otlp-grpc").empty());
  const std::string warning = receivers::wide_bind_warning("0.0.0.0:4317", listener, "otlp-grpc");
  CHECK(warning.find("127.0.0.0/8") != std::string::npos);
  CHECK(warning.find("receivers.otlp.grpc.allowed_cidrs") != std::string::npos);
}

}  // namespace spanrelay
