// spanrelay's own telemetry, checked by the tools that will consume it:
// `promtool check metrics` on a live /metrics after traffic, every metric the
// README documents and every metric the alert rules use present, `promtool
// check rules` on the shipped alerts, the probes, a real Prometheus server
// scraping the daemon and evaluating the rules, and JSON log lines.
//
// promtool and prometheus come from Debian's `prometheus` package (.ci/deps).
// Without them these tests fail, unless SPANRELAY_SKIP_PROMTOOL=1 says to
// skip what needs them.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <simdjson.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;

namespace {

const std::filesystem::path kRepoRoot =
    std::filesystem::path(SPANRELAY_TESTDATA_DIR).parent_path().parent_path();

std::string repo_file(const std::string& relative) { return (kRepoRoot / relative).string(); }

bool skip_prometheus_tools() {
  const char* skip = std::getenv("SPANRELAY_SKIP_PROMTOOL");
  return skip != nullptr && std::string(skip) == "1";
}

std::optional<std::string> find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const auto candidate = dir + "/" + program;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

// The tool's path; nullopt (skip) only when SPANRELAY_SKIP_PROMTOOL=1.
std::optional<std::string> required_tool(const std::string& program) {
  auto found = find_on_path(program);
  if (found) return found;
  if (skip_prometheus_tools()) {
    MESSAGE(program << " not on PATH: skipped (SPANRELAY_SKIP_PROMTOOL=1)");
    return std::nullopt;
  }
  FAIL(program << " not on PATH: install Debian's prometheus package (.ci/deps), or set "
                  "SPANRELAY_SKIP_PROMTOOL=1 to skip");
  return std::nullopt;
}

struct ToolRun {
  int exit_code = -1;
  std::string output;
};

// Runs `program args...` with stdin from `stdin_path` (or /dev/null) and
// stdout+stderr captured; waits for it.
ToolRun run_tool(const std::string& program, const std::vector<std::string>& args,
                 const std::string& stdin_path, const std::string& output_path) {
  std::vector<std::string> storage{program};
  storage.insert(storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    const int in = ::open(stdin_path.empty() ? "/dev/null" : stdin_path.c_str(), O_RDONLY);
    const int out = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) _exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    ::execv(program.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ToolRun run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  run.output = read_file(output_path);
  return run;
}

// Metric names in the first column of the README's "## Metrics" table:
// every `backticked` name, labels ({...}) removed.
std::vector<std::string> documented_metrics(const std::string& readme) {
  std::vector<std::string> names;
  std::istringstream lines(readme);
  std::string line;
  bool in_section = false;
  const std::regex name_syntax("[a-zA-Z_:][a-zA-Z0-9_:]*");
  while (std::getline(lines, line)) {
    if (line.rfind("## ", 0) == 0) in_section = line == "## Metrics";
    if (!in_section || line.rfind("|", 0) != 0) continue;
    const auto cell_end = line.find('|', 1);
    if (cell_end == std::string::npos) continue;
    const std::string cell = line.substr(1, cell_end - 1);
    for (std::size_t open = cell.find('`'); open != std::string::npos;) {
      const auto close = cell.find('`', open + 1);
      if (close == std::string::npos) break;
      std::string name = cell.substr(open + 1, close - open - 1);
      name = name.substr(0, name.find('{'));
      if (std::regex_match(name, name_syntax)) names.push_back(name);
      open = cell.find('`', close + 1);
    }
  }
  return names;
}

// Family names from the "# TYPE name kind" lines of an exposition.
std::set<std::string> metric_families(const std::string& exposition) {
  std::set<std::string> names;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    const auto end = line.find(' ', 7);
    names.insert(line.substr(7, end - 7));
  }
  return names;
}

// spanrelay_* and process_* names used by the alert rules' expressions and
// texts, histogram suffixes removed.
std::set<std::string> metrics_used_by_rules(const std::string& rules) {
  std::set<std::string> names;
  const std::regex metric("\\b(spanrelay|process)_[a-z0-9_]+");
  for (auto it = std::sregex_iterator(rules.begin(), rules.end(), metric);
       it != std::sregex_iterator(); ++it) {
    std::string name = it->str();
    for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        name.resize(name.size() - suffix.size());
      }
    }
    names.insert(name);
  }
  return names;
}

std::size_t count_occurrences(const std::string& text, const std::string& needle) {
  std::size_t count = 0;
  for (auto pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) {
    ++count;
  }
  return count;
}

std::string telemetry_yaml(const TempDir& dir, const std::string& exporter,
                           const std::string& log = "{ level: info }") {
  std::ostringstream y;
  y << "receivers:\n"
    << "  otlp:\n"
    << "    grpc: { endpoint: 127.0.0.1:0 }\n"
    << "    http: { endpoint: 127.0.0.1:0 }\n"
    << "batch: { max_spans: 1024, max_bytes: 1MiB, timeout: 50ms }\n"
    // Tail sampling keeping everything: its metrics are documented too.
    << "sampling: { decision_wait: 100ms, policies: [ { name: everything, type: always } ] }\n"
    << "exporter:\n"
    << exporter << "  retry: { initial_interval: 10ms, max_interval: 50ms, max_elapsed: 1m }\n"
    << "  queue: { memory_limit: 64MiB, spool: { dir: " << dir.file("spool") << " } }\n"
    << "telemetry:\n  metrics: { endpoint: 127.0.0.1:0 }\n  log: " << log << "\n";
  return y.str();
}

std::string grpc_exporter(const Sink& sink) {
  return "  type: otlp_grpc\n  endpoint: " + sink.grpc_address() + "\n";
}

std::string file_exporter(const TempDir& dir) {
  return "  type: file\n  path: " + dir.file("spans.jsonl") + "\n";
}

double accepted_spans(const Daemon& daemon) {
  double total = 0;
  for (const char* transport : {"grpc", "http"}) {
    for (const char* encoding : {"protobuf", "json"}) {
      total += daemon.metric(std::string("spanrelay_receiver_accepted_spans_total{transport=\"") +
                             transport + "\",encoding=\"" + encoding + "\"}");
    }
  }
  return total;
}

// Sends `grpc_requests` over gRPC and `http_requests` over HTTP (TCP).
std::vector<GeneratedSpan> send_traffic(const Daemon& daemon, int grpc_requests,
                                        int http_requests) {
  std::vector<GeneratedSpan> sent;
  std::uint64_t seed = 900;
  for (int i = 0; i < grpc_requests; ++i) {
    auto request = make_request({.seed = ++seed}, &sent);
    const auto result = grpc_export(daemon.tcp_address("grpc"), serialize(request));
    REQUIRE_MESSAGE(result.status == 0, result.body);
  }
  for (int i = 0; i < http_requests; ++i) {
    auto request = make_request({.seed = ++seed}, &sent);
    const auto result = http_export(daemon.tcp_address("http"), serialize(request));
    REQUIRE_MESSAGE(result.status == 200, result.body);
  }
  return sent;
}

int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t length = sizeof addr;
  const bool bound = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                     ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length) == 0;
  ::close(fd);
  REQUIRE(bound);
  return ntohs(addr.sin_port);
}

std::string url_encode(const std::string& text) {
  static const char* hex_digits = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex_digits[c >> 4];
      out += hex_digits[c & 15];
    }
  }
  return out;
}

// GET against Prometheus' HTTP API; nullopt while it is not answering yet.
std::optional<std::string> prometheus_get(const std::string& address, const std::string& path) {
  try {
    const auto result = http_request(address, "GET", path, "", {{"Host", address}});
    if (result.status != 200) return std::nullopt;
    return result.body;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// The value of an instant query's first sample, nullopt when there is none.
std::optional<double> query_value(const std::string& address, const std::string& promql) {
  const auto body = prometheus_get(address, "/api/v1/query?query=" + url_encode(promql));
  if (!body) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(*body).get(doc)) return std::nullopt;
  simdjson::dom::array result;
  if (doc.at_pointer("/data/result").get(result) || result.size() == 0) return std::nullopt;
  std::string_view value;
  if (result.at(0).at_pointer("/value/1").get(value)) return std::nullopt;
  return std::stod(std::string(value));
}

struct RuleHealth {
  std::size_t rules = 0, ok = 0;
  std::vector<std::string> errors;  // "name: lastError"
};

std::optional<RuleHealth> rule_health(const std::string& address) {
  const auto body = prometheus_get(address, "/api/v1/rules");
  if (!body) return std::nullopt;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(*body).get(doc)) return std::nullopt;
  simdjson::dom::array groups;
  if (doc.at_pointer("/data/groups").get(groups)) return std::nullopt;
  RuleHealth health;
  for (simdjson::dom::element group : groups) {
    simdjson::dom::array rules;
    if (group["rules"].get(rules)) continue;
    for (simdjson::dom::element rule : rules) {
      ++health.rules;
      std::string_view state, name, error;
      if (rule["health"].get(state)) continue;
      if (state == "ok") ++health.ok;
      if (state == "err") {
        if (rule["name"].get(name)) name = "(unnamed)";
        if (rule["lastError"].get(error)) error = "(no lastError)";
        health.errors.push_back(std::string(name) + ": " + std::string(error));
      }
    }
  }
  return health;
}

}  // namespace

TEST_CASE("telemetry: /metrics after traffic passes promtool and has every documented metric") {
  TempDir dir;
  // Two refused exports: the failure counters exist with a code label.
  Sink sink(dir, {"--fail-first", "2", "--status", "UNAVAILABLE"});
  Daemon daemon(dir, telemetry_yaml(dir, grpc_exporter(sink)));
  const int grpc_requests = 3, http_requests = 2;
  const auto sent = send_traffic(daemon, grpc_requests, http_requests);
  const auto malformed =
      http_export(daemon.tcp_address("http"), std::string("\x0a\xff\xff\xff\x0f garbage", 14));
  CHECK(malformed.status == 400);
  REQUIRE(sink.wait_for_spans(sent.size()));
  REQUIRE(wait_until(
      [&] { return daemon.metric("spanrelay_exporter_sent_spans_total") == sent.size(); }));
  CHECK(accepted_spans(daemon) == static_cast<double>(sent.size()));

  const std::string exposition = daemon.metrics_text();
  const auto families = metric_families(exposition);

  {  // every metric in the README's table is exported
    const auto documented = documented_metrics(read_file(repo_file("README.md")));
    // Guards the parser: an empty or shrunken list would pass vacuously.
    REQUIRE(documented.size() >= 10);
    REQUIRE(std::find(documented.begin(), documented.end(),
                      "spanrelay_receiver_accepted_spans_total") != documented.end());
    for (const auto& name : documented) {
      CHECK_MESSAGE(families.count(name) == 1,
                    "README documents " << name << ", /metrics lacks it");
    }
  }

  {  // every metric the alert rules use is exported
    const auto used =
        metrics_used_by_rules(read_file(repo_file("config/prometheus/spanrelay-alerts.yaml")));
    REQUIRE(used.size() >= 5);
    for (const auto& name : used) {
      CHECK_MESSAGE(families.count(name) == 1,
                    "alerts.yaml uses " << name << ", /metrics lacks it");
    }
  }

  {  // the standard process metrics, with their types
    CHECK(exposition.find("# TYPE process_cpu_seconds_total counter\n") != std::string::npos);
    for (const char* gauge :
         {"process_resident_memory_bytes", "process_virtual_memory_bytes", "process_open_fds",
          "process_max_fds", "process_start_time_seconds"}) {
      CAPTURE(gauge);
      CHECK(exposition.find(std::string("# TYPE ") + gauge + " gauge\n") != std::string::npos);
    }
    CHECK(daemon.metric("process_resident_memory_bytes") > 0);
    CHECK(daemon.metric("process_open_fds") > 0);
  }

  {  // each answered request is one ack-latency observation on its transport
    CHECK(exposition.find("# TYPE spanrelay_ingest_ack_seconds histogram\n") != std::string::npos);
    CHECK(daemon.metric("spanrelay_ingest_ack_seconds_count{transport=\"grpc\"}") == grpc_requests);
    CHECK(daemon.metric("spanrelay_ingest_ack_seconds_count{transport=\"http\"}") ==
          http_requests + 1);  // the malformed one was answered too
    CHECK(daemon.metric("spanrelay_ingest_ack_seconds_bucket{transport=\"grpc\",le=\"+Inf\"}") ==
          grpc_requests);
  }

  if (const auto promtool = required_tool("promtool")) {
    const auto input = dir.file("metrics.txt");
    write_file(input, exposition);
    const auto run = run_tool(*promtool, {"check", "metrics"}, input, dir.file("promtool.out"));
    CHECK_MESSAGE(run.exit_code == 0, "promtool check metrics:\n" << run.output);
  }

  {  // the probes
    const auto metrics = daemon.tcp_address("metrics");
    CHECK(http_request(metrics, "GET", "/healthz", "", {}).status == 200);
    const auto ready = http_request(metrics, "GET", "/readyz", "", {});
    CHECK_MESSAGE(ready.status == 200, ready.body);
  }
}

TEST_CASE("telemetry: promtool check rules accepts the shipped alert rules") {
  const auto promtool = required_tool("promtool");
  if (!promtool) return;
  TempDir dir;
  const auto rules = repo_file("config/prometheus/spanrelay-alerts.yaml");
  const auto run = run_tool(*promtool, {"check", "rules", rules}, "", dir.file("promtool.out"));
  CHECK_MESSAGE(run.exit_code == 0, "promtool check rules:\n" << run.output);
  // Guards against an empty file passing: every alert is found.
  const auto alerts = count_occurrences(read_file(rules), "- alert: ");
  CHECK(alerts >= 6);
  CHECK(run.output.find("SUCCESS: " + std::to_string(alerts) + " rules found") !=
        std::string::npos);
}

TEST_CASE("telemetry: a real Prometheus scrapes the daemon and evaluates the alert rules") {
  const auto prometheus = required_tool("prometheus");
  if (!prometheus) return;
  TempDir dir;
  Daemon daemon(dir, telemetry_yaml(dir, file_exporter(dir)));
  const auto sent = send_traffic(daemon, 2, 2);
  const auto rules_path = repo_file("config/prometheus/spanrelay-alerts.yaml");
  const auto alerts = count_occurrences(read_file(rules_path), "- alert: ");

  std::ostringstream config;
  config << "global: { scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1s }\n"
         << "rule_files: [\"" << rules_path << "\"]\n"
         << "scrape_configs:\n"
         << "  - job_name: spanrelay\n"
         << "    static_configs: [ { targets: [\"" << daemon.tcp_address("metrics") << "\"] } ]\n";
  write_file(dir.file("prometheus.yml"), config.str());

  // Prometheus cannot listen on port 0: pick a free port, and pick again if
  // another process took it in between.
  std::unique_ptr<Process> server;
  std::string address;
  for (int attempt = 0; attempt < 3 && !server; ++attempt) {
    address = "127.0.0.1:" + std::to_string(free_loopback_port());
    server = std::make_unique<Process>(
        *prometheus,
        std::vector<std::string>{"--config.file=" + dir.file("prometheus.yml"),
                                 "--storage.tsdb.path=" + dir.file("prometheus-data"),
                                 "--web.listen-address=" + address, "--log.level=warn"},
        dir.file("prometheus.log"));
    const bool up = wait_until(
        [&] { return prometheus_get(address, "/-/ready").has_value() || !server->running(); });
    if (!up || !server->running()) {
      MESSAGE("prometheus did not start on " << address << ":\n" << server->log());
      server.reset();
    }
  }
  REQUIRE_MESSAGE(server, "prometheus did not start");

  // The scrape sees the spans this test sent.
  const double expected = static_cast<double>(sent.size());
  std::optional<double> seen;
  const bool scraped = wait_until([&] {
    seen = query_value(address, "sum(spanrelay_receiver_accepted_spans_total{job=\"spanrelay\"})");
    return seen == expected;
  });
  CHECK_MESSAGE(scraped, "Prometheus saw " << (seen ? std::to_string(*seen) : "nothing")
                                           << " accepted spans, expected " << expected << "\n"
                                           << server->log());
  CHECK(query_value(address, "up{job=\"spanrelay\"}") == 1.0);
  CHECK(query_value(address, "process_start_time_seconds{job=\"spanrelay\"}") > 0.0);

  // Every rule was loaded and evaluated without error against live series.
  std::optional<RuleHealth> health;
  const bool evaluated = wait_until([&] {
    health = rule_health(address);
    return health && (health->ok == health->rules || !health->errors.empty());
  });
  REQUIRE_MESSAGE(evaluated, "rules never evaluated\n" << server->log());
  CHECK(health->rules == alerts);
  for (const auto& error : health->errors) CHECK_MESSAGE(false, "rule failed: " << error);
  CHECK(health->ok == health->rules);
  // Nothing is wrong with this daemon: no alert may be firing or pending for it.
  // Nothing is wrong with this daemon: once the rules have run on scraped
  // data, no alert may be pending or firing (SpanrelayAbsent is pending until
  // the first scrape lands, by design).
  std::optional<std::string> alerts_now;
  const bool quiet = wait_until(
      [&] {
        alerts_now = prometheus_get(address, "/api/v1/alerts");
        return alerts_now && alerts_now->find("\"alertname\":\"Spanrelay") == std::string::npos;
      },
      30s);
  CHECK_MESSAGE(quiet, "alerts pending or firing: " << alerts_now.value_or("(no answer)"));

  server->signal(SIGTERM);
  CHECK(server->wait_exit(30s).has_value());
}

TEST_CASE("telemetry: log.format json makes every line the daemon logs a JSON object") {
  TempDir dir;
  std::optional<int> exit_code;
  {
    Daemon daemon(dir, telemetry_yaml(dir, file_exporter(dir), "{ level: debug, format: json }"));
    send_traffic(daemon, 1, 1);
    exit_code = daemon.stop();
  }
  CHECK(exit_code == 0);
  const std::string log = read_file(dir.file("relay.log"));
  std::istringstream lines(log);
  std::string line;
  std::size_t parsed = 0;
  bool saw_ready = false;
  simdjson::dom::parser parser;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    simdjson::dom::element doc;
    const bool ok = parser.parse(line).get(doc) == simdjson::SUCCESS;
    CHECK_MESSAGE(ok, "not a JSON line: " << line);
    if (!ok) continue;
    std::string_view ts, level, msg;
    CHECK(doc["ts"].get(ts) == simdjson::SUCCESS);
    CHECK(doc["level"].get(level) == simdjson::SUCCESS);
    CHECK(doc["msg"].get(msg) == simdjson::SUCCESS);
    if (msg.rfind("ready", 0) == 0) saw_ready = true;
    ++parsed;
  }
  CHECK(parsed >= 3);
  CHECK(saw_ready);
}
