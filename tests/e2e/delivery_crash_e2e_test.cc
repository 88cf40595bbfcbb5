// Delivery across a crash, a stop and a damaged disk: what the relay
// acknowledged and wrote to its spool survives SIGKILL and SIGTERM, and a
// corrupt spool costs exactly its corrupt records, counted, never the rest.
#include <doctest/doctest.h>
#include <signal.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include "daemon/common/compression.h"
#include "tests/e2e/delivery_support.h"
#include "tests/e2e/harness.h"

using namespace spanrelay::e2e;
using namespace spanrelay::e2e::delivery;

namespace {

namespace fs = std::filesystem;

std::vector<std::string> segment_files(const std::string& spool_dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(spool_dir, ec)) {
    if (entry.path().extension() == ".seg") out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());  // zero-padded sequence numbers: name order = age
  return out;
}

template <class Int>
Int read_le(const std::string& bytes, std::size_t offset) {
  Int value = 0;
  for (std::size_t i = 0; i < sizeof(Int); ++i) {
    value |= static_cast<Int>(static_cast<unsigned char>(bytes[offset + i])) << (8 * i);
  }
  return value;
}

// One spool record as the spool format describes it (daemon/delivery/spool_segment.h):
// frame = magic 4 | version 1 | payload length 4 | crc 4; header = id 8 | spans 4 |
// created 8 | encoding 1 | raw size 4; then the zstd body.
struct RecordOnDisk {
  std::size_t offset = 0, size = 0;
  std::uint32_t spans = 0;
  std::set<std::string> span_keys;  // trace/span ids of the spans it holds
};

std::vector<RecordOnDisk> read_records(const std::string& path) {
  constexpr std::size_t kFrame = 13, kHeader = 25;
  const std::string bytes = read_file(path);
  std::vector<RecordOnDisk> records;
  std::size_t offset = 0;
  while (offset + kFrame + kHeader <= bytes.size()) {
    REQUIRE_MESSAGE(bytes.compare(offset, 4, "\x8eSPL") == 0, path << " @" << offset);
    const auto payload = read_le<std::uint32_t>(bytes, offset + 5);
    RecordOnDisk record;
    record.offset = offset;
    record.size = kFrame + payload;
    REQUIRE(offset + record.size <= bytes.size());
    record.spans = read_le<std::uint32_t>(bytes, offset + kFrame + 8);
    const auto raw_size = read_le<std::uint32_t>(bytes, offset + kFrame + 21);
    const std::string_view body(bytes.data() + offset + kFrame + kHeader, payload - kHeader);
    auto inflated = spanrelay::decompress(spanrelay::Codec::kZstd, body, raw_size + 1);
    REQUIRE(inflated.status == spanrelay::DecompressStatus::kOk);
    ExportRequest request;
    REQUIRE(request.ParseFromString(inflated.bytes));
    for (const auto& rs : request.resource_spans()) {
      for (const auto& ss : rs.scope_spans()) {
        for (const auto& span : ss.spans()) {
          record.span_keys.insert(hex(span.trace_id()) + "/" + hex(span.span_id()));
        }
      }
    }
    CHECK(record.span_keys.size() == record.spans);
    records.push_back(std::move(record));
    offset += records.back().size;
  }
  CHECK(offset == bytes.size());
  return records;
}

void flip_bytes(const std::string& path, std::size_t offset, std::size_t count) {
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(file.good());
  for (std::size_t i = 0; i < count; ++i) {
    file.seekg(static_cast<std::streamoff>(offset + i));
    const char c = static_cast<char>(file.get());
    file.seekp(static_cast<std::streamoff>(offset + i));
    file.put(static_cast<char>(~c));
  }
  REQUIRE(file.good());
}

Via alternate(int i) { return i % 2 == 0 ? Via::kGrpc : Via::kHttp; }

void send_acked(const Daemon& daemon, AppSide& app, Via via, const ExportRequest& request,
                const std::vector<GeneratedSpan>& spans) {
  const auto result = app.send(daemon, via, request, spans);
  REQUIRE_MESSAGE(result.has_value(), "the relay did not answer");
  REQUIRE_MESSAGE(is_ok(via, *result), "status " << result->status << ": " << result->body);
}

// Waits until every acknowledged span is in the spool and none in memory.
bool all_spooled(const Daemon& daemon, double acked) {
  return wait_until(
      [&] {
        const Scrape m(daemon);
        return m["spanrelay_spool_spans"] == acked && m["spanrelay_queue_spans"] == 0;
      },
      30s);
}

}  // namespace

TEST_CASE("delivery: SIGKILL mid-load with fsync always loses no acknowledged span") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());  // the upstream is down during the first run
  // A memory budget smaller than one request: admission hands every request
  // to the spool, and with fsync always the app is acked only once it is on disk.
  setup.memory_limit = "1KiB";
  setup.batch = "{ max_spans: 20, max_bytes: 1KiB, timeout: 50ms }";
  setup.spool = spool_yaml(dir.file("spool"), "fsync: always");
  AppSide app;
  {
    Daemon first(dir, relay_yaml(setup), "first");
    Loader loader(first, app, 4, 5000);
    REQUIRE(wait_until([&] { return app.acked_requests() >= 40; }));
    first.process().signal(SIGKILL);  // while the loaders are sending
    REQUIRE(first.process().wait_exit().has_value());
    loader.stop();
  }
  CHECK_FALSE(segment_files(dir.file("spool")).empty());

  Sink sink(dir, sink_on(setup.endpoint));
  Daemon second(dir, relay_yaml(setup), "second");
  const auto acked = app.acked();
  const Arrival arrival = wait_for_arrival(sink, acked);
  const double recovered = Scrape(second)["spanrelay_spool_recovered_spans_total"];
  MESSAGE(arrival.describe() << " recovered=" << recovered);
  CHECK(arrival.missing == 0);
  CHECK(arrival.altered == 0);
  CHECK(recovered >= static_cast<double>(acked.size()));
  CHECK(wait_until([&] { return drained(second); }));
  check_balance(second);
}

TEST_CASE("delivery: SIGKILL with batches spooled while the upstream is down: all arrive") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());
  setup.spool = spool_yaml(dir.file("spool"), "fsync: always");
  AppSide app;
  {
    Daemon first(dir, relay_yaml(setup), "first");
    for (int i = 0; i < 30; ++i) {
      std::vector<GeneratedSpan> spans;
      send_acked(first, app, alternate(i), make_request({.seed = 5500u + i}, &spans), spans);
    }
    CHECK_MESSAGE(all_spooled(first, static_cast<double>(app.acked().size())),
                  read_balance(first).describe());
    first.process().signal(SIGKILL);
    REQUIRE(first.process().wait_exit().has_value());
  }
  Sink sink(dir, sink_on(setup.endpoint));
  Daemon second(dir, relay_yaml(setup), "second");
  const Arrival arrival = wait_for_arrival(sink, app.acked());
  const double recovered = Scrape(second)["spanrelay_spool_recovered_spans_total"];
  MESSAGE(arrival.describe() << " recovered=" << recovered);
  CHECK(arrival.missing == 0);
  CHECK(arrival.altered == 0);
  CHECK(recovered == static_cast<double>(app.acked().size()));
  CHECK(wait_until([&] { return drained(second); }));
  check_balance(second);
}

TEST_CASE(
    "delivery: a corrupt spool costs exactly its corrupt records, counted; the rest arrives") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());
  // max_size 1MiB: segments of at most 128KiB, so ~25 padded requests span several.
  setup.spool = spool_yaml(dir.file("spool"), "max_size: 1MiB, fsync: always");
  setup.shutdown_timeout = "2s";
  AppSide app;
  {
    Daemon first(dir, relay_yaml(setup), "first");
    for (int i = 0; i < 25; ++i) {
      std::vector<GeneratedSpan> spans;
      send_acked(first, app, alternate(i), make_padded_request({.seed = 6000u + i}, 1024, &spans),
                 spans);
    }
    CHECK(all_spooled(first, static_cast<double>(app.acked().size())));
    REQUIRE(first.stop() == 0);
  }
  const auto segments = segment_files(dir.file("spool"));
  REQUIRE(segments.size() >= 2);
  const auto first_records = read_records(segments.front());
  const auto last_records = read_records(segments.back());
  REQUIRE(first_records.size() >= 2);
  REQUIRE_FALSE(last_records.empty());

  // A torn tail: the last segment ends in the middle of its last record.
  const RecordOnDisk& torn = last_records.back();
  fs::resize_file(segments.back(), torn.offset + torn.size / 2);
  // A flipped run of bytes in the middle of a record of the oldest segment.
  const RecordOnDisk& flipped = first_records[first_records.size() / 2];
  flip_bytes(segments.front(), flipped.offset + flipped.size / 2, 8);

  std::set<std::string> lost(torn.span_keys);
  lost.insert(flipped.span_keys.begin(), flipped.span_keys.end());
  std::vector<GeneratedSpan> survivors;
  for (const auto& span : app.acked()) {
    if (lost.count(span.trace_id_hex + "/" + span.span_id_hex) == 0) survivors.push_back(span);
  }

  Sink sink(dir, sink_on(setup.endpoint));
  Daemon second(dir, relay_yaml(setup), "second");
  const Arrival arrival = wait_for_arrival(sink, survivors);
  REQUIRE(wait_until([&] { return drained(second); }));
  const Arrival against_acked = compare_arrival(sink, app.acked());
  const Scrape m(second);
  const double recovered = m["spanrelay_spool_recovered_spans_total"];
  const double dropped_corrupt = m["spanrelay_dropped_spans_total{reason=\"spool_corrupt\"}"];
  MESSAGE(against_acked.describe()
          << " corrupt_spans=" << lost.size()
          << " corrupt_records=" << m["spanrelay_spool_corrupt_records_total"]
          << " recovered=" << recovered << " dropped_spool_corrupt=" << dropped_corrupt);
  CHECK(second.process().running());
  CHECK(m["spanrelay_spool_corrupt_records_total"] == 2);
  CHECK(arrival.missing == 0);                  // every intact record arrived
  CHECK(against_acked.missing == lost.size());  // and nothing of the corrupt ones
  CHECK(against_acked.duplicates == 0);
  CHECK(against_acked.altered == 0);
  // The corrupt spans are accounted for: either never recovered, or recovered
  // and then dropped as spool_corrupt.
  CHECK(recovered - dropped_corrupt == static_cast<double>(app.acked().size() - lost.size()));
  check_balance(second);
}

TEST_CASE(
    "delivery: SIGTERM with the upstream down exits 0, spools the rest, and a restart "
    "delivers it") {
  TempDir dir;
  RelaySetup setup;
  setup.endpoint = loopback(unused_tcp_port());
  // Only shutdown closes the batch: at SIGTERM every span is still in memory.
  setup.batch = "{ max_spans: 100000, max_bytes: 64MiB, timeout: 1h }";
  setup.spool = spool_yaml(dir.file("spool"), "fsync: interval");
  setup.shutdown_timeout = "2s";
  AppSide app;
  {
    Daemon first(dir, relay_yaml(setup), "first");
    for (int i = 0; i < 20; ++i) {
      std::vector<GeneratedSpan> spans;
      send_acked(first, app, alternate(i), make_request({.seed = 8000u + i}, &spans), spans);
    }
    const Scrape m(first);
    CHECK(m["spanrelay_queue_spans"] == static_cast<double>(app.acked().size()));
    CHECK(m["spanrelay_spool_spans"] == 0);
    const auto code = first.stop();
    REQUIRE(code.has_value());
    CHECK(*code == 0);
  }
  CHECK_FALSE(segment_files(dir.file("spool")).empty());

  Sink sink(dir, sink_on(setup.endpoint));
  Daemon second(dir, relay_yaml(setup), "second");
  CHECK(Scrape(second)["spanrelay_spool_recovered_spans_total"] ==
        static_cast<double>(app.acked().size()));
  const Arrival arrival = wait_for_arrival(sink, app.acked());
  MESSAGE(arrival.describe());
  CHECK(arrival.missing == 0);
  CHECK(arrival.duplicates == 0);
  CHECK(arrival.altered == 0);
  CHECK(wait_until([&] { return drained(second); }));
  check_balance(second);
}
