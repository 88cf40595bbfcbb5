#pragma once
// Typed reads from a yaml-cpp tree with errors that point into the file:
// "source:line:column: dotted.key: what was expected, got what". This is the
// generic half of the config loader; config_loader.cc holds the schema.
#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "daemon/common/result.h"
#include "daemon/config/config.h"
#include "daemon/config/units.h"

namespace spanrelay::config {

// One key of a YAML map, with what an error about it needs.
struct Field {
  std::string path;  // dotted key, e.g. "exporter.retry.max_interval"
  YAML::Mark key_mark;
  YAML::Node value;
};

// The keys of one YAML map, already checked against the allowed names.
class Section {
 public:
  void add(std::string key, Field field) { fields_.emplace_back(std::move(key), std::move(field)); }
  const Field* get(std::string_view key) const;
  const std::vector<std::pair<std::string, Field>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, Field>> fields_;
};

// Whether "" or an empty value ("key:" with nothing after it) is acceptable.
enum class Empty { kAllowed, kRejected };

inline constexpr std::uint64_t kNoMaximum = UINT64_MAX;

// "a map", "a list", "an empty value" or the quoted scalar: for "got ..." texts.
std::string kind_of(const YAML::Node& node);

// "a, b or c": for messages that list the accepted values.
std::string or_list(const std::vector<std::string_view>& names);
// "a, b, c": for "(expected one of: ...)" texts.
std::string comma_list(const std::vector<std::string_view>& names);

// Keeps only the first error: what follows an error is usually a consequence
// of it, and one precise message is what an operator fixing a file needs.
// Once an error is recorded every read is a no-op, so callers need not check
// after each one. Readers leave their output untouched when the key is absent
// or invalid: the defaults in config.h stay.
class YamlReader {
 public:
  explicit YamlReader(std::string source) : source_(std::move(source)) {}

  // Parses exactly one YAML document (none: a null node, i.e. all defaults).
  // Converts yaml-cpp's exceptions into the recorded error.
  std::optional<YAML::Node> parse(std::string_view yaml);

  const std::optional<Error>& error() const { return error_; }
  bool failed() const { return error_.has_value(); }

  // Records "source:line:column: message" (1-based; no position if none).
  void fail_at(const YAML::Mark& mark, const std::string& message);
  // Records "source:line:column: field.path: detail" at the field's value.
  // When that value came from a ${...} reference, the quoted echoes of it in
  // `detail` are replaced by the text as written (see note_expanded).
  void fail(const Field& field, std::string_view detail);
  // Where an error about `field` points: its value, or its key when the
  // value is empty (yaml-cpp marks an empty value where the next token starts).
  static YAML::Mark mark_of(const Field& field);

  // Registers a scalar whose text was produced by ${env:...} or ${file:...}
  // references (`written` is the text in the file). Errors about its value
  // then say <expansion of "${env:NAME}"> where they would quote the value:
  // it may be a credential, and logs keep error messages.
  void note_expanded(const YAML::Node& scalar, std::string written);

  // A map whose keys must come from `allowed` (any text key when `allowed` is
  // empty); duplicate keys are errors. A null node (the key given with nothing
  // under it) reads as an empty map. `path` "" means the top level.
  Section open_map(const YAML::Node& node, const YAML::Mark& where, const std::string& path,
                   std::initializer_list<std::string_view> allowed);
  Section open_map(const Field* field, std::initializer_list<std::string_view> allowed);

  // The items of the list under `field`, each as a Field whose path is
  // "path[index]" (0-based, as yq and jq count). Absent: no items. Every list
  // in the schema needs an item, so an empty value and [] are errors, as is
  // anything but a list ("expected <expected>, got ...").
  std::vector<Field> open_list(const Field* field, std::string_view expected);

  // The scalar text of `field`; nullopt when absent or on error. An empty
  // value reads as "" when `empty` allows it.
  std::optional<std::string> text(const Field* field, std::string_view expected, Empty empty);

  // minimum Duration(1) means "above 0".
  void read_duration(const Section& section, std::string_view key, Duration* out, Duration minimum,
                     Duration maximum = Duration::max());
  void read_size(const Section& section, std::string_view key, std::uint64_t* out,
                 std::uint64_t minimum, std::uint64_t maximum);
  void read_integer(const Section& section, std::string_view key, std::uint32_t* out,
                    std::uint32_t minimum, std::uint32_t maximum);
  void read_integer(const Section& section, std::string_view key, std::uint64_t* out,
                    std::uint64_t minimum, std::uint64_t maximum);
  void read_bool(const Section& section, std::string_view key, bool* out);

  // `choices`: a range of {name, value} pairs; the value is converted to T.
  template <class Choices, class T>
  void read_choice(const Section& section, std::string_view key, const Choices& choices, T* out) {
    const Field* field = section.get(key);
    std::vector<std::string_view> names;
    names.reserve(std::size(choices));
    for (const auto& [name, choice] : choices) names.push_back(name);
    const std::string expected = "one of " + or_list(names);
    const auto value = text(field, expected, Empty::kRejected);
    if (!value) return;
    for (const auto& [name, choice] : choices) {
      if (*value == name) {
        *out = T(choice);
        return;
      }
    }
    fail(*field, "expected " + expected + ", got " + config::quoted(*value));
  }

 private:
  // Digits only, within [minimum, maximum]; nullopt when absent or invalid.
  std::optional<std::uint64_t> read_whole_number(const Section& section, std::string_view key,
                                                 std::uint64_t minimum, std::uint64_t maximum);

  std::string source_;
  std::optional<Error> error_;
  // Expanded scalars by their position in the file: the text as written.
  std::map<int, std::string> expanded_;
  // Every expanded value and its text as written: fail_at() replaces any
  // quoted appearance of the value, whichever path built the message.
  std::vector<std::pair<std::string, std::string>> expanded_values_;
};

}  // namespace spanrelay::config
