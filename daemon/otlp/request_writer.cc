#include "daemon/otlp/request_writer.h"

#include <functional>
#include <utility>

#include "daemon/otlp/wire_format.h"

namespace spanrelay::otlp {
namespace {

using wire::WireType;

// ExportTraceServiceRequest.resource_spans, ResourceSpans.scope_spans and
// ScopeSpans.spans (OTLP trace.proto). All three tags fit in one byte.
constexpr std::uint32_t kRequestResourceSpans = 1;
constexpr std::uint32_t kResourceSpansScopeSpans = 2;
constexpr std::uint32_t kScopeSpansSpans = 2;
constexpr std::size_t kTagBytes = 1;
// Span buffers kept for the next batch: a batch usually has a few scope groups.
constexpr std::size_t kMaxSpareSpanBuffers = 8;

// Size of a length-delimited field with a one-byte tag and this body.
std::size_t field_size(std::size_t body_size) {
  return kTagBytes + wire::varint_size(body_size) + body_size;
}

}  // namespace

std::size_t RequestWriter::ScopeKeyHash::operator()(const ScopeKey& key) const {
  return std::hash<std::string_view>{}(key.header) ^
         (static_cast<std::size_t>(key.resource) * 0x9e3779b97f4a7c15ULL);
}

void RequestWriter::add_span(std::string_view resource_header, std::string_view scope_header,
                             std::string_view span_bytes) {
  append_span(group_for(resource_header, scope_header), span_bytes);
}

void RequestWriter::add_span(const ScannedRequest& request, const SpanView& span) {
  const ScopeGroup& scope = request.scope_of(span);
  append_span(group_for(request.resources[scope.resource_index].header_bytes, scope.header_bytes),
              request.span_bytes(span));
}

void RequestWriter::add_request(const ScannedRequest& request) {
  // The scanner lists the spans of one ScopeSpans together, so the group is
  // looked up once per run of spans with the same scope_index.
  std::uint32_t request_scope = kNoGroup;
  std::uint32_t group = kNoGroup;
  for (const SpanView& span : request.spans) {
    if (span.scope_index != request_scope) {
      request_scope = span.scope_index;
      const ScopeGroup& scope = request.scopes[request_scope];
      group = group_for(request.resources[scope.resource_index].header_bytes, scope.header_bytes);
    }
    append_span(group, request.span_bytes(span));
  }
}

std::uint32_t RequestWriter::group_for(std::string_view resource_header,
                                       std::string_view scope_header) {
  // Fast path: the same headers as the previous span. string_view equality
  // compares the sizes before the bytes. (Comparing the callers' pointers
  // would not be sound: a freed header's address can come back with other
  // bytes in the next request.)
  if (last_scope_ != kNoGroup) {
    const ScopeGroupState& last = scopes_[last_scope_];
    if (std::string_view(last.header) == scope_header &&
        std::string_view(resources_[last.resource].header) == resource_header) {
      return last_scope_;
    }
  }
  std::uint32_t resource;
  if (const auto found = resource_by_header_.find(resource_header);
      found != resource_by_header_.end()) {
    resource = found->second;
  } else {
    resource = add_resource_group(resource_header);
  }
  std::uint32_t scope;
  if (const auto found = scope_by_key_.find(ScopeKey{resource, scope_header});
      found != scope_by_key_.end()) {
    scope = found->second;
  } else {
    scope = add_scope_group(resource, scope_header);
  }
  last_scope_ = scope;
  return scope;
}

std::uint32_t RequestWriter::add_resource_group(std::string_view header) {
  const auto index = static_cast<std::uint32_t>(resources_.size());
  ResourceGroupState& resource = resources_.emplace_back();
  resource.header.assign(header);
  resource.body_size = resource.header.size();
  resource_by_header_.emplace(resource.header, index);
  encoded_size_ += field_size(resource.body_size);
  return index;
}

std::uint32_t RequestWriter::add_scope_group(std::uint32_t resource, std::string_view header) {
  const auto index = static_cast<std::uint32_t>(scopes_.size());
  ScopeGroupState& scope = scopes_.emplace_back();
  scope.resource = resource;
  scope.header.assign(header);
  if (!spare_span_buffers_.empty()) {
    scope.spans = std::move(spare_span_buffers_.back());
    spare_span_buffers_.pop_back();
  }
  scope_by_key_.emplace(ScopeKey{resource, scope.header}, index);
  ResourceGroupState& owner = resources_[resource];
  owner.scopes.push_back(index);
  grow_resource(owner, field_size(scope.body_size()));
  return index;
}

void RequestWriter::append_span(std::uint32_t scope_index, std::string_view span_bytes) {
  ScopeGroupState& scope = scopes_[scope_index];
  const std::size_t old_scope_field = field_size(scope.body_size());
  wire::append_bytes_field(scope.spans, kScopeSpansSpans, span_bytes);
  grow_resource(resources_[scope.resource], field_size(scope.body_size()) - old_scope_field);
  ++span_count_;
}

void RequestWriter::grow_resource(ResourceGroupState& resource, std::size_t added_bytes) {
  encoded_size_ -= field_size(resource.body_size);
  resource.body_size += added_bytes;
  encoded_size_ += field_size(resource.body_size);
}

std::string RequestWriter::finish() {
  std::string out;
  out.reserve(encoded_size_);
  for (const ResourceGroupState& resource : resources_) {
    wire::append_tag(out, kRequestResourceSpans, WireType::kLengthDelimited);
    wire::append_varint(out, resource.body_size);
    out += resource.header;
    for (const std::uint32_t scope_index : resource.scopes) {
      const ScopeGroupState& scope = scopes_[scope_index];
      wire::append_tag(out, kResourceSpansScopeSpans, WireType::kLengthDelimited);
      wire::append_varint(out, scope.body_size());
      out += scope.header;
      out += scope.spans;
    }
  }
  keep_span_buffers(out.size());
  // Maps first: their keys point into the groups.
  resource_by_header_.clear();
  scope_by_key_.clear();
  resources_.clear();
  scopes_.clear();
  last_scope_ = kNoGroup;
  span_count_ = 0;
  encoded_size_ = 0;
  return out;
}

void RequestWriter::keep_span_buffers(std::size_t batch_bytes) {
  for (ScopeGroupState& scope : scopes_) {
    scope.spans.clear();
    spare_span_buffers_.push_back(std::move(scope.spans));
  }
  // Keep at most twice the capacity the batch just written needed, so a
  // one-off large batch does not stay allocated behind small ones.
  const std::size_t budget = 2 * batch_bytes;
  std::size_t kept_bytes = 0;
  std::size_t kept = 0;
  for (std::string& buffer : spare_span_buffers_) {
    if (kept == kMaxSpareSpanBuffers || kept_bytes + buffer.capacity() > budget) continue;
    kept_bytes += buffer.capacity();
    if (&buffer != &spare_span_buffers_[kept]) spare_span_buffers_[kept] = std::move(buffer);
    ++kept;
  }
  spare_span_buffers_.resize(kept);
}

}  // namespace spanrelay::otlp
