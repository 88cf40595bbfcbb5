#pragma once
// Checks on a wire scan and on decoded messages, shared by the unit tests
// (through tests/unit/otlp_test_requests.h) and the fuzz targets
// (tests/fuzz/scan_checks.h). Free of doctest: the fuzz targets and their
// replay binaries link without it.
#include <google/protobuf/message.h>
#include <google/protobuf/util/field_comparator.h>
#include <google/protobuf/util/message_differencer.h>

#include <cstdint>
#include <string>

#include "daemon/otlp/span_view.h"

namespace spanrelay::testing {

// The differences between two messages ("" when equal), NaN equal to NaN (a
// fuzzed or hostile double is often a NaN, and spans carry its bytes
// untouched).
inline std::string differences(const google::protobuf::Message& expected,
                               const google::protobuf::Message& actual) {
  google::protobuf::util::DefaultFieldComparator comparator;
  comparator.set_treat_nan_as_equal(true);
  google::protobuf::util::MessageDifferencer differencer;
  differencer.set_field_comparator(&comparator);
  std::string report;
  differencer.ReportDifferencesToString(&report);
  if (!differencer.Compare(expected, actual) && report.empty()) report = "messages differ";
  return report;
}

// The first range, index or header of `scanned` that is not within its
// payload, or "" when all are.
inline std::string range_outside_payload(const otlp::ScannedRequest& scanned) {
  const std::uint64_t size = scanned.payload->size();
  const auto within = [&](otlp::ByteRange range) {
    return std::uint64_t{range.offset} + range.length <= size;
  };
  for (std::size_t i = 0; i < scanned.resources.size(); ++i) {
    const auto& resource = scanned.resources[i];
    if (!within(resource.resource) || resource.header_bytes.size() > size) {
      return "resource " + std::to_string(i);
    }
  }
  for (std::size_t i = 0; i < scanned.scopes.size(); ++i) {
    const auto& scope = scanned.scopes[i];
    if (scope.resource_index >= scanned.resources.size() || !within(scope.scope) ||
        scope.header_bytes.size() > size) {
      return "scope " + std::to_string(i);
    }
  }
  for (std::size_t i = 0; i < scanned.spans.size(); ++i) {
    const auto& span = scanned.spans[i];
    if (span.scope_index >= scanned.scopes.size() || !within(span.bytes)) {
      return "span " + std::to_string(i);
    }
  }
  return "";
}

}  // namespace spanrelay::testing
