#include "tests/e2e/promql_scan.h"

#include <cctype>
#include <sstream>

namespace spanrelay::e2e::promql {

namespace {

bool is_identifier_start(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0 || c == '_' || c == ':';
}
bool is_identifier_char(char c) {
  return is_identifier_start(c) || std::isdigit(static_cast<unsigned char>(c)) != 0;
}

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Words that may stand where a metric name could, without a '(' after them.
// PromQL keywords are case-insensitive.
const std::set<std::string> kPromqlWords = {
    // binary set and comparison operators and modifiers
    "and", "or", "unless", "bool", "offset", "atan2",
    // vector matching and grouping (their label lists are skipped separately)
    "by", "without", "on", "ignoring", "group_left", "group_right",
    // aggregation operators, which may be followed by `by (...)` before their '('
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk",
    "topk", "quantile", "limitk", "limit_ratio",
    // number literals
    "inf", "nan"};

// Keywords followed by a parenthesised list of label names, not expressions.
const std::set<std::string> kLabelListWords = {"by",       "without",    "on",
                                               "ignoring", "group_left", "group_right"};

class PromqlScanner {
 public:
  explicit PromqlScanner(std::string_view expr) : expr_(expr) {}

  std::set<std::string> metric_names() {
    std::set<std::string> names;
    while (pos_ < expr_.size()) {
      const char c = expr_[pos_];
      if (c == '"' || c == '\'' || c == '`') {
        skip_quoted();
      } else if (c == '{') {
        skip_group('{', '}');  // label matchers
      } else if (c == '[') {
        skip_group('[', ']');  // range or subquery: durations, Grafana's $__rate_interval
      } else if (c == '#') {
        while (pos_ < expr_.size() && expr_[pos_] != '\n') ++pos_;
      } else if (c == '$') {
        skip_variable();
      } else if (std::isdigit(static_cast<unsigned char>(c)) != 0 ||
                 (c == '.' && pos_ + 1 < expr_.size() &&
                  std::isdigit(static_cast<unsigned char>(expr_[pos_ + 1])) != 0)) {
        // Numbers and durations (0.99, 1e3, 0x1f, 5m, 1h30m).
        while (pos_ < expr_.size() && (is_identifier_char(expr_[pos_]) || expr_[pos_] == '.')) {
          ++pos_;
        }
      } else if (is_identifier_start(c)) {
        identifier(names);
      } else {
        ++pos_;
      }
    }
    return names;
  }

 private:
  void identifier(std::set<std::string>& names) {
    const std::size_t start = pos_;
    while (pos_ < expr_.size() && is_identifier_char(expr_[pos_])) ++pos_;
    const std::string word(expr_.substr(start, pos_ - start));
    std::size_t next = pos_;
    while (next < expr_.size() && std::isspace(static_cast<unsigned char>(expr_[next])) != 0) {
      ++next;
    }
    const bool paren_follows = next < expr_.size() && expr_[next] == '(';
    const std::string keyword = lowercase(word);
    if (kLabelListWords.count(keyword) != 0) {
      if (paren_follows) {
        pos_ = next;
        skip_group('(', ')');
      }
      return;
    }
    if (paren_follows) return;  // a function or an aggregation: its arguments are scanned
    if (kPromqlWords.count(keyword) != 0) return;
    names.insert(word);
  }

  void skip_quoted() {
    const char quote = expr_[pos_++];
    while (pos_ < expr_.size() && expr_[pos_] != quote) {
      if (expr_[pos_] == '\\' && quote != '`') ++pos_;  // raw strings have no escapes
      ++pos_;
    }
    if (pos_ < expr_.size()) ++pos_;
  }

  // From an opening bracket to just past its match, strings included.
  void skip_group(char open, char close) {
    int depth = 0;
    while (pos_ < expr_.size()) {
      const char c = expr_[pos_];
      if (c == '"' || c == '\'' || c == '`') {
        skip_quoted();
        continue;
      }
      ++pos_;
      if (c == open) ++depth;
      if (c == close && --depth == 0) return;
    }
  }

  // Grafana template variables: $job, ${datasource}, $__rate_interval.
  void skip_variable() {
    ++pos_;
    if (pos_ < expr_.size() && expr_[pos_] == '{') {
      skip_group('{', '}');
      return;
    }
    while (pos_ < expr_.size() && is_identifier_char(expr_[pos_])) ++pos_;
  }

  std::string_view expr_;
  std::size_t pos_ = 0;
};

bool ends_with(std::string_view text, std::string_view suffix) {
  return text.size() > suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

}  // namespace

std::set<std::string> metric_names(std::string_view expr) {
  return PromqlScanner(expr).metric_names();
}

std::set<std::string> variable_query_metric_names(std::string_view query) {
  const auto open = query.find('(');
  const auto close = query.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) {
    return metric_names(query);
  }
  const std::string function(query.substr(0, open));
  const std::string_view inside = query.substr(open + 1, close - open - 1);
  if (function == "label_values") {
    const auto comma = inside.rfind(',');  // the label name comes last and has no comma
    if (comma == std::string_view::npos) return {};
    return metric_names(inside.substr(0, comma));
  }
  if (function == "metrics" || function == "label_names") return {};
  if (function == "query_result") return metric_names(inside);
  return metric_names(query);
}

std::map<std::string, std::string> metric_families(const std::string& exposition) {
  std::map<std::string, std::string> families;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream fields(line.substr(7));
    std::string name, type;
    fields >> name >> type;
    families[name] = type;
  }
  return families;
}

std::vector<std::string> missing_metrics(const std::set<std::string>& used,
                                         const std::map<std::string, std::string>& families) {
  std::vector<std::string> missing;
  for (const auto& name : used) {
    if (name == "up" || families.count(name) != 0) continue;
    bool histogram_series = false;
    for (const std::string_view suffix : {"_bucket", "_sum", "_count"}) {
      if (!ends_with(name, suffix)) continue;
      const auto family = families.find(name.substr(0, name.size() - suffix.size()));
      histogram_series =
          histogram_series || (family != families.end() && family->second == "histogram");
    }
    if (!histogram_series) missing.push_back(name);
  }
  return missing;
}

}  // namespace spanrelay::e2e::promql
