#include "daemon/processing/span_processor.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "daemon/otlp/attribute_reader.h"
#include "daemon/otlp/wire_format.h"

namespace spanrelay::processing {

namespace {

using otlp::wire::Reader;
using otlp::wire::WireType;

// Field numbers (OTLP trace.proto, common.proto, resource.proto).
constexpr std::uint32_t kSpanEventsField = 11;
constexpr std::uint32_t kSpanLinksField = 13;
constexpr std::uint32_t kLinkAttributesField = 4;
// ResourceSpans.resource and ScopeSpans.scope: both field 1 of their group.
constexpr std::uint32_t kGroupMessageField = 1;
constexpr std::uint32_t kScopeAttributesField = 3;  // InstrumentationScope.attributes
constexpr std::uint32_t kKeyValueKeyField = 1;
constexpr std::uint32_t kKeyValueValueField = 2;
constexpr std::uint32_t kAnyStringField = 1;
constexpr std::uint32_t kAnyBoolField = 2;
constexpr std::uint32_t kAnyIntField = 3;
constexpr std::uint32_t kAnyDoubleField = 4;
constexpr std::uint32_t kAnyArrayField = 5;
constexpr std::uint32_t kAnyKvlistField = 6;
constexpr std::uint32_t kAnyBytesField = 7;
constexpr std::uint32_t kListValuesField = 1;  // ArrayValue.values / KeyValueList.values
// Masking descends into array and kvlist values down to this depth; values
// nested deeper are left as they are (OTLP values are rarely nested beyond 2).
constexpr int kMaxMaskDepth = 16;

// Copy-on-write rewriting of one message body: nothing is copied (and no
// memory allocated) until the first field is replaced or erased; then the
// bytes before it are copied once and the rest follows field by field.
class Splicer {
 public:
  explicit Splicer(std::string_view source) : source_(source), copied_(source.data()) {}

  // Replaces the whole field [begin, end) with a length-delimited `field`.
  void replace_field(const char* begin, const char* end, std::uint32_t field,
                     std::string_view body) {
    copy_up_to(begin);
    otlp::wire::append_bytes_field(out_, field, body);
    copied_ = end;
  }
  void erase(const char* begin, const char* end) {
    copy_up_to(begin);
    copied_ = end;
  }
  // Appends already encoded fields at the end of the message.
  void append(std::string_view fields) {
    copy_up_to(source_.data() + source_.size());
    out_.append(fields);
  }
  bool changed() const { return changed_; }
  // The rewritten body (call only when changed()).
  void finish(std::string* out) {
    out_.append(copied_, source_.data() + source_.size());
    *out = std::move(out_);
  }

 private:
  void copy_up_to(const char* position) {
    if (!changed_) out_.reserve(source_.size() + 64);
    changed_ = true;
    out_.append(copied_, position);
  }

  std::string_view source_;
  const char* copied_;
  std::string out_;
  bool changed_ = false;
};

// Calls visit(field, body, begin, end) for each length-delimited field of
// `message` ([begin, end) is the whole encoded field), skipping the others,
// until visit returns false. False when the bytes are malformed.
template <class Visit>
bool for_each_bytes_field(std::string_view message, Visit&& visit) {
  Reader reader(message);
  while (!reader.done()) {
    const char* begin = reader.position();
    const auto tag = reader.read_tag();
    if (!tag) return false;
    if (tag->type != WireType::kLengthDelimited) {
      if (!reader.skip(tag->type)) return false;
      continue;
    }
    const auto body = reader.read_length_delimited();
    if (!body) return false;
    if (!visit(tag->field, *body, begin, reader.position())) break;
  }
  return true;
}

// Copy-on-write rewrite of the length-delimited fields of `message`:
// rewrite(field, body, &replacement) returns true to replace that field's body.
// True when something changed (then *out holds the new message); false when
// nothing did or the bytes are malformed.
template <class Rewrite>
bool rewrite_bytes_fields(std::string_view message, std::string* out, Rewrite&& rewrite) {
  Splicer splice(message);
  const bool well_formed = for_each_bytes_field(
      message, [&](std::uint32_t field, std::string_view body, const char* begin, const char* end) {
        std::string replacement;
        if (rewrite(field, body, &replacement))
          splice.replace_field(begin, end, field, replacement);
        return true;
      });
  if (!well_formed || !splice.changed()) return false;
  splice.finish(out);
  return true;
}

// The key of an encoded KeyValue (last occurrence wins); nullopt if malformed.
std::optional<std::string_view> key_of(std::string_view key_value) {
  std::string_view key;
  const bool well_formed =
      for_each_bytes_field(key_value, [&](std::uint32_t field, std::string_view body, auto, auto) {
        if (field == kKeyValueKeyField) key = body;
        return true;
      });
  if (!well_formed) return std::nullopt;
  return key;
}

bool has_attribute(std::string_view message, std::uint32_t attributes_field, std::string_view key) {
  bool found = false;
  for_each_bytes_field(message, [&](std::uint32_t field, std::string_view body, auto, auto) {
    found = field == attributes_field && key_of(body) == key;
    return !found;
  });
  return found;
}

// The text that hashing covers for the value set in an AnyValue (the member
// written last wins, as in protobuf's oneof rule). Strings and bytes as they
// are; int, bool and double by their text form (as sampling compares them).
enum class ValueKind { kNone, kText, kComposite };
struct HashableValue {
  ValueKind kind = ValueKind::kNone;
  std::optional<otlp::AttributeText> text;
};

HashableValue hashable_value(std::string_view any_value) {
  HashableValue value;
  Reader reader(any_value);
  while (!reader.done()) {
    const auto tag = reader.read_tag();
    if (!tag) return {};
    const auto field = tag->field;
    const auto type = tag->type;
    if (type == WireType::kLengthDelimited) {
      const auto body = reader.read_length_delimited();
      if (!body) return {};
      if (field == kAnyStringField || field == kAnyBytesField) {
        value = {ValueKind::kText, otlp::AttributeText::borrowed(*body)};
      } else if (field == kAnyArrayField || field == kAnyKvlistField) {
        value = {ValueKind::kComposite, std::nullopt};
      }
    } else if (type == WireType::kVarint && (field == kAnyBoolField || field == kAnyIntField)) {
      const auto number = reader.read_varint();
      if (!number) return {};
      value = {ValueKind::kText,
               field == kAnyBoolField
                   ? otlp::AttributeText::from_bool(*number != 0)
                   : otlp::AttributeText::from_int(static_cast<std::int64_t>(*number))};
    } else if (type == WireType::kFixed64 && field == kAnyDoubleField) {
      const auto bits = reader.read_fixed64();
      if (!bits) return {};
      double number = 0;
      static_assert(sizeof(number) == sizeof(*bits));
      std::memcpy(&number, &*bits, sizeof(number));
      value = {ValueKind::kText, otlp::AttributeText::from_double(number)};
    } else if (!reader.skip(type)) {
      return {};
    }
  }
  return value;
}

bool rewrite_any_value(std::string_view any_value, int depth, const AttributeRules& rules,
                       std::string* out);

// The masked value fields of a KeyValue; false when none changed.
bool rewrite_key_value_masks(std::string_view key_value, int depth, const AttributeRules& rules,
                             std::string* out) {
  return rewrite_bytes_fields(
      key_value, out, [&](std::uint32_t field, std::string_view body, std::string* rewritten) {
        return field == kKeyValueValueField && rewrite_any_value(body, depth, rules, rewritten);
      });
}

// ArrayValue (repeated AnyValue) or KeyValueList (repeated KeyValue, whose
// values are masked; nested keys are not subject to the key rules).
bool rewrite_list(std::string_view list, bool key_values, int depth, const AttributeRules& rules,
                  std::string* out) {
  return rewrite_bytes_fields(
      list, out, [&](std::uint32_t field, std::string_view body, std::string* rewritten) {
        if (field != kListValuesField) return false;
        return key_values ? rewrite_key_value_masks(body, depth, rules, rewritten)
                          : rewrite_any_value(body, depth, rules, rewritten);
      });
}

// Masks the string values of an AnyValue, descending into arrays and kvlists.
bool rewrite_any_value(std::string_view any_value, int depth, const AttributeRules& rules,
                       std::string* out) {
  if (depth > kMaxMaskDepth) return false;
  return rewrite_bytes_fields(
      any_value, out, [&](std::uint32_t field, std::string_view body, std::string* rewritten) {
        if (field == kAnyStringField) return rules.mask(body, rewritten);
        if (field == kAnyArrayField || field == kAnyKvlistField) {
          return rewrite_list(body, field == kAnyKvlistField, depth + 1, rules, rewritten);
        }
        return false;
      });
}

enum class KeyValueOutcome { kUnchanged, kDeleted, kReplaced };

}  // namespace

struct SpanProcessor::Work {
  ProcessingStats stats;
  // Keys to remove from resource attributes before enrichment (override mode).
  const std::vector<std::string>* remove_keys = nullptr;
};

namespace {

// Applies the key rules, then the masks, to one KeyValue.
KeyValueOutcome rewrite_key_value(std::string_view key_value, const AttributeRules& rules,
                                  ProcessingStats& stats, std::string* out) {
  Reader reader(key_value);
  std::string_view key;
  std::optional<std::string_view> value;
  while (!reader.done()) {
    const auto tag = reader.read_tag();
    if (!tag) {
      // Cannot tell what it holds: fail closed.
      ++stats.deleted;
      return KeyValueOutcome::kDeleted;
    }
    if (tag->type == WireType::kLengthDelimited) {
      const auto body = reader.read_length_delimited();
      if (!body) {
        ++stats.deleted;
        return KeyValueOutcome::kDeleted;
      }
      if (tag->field == kKeyValueKeyField) key = *body;
      if (tag->field == kKeyValueValueField) value = *body;
    } else if (!reader.skip(tag->type)) {
      ++stats.deleted;
      return KeyValueOutcome::kDeleted;
    }
  }
  const KeyAction action = rules.has_key_rules() ? rules.action_for(key) : KeyAction::kKeep;
  if (action == KeyAction::kDelete) {
    ++stats.deleted;
    return KeyValueOutcome::kDeleted;
  }
  if (action == KeyAction::kHash) {
    if (!value) return KeyValueOutcome::kUnchanged;  // no value: nothing to hide
    const HashableValue hashable = hashable_value(*value);
    if (hashable.kind == ValueKind::kNone) return KeyValueOutcome::kUnchanged;
    if (hashable.kind == ValueKind::kComposite) {
      // An array or kvlist has no one text to hash: it never leaves in clear.
      ++stats.deleted;
      return KeyValueOutcome::kDeleted;
    }
    std::string any_value;
    otlp::wire::append_bytes_field(any_value, kAnyStringField, rules.hash(hashable.text->view()));
    out->clear();
    otlp::wire::append_bytes_field(*out, kKeyValueKeyField, key);
    otlp::wire::append_bytes_field(*out, kKeyValueValueField, any_value);
    ++stats.hashed;
    return KeyValueOutcome::kReplaced;
  }
  if (!rules.has_masks() || !value) return KeyValueOutcome::kUnchanged;
  if (!rewrite_key_value_masks(key_value, 0, rules, out)) return KeyValueOutcome::kUnchanged;
  ++stats.masked;
  return KeyValueOutcome::kReplaced;
}

std::string encode_string_key_value(std::string_view key, std::string_view value) {
  std::string any_value;
  otlp::wire::append_bytes_field(any_value, kAnyStringField, value);
  std::string key_value;
  otlp::wire::append_bytes_field(key_value, kKeyValueKeyField, key);
  otlp::wire::append_bytes_field(key_value, kKeyValueValueField, any_value);
  return key_value;
}

}  // namespace

SpanProcessor::SpanProcessor(std::unique_ptr<AttributeRules> rules,
                             const config::ResourceConfig& resource)
    : rules_(std::move(rules)), override_existing_(resource.override_existing) {
  for (const auto& [key, value] : resource.attributes) {
    enrichment_keys_.push_back(key);
    std::string field;
    otlp::wire::append_bytes_field(field, otlp::kResourceAttributesField,
                                   encode_string_key_value(key, value));
    enrichment_fields_.push_back(std::move(field));
  }
}

Result<std::unique_ptr<SpanProcessor>> SpanProcessor::create(
    const config::RedactionConfig& redaction, const config::ResourceConfig& resource,
    telemetry::Registry* metrics) {
  std::unique_ptr<AttributeRules> rules;
  if (redaction.enabled) {
    auto compiled = AttributeRules::create(redaction);
    if (!compiled.ok()) return compiled.error();
    rules = std::move(compiled).value();
    if (rules->empty()) rules.reset();
  }
  if (!rules && resource.attributes.empty()) return std::unique_ptr<SpanProcessor>();
  auto processor = std::make_unique<SpanProcessor>(std::move(rules), resource);
  if (metrics != nullptr) {
    const std::string attributes_name = "spanrelay_redaction_attributes_total";
    const std::string attributes_help =
        "Attributes (span, span event, span link, scope and resource) changed by redaction, by "
        "action.";
    processor->deleted_counter_ =
        &metrics->counter(attributes_name, attributes_help, {{"action", "deleted"}});
    processor->hashed_counter_ =
        &metrics->counter(attributes_name, attributes_help, {{"action", "hashed"}});
    processor->masked_counter_ =
        &metrics->counter(attributes_name, attributes_help, {{"action", "masked"}});
    processor->spans_counter_ =
        &metrics->counter("spanrelay_redaction_spans_total",
                          "Spans whose own attributes (or their events' or links') redaction "
                          "changed; resource changes are not counted here.");
  }
  return processor;
}

bool SpanProcessor::rewrite_message(std::string_view message, std::uint32_t attributes_field,
                                    bool is_span, Work& work, std::string* out) const {
  Splicer splice(message);
  // A malformed message (the scanner checked span framing; a bad resource
  // can get here) stays as it is.
  const bool well_formed = for_each_bytes_field(
      message, [&](std::uint32_t field, std::string_view body, const char* begin, const char* end) {
        if (field == attributes_field) {
          if (work.remove_keys != nullptr) {
            const auto key = key_of(body);
            if (key && std::find(work.remove_keys->begin(), work.remove_keys->end(), *key) !=
                           work.remove_keys->end()) {
              splice.erase(begin, end);
              return true;
            }
          }
          if (!rules_) return true;
          std::string rewritten;
          switch (rewrite_key_value(body, *rules_, work.stats, &rewritten)) {
            case KeyValueOutcome::kUnchanged:
              break;
            case KeyValueOutcome::kDeleted:
              splice.erase(begin, end);
              break;
            case KeyValueOutcome::kReplaced:
              splice.replace_field(begin, end, attributes_field, rewritten);
              break;
          }
        } else if (is_span && (field == kSpanEventsField || field == kSpanLinksField)) {
          std::string rewritten;
          const std::uint32_t nested_attributes =
              field == kSpanEventsField ? otlp::kEventAttributesField : kLinkAttributesField;
          if (rewrite_message(body, nested_attributes, false, work, &rewritten)) {
            splice.replace_field(begin, end, field, rewritten);
          }
        }
        return true;
      });
  if (!well_formed || !splice.changed()) return false;
  splice.finish(out);
  return true;
}

bool SpanProcessor::rewrite_group_header(std::string_view header, bool resource, Work& work,
                                         std::string* out, std::string* message_body) const {
  // The Resource (or scope) may occur more than once (protobuf merges them);
  // every occurrence is redacted, enrichment goes into the last one.
  const std::uint32_t attributes_field =
      resource ? otlp::kResourceAttributesField : kScopeAttributesField;
  struct Occurrence {
    const char* begin;
    const char* end;
    std::string body;
  };
  std::vector<Occurrence> resources;
  bool changed = false;
  const bool well_formed = for_each_bytes_field(
      header, [&](std::uint32_t field, std::string_view body, const char* begin, const char* end) {
        if (field != kGroupMessageField) return true;
        Occurrence occurrence{begin, end, std::string(body)};
        std::string rewritten;
        work.remove_keys = resource && override_existing_ ? &enrichment_keys_ : nullptr;
        if (rewrite_message(body, attributes_field, false, work, &rewritten)) {
          occurrence.body = std::move(rewritten);
          changed = true;
        }
        work.remove_keys = nullptr;
        resources.push_back(std::move(occurrence));
        return true;
      });
  if (!well_formed) return false;

  std::string added;
  for (std::size_t i = 0; resource && i < enrichment_fields_.size(); ++i) {
    const bool present =
        !override_existing_ &&
        std::any_of(resources.begin(), resources.end(), [&](const Occurrence& occurrence) {
          return has_attribute(occurrence.body, otlp::kResourceAttributesField,
                               enrichment_keys_[i]);
        });
    if (!present) added += enrichment_fields_[i];
  }
  if (!changed && added.empty()) return false;

  if (resources.empty()) {
    *out = std::string(header);
    otlp::wire::append_bytes_field(*out, kGroupMessageField, added);
    *message_body = std::move(added);
    return true;
  }
  resources.back().body += added;
  out->clear();
  const char* copied = header.data();
  for (const Occurrence& occurrence : resources) {
    out->append(copied, occurrence.begin);
    otlp::wire::append_bytes_field(*out, kGroupMessageField, occurrence.body);
    copied = occurrence.end;
  }
  out->append(copied, header.data() + header.size());
  *message_body = std::move(resources.back().body);
  return true;
}

Result<ProcessingStats> SpanProcessor::process(otlp::ScannedRequest& request) const {
  Work work;
  const std::string& original = *request.payload;
  std::string extra;  // rewritten bodies, placed after the original bytes
  const auto next_range = [&](std::size_t length) {
    return otlp::ByteRange{static_cast<std::uint32_t>(original.size() + extra.size()),
                           static_cast<std::uint32_t>(length)};
  };
  const auto fits = [&](std::size_t more) {
    return original.size() + extra.size() + more <= UINT32_MAX;
  };

  for (otlp::ResourceGroup& group : request.resources) {
    std::string header;
    std::string body;
    if (!rewrite_group_header(group.header_bytes, true, work, &header, &body)) continue;
    if (!fits(body.size())) return Error{"request too large after redaction"};
    group.header_bytes = std::move(header);
    group.resource = next_range(body.size());
    extra += body;
    ++work.stats.resources_changed;
  }
  if (rules_) {
    for (otlp::ScopeGroup& group : request.scopes) {
      std::string header;
      std::string body;
      if (!rewrite_group_header(group.header_bytes, false, work, &header, &body)) continue;
      if (!fits(body.size())) return Error{"request too large after redaction"};
      group.header_bytes = std::move(header);
      group.scope = next_range(body.size());
      extra += body;
      ++work.stats.scopes_changed;
    }
    for (otlp::SpanView& span : request.spans) {
      std::string rewritten;
      if (!rewrite_message(request.span_bytes(span), otlp::kSpanAttributesField, true, work,
                           &rewritten)) {
        continue;
      }
      if (!fits(rewritten.size())) return Error{"request too large after redaction"};
      span.bytes = next_range(rewritten.size());
      extra += rewritten;
      ++work.stats.spans_changed;
    }
  }
  if (!extra.empty()) {
    auto payload = std::make_shared<std::string>();
    payload->reserve(original.size() + extra.size());
    payload->append(original);
    payload->append(extra);
    request.payload = std::move(payload);
  }
  const ProcessingStats& stats = work.stats;
  if (deleted_counter_ != nullptr) {
    if (stats.deleted) deleted_counter_->add(stats.deleted);
    if (stats.hashed) hashed_counter_->add(stats.hashed);
    if (stats.masked) masked_counter_->add(stats.masked);
    if (stats.spans_changed) spans_counter_->add(stats.spans_changed);
  }
  return stats;
}

}  // namespace spanrelay::processing
