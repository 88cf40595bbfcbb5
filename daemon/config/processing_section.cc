#include "daemon/config/processing_section.h"

#include <re2/re2.h>

#include <algorithm>
#include <string>
#include <vector>

#include "daemon/processing/attribute_rules.h"

namespace spanrelay::config {
namespace {

// Keys and patterns are short; a huge one is a mistake (or a paste of data).
constexpr std::size_t kMaxPatternBytes = 1024;

re2::RE2::Options quiet_options() {
  re2::RE2::Options options;
  options.set_log_errors(false);
  return options;
}

class ProcessingSection {
 public:
  explicit ProcessingSection(YamlReader& reader) : reader_(reader) {}

  void read_redaction(const Field& field, RedactionConfig* out) {
    out->enabled = true;
    const Section redaction = reader_.open_map(
        &field, {"allow_keys", "allow_key_patterns", "delete_keys", "delete_key_patterns",
                 "hash_keys", "hash_key_patterns", "hash_salt", "mask"});
    read_keys(redaction.get("allow_keys"), &out->allow_keys);
    read_patterns(redaction.get("allow_key_patterns"), &out->allow_key_patterns);
    read_keys(redaction.get("delete_keys"), &out->delete_keys);
    read_patterns(redaction.get("delete_key_patterns"), &out->delete_key_patterns);
    read_keys(redaction.get("hash_keys"), &out->hash_keys);
    read_patterns(redaction.get("hash_key_patterns"), &out->hash_key_patterns);
    if (const Field* salt = redaction.get("hash_salt")) {
      if (const auto text =
              reader_.text(salt, "a salt (e.g. ${file:/etc/spanrelay/salt})", Empty::kRejected)) {
        out->hash_salt = *text;
      }
    }
    if (const Field* mask = redaction.get("mask")) {
      for (const Field& item : reader_.open_list(mask, "a non-empty list of mask rules")) {
        read_mask_rule(item, out);
      }
    }
    if (reader_.failed()) return;
    const bool hashing = !out->hash_keys.empty() || !out->hash_key_patterns.empty();
    if (hashing && out->hash_salt.empty()) {
      // An unsalted hash of a card or phone number is reversed by hashing
      // every candidate: the salt is what makes hashing a redaction.
      reader_.fail(field, "hash_salt is required when hash_keys or hash_key_patterns is set");
    }
  }

  void read_resource(const Field& field, ResourceConfig* out) {
    const Section resource = reader_.open_map(&field, {"attributes", "override"});
    reader_.read_bool(resource, "override", &out->override_existing);
    const Field* attributes = resource.get("attributes");
    if (attributes == nullptr) return;
    if (!attributes->value.IsMap()) {
      return reader_.fail(*attributes, "expected a map of attribute keys to values, got " +
                                           kind_of(attributes->value));
    }
    const Section entries = reader_.open_map(attributes, {});
    for (const auto& [key, entry] : entries.fields()) {
      const auto value = reader_.text(&entry, "a text, number or boolean value", Empty::kRejected);
      if (!value) return;
      out->attributes.emplace_back(key, *value);
    }
  }

 private:
  void read_keys(const Field* field, std::vector<std::string>* out) {
    if (field == nullptr) return;
    for (const Field& item : reader_.open_list(field, "a non-empty list of attribute keys")) {
      const auto key = reader_.text(&item, "an attribute key", Empty::kRejected);
      if (!key) return;
      out->push_back(*key);
    }
  }

  // RE2 syntax, matched against the whole key.
  void read_patterns(const Field* field, std::vector<std::string>* out) {
    if (field == nullptr) return;
    for (const Field& item : reader_.open_list(field, "a non-empty list of RE2 patterns")) {
      const auto pattern = read_regex(item);
      if (!pattern) return;
      out->push_back(*pattern);
    }
  }

  std::optional<std::string> read_regex(const Field& field) {
    auto pattern = reader_.text(&field, "an RE2 regular expression", Empty::kRejected);
    if (!pattern) return std::nullopt;
    if (pattern->size() > kMaxPatternBytes) {
      reader_.fail(field, "expected a regular expression of at most " +
                              std::to_string(kMaxPatternBytes) + " bytes, got " +
                              std::to_string(pattern->size()) + " bytes");
      return std::nullopt;
    }
    const re2::RE2 compiled(*pattern, quiet_options());
    if (!compiled.ok()) {
      // RE2's error() is "<what>: <the offending piece>"; the piece goes in
      // quotes, so that a pattern from ${env:...} or ${file:...} is not shown
      // (YamlReader::fail hides quoted pieces of an expanded value; found by
      // fuzzing).
      const std::string& error = compiled.error();
      const std::string what = error.substr(0, error.find(": "));
      reader_.fail(field,
                   "invalid regular expression " + quoted(*pattern) + ": " + what +
                       (compiled.error_arg().empty() ? std::string()
                                                     : " at " + quoted(compiled.error_arg())));
      return std::nullopt;
    }
    return pattern;
  }

  void read_mask_rule(const Field& item, RedactionConfig* out) {
    if (reader_.failed()) return;
    if (!item.value.IsMap()) {
      return reader_.fail(item,
                          "expected a mask rule such as { pattern: card_number } or { "
                          "regex: \"secret=\\\\w+\", replacement: \"secret=***\" }, got " +
                              kind_of(item.value));
    }
    const Section rule = reader_.open_map(&item, {"pattern", "regex", "replacement"});
    const Field* pattern = rule.get("pattern");
    const Field* regex = rule.get("regex");
    if ((pattern == nullptr) == (regex == nullptr)) {
      return reader_.fail_at(YamlReader::mark_of(item),
                             item.path + ": give exactly one of pattern (built-in) or regex");
    }
    MaskRuleConfig mask;
    if (pattern != nullptr) {
      const auto& names = processing::builtin_mask_patterns();
      const std::string expected = "one of " + or_list(names);
      const auto name = reader_.text(pattern, expected, Empty::kRejected);
      if (!name) return;
      if (std::find(names.begin(), names.end(), *name) == names.end()) {
        return reader_.fail(*pattern, "expected " + expected + ", got " + quoted(*name));
      }
      mask.pattern = *name;
    } else {
      const auto source = read_regex(*regex);
      if (!source) return;
      const re2::RE2 compiled(*source, quiet_options());
      if (re2::RE2::FullMatch("", compiled)) {
        return reader_.fail(*regex, "the regular expression " + quoted(*source) +
                                        " matches the empty text (it would mask between "
                                        "every character)");
      }
      mask.regex = *source;
    }
    if (const Field* replacement = rule.get("replacement")) {
      const auto text = reader_.text(replacement, "a replacement text", Empty::kAllowed);
      if (!text) return;
      if (regex != nullptr) {
        const re2::RE2 compiled(mask.regex, quiet_options());
        std::string problem;
        if (!compiled.CheckRewriteString(*text, &problem)) {
          return reader_.fail(*replacement,
                              "invalid replacement " + quoted(*text) + ": " + problem);
        }
      }
      mask.replacement = *text;
    }
    out->mask.push_back(std::move(mask));
  }

  YamlReader& reader_;
};

}  // namespace

void read_redaction_section(YamlReader& reader, const Field* field, RedactionConfig* out) {
  if (field == nullptr) return;
  ProcessingSection(reader).read_redaction(*field, out);
}

void read_resource_section(YamlReader& reader, const Field* field, ResourceConfig* out) {
  if (field == nullptr) return;
  ProcessingSection(reader).read_resource(*field, out);
}

}  // namespace spanrelay::config
