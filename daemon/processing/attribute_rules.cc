#include "daemon/processing/attribute_rules.h"

#include <algorithm>
#include <array>

#include "daemon/processing/sha256.h"

namespace spanrelay::processing {
namespace {

struct BuiltinPattern {
  std::string_view name;
  std::string_view regex;
  bool luhn_check;
  bool standalone;
};

// \b keeps a pattern from matching inside a longer word or digit run (an id,
// a hex string); RE2 looks at the character before the search start, so the
// boundary holds between consecutive matches too.
constexpr std::array<BuiltinPattern, 4> kBuiltinPatterns{{
    // Payment card numbers (ISO/IEC 7812): 13 to 19 digits, optionally grouped
    // with single spaces or dashes; only runs passing the Luhn check count.
    {"card_number", R"(\b\d(?:[ -]?\d){12,18}\b)", true, false},
    {"email", R"([A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,})", false,
     false},
    // Indian Permanent Account Number: 5 letters, 4 digits, 1 letter.
    {"pan_india", R"(\b[A-Z]{5}[0-9]{4}[A-Z]\b)", false, false},
    // 12 digits, plain or grouped 4-4-4 with spaces or dashes (the Aadhaar layout).
    {"aadhaar_like", R"(\b(?:[0-9]{12}|[0-9]{4} [0-9]{4} [0-9]{4}|[0-9]{4}-[0-9]{4}-[0-9]{4})\b)",
     false, true},
}};

re2::RE2::Options quiet_options() {
  re2::RE2::Options options;
  options.set_log_errors(false);
  return options;
}

}  // namespace

const std::vector<std::string_view>& builtin_mask_patterns() {
  static const std::vector<std::string_view> names = [] {
    std::vector<std::string_view> out;
    for (const auto& pattern : kBuiltinPatterns) out.push_back(pattern.name);
    return out;
  }();
  return names;
}

bool passes_luhn(std::string_view text) {
  int sum = 0;
  int digits = 0;
  for (auto it = text.rbegin(); it != text.rend(); ++it) {
    if (*it == ' ' || *it == '-') continue;
    if (*it < '0' || *it > '9') return false;
    int digit = *it - '0';
    if (digits % 2 == 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
    ++digits;
  }
  return digits > 0 && sum % 10 == 0;
}

bool is_standalone_digit_group(std::string_view text, std::size_t begin, std::size_t end) {
  const auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  const auto is_separator = [](char c) { return c == ' ' || c == '-'; };
  if (end + 1 < text.size() && is_separator(text[end]) && is_digit(text[end + 1])) return false;
  if (begin >= 2 && is_separator(text[begin - 1]) && is_digit(text[begin - 2])) return false;
  return true;
}

bool AttributeRules::KeySet::contains(std::string_view key) const {
  if (std::binary_search(exact.begin(), exact.end(), key, std::less<>())) return true;
  return patterns && re2::RE2::FullMatch(key, *patterns);
}

Result<AttributeRules::KeySet> AttributeRules::compile_keys(
    const std::vector<std::string>& exact, const std::vector<std::string>& patterns,
    const std::string& where) {
  KeySet set;
  set.exact = exact;
  std::sort(set.exact.begin(), set.exact.end());
  if (!patterns.empty()) {
    // One alternation: a key is matched once, not once per pattern.
    std::string combined;
    for (std::size_t i = 0; i < patterns.size(); ++i) {
      re2::RE2 single(patterns[i], quiet_options());
      if (!single.ok()) {
        return Error{where + "[" + std::to_string(i) + "]: invalid regex: " + single.error()};
      }
      if (i) combined += '|';
      combined += "(?:" + patterns[i] + ")";
    }
    set.patterns = std::make_unique<re2::RE2>(combined, quiet_options());
    if (!set.patterns->ok()) return Error{where + ": invalid regex: " + set.patterns->error()};
  }
  return set;
}

Result<std::unique_ptr<AttributeRules>> AttributeRules::create(
    const config::RedactionConfig& config) {
  auto rules = std::make_unique<AttributeRules>();
  auto allow =
      compile_keys(config.allow_keys, config.allow_key_patterns, "redaction.allow_key_patterns");
  if (!allow.ok()) return allow.error();
  rules->allow_ = std::move(allow).value();
  auto deleted =
      compile_keys(config.delete_keys, config.delete_key_patterns, "redaction.delete_key_patterns");
  if (!deleted.ok()) return deleted.error();
  rules->delete_ = std::move(deleted).value();
  auto hashed =
      compile_keys(config.hash_keys, config.hash_key_patterns, "redaction.hash_key_patterns");
  if (!hashed.ok()) return hashed.error();
  rules->hash_ = std::move(hashed).value();
  if (!rules->hash_.empty() && config.hash_salt.empty()) {
    // An unsalted hash of a card number or a phone number is reversed by
    // hashing every candidate: the salt is what makes hashing redaction.
    return Error{"redaction.hash_salt: required when hash_keys or hash_key_patterns is set"};
  }
  rules->salt_ = config.hash_salt;

  for (std::size_t i = 0; i < config.mask.size(); ++i) {
    const auto& source = config.mask[i];
    const std::string where = "redaction.mask[" + std::to_string(i) + "]";
    MaskRule rule;
    rule.replacement = source.replacement;
    if (!source.pattern.empty()) {
      const auto builtin =
          std::find_if(kBuiltinPatterns.begin(), kBuiltinPatterns.end(),
                       [&](const BuiltinPattern& p) { return p.name == source.pattern; });
      if (builtin == kBuiltinPatterns.end()) {
        return Error{where + ".pattern: unknown pattern \"" + source.pattern + "\""};
      }
      rule.regex = std::make_unique<re2::RE2>(std::string(builtin->regex), quiet_options());
      rule.luhn_check = builtin->luhn_check;
      rule.standalone = builtin->standalone;
    } else {
      rule.regex = std::make_unique<re2::RE2>(source.regex, quiet_options());
      if (!rule.regex->ok()) return Error{where + ".regex: invalid regex: " + rule.regex->error()};
      if (re2::RE2::FullMatch("", *rule.regex)) {
        return Error{where + ".regex: matches the empty string (it would mask between characters)"};
      }
      std::string rewrite_error;
      if (!rule.regex->CheckRewriteString(source.replacement, &rewrite_error)) {
        return Error{where + ".replacement: " + rewrite_error};
      }
      rule.literal = false;
      rule.submatches = 1 + re2::RE2::MaxSubmatch(source.replacement);
    }
    rules->masks_.push_back(std::move(rule));
  }
  return rules;
}

bool AttributeRules::empty() const { return !has_key_rules() && masks_.empty(); }

bool AttributeRules::has_key_rules() const {
  return !allow_.empty() || !delete_.empty() || !hash_.empty();
}

KeyAction AttributeRules::action_for(std::string_view key) const {
  if (!allow_.empty() && !allow_.contains(key)) return KeyAction::kDelete;
  if (delete_.contains(key)) return KeyAction::kDelete;
  if (hash_.contains(key)) return KeyAction::kHash;
  return KeyAction::kKeep;
}

std::string AttributeRules::hash(std::string_view value) const {
  Sha256 hasher;
  hasher.update(salt_);
  hasher.update(value);
  return to_hex(hasher.finish());
}

bool AttributeRules::apply_mask(const MaskRule& rule, std::string_view text, std::string* out) {
  std::array<re2::StringPiece, 10> groups;
  const int submatches = std::min<int>(rule.submatches, static_cast<int>(groups.size()));
  std::size_t position = 0;
  std::size_t copied = 0;
  bool changed = false;
  while (position <= text.size() &&
         rule.regex->Match(text, position, text.size(), re2::RE2::UNANCHORED, groups.data(),
                           submatches)) {
    const std::size_t begin = static_cast<std::size_t>(groups[0].data() - text.data());
    const std::size_t end = begin + groups[0].size();
    // An empty match (possible inside a longer regex) must still move on.
    position = end > begin ? end : begin + 1;
    if (rule.luhn_check && !passes_luhn(std::string_view(groups[0].data(), groups[0].size()))) {
      continue;
    }
    if (rule.standalone && !is_standalone_digit_group(text, begin, end)) continue;
    if (!changed) {
      out->clear();
      changed = true;
    }
    out->append(text.substr(copied, begin - copied));
    if (rule.literal) {
      out->append(rule.replacement);
    } else {
      rule.regex->Rewrite(out, rule.replacement, groups.data(), submatches);
    }
    copied = end;
  }
  if (changed) out->append(text.substr(copied));
  return changed;
}

bool AttributeRules::mask(std::string_view text, std::string* out) const {
  bool changed = false;
  std::string current;
  std::string next;
  for (const MaskRule& rule : masks_) {
    if (apply_mask(rule, changed ? std::string_view(current) : text, &next)) {
      current.swap(next);
      changed = true;
    }
  }
  if (changed) *out = std::move(current);
  return changed;
}

}  // namespace spanrelay::processing
