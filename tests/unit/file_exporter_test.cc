#include "daemon/exporters/file_exporter.h"

#include <doctest/doctest.h>
#include <simdjson.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

using namespace spanrelay;
using namespace spanrelay::exporters;
namespace otlp_collector = opentelemetry::proto::collector::trace::v1;

namespace {

// A fresh directory under /tmp, removed with everything in it at the end.
class ScratchDir {
 public:
  ScratchDir() {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "file_exporter_XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

std::string request_with_trace(unsigned char trace_byte) {
  otlp_collector::ExportTraceServiceRequest request;
  auto* span = request.add_resource_spans()->add_scope_spans()->add_spans();
  span->set_trace_id(std::string(16, static_cast<char>(trace_byte)));
  span->set_span_id(std::string(8, '\x01'));
  span->set_name("checkout");
  return request.SerializeAsString();
}

std::vector<std::string> read_lines(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

config::ExporterConfig file_config(const std::filesystem::path& path) {
  config::ExporterConfig config;
  config.type = config::ExporterType::kFile;
  config.path = path.string();
  return config;
}

}  // namespace

TEST_CASE("file_exporter: each export appends one OTLP/JSON line, parent dirs created") {
  ScratchDir dir;
  const auto path = dir.path() / "nested" / "deeper" / "spans.jsonl";
  auto made = make_exporter(file_config(path));
  REQUIRE_MESSAGE(made.ok(), (made.ok() ? "" : made.error().message));
  auto exporter = std::move(made).value();
  CHECK(exporter->describe() == "file " + path.string());
  CHECK(std::filesystem::exists(path.parent_path()));

  const ExportResult first = exporter->export_request(request_with_trace(0xab), 1);
  CHECK(first.disposition == ExportDisposition::kSuccess);
  const ExportResult second = exporter->export_request(request_with_trace(0x5c), 1);
  CHECK(second.disposition == ExportDisposition::kSuccess);

  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 2);
  const char* expected_ids[] = {"abababababababababababababababab",
                                "5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c"};
  simdjson::dom::parser parser;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    CAPTURE(lines[i]);
    simdjson::dom::element document;
    REQUIRE(parser.parse(lines[i]).get(document) == simdjson::SUCCESS);
    std::string_view trace_id;
    REQUIRE(document.at_pointer("/resourceSpans/0/scopeSpans/0/spans/0/traceId").get(trace_id) ==
            simdjson::SUCCESS);
    std::string lower(trace_id);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    CHECK(lower == expected_ids[i]);
  }
}

TEST_CASE("file_exporter: an existing file is appended to, not truncated") {
  ScratchDir dir;
  const auto path = dir.path() / "spans.jsonl";
  std::ofstream(path) << "{\"earlier\":true}\n";
  auto exporter = make_exporter(file_config(path));
  REQUIRE(exporter.ok());
  CHECK(exporter.value()->export_request(request_with_trace(0x11), 1).disposition ==
        ExportDisposition::kSuccess);
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0] == "{\"earlier\":true}");
}

TEST_CASE("file_exporter: bytes that are not a request are a permanent failure") {
  ScratchDir dir;
  const auto path = dir.path() / "spans.jsonl";
  auto exporter = make_exporter(file_config(path));
  REQUIRE(exporter.ok());
  // Field 1 declared 100 bytes long with 2 present: truncated protobuf.
  const ExportResult result =
      exporter.value()->export_request(std::string("\x0a\x64\x0a\x00", 4), 1);
  CHECK(result.disposition == ExportDisposition::kPermanent);
  CHECK_FALSE(result.message.empty());
  CHECK(read_lines(path).empty());
}

TEST_CASE("file_exporter: a full disk is retryable io_error") {
  // /dev/full accepts open(2) and fails every write with ENOSPC.
  if (!std::filesystem::exists("/dev/full")) return;
  auto exporter = make_exporter(file_config("/dev/full"));
  REQUIRE(exporter.ok());
  const ExportResult result = exporter.value()->export_request(request_with_trace(0x22), 1);
  CHECK(result.disposition == ExportDisposition::kRetryable);
  CHECK(result.code == "io_error");
}

TEST_CASE("file_exporter: an unusable path is a configuration error") {
  ScratchDir dir;
  const auto blocker = dir.path() / "not-a-dir";
  std::ofstream(blocker) << "x";
  auto made = make_exporter(file_config(blocker / "spans.jsonl"));
  REQUIRE_FALSE(made.ok());
  CHECK(made.error().message.find("exporter.path") != std::string::npos);
}
