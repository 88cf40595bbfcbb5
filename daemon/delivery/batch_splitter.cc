#include "daemon/delivery/batch_splitter.h"

#include <deque>
#include <memory>
#include <optional>

#include "daemon/otlp/attribute_reader.h"
#include "daemon/otlp/request_writer.h"
#include "daemon/otlp/wire_scanner.h"

namespace spanrelay::delivery {
namespace {

// OpenTelemetry semantic conventions: the resource attribute naming the service.
constexpr std::string_view kServiceName = "service.name";

std::uint64_t service_key(const otlp::ScannedRequest& request, const otlp::ResourceGroup& group) {
  const auto name = otlp::find_attribute_text(request.bytes_of(group.resource),
                                              otlp::kResourceAttributesField, kServiceName);
  return text_key(name ? name->view() : std::string_view());
}

}  // namespace

std::uint64_t routing_key_of(const otlp::ScannedRequest& request, const otlp::SpanView& span,
                             config::RoutingKey routing_key) {
  if (routing_key == config::RoutingKey::kService) {
    return service_key(request, request.resource_of(span));
  }
  return trace_id_key(span.trace_id);
}

SplitResult split_by_owner(const std::string& request, const HashRing& ring,
                           config::RoutingKey routing_key) {
  SplitResult result;
  // The scanner wants shared ownership; `request` outlives the scan, so a
  // non-owning pointer avoids copying the batch.
  const std::shared_ptr<const std::string> payload(&request, [](const std::string*) {});
  auto scanned = otlp::scan_export_request(payload);
  if (!scanned.ok()) {
    result.single_owner = ring.owner_index(0);
    return result;
  }
  const otlp::ScannedRequest& view = scanned.value();

  // One owner per span; the key is computed once per trace id run (spans of
  // a trace are usually adjacent) or once per resource (service routing).
  std::vector<std::uint32_t> owners(view.spans.size());
  std::vector<std::optional<std::uint32_t>> resource_owner(view.resources.size());
  const otlp::TraceId* last_trace = nullptr;
  std::uint32_t last_owner = 0;
  bool single = true;
  for (std::size_t i = 0; i < view.spans.size(); ++i) {
    const otlp::SpanView& span = view.spans[i];
    std::uint32_t owner = 0;
    if (routing_key == config::RoutingKey::kService) {
      auto& cached = resource_owner[view.scope_of(span).resource_index];
      if (!cached) {
        cached =
            static_cast<std::uint32_t>(ring.owner_index(service_key(view, view.resource_of(span))));
      }
      owner = *cached;
    } else if (last_trace != nullptr && *last_trace == span.trace_id) {
      owner = last_owner;
    } else {
      owner = static_cast<std::uint32_t>(ring.owner_index(trace_id_key(span.trace_id)));
      last_trace = &span.trace_id;
      last_owner = owner;
    }
    owners[i] = owner;
    if (owner != owners[0]) single = false;
  }
  if (view.spans.empty() || single) {
    result.single_owner = view.spans.empty() ? ring.owner_index(0) : owners[0];
    return result;
  }

  std::vector<std::optional<std::size_t>> part_of_owner(ring.members().size());
  std::deque<otlp::RequestWriter> writers;  // a deque: writers never move once they hold spans
  for (std::size_t i = 0; i < view.spans.size(); ++i) {
    auto& part = part_of_owner[owners[i]];
    if (!part) {
      part = writers.size();
      writers.emplace_back();
      result.parts.push_back(SplitPart{owners[i], {}, 0});
    }
    writers[*part].add_span(view, view.spans[i]);
  }
  for (std::size_t p = 0; p < writers.size(); ++p) {
    result.parts[p].spans = static_cast<std::uint32_t>(writers[p].span_count());
    result.parts[p].request = writers[p].finish();
  }
  return result;
}

}  // namespace spanrelay::delivery
