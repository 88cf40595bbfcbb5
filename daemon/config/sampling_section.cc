#include "daemon/config/sampling_section.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <map>
#include <optional>
#include <regex>
#include <string>
#include <utility>
#include <vector>

namespace spanrelay::config {
namespace {

constexpr std::uint64_t kMiB = 1ull << 20;
constexpr Duration kMaxDecisionWait = std::chrono::minutes(10);
constexpr std::uint64_t kMaxTracesLimit = 100'000'000;
constexpr std::uint64_t kMaxDecisionCacheSize = 100'000'000;
constexpr std::uint32_t kMaxShards = 256;
// Far above any real trace rate; keeps the token bucket's arithmetic (burst =
// one second's worth) well inside the range where doubles count exactly.
constexpr double kMaxTracesPerSecond = 1e9;
// libstdc++ compiles a regex recursively: a long hostile pattern ("((((...")
// would exhaust the stack. Attribute patterns are short.
constexpr std::size_t kMaxRegexBytes = 1024;

constexpr std::string_view kAlwaysShorthand = "always";

struct NumberRange {
  double minimum;
  bool minimum_included;
  double maximum;
  std::string_view words;  // for "ratio must be between 0 and 1, got 1.5"
};
constexpr NumberRange kRatioRange{0.0, true, 1.0, "between 0 and 1"};
constexpr NumberRange kTracesPerSecondRange{0.0, false, kMaxTracesPerSecond,
                                            "above 0 and at most 1000000000"};

constexpr std::array<std::pair<std::string_view, PolicyType>, 7> kPolicyTypes{{
    {"drop", PolicyType::kDrop},
    {"status_code", PolicyType::kStatusCode},
    {"latency", PolicyType::kLatency},
    {"attribute", PolicyType::kAttribute},
    {"ratio", PolicyType::kRatio},
    {"rate_limit", PolicyType::kRateLimit},
    {"always", PolicyType::kAlways},
}};
constexpr std::array<std::pair<std::string_view, LatencyScope>, 2> kLatencyScopes{{
    {"any", LatencyScope::kAnySpan},
    {"root", LatencyScope::kRoot},
}};
// OTLP Status.code names without the STATUS_CODE_ prefix (trace.proto).
constexpr std::array<std::string_view, 3> kStatusCodes{"ERROR", "OK", "UNSET"};

// The keys each policy type takes; a key of another type is an error, not
// silently ignored, because "threshold" on a ratio policy is a mistake.
std::vector<std::string_view> keys_of(PolicyType type) {
  switch (type) {
    case PolicyType::kDrop:
    case PolicyType::kAttribute:
      return {"name", "type", "key", "values", "regex"};
    case PolicyType::kStatusCode:
      return {"name", "type", "status_codes", "decide_early"};
    case PolicyType::kLatency:
      return {"name", "type", "threshold", "scope"};
    case PolicyType::kRatio:
      return {"name", "type", "ratio"};
    case PolicyType::kRateLimit:
      return {"name", "type", "traces_per_second"};
    case PolicyType::kAlways:
      return {"name", "type"};
  }
  return {"name", "type"};
}

std::vector<std::string_view> all_policy_keys() {
  std::vector<std::string_view> keys;
  for (const auto& [name, type] : kPolicyTypes) {
    for (const auto key : keys_of(type)) {
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
    }
  }
  return keys;
}

bool contains(const std::vector<std::string_view>& names, std::string_view name) {
  return std::find(names.begin(), names.end(), name) != names.end();
}

std::optional<PolicyType> find_policy_type(std::string_view name) {
  for (const auto& [type_name, type] : kPolicyTypes) {
    if (type_name == name) return type;
  }
  return std::nullopt;
}

std::string policy_type_names() {
  std::vector<std::string_view> names;
  for (const auto& [name, type] : kPolicyTypes) names.push_back(name);
  return comma_list(names);
}

// "an attribute policy", "a ratio policy": for messages about one policy.
std::string a_policy_of(PolicyType type) {
  const std::string_view name = policy_type_name(type);
  const bool vowel = std::string_view("aeiou").find(name.front()) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(name) + " policy";
}

// The name becomes a metric label value: keep it to a plain, portable alphabet.
bool is_valid_policy_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
  });
}

// A YAML 1.2 core-schema decimal ("0.01", "1", "2.5e-3", "+1"); not ".inf",
// ".nan", hex or octal. nullopt when `text` is not one.
std::optional<double> parse_decimal(std::string_view text) {
  std::size_t pos = 0;
  if (pos < text.size() && (text[pos] == '-' || text[pos] == '+')) ++pos;
  const auto digits = [&] {
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
    return pos - start;
  };
  std::size_t mantissa_digits = digits();
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    mantissa_digits += digits();
  }
  if (mantissa_digits == 0) return std::nullopt;
  if (pos < text.size() && (text[pos] == 'e' || text[pos] == 'E')) {
    ++pos;
    if (pos < text.size() && (text[pos] == '-' || text[pos] == '+')) ++pos;
    if (digits() == 0) return std::nullopt;
  }
  if (pos != text.size()) return std::nullopt;
  // from_chars takes no leading '+'.
  const std::string_view number = text.front() == '+' ? text.substr(1) : text;
  double value = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), value);
  if (error != std::errc() || end != number.data() + number.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

SamplingPolicyConfig always_policy() {
  SamplingPolicyConfig policy;
  policy.name = std::string(kAlwaysShorthand);
  policy.type = PolicyType::kAlways;
  return policy;
}

// One walk over the section. Like the Loader, it relies on the reader turning
// every read into a no-op after the first error.
class SamplingSection {
 public:
  explicit SamplingSection(YamlReader& reader) : reader_(reader) {}

  void read(const Field& field, SamplingConfig* out) {
    out->enabled = true;
    const Section sampling =
        reader_.open_map(&field, {"decision_wait", "max_traces", "max_buffered_bytes",
                                  "decision_cache_size", "shards", "policies"});
    reader_.read_duration(sampling, "decision_wait", &out->decision_wait, Duration(1),
                          kMaxDecisionWait);
    reader_.read_integer(sampling, "max_traces", &out->max_traces, 1, kMaxTracesLimit);
    reader_.read_size(sampling, "max_buffered_bytes", &out->max_buffered_bytes, kMiB, kNoMaximum);
    // 0 = no decision cache.
    reader_.read_integer(sampling, "decision_cache_size", &out->decision_cache_size, 0,
                         kMaxDecisionCacheSize);
    reader_.read_integer(sampling, "shards", &out->shards, 0, kMaxShards);  // 0 = one per core

    const Field* policies = sampling.get("policies");
    if (policies == nullptr) {
      out->policies = {always_policy()};
      return;
    }
    out->policies.clear();
    for (const Field& item : reader_.open_list(policies, "a non-empty list of policies")) {
      auto policy = read_policy(item);
      if (!policy) return;
      out->policies.push_back(std::move(*policy));
    }
  }

 private:
  std::optional<SamplingPolicyConfig> read_policy(const Field& item) {
    if (reader_.failed()) return std::nullopt;
    if (item.value.IsScalar() && item.value.Scalar() == kAlwaysShorthand) {
      if (!remember_name(item, kAlwaysShorthand)) return std::nullopt;
      return always_policy();
    }
    if (!item.value.IsMap()) {
      reader_.fail(item,
                   "expected a policy such as { name: errors, type: status_code } (or the "
                   "shorthand \"always\"), got " +
                       kind_of(item.value));
      return std::nullopt;
    }
    const Section policy = reader_.open_map(item.value, item.key_mark, item.path, {});
    if (reader_.failed()) return std::nullopt;

    // The type decides which keys are allowed; check them before anything
    // else so a misspelt "tpye" is reported as what it is.
    const Field* type_field = policy.get("type");
    const std::optional<PolicyType> type = type_field != nullptr && type_field->value.IsScalar()
                                               ? find_policy_type(type_field->value.Scalar())
                                               : std::nullopt;
    if (!check_keys(policy, type)) return std::nullopt;

    SamplingPolicyConfig out;
    if (!read_name(item, policy, &out.name)) return std::nullopt;
    if (type_field == nullptr) {
      reader_.fail_at(item.key_mark,
                      item.path + ".type: required (one of: " + policy_type_names() + ")");
      return std::nullopt;
    }
    const auto type_text = reader_.text(type_field, "a policy type", Empty::kRejected);
    if (!type_text) return std::nullopt;
    if (!type) {
      reader_.fail(*type_field, "unknown policy type " + quoted(*type_text) +
                                    " (expected one of: " + policy_type_names() + ")");
      return std::nullopt;
    }
    out.type = *type;
    read_type_keys(item, policy, &out);
    if (reader_.failed()) return std::nullopt;
    return out;
  }

  bool check_keys(const Section& policy, std::optional<PolicyType> type) {
    const auto all_keys = all_policy_keys();
    const auto allowed = type ? keys_of(*type) : all_keys;
    for (const auto& [key, field] : policy.fields()) {
      if (contains(allowed, key)) continue;
      if (type && contains(all_keys, key)) {
        reader_.fail_at(field.key_mark, field.path + ": " + a_policy_of(*type) + " has no " + key +
                                            " (its keys: " + comma_list(allowed) + ")");
      } else {
        reader_.fail_at(field.key_mark, "unknown key " + quoted(field.path) +
                                            " (expected one of: " + comma_list(allowed) + ")");
      }
      return false;
    }
    return true;
  }

  bool read_name(const Field& item, const Section& policy, std::string* out) {
    const Field* name = policy.get("name");
    if (name == nullptr) {
      reader_.fail_at(item.key_mark, item.path + ".name: required (a unique name such as errors)");
      return false;
    }
    const auto value = reader_.text(name, "a policy name", Empty::kRejected);
    if (!value) return false;
    if (!is_valid_policy_name(*value)) {
      reader_.fail(*name,
                   "expected a name made of a-z, 0-9, '_', '.' and '-', got " + quoted(*value));
      return false;
    }
    if (!remember_name(*name, *value)) return false;
    *out = *value;
    return true;
  }

  // Policy names label metrics and logs, so two policies must not share one.
  bool remember_name(const Field& where, std::string_view name) {
    const auto [first, inserted] =
        first_line_of_name_.emplace(std::string(name), YamlReader::mark_of(where).line + 1);
    if (inserted) return true;
    reader_.fail(where, "duplicate policy name " + quoted(name) + " (first at line " +
                            std::to_string(first->second) + ")");
    return false;
  }

  void read_type_keys(const Field& item, const Section& policy, SamplingPolicyConfig* out) {
    switch (out->type) {
      case PolicyType::kDrop:
      case PolicyType::kAttribute:
        return read_attribute_match(item, policy, out);
      case PolicyType::kStatusCode:
        read_status_codes(policy.get("status_codes"), &out->status_codes);
        return reader_.read_bool(policy, "decide_early", &out->decide_early);
      case PolicyType::kLatency:
        if (!require(item, policy, *out, "threshold", "a duration above 0 such as 500ms")) return;
        reader_.read_duration(policy, "threshold", &out->threshold, Duration(1));
        return reader_.read_choice(policy, "scope", kLatencyScopes, &out->scope);
      case PolicyType::kRatio:
        if (!require(item, policy, *out, "ratio", "a number between 0 and 1 such as 0.01")) return;
        return read_number(*policy.get("ratio"), kRatioRange, &out->ratio);
      case PolicyType::kRateLimit:
        if (!require(item, policy, *out, "traces_per_second", "a number above 0 such as 100")) {
          return;
        }
        return read_number(*policy.get("traces_per_second"), kTracesPerSecondRange,
                           &out->traces_per_second);
      case PolicyType::kAlways:
        return;
    }
  }

  // A key the policy type cannot do without; the error points at the policy.
  bool require(const Field& item, const Section& policy, const SamplingPolicyConfig& config,
               std::string_view key, std::string_view what) {
    if (policy.get(key) != nullptr) return true;
    reader_.fail_at(item.key_mark, item.path + "." + std::string(key) + ": required for " +
                                       a_policy_of(config.type) + " (" + std::string(what) + ")");
    return false;
  }

  // drop and attribute: `key` plus exactly one of `values` and `regex`.
  void read_attribute_match(const Field& item, const Section& policy, SamplingPolicyConfig* out) {
    if (!require(item, policy, *out, "key", "the attribute to compare, such as http.route")) return;
    if (const auto key = reader_.text(policy.get("key"), "an attribute key", Empty::kRejected)) {
      out->key = *key;
    }
    const Field* values = policy.get("values");
    const Field* regex = policy.get("regex");
    if (reader_.failed()) return;
    if (values != nullptr && regex != nullptr) {
      return reader_.fail_at(regex->key_mark,
                             regex->path + ": give either values or regex, not both");
    }
    if (values == nullptr && regex == nullptr) {
      return reader_.fail_at(item.key_mark, item.path + ": " + a_policy_of(out->type) +
                                                " needs values (a list) or regex");
    }
    if (values != nullptr) return read_values(values, &out->values);
    read_regex(*regex, &out->regex);
  }

  // Kept as written: `values: [200, true, 1.50]` compares with the text
  // forms "200", "true" and "1.50", which is how attributes are compared.
  void read_values(const Field* field, std::vector<std::string>* out) {
    for (const Field& item :
         reader_.open_list(field, "a non-empty list of values such as [/healthz, /readyz]")) {
      // "- " or ~ is more likely a slip than a wish to match the empty text.
      const std::string expected = "a text, number or boolean value (\"\" for the empty text)";
      if (item.value.IsNull())
        return reader_.fail(item, "expected " + expected + ", got an empty value");
      const auto value = reader_.text(&item, expected, Empty::kAllowed);
      if (!value) return;
      out->push_back(*value);
    }
  }

  void read_regex(const Field& field, std::string* out) {
    const auto pattern = reader_.text(&field, "a regular expression", Empty::kRejected);
    if (!pattern) return;
    if (pattern->size() > kMaxRegexBytes) {
      return reader_.fail(field, "expected a regular expression of at most " +
                                     std::to_string(kMaxRegexBytes) + " bytes, got " +
                                     std::to_string(pattern->size()) + " bytes");
    }
    try {
      const std::regex compiled(*pattern, std::regex::ECMAScript);
      (void)compiled;
    } catch (const std::regex_error& e) {
      return reader_.fail(field,
                          "invalid regular expression " + quoted(*pattern) + ": " + e.what());
    }
    *out = *pattern;
  }

  void read_status_codes(const Field* field, std::vector<std::string>* out) {
    if (field == nullptr) {
      *out = {"ERROR"};
      return;
    }
    const std::string expected = "a non-empty list of ERROR, OK or UNSET";
    for (const Field& item : reader_.open_list(field, expected)) {
      const auto code = reader_.text(&item, "ERROR, OK or UNSET", Empty::kRejected);
      if (!code) return;
      if (std::find(kStatusCodes.begin(), kStatusCodes.end(), *code) == kStatusCodes.end()) {
        return reader_.fail(item, "expected ERROR, OK or UNSET, got " + quoted(*code));
      }
      out->push_back(*code);
    }
  }

  void read_number(const Field& field, const NumberRange& range, double* out) {
    const std::string expected = "a number " + std::string(range.words);
    const auto text = reader_.text(&field, expected, Empty::kRejected);
    if (!text) return;
    const auto number = parse_decimal(*text);
    if (!number) return reader_.fail(field, "expected " + expected + ", got " + quoted(*text));
    const bool below = range.minimum_included ? *number < range.minimum : *number <= range.minimum;
    if (below || *number > range.maximum) {
      // Named after the key ("ratio must be between 0 and 1, got 1.5"); the
      // text is a valid number, so it is shown as written.
      const std::string_view key = std::string_view(field.path).substr(field.path.rfind('.') + 1);
      return reader_.fail(
          field, std::string(key) + " must be " + std::string(range.words) + ", got " + *text);
    }
    *out = *number + 0.0;  // + 0.0 turns a written "-0" into 0
  }

  YamlReader& reader_;
  std::map<std::string, int, std::less<>> first_line_of_name_;
};

}  // namespace

void read_sampling_section(YamlReader& reader, const Field* field, SamplingConfig* out) {
  if (field == nullptr || reader.failed()) return;  // absent: pass-through
  SamplingSection(reader).read(*field, out);
}

std::string_view policy_type_name(PolicyType type) {
  for (const auto& [name, candidate] : kPolicyTypes) {
    if (candidate == type) return name;
  }
  return "unknown";
}

}  // namespace spanrelay::config
