#pragma once
// Internal to the load balancer (load_balancer.cc, load_balancer_health.cc):
// the state of one member.
#include <atomic>
#include <memory>
#include <string>

#include "daemon/delivery/load_balancer.h"

namespace spanrelay::delivery {

struct LoadBalancer::Member {
  std::string endpoint;
  std::shared_ptr<SpoolPartition> partition;  // null without a spool
  std::unique_ptr<DeliveryQueue> queue;       // declared after: destroyed first
  telemetry::Gauge* in_ring_gauge = nullptr;
  telemetry::Counter* ejections = nullptr;
  // Maintenance thread only.
  bool in_ring = false;
  bool retired = false;  // the resolver dropped it: leaving for good
  unsigned ejections_in_a_row = 0;
  Clock::time_point ejected_until{};
  // Set by the queue's health hooks.
  std::atomic<bool> eject_requested{false};
  std::atomic<bool> recovered{false};
};

namespace detail {
inline constexpr const char* kDroppedSpans = "spanrelay_dropped_spans_total";
inline constexpr const char* kDroppedSpansHelp =
    "Spans accepted and then lost for good, by reason (a retried span is not dropped).";
}  // namespace detail

}  // namespace spanrelay::delivery
