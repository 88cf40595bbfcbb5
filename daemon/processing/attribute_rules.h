#pragma once
// The per-attribute decisions of the `redaction:` section, compiled once:
// which keys survive (allow-list), which are deleted, which have their value
// hashed, and the patterns masked inside string values. The wire rewriting
// that applies them lives in span_processor.cc.
#include <re2/re2.h>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"

namespace spanrelay::processing {

enum class KeyAction { kKeep, kDelete, kHash };

class AttributeRules {
 public:
  // Compiles the section; errors name the key ("redaction.mask[1].regex: ...").
  static Result<std::unique_ptr<AttributeRules>> create(const config::RedactionConfig& config);

  // True when no rule is configured: nothing to do for any attribute.
  bool empty() const;
  bool has_key_rules() const;
  bool has_masks() const { return !masks_.empty(); }

  // Allow-list first (a key it does not name is deleted), then delete, then hash.
  KeyAction action_for(std::string_view key) const;

  // Applies every mask rule in order to `text`. Returns false (and leaves *out
  // alone) when nothing matched; else *out holds the masked text.
  bool mask(std::string_view text, std::string* out) const;

  // Lowercase hex SHA-256 of salt || value.
  std::string hash(std::string_view value) const;

 private:
  struct KeySet {
    std::vector<std::string> exact;      // sorted, for binary search without allocating
    std::unique_ptr<re2::RE2> patterns;  // one alternation, whole-key match; null if none
    bool empty() const { return exact.empty() && !patterns; }
    bool contains(std::string_view key) const;
  };
  struct MaskRule {
    std::unique_ptr<re2::RE2> regex;
    std::string replacement;
    bool literal = true;      // built-in patterns: the replacement is plain text
    bool luhn_check = false;  // card_number: only digit runs with a valid Luhn checksum
    bool standalone = false;  // aadhaar_like: not part of a longer grouped digit run
    int submatches = 1;       // groups the rewrite string needs, plus the whole match
  };

  static Result<KeySet> compile_keys(const std::vector<std::string>& exact,
                                     const std::vector<std::string>& patterns,
                                     const std::string& where);
  // One rule over `text`; false when nothing was replaced.
  static bool apply_mask(const MaskRule& rule, std::string_view text, std::string* out);

  KeySet allow_;
  KeySet delete_;
  KeySet hash_;
  std::string salt_;
  std::vector<MaskRule> masks_;
};

// The names accepted by `mask: [{pattern: ...}]`, for config validation.
const std::vector<std::string_view>& builtin_mask_patterns();

// Luhn (ISO/IEC 7812-1) over the digits of `text`, ignoring spaces and dashes.
bool passes_luhn(std::string_view text);

// Whether text[begin, end) is not glued to more digit groups: no " 1234" or
// "-1234" right after it, nor right before it.
bool is_standalone_digit_group(std::string_view text, std::size_t begin, std::size_t end);

}  // namespace spanrelay::processing
