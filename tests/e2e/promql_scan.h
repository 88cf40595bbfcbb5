#pragma once
// Metric names used by PromQL expressions (alert rules, dashboard queries),
// and the metric families of a Prometheus text exposition, so tests can check
// that what operators query exists on /metrics.
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace spanrelay::e2e::promql {

// The metric names an expression selects: identifiers that are not functions,
// keywords or aggregation operators. Label matchers {...}, label lists
// by(...)/on(...), ranges [...], strings, numbers, durations, comments and
// Grafana's $variables are skipped.
std::set<std::string> metric_names(std::string_view expr);

// The metric names of a Grafana Prometheus variable query:
// label_values(SELECTOR, LABEL) names the metric in SELECTOR only;
// label_values(LABEL), metrics(REGEX) and label_names() none;
// query_result(EXPR) is PromQL.
std::set<std::string> variable_query_metric_names(std::string_view query);

// Family name -> type ("counter", "gauge", "histogram", ...), from the
// "# TYPE name type" lines of an exposition.
std::map<std::string, std::string> metric_families(const std::string& exposition);

// The names in `used` that are not families. `up` is Prometheus' own; a
// _bucket/_sum/_count name counts as present when its base is a histogram family.
std::vector<std::string> missing_metrics(const std::set<std::string>& used,
                                         const std::map<std::string, std::string>& families);

}  // namespace spanrelay::e2e::promql
