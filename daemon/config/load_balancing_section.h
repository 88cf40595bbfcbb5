#pragma once
// The load-balancing keys of the `exporter:` section (issue 8): the members
// (`endpoints`, or `resolver.dns`), the routing key and the ejection rule.
// Split from config_loader.cc because they form one feature with rules of its
// own: `endpoint`, `endpoints` and `resolver` exclude each other.
#include <string_view>

#include "daemon/config/config.h"
#include "daemon/config/yaml_reader.h"

namespace spanrelay::config {

// True when the exporter section names its members with `endpoints` or
// `resolver` (then `endpoint` must be absent).
bool has_load_balanced_destination(const Section& exporter);

// Reads `endpoints` or `resolver` into *out (after `type`: the endpoint
// spelling depends on it). `type` is the field of exporter.type, for errors.
void read_load_balanced_destination(YamlReader& reader, const Section& exporter, const Field& type,
                                    ExporterConfig* out);

// Reads `routing_key` and `ejection` (accepted, and unused, with one endpoint:
// switching to a list stays a one-line change).
void read_load_balancing_options(YamlReader& reader, const Section& exporter, ExporterConfig* out);

// "traceID" / "service", for describe() and logs.
std::string_view routing_key_name(RoutingKey key);

}  // namespace spanrelay::config
