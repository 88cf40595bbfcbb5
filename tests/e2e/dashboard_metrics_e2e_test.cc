// The operator artefacts against the daemon they describe: every metric the
// Grafana dashboard (config/grafana/spanrelay-dashboard.json) and the
// Prometheus alert rules (config/prometheus/spanrelay-alerts.yaml) query must
// be a family on a live spanrelayd's /metrics. A renamed metric would
// otherwise leave an empty panel or an alert that can never fire, and nobody
// would notice until the outage it was meant to catch.
//
// The metric names come out of the PromQL by a small scanner
// (tests/e2e/promql_scan.h), checked first on expressions with known answers.
#include <doctest/doctest.h>
#include <simdjson.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/e2e/harness.h"
#include "tests/e2e/promql_scan.h"

using namespace spanrelay::e2e;

namespace {

const std::string kRepoRoot = std::string(SPANRELAY_TESTDATA_DIR) + "/../..";
const std::string kDashboardPath = kRepoRoot + "/config/grafana/spanrelay-dashboard.json";
const std::string kAlertsPath = kRepoRoot + "/config/prometheus/spanrelay-alerts.yaml";

// --- what the queries use, and what /metrics has ----------------------------------

// Metric name -> where it is used ("file: location"), for the failure messages.
using Uses = std::map<std::string, std::vector<std::string>>;

void add_uses(Uses& uses, const std::set<std::string>& names, const std::string& where) {
  for (const auto& name : names) uses[name].push_back(where);
}

// Walks the dashboard: every "expr" (panel targets, annotations) is PromQL,
// every "definition" a variable query.
void collect_dashboard_uses(simdjson::dom::element element, const std::string& path, Uses& uses,
                            std::size_t& queries) {
  simdjson::dom::object object;
  simdjson::dom::array array;
  if (element.get(object) == simdjson::SUCCESS) {
    for (auto field : object) {
      const std::string key(field.key);
      const std::string here = path + "/" + key;
      std::string_view text;
      if (key == "expr" && field.value.get(text) == simdjson::SUCCESS) {
        add_uses(uses, promql::metric_names(text), "dashboard " + here + ": " + std::string(text));
        ++queries;
      } else if (key == "definition" && field.value.get(text) == simdjson::SUCCESS) {
        add_uses(uses, promql::variable_query_metric_names(text),
                 "dashboard " + here + ": " + std::string(text));
        ++queries;
      } else {
        collect_dashboard_uses(field.value, here, uses, queries);
      }
    }
  } else if (element.get(array) == simdjson::SUCCESS) {
    std::size_t index = 0;
    for (auto item : array) {
      collect_dashboard_uses(item, path + "/" + std::to_string(index++), uses, queries);
    }
  }
}

struct AlertRule {
  std::string group, name, expr;
  YAML::Node node;
};

std::vector<AlertRule> alert_rules(const std::string& path) {
  std::vector<AlertRule> rules;
  const YAML::Node root = YAML::LoadFile(path);
  for (const auto& group : root["groups"]) {
    for (const auto& rule : group["rules"]) {
      const auto name = rule["alert"] ? rule["alert"].as<std::string>()
                                      : rule["record"].as<std::string>("(unnamed)");
      rules.push_back(
          {group["name"].as<std::string>(""), name, rule["expr"].as<std::string>(""), rule});
    }
  }
  return rules;
}

std::set<std::string> names_of(const Uses& uses) {
  std::set<std::string> names;
  for (const auto& [name, where] : uses) names.insert(name);
  return names;
}

// --- a daemon that has every family ---------------------------------------------

// Tail sampling (the sampling families exist only with it), a spool (the spool
// families exist only with it), and a sink that fails the first exports:
// spanrelay_exporter_failed_requests_total{code} is created by the first failure.
std::string dashboard_yaml(const TempDir& dir, const Sink& sink) {
  std::ostringstream y;
  y << "receivers:\n"
    << "  otlp:\n"
    << "    grpc: { endpoint: 127.0.0.1:0 }\n"
    << "    http: { endpoint: 127.0.0.1:0 }\n"
    << "batch: { max_spans: 512, max_bytes: 1MiB, timeout: 50ms }\n"
    << "sampling:\n"
    << "  decision_wait: 100ms\n"
    << "  policies:\n"
    << "    - { name: errors, type: status_code, status_codes: [ERROR] }\n"
    << "    - { name: everything, type: always }\n"
    << "exporter:\n"
    << "  type: otlp_grpc\n"
    << "  endpoint: " << sink.grpc_address() << "\n"
    << "  retry: { initial_interval: 10ms, max_interval: 50ms, max_elapsed: 1m }\n"
    << "  queue: { memory_limit: 64MiB, spool: { dir: " << dir.file("spool")
    << ", max_size: 16MiB } }\n"
    << "telemetry:\n  metrics: { endpoint: 127.0.0.1:0 }\n";
  return y.str();
}

std::string skip_env() {
  const char* skip = std::getenv("SPANRELAY_SKIP_PROMTOOL");
  return skip != nullptr ? skip : "";
}

std::string find_on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const auto candidate = dir + "/" + program;
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Every dashboard expression with Grafana's variables replaced by values
// Prometheus accepts, as recording rules: `promtool check rules` then parses
// each one.
std::string dashboard_queries_as_rules(const std::string& dashboard) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  REQUIRE(parser.parse(dashboard).get(doc) == simdjson::SUCCESS);
  std::vector<std::string> exprs;
  std::vector<simdjson::dom::element> stack{doc};
  while (!stack.empty()) {
    const auto element = stack.back();
    stack.pop_back();
    simdjson::dom::object object;
    simdjson::dom::array array;
    if (element.get(object) == simdjson::SUCCESS) {
      for (auto field : object) {
        std::string_view text;
        if (field.key == "expr" && field.value.get(text) == simdjson::SUCCESS) {
          exprs.emplace_back(text);
        } else {
          stack.push_back(field.value);
        }
      }
    } else if (element.get(array) == simdjson::SUCCESS) {
      for (auto item : array) stack.push_back(item);
    }
  }
  const std::vector<std::pair<std::string, std::string>> substitutions = {
      {"$__rate_interval", "1m"},
      {"$__interval", "1m"},
      {"$__range", "1h"},
      {"$job", ".*"},
      {"$instance", ".*"}};
  std::ostringstream rules;
  rules << "groups:\n  - name: dashboard\n    rules:\n";
  for (std::size_t i = 0; i < exprs.size(); ++i) {
    std::string expr = exprs[i];
    for (const auto& [variable, value] : substitutions) {
      for (auto at = expr.find(variable); at != std::string::npos; at = expr.find(variable)) {
        expr.replace(at, variable.size(), value);
      }
    }
    // A YAML single-quoted scalar: quotes doubled, nothing else escaped.
    std::string quoted;
    for (const char c : expr) quoted += c == '\'' ? std::string("''") : std::string(1, c);
    rules << "      - record: dashboard:query_" << i << "\n        expr: '" << quoted << "'\n";
  }
  return rules.str();
}

}  // namespace

TEST_CASE("dashboard: the PromQL scanner finds metric names and nothing else") {
  using Names = std::set<std::string>;
  CHECK(promql::metric_names("sum by (job, instance, reason) (increase("
                             "spanrelay_dropped_spans_total{reason!=\"sampled\", job=~\"$job\"}"
                             "[10m])) > 0") == Names{"spanrelay_dropped_spans_total"});
  CHECK(promql::metric_names("max by (job, instance) (process_open_fds / process_max_fds) > 0.8\n"
                             "and on (job, instance) spanrelay_build_info") ==
        Names{"process_open_fds", "process_max_fds", "spanrelay_build_info"});
  CHECK(promql::metric_names("histogram_quantile(0.99, sum by (le) (rate("
                             "a_seconds_bucket[$__rate_interval])))") == Names{"a_seconds_bucket"});
  CHECK(promql::metric_names("absent(up{job=~\".*spanrelay.*\"})") == Names{"up"});
  CHECK(promql::metric_names("(sum(rate(failed_total[5m])) or vector(0)) / ignoring(code) "
                             "group_left(version) sent_total offset 1h30m > bool 1e3") ==
        Names{"failed_total", "sent_total"});
  CHECK(promql::metric_names("SUM BY (x) (rate(y_total[5m:1m])) UNLESS z @ start()") ==
        Names{"y_total", "z"});
  CHECK(promql::metric_names("count_values(\"version\", build_info) # comment names_nothing") ==
        Names{"build_info"});
  CHECK(promql::metric_names("vector(1)").empty());

  CHECK(promql::variable_query_metric_names("label_values(spanrelay_build_info{job=~\"$job\"}, "
                                            "instance)") == Names{"spanrelay_build_info"});
  CHECK(promql::variable_query_metric_names("label_values(job)").empty());

  // The check can fail: a made-up name, and a _sum of a counter, are missing;
  // histogram series and Prometheus' own `up` are not.
  const std::map<std::string, std::string> families = {{"spanrelay_real_total", "counter"},
                                                       {"spanrelay_latency_seconds", "histogram"}};
  const auto used = promql::metric_names(
      "rate(spanrelay_no_such_metric[5m]) + rate(spanrelay_real_total[5m]) + "
      "rate(spanrelay_latency_seconds_bucket[5m]) + rate(spanrelay_latency_seconds_count[5m]) + "
      "rate(spanrelay_real_total_sum[5m]) + up");
  CHECK(used.size() == 6);
  CHECK(promql::missing_metrics(used, families) ==
        std::vector<std::string>{"spanrelay_no_such_metric", "spanrelay_real_total_sum"});
  CHECK(promql::metric_families("# HELP a_total A.\n# TYPE a_total counter\na_total 1\n"
                                "# TYPE b_seconds histogram\n") ==
        std::map<std::string, std::string>{{"a_total", "counter"}, {"b_seconds", "histogram"}});
}

TEST_CASE("dashboard: every metric the dashboard and the alert rules query is on /metrics") {
  TempDir dir;
  Sink sink(dir, {"--fail-first", "2", "--status", "UNAVAILABLE"});
  Daemon daemon(dir, dashboard_yaml(dir, sink));

  std::vector<GeneratedSpan> sent;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const auto request = make_request({.seed = 700 + seed, .error_every = 4}, &sent);
    const auto grpc = grpc_export(daemon.tcp_address("grpc"), serialize(request));
    REQUIRE_MESSAGE(grpc.status == 0, grpc.body);
  }
  const auto request = make_request({.seed = 710}, &sent);
  const auto http = http_export(daemon.tcp_address("http"), serialize(request));
  REQUIRE_MESSAGE(http.status == 200, http.body);
  // `always` keeps every trace, and the failed exports are retried.
  REQUIRE(sink.wait_for_spans(sent.size()));
  REQUIRE(wait_until([&] {
    return daemon.metric("spanrelay_exporter_sent_spans_total") == static_cast<double>(sent.size());
  }));

  const auto families = promql::metric_families(daemon.metrics_text());
  REQUIRE(families.size() >= 20);
  // The events the test set up happened: these families exist only after them.
  CHECK(families.count("spanrelay_exporter_failed_requests_total") == 1);
  CHECK(families.count("spanrelay_sampling_traces_total") == 1);
  CHECK(families.count("spanrelay_spool_capacity_bytes") == 1);

  Uses dashboard_uses;
  std::size_t dashboard_queries = 0;
  {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    const auto text = read_file(kDashboardPath);
    REQUIRE_MESSAGE(parser.parse(text).get(doc) == simdjson::SUCCESS,
                    kDashboardPath << " is not valid JSON");
    collect_dashboard_uses(doc, "", dashboard_uses, dashboard_queries);
  }
  Uses alert_uses;
  const auto rules = alert_rules(kAlertsPath);
  for (const auto& rule : rules) {
    add_uses(alert_uses, promql::metric_names(rule.expr), "alerts " + rule.name + ": " + rule.expr);
  }

  // Guards the scanner and the files: an empty or shrunken set would pass vacuously.
  CHECK(dashboard_queries >= 30);
  REQUIRE(dashboard_uses.size() >= 25);
  REQUIRE(rules.size() >= 10);
  REQUIRE(alert_uses.size() >= 10);
  for (const char* name :
       {"spanrelay_receiver_accepted_spans_total", "spanrelay_exporter_sent_spans_total",
        "spanrelay_dropped_spans_total", "spanrelay_sampling_traces_total",
        "spanrelay_spool_capacity_bytes", "spanrelay_ingest_ack_seconds_bucket",
        "spanrelay_export_seconds_bucket", "spanrelay_batch_spans_bucket",
        "spanrelay_exporter_failed_requests_total", "process_open_fds",
        "spanrelay_config_reloads_total"}) {
    CHECK_MESSAGE(dashboard_uses.count(name) == 1, "the dashboard does not show " << name);
  }
  for (const char* name :
       {"spanrelay_dropped_spans_total", "spanrelay_receiver_refused_spans_total",
        "spanrelay_spool_bytes", "spanrelay_spool_capacity_bytes",
        "spanrelay_exporter_failed_requests_total", "up"}) {
    CHECK_MESSAGE(alert_uses.count(name) == 1, "no alert rule uses " << name);
  }

  for (const auto* uses : {&dashboard_uses, &alert_uses}) {
    for (const auto& name : promql::missing_metrics(names_of(*uses), families)) {
      std::ostringstream where;
      for (const auto& place : uses->at(name)) where << "\n  " << place;
      CHECK_MESSAGE(false, name << " is not on /metrics, but is queried by:" << where.str());
    }
  }
}

TEST_CASE("dashboard: the Grafana dashboard is well-formed") {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const auto text = read_file(kDashboardPath);
  REQUIRE(parser.parse(text).get(doc) == simdjson::SUCCESS);

  std::int64_t schema_version = 0;
  CHECK(doc["schemaVersion"].get(schema_version) == simdjson::SUCCESS);
  CHECK(schema_version >= 36);
  std::string_view uid;
  CHECK(doc["uid"].get(uid) == simdjson::SUCCESS);
  CHECK(!uid.empty());

  {                                                // datasource, job and instance variables
    std::map<std::string, std::string> variables;  // name -> type
    simdjson::dom::array list;
    REQUIRE(doc.at_pointer("/templating/list").get(list) == simdjson::SUCCESS);
    for (auto variable : list) {
      std::string_view name, type;
      if (variable["name"].get(name) || variable["type"].get(type)) continue;
      variables[std::string(name)] = std::string(type);
      if (name == "datasource") {
        std::string_view query;
        CHECK(variable["query"].get(query) == simdjson::SUCCESS);
        CHECK(query == "prometheus");
      }
    }
    CHECK(variables["datasource"] == "datasource");
    CHECK(variables["job"] == "query");
    CHECK(variables["instance"] == "query");
  }

  simdjson::dom::array panels;
  REQUIRE(doc["panels"].get(panels) == simdjson::SUCCESS);
  std::set<std::int64_t> ids;
  std::size_t graphs = 0;
  for (auto panel : panels) {
    std::int64_t id = 0;
    std::string_view type, title;
    REQUIRE(panel["id"].get(id) == simdjson::SUCCESS);
    REQUIRE(panel["type"].get(type) == simdjson::SUCCESS);
    CHECK(panel["title"].get(title) == simdjson::SUCCESS);
    CAPTURE(title);
    CHECK_MESSAGE(ids.insert(id).second, "panel id " << id << " is used twice");
    std::int64_t x = -1, w = -1;
    CHECK(panel.at_pointer("/gridPos/x").get(x) == simdjson::SUCCESS);
    CHECK(panel.at_pointer("/gridPos/w").get(w) == simdjson::SUCCESS);
    CHECK((x >= 0 && w > 0 && x + w <= 24));
    if (type == "row") continue;
    ++graphs;
    std::string_view datasource;
    CHECK(panel.at_pointer("/datasource/uid").get(datasource) == simdjson::SUCCESS);
    CHECK(datasource == "${datasource}");
    std::string_view unit;
    CHECK_MESSAGE(panel.at_pointer("/fieldConfig/defaults/unit").get(unit) == simdjson::SUCCESS,
                  "no unit");
    simdjson::dom::array targets;
    REQUIRE(panel["targets"].get(targets) == simdjson::SUCCESS);
    CHECK(targets.size() >= 1);
    std::set<std::string> ref_ids;
    for (auto target : targets) {
      std::string_view ref_id, expr;
      CHECK(target["refId"].get(ref_id) == simdjson::SUCCESS);
      CHECK(ref_ids.insert(std::string(ref_id)).second);
      CHECK(target["expr"].get(expr) == simdjson::SUCCESS);
      CHECK(!expr.empty());
    }
  }
  CHECK(graphs >= 20);
}

TEST_CASE("dashboard: every alert rule has a severity, a summary and a description") {
  const auto rules = alert_rules(kAlertsPath);
  REQUIRE(rules.size() >= 10);
  std::set<std::string> names;
  for (const auto& rule : rules) {
    CAPTURE(rule.name);
    CHECK(rule.node["alert"].IsDefined());
    CHECK(names.insert(rule.name).second);
    CHECK(!rule.expr.empty());
    const auto severity = rule.node["labels"]["severity"].as<std::string>("");
    CHECK((severity == "critical" || severity == "warning" || severity == "info"));
    CHECK(rule.node["annotations"]["summary"].as<std::string>("").size() > 10);
    // Descriptions say what to do, so they are more than a sentence.
    CHECK(rule.node["annotations"]["description"].as<std::string>("").size() > 80);
  }
  // What operators asked to be told about.
  for (const char* required :
       {"SpanrelaySpansDropped", "SpanrelaySpansRefused", "SpanrelaySpoolFilling",
        "SpanrelayQueueFilling", "SpanrelayUpstreamFailing", "SpanrelayDown",
        "SpanrelayConfigReloadFailed"}) {
    CHECK_MESSAGE(names.count(required) == 1, "no alert " << required);
  }
  for (const auto& rule : rules) {
    if (rule.name == "SpanrelayUpstreamFailing") CHECK(rule.node["for"].as<std::string>() == "5m");
  }
}

TEST_CASE("dashboard: promtool parses every dashboard query") {
  const auto promtool = find_on_path("promtool");
  if (promtool.empty()) {
    if (skip_env() == "1") {
      MESSAGE("promtool not on PATH: skipped (SPANRELAY_SKIP_PROMTOOL=1)");
      return;
    }
    FAIL(
        "promtool not on PATH: install Debian's prometheus package (.ci/deps), or set "
        "SPANRELAY_SKIP_PROMTOOL=1 to skip");
  }
  TempDir dir;
  const auto rules = dashboard_queries_as_rules(read_file(kDashboardPath));
  const auto rules_path = dir.file("dashboard-queries.yaml");
  write_file(rules_path, rules);
  Process check(promtool, {"check", "rules", rules_path}, dir.file("promtool.out"));
  const auto exit_code = check.wait_exit();
  const auto output = check.log();
  CHECK_MESSAGE(exit_code == 0, "promtool check rules on the dashboard's queries:\n"
                                    << output << "\n"
                                    << rules);
  // Guards against an empty file passing.
  CHECK(output.find(" rules found") != std::string::npos);
  CHECK(output.find("SUCCESS: 0 rules") == std::string::npos);
}
