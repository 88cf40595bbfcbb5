// Writes the generated seeds under tests/fuzz/corpus/ (they are checked in;
// run this again only to change them):
//   fuzz_make_seeds REPO_ROOT
// Seeds are small, valid inputs that reach the interesting paths at once, so
// that fuzzing starts from deep inside each parser instead of from its first
// byte. Config seeds are the golden configs of tests/testdata plus the
// shipped config/spanrelay.yaml.
#include <zstd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/compression.h"
#include "daemon/otlp/json_transcoder.h"
#include "daemon/otlp/wire_format.h"
#include "tests/unit/otlp_test_requests.h"

namespace {

namespace fs = std::filesystem;
namespace wire = spanrelay::otlp::wire;
namespace pb = spanrelay::otlp::testing::pb;
using spanrelay::Codec;
using spanrelay::otlp::testing::make_id;
using spanrelay::otlp::testing::make_varied_request;
using spanrelay::otlp::testing::RequestShape;

fs::path corpus_root;

void write_seed(const std::string& target, const std::string& name, std::string_view bytes) {
  const fs::path dir = corpus_root / target;
  fs::create_directories(dir);
  std::ofstream out(dir / name, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) {
    std::fprintf(stderr, "cannot write %s/%s\n", dir.c_str(), name.c_str());
    std::exit(1);
  }
}

std::string compressed(Codec codec, std::string_view bytes) {
  auto result = spanrelay::compress(codec, bytes);
  if (!result.ok()) {
    std::fprintf(stderr, "compress: %s\n", result.error().message.c_str());
    std::exit(1);
  }
  return std::move(result).value();
}

std::string to_json(const std::string& protobuf) {
  auto json = spanrelay::otlp::protobuf_to_json(protobuf);
  if (!json.ok()) {
    std::fprintf(stderr, "protobuf_to_json: %s\n", json.error().message.c_str());
    std::exit(1);
  }
  return std::move(json).value();
}

pb::ExportTraceServiceRequest one_span_request() {
  pb::ExportTraceServiceRequest request;
  auto* resource_spans = request.add_resource_spans();
  auto* service = resource_spans->mutable_resource()->add_attributes();
  service->set_key("service.name");
  service->mutable_value()->set_string_value("checkout");
  auto* scope_spans = resource_spans->add_scope_spans();
  scope_spans->mutable_scope()->set_name("io.opentelemetry.http");
  auto* span = scope_spans->add_spans();
  span->set_trace_id(make_id(16, 1));
  span->set_span_id(make_id(8, 2));
  span->set_parent_span_id(make_id(8, 3));
  span->set_name("GET /checkout");
  span->set_kind(pb::Span::SPAN_KIND_SERVER);
  span->set_start_time_unix_nano(1700000000000000000ULL);
  span->set_end_time_unix_nano(1700000000250000000ULL);
  span->mutable_status()->set_code(pb::Status::STATUS_CODE_ERROR);
  span->mutable_status()->set_message("boom");
  return request;
}

// Unknown fields at every level the scanner walks, which must survive the
// writer; and the same resource in two ResourceSpans, which it groups.
std::string request_with_unknown_fields() {
  pb::ExportTraceServiceRequest request = one_span_request();
  *request.add_resource_spans() = request.resource_spans(0);
  auto* span = request.mutable_resource_spans(1)->mutable_scope_spans(0)->mutable_spans(0);
  span->set_span_id(make_id(8, 4));
  using spanrelay::otlp::testing::mutable_unknown;
  mutable_unknown(request)->AddVarint(100, 1);
  mutable_unknown(*request.mutable_resource_spans(0))->AddLengthDelimited(99, "rs");
  mutable_unknown(*request.mutable_resource_spans(0)->mutable_scope_spans(0))->AddFixed32(98, 7);
  mutable_unknown(*span)->AddFixed64(97, 42);
  mutable_unknown(*span->mutable_status())->AddVarint(96, 3);
  return request.SerializeAsString();
}

// Singular fields sent twice (the last wins) and Status sent twice (merged),
// written by hand: libprotobuf never writes them that way.
std::string request_with_repeated_singular_fields() {
  std::string status_code, status_message, span;
  wire::append_tag(status_code, 3, wire::WireType::kVarint);
  wire::append_varint(status_code, 2);
  wire::append_bytes_field(status_message, 2, "first");
  wire::append_bytes_field(span, 1, make_id(16, 5));
  wire::append_bytes_field(span, 2, make_id(8, 6));
  wire::append_bytes_field(span, 15, status_code);
  wire::append_bytes_field(span, 1, make_id(16, 7));  // this trace_id counts
  wire::append_tag(span, 7, wire::WireType::kFixed64);
  wire::append_fixed64(span, 1700000000000000000ULL);
  wire::append_bytes_field(span, 15, status_message);
  wire::append_tag(span, 16, wire::WireType::kFixed32);  // flags
  wire::append_fixed32(span, 0x301);
  std::string scope_spans, resource_spans, request;
  wire::append_bytes_field(scope_spans, 2, span);
  wire::append_bytes_field(resource_spans, 2, scope_spans);
  wire::append_bytes_field(request, 1, resource_spans);
  return request;
}

// An attribute value nested `levels` deep (arrays in arrays), at the edge of
// the transcoder's depth limit (64).
std::string request_with_nested_value(int levels) {
  pb::ExportTraceServiceRequest request = one_span_request();
  auto* attribute =
      request.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->add_attributes();
  attribute->set_key("nested");
  pb::AnyValue* value = attribute->mutable_value();
  for (int i = 1; i < levels; ++i) value = value->mutable_array_value()->add_values();
  value->set_int_value(levels);
  return request.SerializeAsString();
}

void write_protobuf_and_json_seeds() {
  const std::vector<std::pair<std::string, std::string>> requests = {
      {"empty", ""},
      {"one_span", one_span_request().SerializeAsString()},
      {"varied_small", make_varied_request(1, RequestShape{1, 2, 2, /*every_attribute_kind=*/false})
                           .SerializeAsString()},
      {"varied_every_kind", make_varied_request(2, RequestShape{2, 2, 2}).SerializeAsString()},
      {"scopes_without_scope",
       make_varied_request(3, RequestShape{1, 3, 1, false}).SerializeAsString()},
      {"unknown_fields", request_with_unknown_fields()},
      {"repeated_singular_fields", request_with_repeated_singular_fields()},
      {"nested_value_64", request_with_nested_value(64)},
  };
  for (const auto& [name, bytes] : requests) write_seed("wire_scanner", name + ".pb", bytes);
  write_seed("wire_scanner", "nested_value_65.pb", request_with_nested_value(65));

  for (const auto& [name, bytes] : requests) {
    if (name == "empty" || name == "varied_every_kind") continue;  // {} below; size
    write_seed("json_transcoder", name + ".json", to_json(bytes));
  }
  write_seed("json_transcoder", "empty.json", "{}");
  // What SDKs send beside our own output: opentelemetry-js style (64-bit
  // integers as strings, enums as numbers), proto field names, enum names,
  // upper-case hex, numbers where strings are usual, nulls and unknown keys.
  write_seed(
      "json_transcoder", "sdk_style.json",
      R"({"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":)"
      R"({"stringValue":"web"}}],"droppedAttributesCount":0},"scopeSpans":[{"scope":)"
      R"({"name":"@opentelemetry/instrumentation-http","version":"0.45.1"},"spans":[)"
      R"({"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174",)"
      R"("parentSpanId":"","name":"GET","kind":2,"startTimeUnixNano":"1700000000000000000",)"
      R"("endTimeUnixNano":1700000000250000000,"attributes":[{"key":"http.status_code",)"
      R"("value":{"intValue":503}},{"key":"ratio","value":{"doubleValue":"NaN"}},)"
      R"({"key":"raw","value":{"bytesValue":"AAH/"}}],"droppedAttributesCount":0,)"
      R"("events":[],"links":[],"status":{"code":2,"message":"Service Unavailable"}}]}]}]})");
  write_seed("json_transcoder", "proto_names.json",
             R"({"resource_spans":[{"scope_spans":[{"spans":[{"trace_id":)"
             R"("0123456789abcdef0123456789abcdef","span_id":"0123456789abcdef",)"
             R"("kind":"SPAN_KIND_CLIENT","status":{"code":"STATUS_CODE_OK"},"flags":257,)"
             R"("unknownKey":{"deep":[1,2,{"x":null}]},"traceState":null,)"
             R"("attributes":[{"key":"k","value":{"kvlistValue":{"values":[{"key":"a",)"
             R"("value":{"boolValue":true}}]}}},{"key":"e","value":{}}]}]}]}]})");
}

std::string http_request(std::string_view head, std::string_view body) {
  std::string request(head);
  request += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  request += body;
  return request;
}

std::string chunked(std::string_view body) {
  std::string out;
  const std::size_t half = body.size() / 2;
  for (std::string_view part : {body.substr(0, half), body.substr(half)}) {
    char size[32];
    std::snprintf(size, sizeof size, "%zx", part.size());
    out += std::string(size) + "\r\n" + std::string(part) + "\r\n";
  }
  return out + "0\r\n\r\n";
}

void write_http_seeds() {
  const std::string protobuf = one_span_request().SerializeAsString();
  const std::string json = to_json(protobuf);
  const std::string post = "POST /v1/traces HTTP/1.1\r\nHost: localhost:4318\r\n";
  const std::string as_protobuf = post + "Content-Type: application/x-protobuf\r\n";
  const std::string as_json = post + "Content-Type: application/json; charset=utf-8\r\n";

  write_seed("http_request", "protobuf.http", http_request(as_protobuf, protobuf));
  write_seed("http_request", "json.http", http_request(as_json, json));
  write_seed(
      "http_request", "protobuf_gzip.http",
      http_request(as_protobuf + "Content-Encoding: gzip\r\n", compressed(Codec::kGzip, protobuf)));
  write_seed("http_request", "json_zstd.http",
             http_request(as_json + "Content-Encoding: zstd\r\n", compressed(Codec::kZstd, json)));
  write_seed("http_request", "protobuf_deflate.http",
             http_request(as_protobuf + "Content-Encoding: deflate\r\n",
                          compressed(Codec::kDeflate, protobuf)));
  write_seed(
      "http_request", "json_chunked_expect_continue.http",
      as_json + "Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(json));
  write_seed("http_request", "keep_alive_three_requests.http",
             http_request(as_protobuf, protobuf) +
                 http_request(post + "Content-Type: application/protobuf\r\n", "") +
                 http_request(as_json + "Connection: close\r\n", json));
  // fuzz_http_request's consumer refuses a first span id starting 0xEE: 429.
  pb::ExportTraceServiceRequest refused = one_span_request();
  refused.mutable_resource_spans(0)->mutable_scope_spans(0)->mutable_spans(0)->set_span_id(
      "\xEE" + make_id(7, 9));
  write_seed("http_request", "refused_over_memory_budget.http",
             http_request(as_json, to_json(refused.SerializeAsString())));
  // 413 after decompression: 1MiB of zeros in about a kilobyte.
  write_seed("http_request", "gzip_bomb.http",
             http_request(as_protobuf + "Content-Encoding: gzip\r\n",
                          compressed(Codec::kGzip, std::string(1u << 20, '\0'))));
  // 413 on the wire, told by Content-Length before any body byte.
  write_seed("http_request", "over_body_limit.http",
             as_json + "Content-Length: 1000000\r\n\r\n{\"resourceSpans\":[");
  write_seed("http_request", "invalid_protobuf.http",
             http_request(as_protobuf, std::string("\x0a\x05\x12\x03\x12\x01", 6)));
  write_seed("http_request", "invalid_json.http", http_request(as_json, "{\"resourceSpans\":[{]}"));
  write_seed("http_request", "unsupported_media.http",
             http_request(post + "Content-Type: text/plain\r\n", "hello") +
                 http_request(as_json + "Content-Encoding: br\r\n", "{}"));
  write_seed("http_request", "wrong_method_and_path.http",
             "GET /v1/traces?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
             "POST /v1/metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
             "HEAD / HTTP/1.0\r\n\r\n");
  write_seed("http_request", "malformed_request_line.http",
             "POST /v1/traces HTTP/1.1 extra\r\nContent-Type: application/json\r\n\r\n");
}

// A zstd frame that does not declare its size (as a streaming compressor
// writes it), so that only the running output count can stop the bomb.
std::string zstd_without_content_size(std::string_view bytes) {
  ZSTD_CCtx* context = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(context, ZSTD_c_contentSizeFlag, 0);
  std::string out(ZSTD_compressBound(bytes.size()), '\0');
  const std::size_t size =
      ZSTD_compress2(context, out.data(), out.size(), bytes.data(), bytes.size());
  ZSTD_freeCCtx(context);
  if (ZSTD_isError(size)) {
    std::fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(size));
    std::exit(1);
  }
  out.resize(size);
  return out;
}

void write_decompress_seeds() {
  // Control byte: codec in bits 0-1 (identity, gzip, deflate, zstd), cap
  // index in bits 2-4 (0, 1, 100, 1KiB, 16KiB, 64KiB, 1MiB, 4MiB).
  const auto control = [](int codec, int cap) { return std::string(1, char(codec | cap << 2)); };
  const std::string body = make_varied_request(4, RequestShape{1, 1, 2, false}).SerializeAsString();
  const std::string zeros(1u << 20, '\0');
  const char* names[] = {"identity", "gzip", "deflate", "zstd"};
  const Codec codecs[] = {Codec::kIdentity, Codec::kGzip, Codec::kDeflate, Codec::kZstd};
  for (int c = 0; c < 4; ++c) {
    write_seed("decompress", std::string(names[c]) + "_request",
               control(c, 4) + compressed(codecs[c], body));
    if (c != 0) {
      write_seed("decompress", std::string(names[c]) + "_bomb_1MiB_cap_64KiB",
                 control(c, 5) + compressed(codecs[c], zeros));
    }
  }
  write_seed("decompress", "zstd_undeclared_size_bomb_1MiB_cap_64KiB",
             control(3, 5) + zstd_without_content_size(zeros));
  write_seed(
      "decompress", "gzip_two_members",
      control(1, 3) + compressed(Codec::kGzip, "hello ") + compressed(Codec::kGzip, "world"));
  write_seed(
      "decompress", "zstd_two_frames",
      control(3, 3) + compressed(Codec::kZstd, "hello ") + compressed(Codec::kZstd, "world"));
  write_seed("decompress", "gzip_exactly_at_cap",
             control(1, 2) + compressed(Codec::kGzip, std::string(100, 'x')));
}

void copy_config_seeds(const fs::path& repo) {
  const fs::path out = corpus_root / "config_loader";
  fs::create_directories(out);
  fs::copy_file(repo / "config/spanrelay.yaml", out / "shipped_spanrelay.yaml",
                fs::copy_options::overwrite_existing);
  for (const char* kind : {"valid", "invalid"}) {
    for (const auto& entry : fs::directory_iterator(repo / "tests/testdata/config" / kind)) {
      if (entry.path().extension() != ".yaml") continue;
      fs::copy_file(entry.path(),
                    out / (std::string(kind) + "_" + entry.path().filename().string()),
                    fs::copy_options::overwrite_existing);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s REPO_ROOT\n", argv[0]);
    return 2;
  }
  const fs::path repo = argv[1];
  corpus_root = repo / "tests/fuzz/corpus";
  write_protobuf_and_json_seeds();
  write_http_seeds();
  write_decompress_seeds();
  copy_config_seeds(repo);
  std::printf("seeds written under %s\n", corpus_root.c_str());
  return 0;
}
