#pragma once
// Splits one ExportTraceServiceRequest by the ring member that owns each
// span's routing key (load balancing, issue 8). Span bytes are copied under
// their original ResourceSpans / ScopeSpans headers (otlp::RequestWriter), so
// a part is a valid request with unknown fields intact, and all spans of a
// trace (routing by trace id) or of a service (routing by service.name) end
// up in the same part.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/config/config.h"
#include "daemon/delivery/hash_ring.h"
#include "daemon/otlp/span_view.h"

namespace spanrelay::delivery {

struct SplitPart {
  std::size_t owner = 0;  // index into HashRing::members()
  std::string request;
  std::uint32_t spans = 0;
};

struct SplitResult {
  // Every span has this owner: the request needs no re-encoding (`parts` is
  // empty then). Also set, to the owner of key 0, for a request that does not
  // scan (never produced by our own batcher; kept whole rather than lost).
  std::optional<std::size_t> single_owner;
  std::vector<SplitPart> parts;  // one per owner with spans, first-seen order
};

// The ring must not be empty.
SplitResult split_by_owner(const std::string& request, const HashRing& ring,
                           config::RoutingKey routing_key);

// The routing key of one span: its trace id, or the service.name resource
// attribute ("" when absent: such spans share one member).
std::uint64_t routing_key_of(const otlp::ScannedRequest& request, const otlp::SpanView& span,
                             config::RoutingKey routing_key);

}  // namespace spanrelay::delivery
