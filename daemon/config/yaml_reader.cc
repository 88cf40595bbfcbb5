#include "daemon/config/yaml_reader.h"

#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <sstream>

namespace spanrelay::config {
namespace {

// yaml-cpp reports a tab in indentation as "illegal map value" or similar;
// name the real cause when the offending line is indented with a tab.
std::string tab_hint(std::string_view yaml, const YAML::Mark& mark) {
  if (mark.is_null()) return "";
  std::size_t start = 0;
  for (int line = 0; line < mark.line && start != std::string_view::npos; ++line) {
    start = yaml.find('\n', start);
    if (start != std::string_view::npos) ++start;
  }
  if (start == std::string_view::npos) return "";
  const auto indent_end = yaml.find_first_not_of(" \t", start);
  const auto indent = yaml.substr(
      start, indent_end == std::string_view::npos ? std::string_view::npos : indent_end - start);
  return indent.find('\t') == std::string_view::npos
             ? ""
             : " (YAML indentation must use spaces, not tabs)";
}

// Reverses quoted(): the text between the quotes, unescaped; `cut` says it
// ended in the "..." that quoted() adds when it shortens a long text.
std::string unquote(std::string_view inner, bool* cut) {
  constexpr std::string_view kCutMarker = "...";
  *cut = inner.size() >= kCutMarker.size() &&
         inner.substr(inner.size() - kCutMarker.size()) == kCutMarker;
  std::string text;
  for (std::size_t pos = 0; pos < inner.size(); ++pos) {
    if (inner[pos] != '\\' || pos + 1 >= inner.size()) {
      text += inner[pos];
      continue;
    }
    const char escaped = inner[++pos];
    if (escaped == 'n') {
      text += '\n';
    } else if (escaped == 't') {
      text += '\t';
    } else if (escaped == 'r') {
      text += '\r';
    } else if (escaped == 'x' && pos + 2 < inner.size()) {
      const auto hex = [](char c) {
        return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;  // quoted() writes 0-9a-f
      };
      text += static_cast<char>(hex(inner[pos + 1]) * 16 + hex(inner[pos + 2]));
      pos += 2;
    } else {
      text += escaped;  // \" and \\ stand for themselves
    }
  }
  return text;
}

// Error details echo a value with quoted(): "got \"5 secs\"", or a piece of it:
// "invalid host \"a b\" in \"a b:4317\"". For an expanded value, each quoted
// text that is the value or a piece of it is replaced; other quoted texts
// (examples such as "0660") stay.
std::string hide_expanded_value(std::string_view detail, const std::string& value,
                                const std::string& written) {
  std::string out;
  std::size_t pos = 0;
  while (pos < detail.size()) {
    const auto open = detail.find('"', pos);
    if (open == std::string_view::npos) break;
    std::size_t close = open + 1;
    while (close < detail.size() && detail[close] != '"') close += detail[close] == '\\' ? 2 : 1;
    if (close >= detail.size()) break;
    out += detail.substr(pos, open - pos);
    const std::string_view segment = detail.substr(open, close + 1 - open);
    bool cut = false;
    std::string inner = unquote(segment.substr(1, segment.size() - 2), &cut);
    if (cut) inner.resize(inner.size() - 3);
    if (segment == config::quoted(value)) {
      out += "<expansion of " + config::quoted(written) + ">";
    } else if (!inner.empty() && value.find(inner) != std::string::npos) {
      out += "<part of the expansion of " + config::quoted(written) + ">";
    } else {
      out += segment;
    }
    pos = close + 1;
  }
  out += detail.substr(std::min(pos, detail.size()));
  return out;
}

}  // namespace

const Field* Section::get(std::string_view key) const {
  for (const auto& [name, field] : fields_) {
    if (name == key) return &field;
  }
  return nullptr;
}

std::string kind_of(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map:
      return "a map";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Scalar:
      return node.Scalar().empty() ? "an empty value" : quoted(node.Scalar());
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return "an empty value";
}

std::string or_list(const std::vector<std::string_view>& names) {
  std::string text;
  for (std::size_t index = 0; index < names.size(); ++index) {
    if (index > 0) text += index + 1 == names.size() ? " or " : ", ";
    text += names[index];
  }
  return text;
}

std::string comma_list(const std::vector<std::string_view>& names) {
  std::string text;
  for (const auto name : names) {
    if (!text.empty()) text += ", ";
    text += name;
  }
  return text;
}

namespace {

// Notes where documents start and ignores the rest: counts the documents of a
// file without building them.
class DocumentStarts final : public YAML::EventHandler {
 public:
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

std::optional<YAML::Node> YamlReader::parse(std::string_view yaml) {
  try {
    // Not YAML::LoadAll: on some inputs (a stray ",") yaml-cpp 0.7 reports
    // empty documents for ever without moving on, and LoadAll collects them
    // until memory runs out (found by fuzzing). Two documents are enough to know.
    std::istringstream stream{std::string(yaml)};
    YAML::Parser parser(stream);
    DocumentStarts starts;
    while (starts.marks.size() < 2 && parser.HandleNextDocument(starts)) {
    }
    if (starts.marks.empty()) return YAML::Node(YAML::NodeType::Null);
    if (starts.marks.size() > 1) {
      const YAML::Mark& second = starts.marks[1];
      if (second.pos == starts.marks[0].pos) {
        fail_at(second, "invalid YAML: the parser cannot read past this point");
      } else {
        // Silently reading the first would hide the rest of the file.
        fail_at(second, "expected one YAML document, found a second one");
      }
      return std::nullopt;
    }
    return YAML::Load(std::string(yaml));
  } catch (const YAML::ParserException& e) {
    fail_at(e.mark, "invalid YAML: " + e.msg + tab_hint(yaml, e.mark));
  } catch (const YAML::Exception& e) {
    fail_at(e.mark, "cannot read the YAML: " + e.msg);
  }
  return std::nullopt;
}

void YamlReader::fail_at(const YAML::Mark& mark, const std::string& message) {
  if (error_) return;
  std::string text = source_;
  if (!mark.is_null()) {  // yaml-cpp marks are 0-based; editors count from 1
    text += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
  // A safety net for messages built without fail() (e.g. "expected a map,
  // got <the value>"): an expanded value (a secret, perhaps) is never shown.
  std::string shown = message;
  for (const auto& [value, written] : expanded_values_) {
    if (value.empty()) continue;
    const std::string needle = config::quoted(value);
    const std::string replacement = "<expansion of " + config::quoted(written) + ">";
    for (auto at = shown.find(needle); at != std::string::npos;
         at = shown.find(needle, at + replacement.size())) {
      shown.replace(at, needle.size(), replacement);
    }
  }
  error_ = Error{text + ": " + shown};
}

void YamlReader::fail(const Field& field, std::string_view detail) {
  if (field.value.IsScalar()) {
    const auto expanded = expanded_.find(field.value.Mark().pos);
    if (expanded != expanded_.end()) {
      return fail_at(
          mark_of(field),
          field.path + ": " + hide_expanded_value(detail, field.value.Scalar(), expanded->second));
    }
  }
  fail_at(mark_of(field), field.path + ": " + std::string(detail));
}

void YamlReader::note_expanded(const YAML::Node& scalar, std::string written) {
  expanded_values_.emplace_back(scalar.Scalar(), written);
  expanded_[scalar.Mark().pos] = std::move(written);
}

YAML::Mark YamlReader::mark_of(const Field& field) {
  const YAML::Mark value_mark = field.value.Mark();
  if (field.value.IsNull() || value_mark.is_null()) return field.key_mark;
  return value_mark;
}

Section YamlReader::open_map(const YAML::Node& node, const YAML::Mark& where,
                             const std::string& path,
                             std::initializer_list<std::string_view> allowed) {
  Section section;
  if (error_ || !node.IsDefined() || node.IsNull()) return section;
  if (!node.IsMap()) {
    const std::string what = path.empty()
                                 ? "expected a map of sections (" + comma_list(allowed) + ")"
                                 : path + ": expected a map";
    fail_at(node.Mark().is_null() ? where : node.Mark(), what + ", got " + kind_of(node));
    return section;
  }
  for (const auto& entry : node) {  // by value: yaml-cpp's it->first is a dangling proxy
    const YAML::Node key = entry.first;
    if (!key.IsScalar()) {
      fail_at(key.Mark(),
              (path.empty() ? "" : path + ": ") + "expected a text key, got " + kind_of(key));
      return {};
    }
    const std::string& name = key.Scalar();
    std::string key_path = path;
    if (!key_path.empty()) key_path += '.';
    key_path += name;
    if (allowed.size() != 0 && std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      fail_at(key.Mark(), "unknown key " + quoted(key_path) +
                              " (expected one of: " + comma_list(allowed) + ")");
      return {};
    }
    if (const Field* first = section.get(name)) {
      // yaml-cpp keeps both; which one wins would be an accident.
      fail_at(key.Mark(), "duplicate key " + quoted(key_path) + " (first given on line " +
                              std::to_string(first->key_mark.line + 1) + ")");
      return {};
    }
    section.add(name, Field{std::move(key_path), key.Mark(), entry.second});
  }
  return section;
}

Section YamlReader::open_map(const Field* field, std::initializer_list<std::string_view> allowed) {
  if (field == nullptr) return {};
  return open_map(field->value, field->key_mark, field->path, allowed);
}

std::optional<std::string> YamlReader::text(const Field* field, std::string_view expected,
                                            Empty empty) {
  if (field == nullptr || error_) return std::nullopt;
  const YAML::Node& value = field->value;
  const bool is_empty = value.IsNull() || (value.IsScalar() && value.Scalar().empty());
  if (is_empty && empty == Empty::kAllowed) return std::string();
  if (!value.IsScalar() || is_empty) {
    fail(*field, "expected " + std::string(expected) + ", got " + kind_of(value));
    return std::nullopt;
  }
  return value.Scalar();
}

std::vector<Field> YamlReader::open_list(const Field* field, std::string_view expected) {
  std::vector<Field> items;
  if (field == nullptr || error_) return items;
  const YAML::Node& list = field->value;
  if (!list.IsSequence() || list.size() == 0) {
    fail(*field, "expected " + std::string(expected) + ", got " +
                     (list.IsSequence() ? std::string("an empty list") : kind_of(list)));
    return items;
  }
  const YAML::Mark list_mark = mark_of(*field);
  for (std::size_t index = 0; index < list.size(); ++index) {
    const YAML::Node item = list[index];
    // yaml-cpp marks an empty item ("- " alone) where the next token starts,
    // possibly lines below: point at the list instead; the path has the index.
    const YAML::Mark item_mark = item.IsNull() || item.Mark().is_null() ? list_mark : item.Mark();
    items.push_back(Field{field->path + "[" + std::to_string(index) + "]", item_mark, item});
  }
  return items;
}

void YamlReader::read_duration(const Section& section, std::string_view key, Duration* out,
                               Duration minimum, Duration maximum) {
  const Field* field = section.get(key);
  const auto value = text(field, "a duration such as 5s", Empty::kRejected);
  if (!value) return;
  auto parsed = parse_duration(*value);
  if (!parsed.ok()) return fail(*field, parsed.error().message);
  if (parsed.value() < minimum || parsed.value() > maximum) {
    const bool above_zero = minimum == Duration(1);
    std::string expected;
    if (maximum == Duration::max()) {
      expected = above_zero ? "expected a duration above 0"
                            : "expected at least " + format_duration(minimum);
    } else {
      expected = std::string("expected a duration ") +
                 (above_zero ? "above 0" : "of at least " + format_duration(minimum)) +
                 " and at most " + format_duration(maximum);
    }
    return fail(*field, expected + ", got " + quoted(*value));
  }
  *out = parsed.value();
}

void YamlReader::read_size(const Section& section, std::string_view key, std::uint64_t* out,
                           std::uint64_t minimum, std::uint64_t maximum) {
  const Field* field = section.get(key);
  const auto value = text(field, "a size such as 4MiB", Empty::kRejected);
  if (!value) return;
  auto parsed = parse_size(*value);
  if (!parsed.ok()) return fail(*field, parsed.error().message);
  if (parsed.value() < minimum || parsed.value() > maximum) {
    const std::string range = maximum == kNoMaximum
                                  ? "of at least " + format_size(minimum)
                                  : "from " + format_size(minimum) + " to " + format_size(maximum);
    return fail(*field, "expected a size " + range + ", got " + quoted(*value));
  }
  *out = parsed.value();
}

std::optional<std::uint64_t> YamlReader::read_whole_number(const Section& section,
                                                           std::string_view key,
                                                           std::uint64_t minimum,
                                                           std::uint64_t maximum) {
  const Field* field = section.get(key);
  const std::string expected =
      "an integer from " + std::to_string(minimum) + " to " + std::to_string(maximum);
  const auto value = text(field, expected, Empty::kRejected);
  if (!value) return std::nullopt;
  // Digits only: no sign, no "1e3", no "0x10"; at most 19 digits so the
  // accumulation below cannot overflow 64 bits.
  std::uint64_t number = 0;
  bool valid = value->size() <= 19;
  for (const char c : *value) {
    if (c < '0' || c > '9') valid = false;
    if (valid) number = number * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (!valid || number < minimum || number > maximum) {
    fail(*field, "expected " + expected + ", got " + quoted(*value));
    return std::nullopt;
  }
  return number;
}

void YamlReader::read_integer(const Section& section, std::string_view key, std::uint32_t* out,
                              std::uint32_t minimum, std::uint32_t maximum) {
  if (const auto number = read_whole_number(section, key, minimum, maximum)) {
    *out = static_cast<std::uint32_t>(*number);
  }
}

void YamlReader::read_integer(const Section& section, std::string_view key, std::uint64_t* out,
                              std::uint64_t minimum, std::uint64_t maximum) {
  if (const auto number = read_whole_number(section, key, minimum, maximum)) *out = *number;
}

void YamlReader::read_bool(const Section& section, std::string_view key, bool* out) {
  const Field* field = section.get(key);
  const auto value = text(field, "true or false", Empty::kRejected);
  if (!value) return;
  // YAML 1.2 core schema spellings only: 1.1's yes/no/on/off surprise people.
  if (*value == "true" || *value == "True" || *value == "TRUE") {
    *out = true;
  } else if (*value == "false" || *value == "False" || *value == "FALSE") {
    *out = false;
  } else {
    fail(*field, "expected true or false, got " + quoted(*value));
  }
}

}  // namespace spanrelay::config
