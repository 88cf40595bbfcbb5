// Redaction and resource enrichment on the wire view: the output is checked by
// parsing it with libprotobuf, the independent reading of the same bytes.
#include "daemon/processing/span_processor.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "daemon/otlp/attribute_reader.h"
#include "daemon/otlp/request_writer.h"
#include "daemon/otlp/wire_scanner.h"
#include "daemon/processing/sha256.h"
#include "tests/unit/otlp_test_requests.h"

namespace spanrelay::processing {
namespace {

namespace pb = otlp::testing::pb;
using otlp::testing::make_id;
using otlp::testing::MessageDifferencer;
using otlp::testing::mutable_unknown;
using otlp::testing::unknown_of;
using KeyValues = google::protobuf::RepeatedPtrField<pb::KeyValue>;

constexpr std::string_view kSalt = "pepper";
// Luhn-valid test card numbers (published test numbers, not real cards).
constexpr std::string_view kVisa = "4111 1111 1111 1111";
constexpr std::string_view kVisaPlain = "4111111111111111";
constexpr std::string_view kNotLuhn = "4111 1111 1111 1112";

std::string hex_sha256(std::string_view text) { return to_hex(Sha256::of(text)); }

pb::AnyValue* add(KeyValues* attributes, const std::string& key) {
  pb::KeyValue* kv = attributes->Add();
  kv->set_key(key);
  return kv->mutable_value();
}
void add_string(KeyValues* attributes, const std::string& key, const std::string& value) {
  add(attributes, key)->set_string_value(value);
}

const pb::AnyValue* find(const KeyValues& attributes, const std::string& key) {
  for (const auto& kv : attributes) {
    if (kv.key() == key) return &kv.value();
  }
  return nullptr;
}
std::string string_of(const KeyValues& attributes, const std::string& key) {
  const pb::AnyValue* value = find(attributes, key);
  REQUIRE_MESSAGE(value != nullptr, "missing attribute " << key);
  REQUIRE(value->has_string_value());
  return value->string_value();
}

// A request with one resource, one scope and `spans` spans, each with the
// same attributes, one event and one link carrying them too.
pb::ExportTraceServiceRequest make_request(int spans, const std::function<void(KeyValues*)>& fill) {
  pb::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  fill(resource_spans->mutable_resource()->mutable_attributes());
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("lib");
  for (int i = 0; i < spans; ++i) {
    pb::Span* span = scope_spans->add_spans();
    span->set_trace_id(make_id(16, i + 1));
    span->set_span_id(make_id(8, i + 100));
    span->set_name("span-" + std::to_string(i));
    fill(span->mutable_attributes());
    auto* event = span->add_events();
    event->set_name("event");
    fill(event->mutable_attributes());
    auto* link = span->add_links();
    link->set_trace_id(make_id(16, i + 200));
    link->set_span_id(make_id(8, i + 300));
    fill(link->mutable_attributes());
  }
  return request;
}

otlp::ScannedRequest scan(const pb::ExportTraceServiceRequest& request) {
  auto result =
      otlp::scan_export_request(std::make_shared<const std::string>(request.SerializeAsString()));
  REQUIRE_MESSAGE(result.ok(), (result.ok() ? "" : result.error().message));
  return std::move(result).value();
}

pb::ExportTraceServiceRequest written(const otlp::ScannedRequest& scanned) {
  otlp::RequestWriter writer;
  writer.add_request(scanned);
  pb::ExportTraceServiceRequest parsed;
  REQUIRE(parsed.ParseFromString(writer.finish()));
  return parsed;
}

std::unique_ptr<SpanProcessor> make_processor(const config::RedactionConfig& redaction,
                                              const config::ResourceConfig& resource = {},
                                              telemetry::Registry* metrics = nullptr) {
  auto created = SpanProcessor::create(redaction, resource, metrics);
  REQUIRE_MESSAGE(created.ok(), (created.ok() ? "" : created.error().message));
  REQUIRE(created.value() != nullptr);
  return std::move(created).value();
}

config::RedactionConfig redaction() {
  config::RedactionConfig config;
  config.enabled = true;
  return config;
}

// Runs the processor and returns what a batch would carry.
pb::ExportTraceServiceRequest run(const SpanProcessor& processor,
                                  const pb::ExportTraceServiceRequest& request,
                                  ProcessingStats* stats = nullptr) {
  otlp::ScannedRequest scanned = scan(request);
  auto result = processor.process(scanned);
  REQUIRE(result.ok());
  if (stats != nullptr) *stats = result.value();
  otlp::testing::check_ranges_within_payload(scanned);
  return written(scanned);
}

// Every KeyValue list a rule applies to: span, event, link and resource.
template <class Check>
void for_each_attribute_list(const pb::ExportTraceServiceRequest& request, Check check) {
  for (const auto& resource_spans : request.resource_spans()) {
    check(resource_spans.resource().attributes());
    for (const auto& scope_spans : resource_spans.scope_spans()) {
      for (const auto& span : scope_spans.spans()) {
        check(span.attributes());
        for (const auto& event : span.events()) check(event.attributes());
        for (const auto& link : span.links()) check(link.attributes());
      }
    }
  }
}

TEST_CASE("redaction: sha256 gives the FIPS 180-4 example digests") {
  CHECK(hex_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hex_sha256(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Fed in uneven pieces (across the 64-byte blocks and the 56-byte padding edge).
  const std::string text(200, 'x');
  for (std::size_t cut : {0, 1, 55, 56, 63, 64, 65, 119, 200}) {
    Sha256 hasher;
    hasher.update(std::string_view(text).substr(0, cut));
    hasher.update(std::string_view(text).substr(cut));
    CHECK(to_hex(hasher.finish()) == hex_sha256(text));
  }
}

TEST_CASE("redaction: luhn accepts test card numbers and refuses a changed digit") {
  CHECK(passes_luhn(kVisa));
  CHECK(passes_luhn("5500-0000-0000-0004"));
  CHECK(passes_luhn("378282246310005"));
  CHECK_FALSE(passes_luhn(kNotLuhn));
  CHECK_FALSE(passes_luhn("4111x1111"));
}

TEST_CASE("redaction: no rule configured means no processor (the zero-cost path)") {
  auto none = SpanProcessor::create({}, {}, nullptr);
  REQUIRE(none.ok());
  CHECK(none.value() == nullptr);
  // A present but empty section configures nothing either.
  auto empty = SpanProcessor::create(redaction(), {}, nullptr);
  REQUIRE(empty.ok());
  CHECK(empty.value() == nullptr);
}

TEST_CASE("redaction: delete_keys and delete_key_patterns remove the attribute everywhere") {
  config::RedactionConfig config = redaction();
  config.delete_keys = {"secret"};
  config.delete_key_patterns = {"http\\.request\\.header\\..*", "token"};
  const auto processor = make_processor(config);
  const auto request = make_request(2, [](KeyValues* attributes) {
    add_string(attributes, "secret", "hunter2");
    add_string(attributes, "http.request.header.authorization", "Bearer abc");
    add(attributes, "token")->set_int_value(42);  // not a string: deleted all the same
    add_string(attributes, "tokens", "whole-key match only");
    add_string(attributes, "keep", "me");
  });
  ProcessingStats stats;
  const auto output = run(*processor, request, &stats);
  int lists = 0;
  for_each_attribute_list(output, [&](const KeyValues& attributes) {
    ++lists;
    CHECK(attributes.size() == 2);
    CHECK(string_of(attributes, "tokens") == "whole-key match only");
    CHECK(string_of(attributes, "keep") == "me");
  });
  CHECK(lists == 1 + 2 * 3);
  CHECK(stats.deleted == 3 * 7);
  CHECK(stats.spans_changed == 2);
  CHECK(stats.resources_changed == 1);
  CHECK(output.SerializeAsString().find("hunter2") == std::string::npos);
}

TEST_CASE("redaction: hash_keys replace values by the salted SHA-256 of their text") {
  config::RedactionConfig config = redaction();
  config.hash_keys = {"user.email", "user.id", "flag", "ratio", "blob", "list"};
  config.hash_key_patterns = {"enduser\\..*"};
  config.hash_salt = std::string(kSalt);
  const auto processor = make_processor(config);
  const auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "user.email", "ada@example.com");
    add(attributes, "user.id")->set_int_value(-42);
    add(attributes, "flag")->set_bool_value(true);
    add(attributes, "ratio")->set_double_value(0.5);
    add(attributes, "blob")->set_bytes_value(std::string("\x00\x01", 2));
    add(attributes, "list")->mutable_array_value()->add_values()->set_string_value("x");
    add_string(attributes, "enduser.id", "u-1");
    add_string(attributes, "other", "plain");
  });
  ProcessingStats stats;
  const auto output = run(*processor, request, &stats);
  const std::string salt(kSalt);
  for_each_attribute_list(output, [&](const KeyValues& attributes) {
    CHECK(string_of(attributes, "user.email") == hex_sha256(salt + "ada@example.com"));
    CHECK(string_of(attributes, "user.id") == hex_sha256(salt + "-42"));
    CHECK(string_of(attributes, "flag") == hex_sha256(salt + "true"));
    CHECK(string_of(attributes, "ratio") == hex_sha256(salt + "0.5"));
    CHECK(string_of(attributes, "blob") == hex_sha256(salt + std::string("\x00\x01", 2)));
    CHECK(find(attributes, "list") == nullptr);  // no one text to hash: deleted
    CHECK(string_of(attributes, "enduser.id") == hex_sha256(salt + "u-1"));
    CHECK(string_of(attributes, "other") == "plain");
  });
  CHECK(stats.hashed == 4 * 6);
  CHECK(stats.deleted == 4 * 1);
}

TEST_CASE("redaction: hashing needs a salt") {
  config::RedactionConfig config = redaction();
  config.hash_keys = {"user.id"};
  const auto created = SpanProcessor::create(config, {}, nullptr);
  REQUIRE_FALSE(created.ok());
  CHECK(created.error().message.find("hash_salt") != std::string::npos);
}

TEST_CASE("redaction: built-in mask patterns replace card numbers, e-mails, PAN and Aadhaar") {
  config::RedactionConfig config = redaction();
  for (const char* pattern : {"card_number", "email", "pan_india", "aadhaar_like"}) {
    config::MaskRuleConfig rule;
    rule.pattern = pattern;
    rule.replacement = std::string("<") + pattern + ">";
    config.mask.push_back(rule);
  }
  const auto processor = make_processor(config);
  const auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "card", "paid with " + std::string(kVisa) + " today");
    add_string(attributes, "card.plain", std::string(kVisaPlain));
    add_string(attributes, "card.dashes", "5500-0000-0000-0004");
    add_string(attributes, "not.luhn", "order " + std::string(kNotLuhn));
    add_string(attributes, "in.word", "id" + std::string(kVisaPlain) + "x");
    add_string(attributes, "mail", "from ada.lovelace+tag@mail.example.co.uk, cc bob@x.io");
    add_string(attributes, "pan", "PAN ABCDE1234F ok; not abcde1234f or XABCDE1234F");
    add_string(attributes, "aadhaar", "1234 5678 9012 / 1234-5678-9012 / 123456789012");
    add(attributes, "number")->set_int_value(4111111111111111);  // not a string: untouched
    auto* nested = add(attributes, "nested")->mutable_kvlist_value()->add_values();
    nested->set_key("deep");
    nested->mutable_value()->mutable_array_value()->add_values()->set_string_value(
        "mail ada@example.com");
  });
  ProcessingStats stats;
  const auto output = run(*processor, request, &stats);
  for_each_attribute_list(output, [&](const KeyValues& attributes) {
    CHECK(string_of(attributes, "card") == "paid with <card_number> today");
    CHECK(string_of(attributes, "card.plain") == "<card_number>");
    CHECK(string_of(attributes, "card.dashes") == "<card_number>");
    CHECK(string_of(attributes, "not.luhn") == "order " + std::string(kNotLuhn));
    CHECK(string_of(attributes, "in.word") == "id" + std::string(kVisaPlain) + "x");
    CHECK(string_of(attributes, "mail") == "from <email>, cc <email>");
    CHECK(string_of(attributes, "pan") == "PAN <pan_india> ok; not abcde1234f or XABCDE1234F");
    CHECK(string_of(attributes, "aadhaar") == "<aadhaar_like> / <aadhaar_like> / <aadhaar_like>");
    CHECK(find(attributes, "number")->int_value() == 4111111111111111);
    const pb::AnyValue* nested = find(attributes, "nested");
    REQUIRE(nested != nullptr);
    CHECK(nested->kvlist_value().values(0).key() == "deep");
    CHECK(nested->kvlist_value().values(0).value().array_value().values(0).string_value() ==
          "mail <email>");
  });
  // card, card.plain, card.dashes, mail, pan, aadhaar, nested: per list.
  CHECK(stats.masked == 4 * 7);
  CHECK(stats.deleted == 0);
}

TEST_CASE("redaction: a custom mask regex rewrites with its groups") {
  config::RedactionConfig config = redaction();
  config::MaskRuleConfig rule;
  rule.regex = "(password|token)=[^&]*";
  rule.replacement = "\\1=***";
  config.mask.push_back(rule);
  const auto processor = make_processor(config);
  const auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "url", "/login?user=ada&password=s3cret&token=abc");
    add_string(attributes, "clean", "/login?user=ada");
  });
  const auto output = run(*processor, request);
  for_each_attribute_list(output, [&](const KeyValues& attributes) {
    CHECK(string_of(attributes, "url") == "/login?user=ada&password=***&token=***");
    CHECK(string_of(attributes, "clean") == "/login?user=ada");
  });
}

TEST_CASE("redaction: allow-list mode keeps only the listed keys, then the other rules apply") {
  config::RedactionConfig config = redaction();
  config.allow_keys = {"http.route", "user.id"};
  config.allow_key_patterns = {"service\\..*"};
  config.hash_keys = {"user.id"};
  config.hash_salt = std::string(kSalt);
  const auto processor = make_processor(config);
  const auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "http.route", "/cart");
    add_string(attributes, "service.name", "shop");
    add_string(attributes, "user.id", "u-7");
    add_string(attributes, "http.url", "/cart?card=" + std::string(kVisaPlain));
    add(attributes, "retries")->set_int_value(3);
  });
  const auto output = run(*processor, request);
  for_each_attribute_list(output, [&](const KeyValues& attributes) {
    CHECK(attributes.size() == 3);
    CHECK(string_of(attributes, "http.route") == "/cart");
    CHECK(string_of(attributes, "service.name") == "shop");
    CHECK(string_of(attributes, "user.id") == hex_sha256(std::string(kSalt) + "u-7"));
  });
}

TEST_CASE("redaction: spans no rule touches keep their original bytes and the payload") {
  config::RedactionConfig config = redaction();
  config.delete_keys = {"secret"};
  const auto processor = make_processor(config);

  // Nothing to redact: the very same payload buffer, every view unchanged.
  const auto clean =
      make_request(3, [](KeyValues* attributes) { add_string(attributes, "keep", "me"); });
  otlp::ScannedRequest scanned = scan(clean);
  const auto payload_before = scanned.payload;
  const std::string header_before = scanned.resources[0].header_bytes;
  auto stats = processor->process(scanned);
  REQUIRE(stats.ok());
  CHECK(stats.value().spans_changed == 0);
  CHECK(scanned.payload == payload_before);
  CHECK(scanned.resources[0].header_bytes == header_before);
  CHECK(MessageDifferencer::Equals(written(scanned), clean));

  // One span of three changes: the other two are byte-identical.
  auto mixed = clean;
  add_string(mixed.mutable_resource_spans(0)
                 ->mutable_scope_spans(0)
                 ->mutable_spans(1)
                 ->mutable_attributes(),
             "secret", "x");
  otlp::ScannedRequest before = scan(mixed);
  otlp::ScannedRequest after = scan(mixed);
  REQUIRE(processor->process(after).ok());
  CHECK(after.span_bytes(after.spans[0]) == before.span_bytes(before.spans[0]));
  CHECK(after.span_bytes(after.spans[2]) == before.span_bytes(before.spans[2]));
  CHECK(after.span_bytes(after.spans[1]) != before.span_bytes(before.spans[1]));
  CHECK(after.resources[0].header_bytes == before.resources[0].header_bytes);
  // The decision fields of the view are untouched.
  CHECK(after.spans[1].trace_id == before.spans[1].trace_id);
  CHECK(MessageDifferencer::Equals(written(after), clean));
}

TEST_CASE("redaction: unknown fields of spans, events, links, resources and attributes survive") {
  config::RedactionConfig config = redaction();
  config.delete_keys = {"secret"};
  config::MaskRuleConfig rule;
  rule.pattern = "email";
  config.mask.push_back(rule);
  const auto processor = make_processor(config);
  auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "secret", "x");
    add_string(attributes, "mail", "ada@example.com");
    mutable_unknown(*attributes->Mutable(1)->mutable_value())->AddVarint(900, 9);
  });
  auto* resource_spans = request.mutable_resource_spans(0);
  mutable_unknown(*resource_spans->mutable_resource())->AddVarint(1000, 1);
  mutable_unknown(*resource_spans)->AddLengthDelimited(1001, "rs");
  pb::Span* span = resource_spans->mutable_scope_spans(0)->mutable_spans(0);
  mutable_unknown(*span)->AddFixed32(1002, 2);
  mutable_unknown(*span->mutable_events(0))->AddVarint(1003, 3);
  mutable_unknown(*span->mutable_links(0))->AddVarint(1004, 4);

  const auto output = run(*processor, request);
  // What we expect: the input with the two rules applied by hand.
  auto expected = request;
  const auto apply = [](KeyValues* attributes) {
    attributes->DeleteSubrange(0, 1);
    attributes->Mutable(0)->mutable_value()->set_string_value("***");
  };
  auto* expected_rs = expected.mutable_resource_spans(0);
  apply(expected_rs->mutable_resource()->mutable_attributes());
  pb::Span* expected_span = expected_rs->mutable_scope_spans(0)->mutable_spans(0);
  apply(expected_span->mutable_attributes());
  apply(expected_span->mutable_events(0)->mutable_attributes());
  apply(expected_span->mutable_links(0)->mutable_attributes());
  CHECK(MessageDifferencer::Equals(output, expected));
  CHECK(unknown_of(output.resource_spans(0).scope_spans(0).spans(0)).field_count() == 1);
  CHECK(unknown_of(output.resource_spans(0).resource()).field_count() == 1);
}

TEST_CASE("redaction: counters count attributes by action and changed spans") {
  config::RedactionConfig config = redaction();
  config.delete_keys = {"secret"};
  config.hash_keys = {"user.id"};
  config.hash_salt = "s";
  config::MaskRuleConfig rule;
  rule.pattern = "card_number";
  config.mask.push_back(rule);
  telemetry::Registry metrics;
  const auto processor = make_processor(config, {}, &metrics);
  auto request =
      make_request(3, [](KeyValues* attributes) { add_string(attributes, "keep", "me"); });
  auto* spans = request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans();
  add_string(spans->Mutable(0)->mutable_attributes(), "secret", "x");
  add_string(spans->Mutable(0)->mutable_attributes(), "user.id", "u");
  add_string(spans->Mutable(1)->mutable_events(0)->mutable_attributes(), "card",
             std::string(kVisa));
  run(*processor, request);
  CHECK(metrics.value("spanrelay_redaction_attributes_total", {{"action", "deleted"}}) == 1);
  CHECK(metrics.value("spanrelay_redaction_attributes_total", {{"action", "hashed"}}) == 1);
  CHECK(metrics.value("spanrelay_redaction_attributes_total", {{"action", "masked"}}) == 1);
  CHECK(metrics.value("spanrelay_redaction_spans_total") == 2);
}

TEST_CASE("resource: insert adds absent attributes only; override replaces them") {
  config::ResourceConfig resource;
  resource.attributes = {{"deployment.environment", "prod"}, {"k8s.node.name", "node-7"}};
  const auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "service.name", "shop");
    add_string(attributes, "deployment.environment", "staging");
  });
  {
    const auto processor = make_processor(redaction(), resource);
    const auto output = run(*processor, request);
    const auto& attributes = output.resource_spans(0).resource().attributes();
    CHECK(attributes.size() == 3);
    CHECK(string_of(attributes, "service.name") == "shop");
    CHECK(string_of(attributes, "deployment.environment") == "staging");
    CHECK(string_of(attributes, "k8s.node.name") == "node-7");
    // Spans are not touched by enrichment.
    CHECK(output.resource_spans(0).scope_spans(0).spans(0).attributes().size() == 2);
  }
  {
    resource.override_existing = true;
    const auto processor = make_processor(redaction(), resource);
    const auto output = run(*processor, request);
    const auto& attributes = output.resource_spans(0).resource().attributes();
    CHECK(attributes.size() == 3);
    CHECK(string_of(attributes, "deployment.environment") == "prod");
    CHECK(string_of(attributes, "k8s.node.name") == "node-7");
  }
}

TEST_CASE("resource: a ResourceSpans without a Resource gets one, and sampling can read it") {
  config::ResourceConfig resource;
  resource.attributes = {{"deployment.environment", "prod"}};
  const auto processor = make_processor({}, resource);
  pb::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  resource_spans->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
  pb::Span* span = resource_spans->add_scope_spans()->add_spans();
  span->set_trace_id(make_id(16, 1));
  span->set_span_id(make_id(8, 2));
  otlp::ScannedRequest scanned = scan(request);
  REQUIRE(processor->process(scanned).ok());
  // The resource view points at the new Resource (what attribute policies read).
  CHECK(otlp::find_attribute(scanned.bytes_of(scanned.resources[0].resource),
                             otlp::kResourceAttributesField, "deployment.environment") == "prod");
  const auto output = written(scanned);
  CHECK(output.resource_spans(0).schema_url() == "https://opentelemetry.io/schemas/1.21.0");
  CHECK(string_of(output.resource_spans(0).resource().attributes(), "deployment.environment") ==
        "prod");
  CHECK(output.resource_spans(0).scope_spans(0).spans(0).span_id() == make_id(8, 2));
}

TEST_CASE("resource: enrichment comes after redaction, so an allow-list does not remove it") {
  config::RedactionConfig config = redaction();
  config.allow_keys = {"service.name"};
  config::ResourceConfig resource;
  resource.attributes = {{"deployment.environment", "prod"}};
  const auto processor = make_processor(config, resource);
  const auto request = make_request(1, [](KeyValues* attributes) {
    add_string(attributes, "service.name", "shop");
    add_string(attributes, "host.ip", "10.0.0.1");
  });
  const auto output = run(*processor, request);
  const auto& attributes = output.resource_spans(0).resource().attributes();
  CHECK(attributes.size() == 2);
  CHECK(string_of(attributes, "service.name") == "shop");
  CHECK(string_of(attributes, "deployment.environment") == "prod");
}

}  // namespace
}  // namespace spanrelay::processing

namespace spanrelay::processing {

TEST_CASE("redaction: scope attributes are redacted like the others, the scope's name kept") {
  config::RedactionConfig config = redaction();
  config.delete_keys = {"secret"};
  config.hash_keys = {"user.id"};
  config.hash_salt = std::string(kSalt);
  const auto processor = make_processor(config);
  auto request = make_request(2, [](KeyValues* attributes) { add_string(attributes, "a", "b"); });
  auto* scope = request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_scope();
  scope->set_version("1.2.3");
  add_string(scope->mutable_attributes(), "secret", "hunter2");
  add_string(scope->mutable_attributes(), "user.id", "alice");
  add_string(scope->mutable_attributes(), "keep", "me");
  ProcessingStats stats;
  const auto output = run(*processor, request, &stats);
  REQUIRE(output.resource_spans(0).scope_spans_size() == 1);
  const auto& scope_spans = output.resource_spans(0).scope_spans(0);
  CHECK(scope_spans.spans_size() == 2);
  CHECK(scope_spans.scope().name() == "lib");
  CHECK(scope_spans.scope().version() == "1.2.3");
  const auto& attributes = scope_spans.scope().attributes();
  CHECK(attributes.size() == 2);
  CHECK(find(attributes, "secret") == nullptr);
  CHECK(string_of(attributes, "keep") == "me");
  CHECK(string_of(attributes, "user.id") != "alice");
  CHECK(stats.scopes_changed == 1);
  CHECK(stats.spans_changed == 0);  // the spans' own attributes matched no rule
  CHECK(output.SerializeAsString().find("hunter2") == std::string::npos);
}

}  // namespace spanrelay::processing
