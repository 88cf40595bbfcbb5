#pragma once
// Builds ExportTraceServiceRequest bytes from spans that are already encoded:
// each span's original bytes are copied under freshly written ResourceSpans /
// ScopeSpans headers (themselves the original header bytes from the scanner),
// so spans are never re-encoded and unknown fields survive. This is the
// output half of DESIGN.md "The hot path: a wire view, not an object tree".
//
// Grouping: spans whose resource headers are byte-equal share one
// ResourceSpans; within it, spans whose scope headers are byte-equal share one
// ScopeSpans. Groups and spans keep first-seen order.
//
// Not thread-safe: one writer belongs to one batcher.
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "daemon/otlp/span_view.h"

namespace spanrelay::otlp {

class RequestWriter {
 public:
  // Adds one span. The headers are the encoded fields of a ResourceSpans
  // (resp. ScopeSpans) other than its repeated field 2, as in
  // ResourceGroup/ScopeGroup::header_bytes; span_bytes is a Span message body.
  // Nothing is kept pointing at the arguments: the writer copies each distinct
  // header once per batch and the span bytes into its group's buffer.
  void add_span(std::string_view resource_header, std::string_view scope_header,
                std::string_view span_bytes);
  // Adds every span of a scanned request, in order.
  void add_request(const ScannedRequest& request);
  // Adds one span of a scanned request (`span` must belong to `request`).
  void add_span(const ScannedRequest& request, const SpanView& span);

  std::size_t span_count() const { return span_count_; }
  // The exact size finish() would return now, in O(1) (for max_bytes batching).
  std::size_t encoded_size() const { return encoded_size_; }
  bool empty() const { return span_count_ == 0; }

  // Returns the request bytes and makes the writer empty again.
  std::string finish();

 private:
  static constexpr std::uint32_t kNoGroup = UINT32_MAX;

  struct ScopeGroupState {
    std::uint32_t resource = 0;  // into resources_
    std::string header;
    std::string spans;  // (tag 2, length, span bytes) per span, ready to copy out
    std::size_t body_size() const { return header.size() + spans.size(); }
  };
  struct ResourceGroupState {
    std::string header;
    std::vector<std::uint32_t> scopes;  // into scopes_, first-seen order
    std::size_t body_size = 0;          // header + every encoded ScopeSpans field
  };
  struct ScopeKey {
    std::uint32_t resource;
    std::string_view header;  // points into the ScopeGroupState's own copy
    bool operator==(const ScopeKey&) const = default;
  };
  struct ScopeKeyHash {
    std::size_t operator()(const ScopeKey& key) const;
  };

  // Finds or creates the scope group for these headers; returns its index.
  std::uint32_t group_for(std::string_view resource_header, std::string_view scope_header);
  std::uint32_t add_resource_group(std::string_view header);
  std::uint32_t add_scope_group(std::uint32_t resource, std::string_view header);
  void append_span(std::uint32_t scope, std::string_view span_bytes);
  // Grows a resource group's body and keeps encoded_size_ in step with it.
  void grow_resource(ResourceGroupState& resource, std::size_t added_bytes);
  // Moves the span buffers of the finished batch to spare_span_buffers_,
  // keeping only as much capacity as a batch of this size needs.
  void keep_span_buffers(std::size_t batch_bytes);

  // Deques: elements never move, so the string_view keys of the maps below,
  // which point into the groups' own header copies, stay valid.
  std::deque<ResourceGroupState> resources_;
  std::deque<ScopeGroupState> scopes_;
  std::unordered_map<std::string_view, std::uint32_t> resource_by_header_;
  std::unordered_map<ScopeKey, std::uint32_t, ScopeKeyHash> scope_by_key_;
  // The group of the previous span: consecutive spans with the same headers
  // (the common case) are compared against it only, with no hashing.
  std::uint32_t last_scope_ = kNoGroup;
  // Span buffers of finished batches, emptied but with their capacity: the
  // next batch fills them without growing them again from nothing (which
  // costs reallocations and fresh pages on every batch).
  std::vector<std::string> spare_span_buffers_;
  std::size_t span_count_ = 0;
  std::size_t encoded_size_ = 0;
};

}  // namespace spanrelay::otlp
