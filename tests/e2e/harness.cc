#include "tests/e2e/harness.h"

#include <fcntl.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace spanrelay::e2e {

namespace trace = opentelemetry::proto::trace::v1;
namespace common = opentelemetry::proto::common::v1;

// --- files and processes ------------------------------------------------

TempDir::TempDir() {
  std::string pattern = "/tmp/sr-XXXXXX";
  if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  if (!std::getenv("SPANRELAY_KEEP_TEST_DIRS")) std::filesystem::remove_all(path_, ec);
}

bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  auto pause = 1ms;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(50));
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

Process::Process(const std::string& program, const std::vector<std::string>& args,
                 const std::string& log_path)
    : log_path_(log_path) {
  std::vector<std::string> argv_storage{program};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    // The test runner may block signals; the child must start clean.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
}

Process::~Process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_exit(10s);
  }
}

bool Process::running() {
  if (exit_code_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

void Process::signal(int signal_number) {
  if (running()) ::kill(pid_, signal_number);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds limit) {
  wait_until([&] { return !running(); }, limit);
  return exit_code_;
}

std::string Process::log() const { return read_file(log_path_); }

namespace {

std::map<std::string, std::vector<std::string>> read_ready_file(const std::string& path) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto text = read_file(path);
  if (parser.parse(text).get(doc)) throw std::runtime_error("bad ready file: " + text);
  std::map<std::string, std::vector<std::string>> out;
  simdjson::dom::object obj;
  if (doc.get(obj)) throw std::runtime_error("ready file is not an object: " + text);
  for (auto field : obj) {
    std::string key(field.key);
    if (field.value.is_string()) {
      out[key].emplace_back(std::string_view(field.value.get_string().value()));
    } else if (field.value.is_array()) {
      simdjson::dom::array items = field.value.get_array().value();
      for (simdjson::dom::element item : items) {
        out[key].emplace_back(std::string_view(item.get_string().value()));
      }
    }
  }
  return out;
}

}  // namespace

// --- sink ----------------------------------------------------------------

Sink::Sink(const TempDir& dir, const std::vector<std::string>& extra_args, const std::string& name)
    : out_path_(dir.file(name + "-spans.jsonl")),
      requests_path_(dir.file(name + "-requests.jsonl")) {
  const auto ready = dir.file(name + ".ready");
  std::vector<std::string> args{"--grpc",       "127.0.0.1:0", "--http",         "127.0.0.1:0",
                                "--out",        out_path_,     "--requests-out", requests_path_,
                                "--ready-file", ready};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  process_ = std::make_unique<Process>(TESTSINK_PATH, args, dir.file(name + ".log"));
  if (!wait_until([&] { return std::filesystem::exists(ready) || !process_->running(); })) {
    throw std::runtime_error("test sink did not become ready");
  }
  if (!std::filesystem::exists(ready))
    throw std::runtime_error("test sink died: " + process_->log());
  auto addresses = read_ready_file(ready);
  grpc_ = addresses["grpc"].at(0);
  http_ = addresses["http"].at(0);
}

std::vector<SinkSpan> Sink::spans() const {
  std::vector<SinkSpan> out;
  std::istringstream lines(read_file(out_path_));
  std::string line;
  simdjson::dom::parser parser;
  while (std::getline(lines, line)) {
    simdjson::dom::element doc;
    if (line.empty() || parser.parse(line).get(doc)) continue;  // a line still being written
    SinkSpan span;
    span.trace_id = std::string(doc["trace_id"].get_string().value());
    span.span_id = std::string(doc["span_id"].get_string().value());
    span.parent_span_id = std::string(doc["parent_span_id"].get_string().value());
    span.name = std::string(doc["name"].get_string().value());
    span.digest = std::string(doc["digest"].get_string().value());
    span.transport = std::string(doc["transport"].get_string().value());
    span.status = static_cast<int>(doc["status"].get_int64().value());
    out.push_back(std::move(span));
  }
  return out;
}

std::size_t Sink::span_count() const {
  const auto text = read_file(out_path_);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

bool Sink::wait_for_spans(std::size_t n, std::chrono::milliseconds limit) const {
  return wait_until([&] { return span_count() >= n; }, limit);
}

// --- daemon --------------------------------------------------------------

Daemon::Daemon(const TempDir& dir, const std::string& yaml, const std::string& name)
    : ready_path_(dir.file(name + ".ready")) {
  const auto config_path = dir.file(name + ".yaml");
  write_file(config_path, yaml);
  std::filesystem::remove(ready_path_);
  process_ = std::make_unique<Process>(
      SPANRELAYD_PATH,
      std::vector<std::string>{"--config", config_path, "--ready-file", ready_path_},
      dir.file(name + ".log"));
  if (!wait_until([&] { return std::filesystem::exists(ready_path_) || !process_->running(); })) {
    throw std::runtime_error("spanrelayd did not become ready: " + process_->log());
  }
  if (!std::filesystem::exists(ready_path_)) {
    throw std::runtime_error("spanrelayd exited at start: " + process_->log());
  }
  addresses_ = read_ready_file(ready_path_);
}

Daemon::~Daemon() = default;

std::vector<std::string> Daemon::addresses(const std::string& listener) const {
  auto it = addresses_.find(listener);
  return it == addresses_.end() ? std::vector<std::string>{} : it->second;
}

std::string Daemon::tcp_address(const std::string& listener) const {
  for (const auto& a : addresses(listener)) {
    if (a.rfind("unix:", 0) != 0) return a;
  }
  throw std::runtime_error("no TCP address for " + listener);
}

std::string Daemon::metrics_text() const {
  return http_request(tcp_address("metrics"), "GET", "/metrics", "", {}).body;
}

double Daemon::metric(const std::string& series) const {
  const auto text = metrics_text();
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > series.size() && line.compare(0, series.size(), series) == 0 &&
        line[series.size()] == ' ') {
      return std::stod(line.substr(series.size() + 1));
    }
  }
  return 0;
}

std::optional<int> Daemon::stop() {
  process_->signal(SIGTERM);
  return process_->wait_exit(60s);
}

// --- requests ------------------------------------------------------------

std::string hex(const std::string& bytes) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

std::string span_digest(const std::string& span_bytes) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : span_bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

namespace {

std::string random_bytes(std::mt19937_64& rng, int n) {
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rng() & 0xff);
  return out;
}

void add_attribute(google::protobuf::RepeatedPtrField<common::KeyValue>* attrs,
                   const std::string& key, const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

}  // namespace

ExportRequest make_request(const RequestOptions& options, std::vector<GeneratedSpan>* spans) {
  std::mt19937_64 rng(options.seed);
  ExportRequest request;
  int span_number = 0;
  for (int r = 0; r < options.resources; ++r) {
    auto* rs = request.add_resource_spans();
    add_attribute(rs->mutable_resource()->mutable_attributes(), "service.name",
                  "svc-" + std::to_string(options.seed) + "-" + std::to_string(r));
    rs->set_schema_url("https://opentelemetry.io/schemas/1.21.0");
    if (options.unknown_fields) {
      rs->GetReflection()->MutableUnknownFields(rs)->AddVarint(1000, 7);
      rs->mutable_resource()
          ->GetReflection()
          ->MutableUnknownFields(rs->mutable_resource())
          ->AddLengthDelimited(1001, "resource-extension");
    }
    for (int s = 0; s < options.scopes_per_resource; ++s) {
      auto* ss = rs->add_scope_spans();
      ss->mutable_scope()->set_name("lib-" + std::to_string(s));
      ss->mutable_scope()->set_version("1.2." + std::to_string(s));
      if (options.unknown_fields) {
        ss->GetReflection()->MutableUnknownFields(ss)->AddFixed32(1002, 0xabcdef);
      }
      const std::string trace_id = random_bytes(rng, 16);
      std::string parent;
      for (int i = 0; i < options.spans_per_scope; ++i) {
        auto* span = ss->add_spans();
        ++span_number;
        span->set_trace_id(trace_id);
        span->set_span_id(random_bytes(rng, 8));
        if (!parent.empty()) span->set_parent_span_id(parent);
        parent = span->span_id();
        span->set_name("op-" + std::to_string(span_number));
        span->set_kind(trace::Span::SPAN_KIND_SERVER);
        span->set_start_time_unix_nano(1700000000000000000ull + span_number * 1000);
        span->set_end_time_unix_nano(1700000000000000000ull + span_number * 1000 + 500000);
        add_attribute(span->mutable_attributes(), "http.route", "/api/v1/items");
        auto* num = span->add_attributes();
        num->set_key("http.status_code");
        num->mutable_value()->set_int_value(200 + i);
        auto* flag = span->add_attributes();
        flag->set_key("cache.hit");
        flag->mutable_value()->set_bool_value(i % 2 == 0);
        auto* dbl = span->add_attributes();
        dbl->set_key("ratio");
        dbl->mutable_value()->set_double_value(0.25 * i);
        auto* arr = span->add_attributes();
        arr->set_key("tags");
        arr->mutable_value()->mutable_array_value()->add_values()->set_string_value("a");
        arr->mutable_value()->mutable_array_value()->add_values()->set_int_value(2);
        auto* event = span->add_events();
        event->set_name("cache-miss");
        event->set_time_unix_nano(1700000000000000000ull + span_number * 1000 + 10);
        if (options.error_every > 0 && span_number % options.error_every == 0) {
          span->mutable_status()->set_code(trace::Status::STATUS_CODE_ERROR);
          span->mutable_status()->set_message("boom");
        }
        if (options.unknown_fields) {
          span->GetReflection()->MutableUnknownFields(span)->AddVarint(1003, span_number);
        }
        if (spans) {
          spans->push_back({hex(span->trace_id()), hex(span->span_id()),
                            span_digest(span->SerializeAsString())});
        }
      }
    }
  }
  return request;
}

std::string serialize(const ExportRequest& request) { return request.SerializeAsString(); }

// --- clients ---------------------------------------------------------------

ClientResult grpc_export(const std::string& target, const std::string& request_bytes, bool gzip) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 30s);
  if (gzip) context.set_compression_algorithm(GRPC_COMPRESS_GZIP);
  grpc::Slice slice(request_bytes);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  grpc::Status status;
  stub.UnaryCall(&context, "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                 grpc::StubOptions(), &request, &response, [&](grpc::Status s) {
                   std::lock_guard lock(mutex);
                   status = std::move(s);
                   done = true;
                   done_cv.notify_one();
                 });
  std::unique_lock lock(mutex);
  done_cv.wait(lock, [&] { return done; });
  ClientResult result;
  result.status = status.error_code();
  result.body = status.error_message();
  result.details = status.error_details();
  return result;
}

namespace {
namespace beast = boost::beast;
namespace http = beast::http;
namespace asio = boost::asio;

template <class Stream>
ClientResult exchange(Stream& stream, const std::string& method, const std::string& path,
                      const std::string& body, const std::map<std::string, std::string>& headers) {
  http::request<http::string_body> req{http::string_to_verb(method), path, 11};
  req.set(http::field::host, "localhost");
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  req.prepare_payload();
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(64u << 20);
  http::read(stream, buffer, parser);
  auto res = parser.release();
  ClientResult result;
  result.status = static_cast<int>(res.result_int());
  result.body = res.body();
  for (const auto& field : res)
    result.headers[std::string(field.name_string())] = std::string(field.value());
  return result;
}
}  // namespace

ClientResult http_request(const std::string& target, const std::string& method,
                          const std::string& path, const std::string& body,
                          const std::map<std::string, std::string>& headers) {
  asio::io_context io;
  if (target.rfind("unix:", 0) == 0) {
    asio::local::stream_protocol::socket socket(io);
    socket.connect(asio::local::stream_protocol::endpoint(target.substr(5)));
    return exchange(socket, method, path, body, headers);
  }
  const auto colon = target.rfind(':');
  asio::ip::tcp::resolver resolver(io);
  asio::ip::tcp::socket socket(io);
  asio::connect(socket, resolver.resolve(target.substr(0, colon), target.substr(colon + 1)));
  return exchange(socket, method, path, body, headers);
}

ClientResult http_export(const std::string& target, const std::string& body,
                         const std::string& content_type, const std::string& content_encoding) {
  std::map<std::string, std::string> headers{{"Content-Type", content_type}};
  if (!content_encoding.empty()) headers["Content-Encoding"] = content_encoding;
  return http_request(target, "POST", "/v1/traces", body, headers);
}

}  // namespace spanrelay::e2e
