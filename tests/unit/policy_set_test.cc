#include "daemon/sampling/policy_set.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "daemon/otlp/wire_scanner.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace spanrelay::sampling {
namespace {

namespace pb {
using opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest;
using opentelemetry::proto::common::v1::KeyValue;
using opentelemetry::proto::resource::v1::Resource;
using opentelemetry::proto::trace::v1::Span;
using opentelemetry::proto::trace::v1::Status;
}  // namespace pb

using namespace std::chrono_literals;
using config::LatencyScope;
using config::PolicyType;
using config::SamplingPolicyConfig;
using Clock = std::chrono::steady_clock;

const Clock::time_point kNow = Clock::time_point(1000s);
constexpr std::uint64_t kMillisecond = 1'000'000;  // in ns

// --- building traces --------------------------------------------------------

otlp::TraceId trace_id_with_low_bits(std::uint64_t low) {
  otlp::TraceId id{};
  id[0] = 0xab;  // the first half never matters to the ratio rule
  for (int i = 0; i < 8; ++i) id[15 - i] = static_cast<std::uint8_t>(low >> (8 * i));
  return id;
}

const otlp::TraceId kTraceId = trace_id_with_low_bits(0x1234);

std::string span_id(int number) {
  std::string id(8, '\0');
  id[7] = static_cast<char>(number);
  id[0] = '\x5a';
  return id;
}

constexpr auto kUnset = pb::Status::STATUS_CODE_UNSET;
constexpr auto kOk = pb::Status::STATUS_CODE_OK;
constexpr auto kError = pb::Status::STATUS_CODE_ERROR;

// One span of a test trace, described fluently: span(2).child_of(1).lasting(900).
struct SpanSpec {
  int id = 1;
  std::optional<int> parent;  // a span id number; none = a root span
  std::uint64_t duration_ms = 10;
  pb::Status::StatusCode status = kUnset;
  std::vector<std::pair<std::string, std::string>> string_attributes;
  std::vector<std::pair<std::string, std::int64_t>> int_attributes;

  SpanSpec& child_of(int parent_id) {
    parent = parent_id;
    return *this;
  }
  SpanSpec& lasting(std::uint64_t milliseconds) {
    duration_ms = milliseconds;
    return *this;
  }
  SpanSpec& with_status(pb::Status::StatusCode code) {
    status = code;
    return *this;
  }
  SpanSpec& with(std::string key, std::string value) {
    string_attributes.emplace_back(std::move(key), std::move(value));
    return *this;
  }
  SpanSpec& with(std::string key, std::int64_t value) {
    int_attributes.emplace_back(std::move(key), value);
    return *this;
  }
};

SpanSpec span(int id = 1) {
  SpanSpec spec;
  spec.id = id;
  return spec;
}

void add_string(google::protobuf::RepeatedPtrField<pb::KeyValue>* attributes,
                const std::string& key, const std::string& value) {
  pb::KeyValue* key_value = attributes->Add();
  key_value->set_key(key);
  key_value->mutable_value()->set_string_value(value);
}

void fill_span(pb::Span* span, const SpanSpec& spec, const otlp::TraceId& trace_id) {
  span->set_trace_id(std::string(trace_id.begin(), trace_id.end()));
  span->set_span_id(span_id(spec.id));
  if (spec.parent) span->set_parent_span_id(span_id(*spec.parent));
  span->set_name("span-" + std::to_string(spec.id));
  const std::uint64_t start = 1'700'000'000'000'000'000ull + spec.id * kMillisecond;
  span->set_start_time_unix_nano(start);
  span->set_end_time_unix_nano(start + spec.duration_ms * kMillisecond);
  span->mutable_status()->set_code(spec.status);
  for (const auto& [key, value] : spec.string_attributes) {
    add_string(span->mutable_attributes(), key, value);
  }
  for (const auto& [key, value] : spec.int_attributes) {
    pb::KeyValue* key_value = span->add_attributes();
    key_value->set_key(key);
    key_value->mutable_value()->set_int_value(value);
  }
}

// One export request: one resource (with string attributes) and its spans.
struct RequestSpec {
  std::vector<std::pair<std::string, std::string>> resource_attributes;
  std::vector<SpanSpec> spans;
};

// The spans of one trace as the sampler would buffer them, spread over one or
// more scanned requests. Not copyable: BufferedSpan points into it.
class Trace {
 public:
  explicit Trace(const std::vector<RequestSpec>& requests, otlp::TraceId trace_id = kTraceId)
      : trace_id_(trace_id) {
    for (const RequestSpec& spec : requests) {
      pb::ExportTraceServiceRequest request;
      auto* resource_spans = request.add_resource_spans();
      for (const auto& [key, value] : spec.resource_attributes) {
        add_string(resource_spans->mutable_resource()->mutable_attributes(), key, value);
      }
      auto* scope_spans = resource_spans->add_scope_spans();
      for (const SpanSpec& span : spec.spans) fill_span(scope_spans->add_spans(), span, trace_id);
      auto scanned = otlp::scan_export_request(
          std::make_shared<const std::string>(request.SerializeAsString()));
      REQUIRE_MESSAGE(scanned.ok(), (scanned.ok() ? "" : scanned.error().message));
      requests_.push_back(std::make_unique<otlp::ScannedRequest>(std::move(scanned).value()));
    }
    for (const auto& request : requests_) {
      for (const otlp::SpanView& span : request->spans) buffered_.push_back({request.get(), &span});
    }
  }
  // A trace of one request with the given spans and no resource attributes.
  explicit Trace(std::vector<SpanSpec> spans, otlp::TraceId trace_id = kTraceId)
      : Trace(std::vector<RequestSpec>{RequestSpec{{}, std::move(spans)}}, trace_id) {}

  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;

  std::span<const BufferedSpan> spans() const { return buffered_; }
  const otlp::TraceId& id() const { return trace_id_; }
  const BufferedSpan& span(std::size_t index) const { return buffered_.at(index); }

 private:
  otlp::TraceId trace_id_;
  std::vector<std::unique_ptr<otlp::ScannedRequest>> requests_;
  std::vector<BufferedSpan> buffered_;
};

// --- building policies ------------------------------------------------------

SamplingPolicyConfig policy(std::string name, PolicyType type) {
  SamplingPolicyConfig config;
  config.name = std::move(name);
  config.type = type;
  return config;
}

SamplingPolicyConfig status_code(std::string name, std::vector<std::string> codes = {},
                                 bool decide_early = true) {
  SamplingPolicyConfig config = policy(std::move(name), PolicyType::kStatusCode);
  config.status_codes = std::move(codes);
  config.decide_early = decide_early;
  return config;
}

SamplingPolicyConfig latency(std::string name, config::Duration threshold, LatencyScope scope) {
  SamplingPolicyConfig config = policy(std::move(name), PolicyType::kLatency);
  config.threshold = threshold;
  config.scope = scope;
  return config;
}

SamplingPolicyConfig attribute(std::string name, PolicyType type, std::string key,
                               std::vector<std::string> values, std::string regex = "") {
  SamplingPolicyConfig config = policy(std::move(name), type);
  config.key = std::move(key);
  config.values = std::move(values);
  config.regex = std::move(regex);
  return config;
}

SamplingPolicyConfig ratio(std::string name, double value) {
  SamplingPolicyConfig config = policy(std::move(name), PolicyType::kRatio);
  config.ratio = value;
  return config;
}

SamplingPolicyConfig rate_limit(std::string name, double traces_per_second) {
  SamplingPolicyConfig config = policy(std::move(name), PolicyType::kRateLimit);
  config.traces_per_second = traces_per_second;
  return config;
}

PolicySet make_set(std::vector<SamplingPolicyConfig> policies) {
  config::SamplingConfig config;
  config.enabled = true;
  config.policies = std::move(policies);
  auto set = PolicySet::create(config);
  REQUIRE_MESSAGE(set.ok(), (set.ok() ? "" : set.error().message));
  return std::move(set).value();
}

std::string create_error(std::vector<SamplingPolicyConfig> policies) {
  config::SamplingConfig config;
  config.policies = std::move(policies);
  const auto set = PolicySet::create(config);
  return set.ok() ? std::string("<no error>") : set.error().message;
}

Decision decide(const PolicySet& set, const Trace& trace, Clock::time_point now = kNow) {
  return set.decide(trace.id(), trace.spans(), now);
}

bool keeps(const PolicySet& set, const Trace& trace) { return decide(set, trace).keep; }

// --- tests ------------------------------------------------------------------

TEST_CASE("policy_set: create names the policy and the problem") {
  CHECK(create_error({status_code("errors", {"FATAL"})}) ==
        "sampling.policies[0] (\"errors\"): unknown status code \"FATAL\" (expected ERROR, OK "
        "or UNSET)");
  const std::string bad_regex =
      create_error({status_code("a"), attribute("route", PolicyType::kAttribute, "k", {}, "(")});
  CHECK(bad_regex.rfind("sampling.policies[1] (\"route\"): invalid regex \"(\": ", 0) == 0);
  CHECK(create_error({ratio("r", 1.5)}) ==
        "sampling.policies[0] (\"r\"): ratio must be between 0 and 1");
  CHECK(create_error({rate_limit("cap", 0)}) ==
        "sampling.policies[0] (\"cap\"): traces_per_second must be a positive number");
  CHECK(create_error({attribute("d", PolicyType::kDrop, "", {"x"})}) ==
        "sampling.policies[0] (\"d\"): key must not be empty");
  CHECK(create_error({attribute("d", PolicyType::kDrop, "k", {})}) ==
        "sampling.policies[0] (\"d\"): needs values or regex");
  CHECK(create_error({status_code("same"), ratio("same", 0.1)}) ==
        "sampling.policies[1] (\"same\"): duplicate policy name");
  CHECK(create_error({latency("slow", -1ms, LatencyScope::kAnySpan)}) ==
        "sampling.policies[0] (\"slow\"): threshold must not be negative");
  CHECK(create_error({}) == "<no error>");
}

TEST_CASE("policy_set: policy_names are in config order") {
  const PolicySet set = make_set({attribute("health", PolicyType::kDrop, "http.route", {"/h"}),
                                  status_code("errors"), ratio("baseline", 0.1)});
  CHECK(set.policy_names() == std::vector<std::string>{"health", "errors", "baseline"});
}

TEST_CASE("policy_set: with no policy matching and no baseline, the trace is sampled out") {
  const PolicySet empty = make_set({});
  const Decision decision = decide(empty, Trace({span()}));
  CHECK_FALSE(decision.keep);
  CHECK(decision.policy == Decision::kNoPolicy);
  CHECK(decision.reason == Decision::Reason::kNoMatch);

  const PolicySet errors_only = make_set({status_code("errors")});
  CHECK(decide(errors_only, Trace({span()})).policy == Decision::kNoPolicy);
}

TEST_CASE("policy_set: status_code matches any span's status, ERROR by default") {
  const PolicySet errors = make_set({status_code("errors")});
  const Trace with_error({span(1), span(2).child_of(1).with_status(kError)});
  const Decision decision = decide(errors, with_error);
  CHECK(decision.keep);
  CHECK(decision.policy == 0);
  CHECK(decision.reason == Decision::Reason::kKeepPolicy);
  CHECK_FALSE(keeps(errors, Trace({span().with_status(kOk)})));
  CHECK_FALSE(keeps(errors, Trace({span().with_status(kUnset)})));
  CHECK_FALSE(keeps(errors, Trace(std::vector<SpanSpec>{})));

  const PolicySet ok_or_unset = make_set({status_code("fine", {"OK", "UNSET"})});
  CHECK(keeps(ok_or_unset, Trace({span().with_status(kOk)})));
  CHECK(keeps(ok_or_unset, Trace({span().with_status(kUnset)})));
  CHECK_FALSE(keeps(ok_or_unset, Trace({span().with_status(kError)})));
}

TEST_CASE("policy_set: latency keeps a trace with a span at or over the threshold") {
  const PolicySet slow = make_set({latency("slow", 500ms, LatencyScope::kAnySpan)});
  CHECK(keeps(slow, Trace({span(1).lasting(100), span(2).child_of(1).lasting(600)})));
  CHECK(keeps(slow, Trace({span().lasting(500)})));  // >= threshold
  CHECK_FALSE(keeps(slow, Trace({span().lasting(499)})));
}

TEST_CASE("policy_set: latency scope root looks only at local roots") {
  const PolicySet root = make_set({latency("slow-root", 500ms, LatencyScope::kRoot)});
  const PolicySet any = make_set({latency("slow-any", 500ms, LatencyScope::kAnySpan)});

  // A slow child under a fast root: only scope any keeps it.
  const Trace slow_child({span(1).lasting(100), span(2).child_of(1).lasting(900)});
  CHECK(keeps(any, slow_child));
  CHECK_FALSE(keeps(root, slow_child));

  // A slow root: both.
  const Trace slow_root({span(1).lasting(900), span(2).child_of(1).lasting(100)});
  CHECK(keeps(root, slow_root));
  CHECK(keeps(any, slow_root));

  // A span whose parent ran elsewhere (not buffered here) is a local root.
  const Trace remote_parent({span(3).child_of(99).lasting(900), span(4).child_of(3).lasting(100)});
  CHECK(keeps(root, remote_parent));

  // The parent may arrive in another request: it is still found.
  const Trace split({RequestSpec{{}, {span(2).child_of(1).lasting(900)}},
                     RequestSpec{{}, {span(1).lasting(100)}}});
  CHECK_FALSE(keeps(root, split));
  CHECK(keeps(any, split));
}

TEST_CASE("policy_set: attribute matches span or resource attributes by value text or regex") {
  const PolicySet by_value =
      make_set({attribute("tenant", PolicyType::kAttribute, "tenant", {"acme", "globex"})});
  CHECK(keeps(by_value, Trace({span().with("tenant", "globex")})));
  CHECK_FALSE(keeps(by_value, Trace({span().with("tenant", "initech")})));
  CHECK_FALSE(keeps(by_value, Trace({span().with("other", "acme")})));
  CHECK(keeps(by_value, Trace({span(1), span(2).with("tenant", "acme")})));
  // From the resource of one of the spans.
  CHECK(keeps(by_value,
              Trace({RequestSpec{{}, {span(1)}}, RequestSpec{{{"tenant", "acme"}}, {span(2)}}})));
  // A span's own value that does not match does not hide a resource that does.
  CHECK(keeps(by_value, Trace({RequestSpec{{{"tenant", "acme"}}, {span().with("tenant", "x")}}})));

  // Ints compare by their decimal text.
  const PolicySet by_int =
      make_set({attribute("server-errors", PolicyType::kAttribute, "http.status_code", {"503"})});
  CHECK(keeps(by_int, Trace({span().with("http.status_code", 503)})));
  CHECK_FALSE(keeps(by_int, Trace({span().with("http.status_code", 200)})));

  // A regex must match the whole value.
  const PolicySet by_regex =
      make_set({attribute("api", PolicyType::kAttribute, "http.route", {}, "/api/v[0-9]+/.*")});
  CHECK(keeps(by_regex, Trace({span().with("http.route", "/api/v2/users")})));
  CHECK_FALSE(keeps(by_regex, Trace({span().with("http.route", "/x/api/v2/users")})));
  CHECK_FALSE(keeps(by_regex, Trace({span().with("http.route", "/api/v2")})));
}

TEST_CASE("policy_set: a regex on a very long value neither crashes nor stalls") {
  const PolicySet by_regex =
      make_set({attribute("long", PolicyType::kDrop, "db.statement", {}, "(a|aa)*b?")});
  const std::string long_value(1 << 20, 'a');  // std::regex overflows the stack on this
  const Trace trace({span().with("db.statement", long_value)});
  CHECK_FALSE(keeps(by_regex, trace));
  CHECK(decide(by_regex, trace).reason == Decision::Reason::kDropPolicy);
}

TEST_CASE("policy_set: always keeps every trace") {
  const PolicySet set = make_set({policy("everything", PolicyType::kAlways)});
  const Decision decision = decide(set, Trace({span()}));
  CHECK(decision.keep);
  CHECK(decision.policy == 0);
}

TEST_CASE("policy_set: drop beats every keep, and the first matching drop policy is named") {
  const PolicySet set = make_set({
      status_code("errors"),
      attribute("synthetic", PolicyType::kDrop, "synthetic", {"true"}),
      attribute("health", PolicyType::kDrop, "http.route", {}, "/health.*"),
      policy("everything", PolicyType::kAlways),
      ratio("baseline", 1.0),
  });
  const Trace failing_health_check({RequestSpec{
      {{"synthetic", "true"}}, {span().with_status(kError).with("http.route", "/healthz")}}});
  const Decision decision = decide(set, failing_health_check);
  CHECK_FALSE(decision.keep);
  CHECK(decision.policy == 1);  // both drops match; "synthetic" comes first
  CHECK(decision.reason == Decision::Reason::kDropPolicy);

  const Trace health_only({span().with("http.route", "/health/live")});
  CHECK(decide(set, health_only).policy == 2);

  const Trace normal_error({span().with_status(kError).with("http.route", "/orders")});
  CHECK(decide(set, normal_error).keep);
  CHECK(decide(set, normal_error).policy == 0);
}

TEST_CASE("policy_set: the first matching keep policy in config order is named") {
  const PolicySet set = make_set({
      latency("slow", 1s, LatencyScope::kAnySpan),
      status_code("errors"),
      attribute("vip", PolicyType::kAttribute, "tenant", {"acme"}),
  });
  const Trace slow_error_vip({span().lasting(2000).with_status(kError).with("tenant", "acme")});
  CHECK(decide(set, slow_error_vip).policy == 0);
  const Trace error_vip({span().with_status(kError).with("tenant", "acme")});
  CHECK(decide(set, error_vip).policy == 1);
  const Trace vip({span().with("tenant", "acme")});
  CHECK(decide(set, vip).policy == 2);
}

TEST_CASE("policy_set: decides_early only for a status_code policy with decide_early") {
  const Trace spans({span(1).with_status(kError), span(2).with_status(kOk)});
  const auto early = [&](const PolicySet& set, std::size_t span) {
    return set.decides_early(*spans.span(span).request, *spans.span(span).span);
  };
  const PolicySet errors_early = make_set({status_code("errors", {}, true)});
  CHECK(early(errors_early, 0));
  CHECK_FALSE(early(errors_early, 1));

  const PolicySet errors_late = make_set({status_code("errors", {}, false)});
  CHECK_FALSE(early(errors_late, 0));

  const PolicySet others = make_set({policy("everything", PolicyType::kAlways),
                                     latency("slow", 0ms, LatencyScope::kAnySpan),
                                     ratio("all", 1.0), rate_limit("cap", 10)});
  CHECK_FALSE(early(others, 0));
  CHECK_FALSE(early(others, 1));

  const PolicySet ok_early =
      make_set({status_code("errors", {}, false), status_code("ok", {"OK"})});
  CHECK_FALSE(early(ok_early, 0));
  CHECK(early(ok_early, 1));
}

// Low bits of trace ids on either side of the 0.5 ratio threshold (2^63).
const otlp::TraceId kBelowHalf = trace_id_with_low_bits((std::uint64_t{1} << 63) - 1);
const otlp::TraceId kAboveHalf = trace_id_with_low_bits(std::uint64_t{1} << 63);

TEST_CASE("policy_set: ratio alone is the SDK rule, named when it keeps and when it rejects") {
  const PolicySet set = make_set({status_code("errors"), ratio("baseline", 0.5)});
  const Trace kept({span()}, kBelowHalf);
  const Trace rejected({span()}, kAboveHalf);
  const Decision keep = decide(set, kept);
  CHECK(keep.keep);
  CHECK(keep.policy == 1);
  CHECK(keep.reason == Decision::Reason::kBaseline);
  const Decision reject = decide(set, rejected);
  CHECK_FALSE(reject.keep);
  CHECK(reject.policy == 1);
  CHECK(reject.reason == Decision::Reason::kBaseline);
}

TEST_CASE("policy_set: rate_limit alone keeps at most N traces per second") {
  const PolicySet set = make_set({rate_limit("cap", 3)});
  const Trace trace({span()});
  int kept = 0;
  for (int i = 0; i < 10; ++i) kept += decide(set, trace, kNow).keep ? 1 : 0;
  CHECK(kept == 3);
  const Decision rejected = decide(set, trace, kNow);
  CHECK(rejected.policy == 0);
  CHECK(rejected.reason == Decision::Reason::kBaseline);
  CHECK(decide(set, trace, kNow + 334ms).keep);  // one token back
  CHECK_FALSE(decide(set, trace, kNow + 334ms).keep);
}

TEST_CASE("policy_set: ratio + rate_limit is a capped baseline; rejected traces cost no token") {
  // Whatever the order in config, the ratio is checked before a token is taken.
  for (const bool ratio_first : {true, false}) {
    CAPTURE(ratio_first);
    std::vector<SamplingPolicyConfig> policies{status_code("errors")};
    if (ratio_first) {
      policies.push_back(ratio("half", 0.5));
      policies.push_back(rate_limit("cap", 2));
    } else {
      policies.push_back(rate_limit("cap", 2));
      policies.push_back(ratio("half", 0.5));
    }
    const PolicySet set = make_set(std::move(policies));
    const std::size_t ratio_index = ratio_first ? 1 : 2;
    const std::size_t cap_index = ratio_first ? 2 : 1;
    const Trace rejected_by_ratio({span()}, kAboveHalf);
    const Trace passes_ratio({span()}, kBelowHalf);
    const Trace error({span().with_status(kError)}, kBelowHalf);

    for (int i = 0; i < 10; ++i) {
      const Decision decision = decide(set, rejected_by_ratio);
      CHECK_FALSE(decision.keep);
      CHECK(decision.policy == ratio_index);
    }
    // Signal keeps do not go through the baseline: no token either.
    for (int i = 0; i < 10; ++i) CHECK(decide(set, error).policy == 0);

    // Both tokens are still there.
    for (int i = 0; i < 2; ++i) {
      const Decision decision = decide(set, passes_ratio);
      CHECK(decision.keep);
      CHECK(decision.policy == 2);  // the last baseline policy in config order
    }
    const Decision capped = decide(set, passes_ratio);
    CHECK_FALSE(capped.keep);
    CHECK(capped.policy == cap_index);
  }
}

TEST_CASE("policy_set: decide from many threads at one instant keeps exactly the burst") {
  const PolicySet set = make_set({rate_limit("cap", 100)});
  const Trace trace({span()});
  constexpr int kThreads = 4;
  std::atomic<int> kept{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) kept.fetch_add(decide(set, trace).keep ? 1 : 0);
    });
  }
  for (std::thread& thread : threads) thread.join();
  CHECK(kept.load() == 100);
}

}  // namespace
}  // namespace spanrelay::sampling
