#include "daemon/delivery/hash_ring.h"

#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

using spanrelay::delivery::HashRing;
using spanrelay::delivery::text_key;
using spanrelay::delivery::trace_id_key;
using spanrelay::otlp::TraceId;

namespace {

std::vector<TraceId> random_trace_ids(std::size_t count, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<TraceId> ids(count);
  for (auto& id : ids) {
    for (auto& byte : id) byte = static_cast<std::uint8_t>(rng());
  }
  return ids;
}

// Owner of every id on `ring`.
std::vector<std::string> owners_of(const HashRing& ring, const std::vector<TraceId>& ids) {
  std::vector<std::string> owners;
  owners.reserve(ids.size());
  for (const auto& id : ids) owners.push_back(ring.owner(trace_id_key(id)));
  return owners;
}

const std::vector<std::string> kThree{"10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.3:4317"};

}  // namespace

TEST_CASE("hash_ring: the ring does not depend on the order or repetition of its members") {
  const HashRing a(kThree);
  const HashRing b({"10.0.0.3:4317", "10.0.0.1:4317", "10.0.0.2:4317", "10.0.0.1:4317"});
  CHECK(a.members() == b.members());
  CHECK(a.members().size() == 3);
  for (const auto& id : random_trace_ids(2000, 1)) {
    CHECK(a.owner(trace_id_key(id)) == b.owner(trace_id_key(id)));
  }
}

TEST_CASE("hash_ring: one member owns every key; an empty ring says so") {
  const HashRing one({"gateway:4317"});
  for (std::uint64_t key : {0ull, 1ull, ~0ull, 0x8000000000000000ull}) {
    CHECK(one.owner(key) == "gateway:4317");
  }
  CHECK(HashRing({}).empty());
  CHECK_FALSE(one.empty());
}

TEST_CASE("hash_ring: three members split 100k random trace ids within 3 % of even") {
  const HashRing ring(kThree);
  std::map<std::string, int> counts;
  const auto ids = random_trace_ids(100000, 2);
  for (const auto& owner : owners_of(ring, ids)) ++counts[owner];
  REQUIRE(counts.size() == 3);
  for (const auto& [member, count] : counts) {
    const double share = count / static_cast<double>(ids.size());
    CAPTURE(member);
    CAPTURE(share);
    CHECK(std::abs(share - 1.0 / 3) < 0.03);
  }
}

TEST_CASE("hash_ring: removing a member moves only its keys, spread over the others") {
  const HashRing three(kThree);
  const HashRing two({kThree[0], kThree[2]});
  const auto ids = random_trace_ids(30000, 3);
  const auto before = owners_of(three, ids);
  const auto after = owners_of(two, ids);
  std::map<std::string, int> moved_to;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (before[i] != kThree[1]) {
      CHECK(after[i] == before[i]);  // keys of the others stay where they were
    } else {
      ++moved_to[after[i]];
    }
  }
  REQUIRE(moved_to.size() == 2);  // the removed member's keys go to both others
  for (const auto& [member, count] : moved_to) CHECK(count > 2000);
}

TEST_CASE("hash_ring: adding a fourth member moves about a quarter of the keys, all to it") {
  const HashRing three(kThree);
  std::vector<std::string> four_members = kThree;
  four_members.push_back("10.0.0.4:4317");
  const HashRing four(four_members);
  const auto ids = random_trace_ids(40000, 4);
  const auto before = owners_of(three, ids);
  const auto after = owners_of(four, ids);
  std::size_t moved = 0;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (before[i] == after[i]) continue;
    ++moved;
    CHECK(after[i] == "10.0.0.4:4317");
  }
  const double fraction = moved / static_cast<double>(ids.size());
  CAPTURE(fraction);
  CHECK(fraction > 0.20);
  CHECK(fraction < 0.30);
}

TEST_CASE("hash_ring: keys spread evenly even when trace ids differ only in a few bytes") {
  // Some SDKs put a timestamp in the high half and a counter in the low half.
  const HashRing ring(kThree);
  std::map<std::string, int> counts;
  for (std::uint32_t n = 0; n < 30000; ++n) {
    TraceId id{};
    id[0] = 0x65;  // the same "timestamp" for all
    id[15] = static_cast<std::uint8_t>(n);
    id[14] = static_cast<std::uint8_t>(n >> 8);
    ++counts[ring.owner(trace_id_key(id))];
  }
  REQUIRE(counts.size() == 3);
  for (const auto& [member, count] : counts) CHECK(std::abs(count / 30000.0 - 1.0 / 3) < 0.04);
}

TEST_CASE("hash_ring: routing keys are stable and distinguish their inputs") {
  TraceId id{};
  id[15] = 1;
  TraceId other = id;
  other[0] = 1;
  CHECK(trace_id_key(id) == trace_id_key(id));
  CHECK(trace_id_key(id) != trace_id_key(other));
  CHECK(text_key("checkout") == text_key("checkout"));
  CHECK(text_key("checkout") != text_key("payments"));
  CHECK(text_key("") != text_key("checkout"));
  // Service names spread too: 300 services over three members.
  const HashRing ring(kThree);
  std::set<std::string> used;
  for (int i = 0; i < 300; ++i) used.insert(ring.owner(text_key("svc-" + std::to_string(i))));
  CHECK(used.size() == 3);
}
