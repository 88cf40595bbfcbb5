#include "daemon/delivery/spool.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "daemon/delivery/spool_segment.h"
#include "tests/unit/spool_test_support.h"

using namespace spanrelay::delivery::spool_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("spool: append, lease and ack keep append order") {
  TempDir tmp;
  Registry registry;
  auto spool = open_spool(spool_config(tmp.spool_dir()), registry);
  CHECK(spool->recovered_records() == 0);
  CHECK(spool->writable());
  for (std::uint32_t i = 0; i < 5; ++i) append_ok(*spool, i, 64, i + 1);
  CHECK(spool->stats().records == 5);
  CHECK(spool->stats().spans == 15);
  CHECK(registry.value("spanrelay_spool_records") == 5);
  CHECK(registry.value("spanrelay_spool_bytes") == spool->stats().bytes);
  CHECK(registry.value("spanrelay_spool_write_bytes_total") >= spool->stats().bytes);

  std::vector<SpoolRecord> leased;
  while (auto record = spool->lease_next()) leased.push_back(std::move(*record));
  REQUIRE(leased.size() == 5);
  for (std::uint32_t i = 0; i < 5; ++i) {
    CHECK(leased[i].request == make_request(i));
    CHECK(leased[i].spans == i + 1);
    CHECK(leased[i].created_unix_ms > 0);
    if (i > 0) CHECK(leased[i].id > leased[i - 1].id);
  }
  CHECK(registry.value("spanrelay_spool_read_bytes_total") > 0);
  CHECK(spool->stats().records == 5);  // leased is not gone
  for (const auto& record : leased) spool->ack(record.id);
  spool->ack(leased[0].id);  // a second ack is harmless
  CHECK(spool->stats().records == 0);
  CHECK(spool->stats().spans == 0);
  CHECK_FALSE(spool->lease_next().has_value());
}

TEST_CASE("spool: release puts a record back at its order position") {
  TempDir tmp;
  Registry registry;
  auto spool = open_spool(spool_config(tmp.spool_dir()), registry);
  for (std::uint32_t i = 0; i < 4; ++i) append_ok(*spool, i);
  auto first = spool->lease_next();
  auto second = spool->lease_next();
  REQUIRE((first && second));
  spool->release(second->id);
  spool->release(first->id);
  CHECK(lease_all(*spool) == range(0, 4));
  spool->release(second->id);
  CHECK(lease_all(*spool) == std::vector<std::uint32_t>{1});
}

TEST_CASE("spool: unacknowledged records replay in order after reopen, acknowledged do not") {
  TempDir tmp;
  const auto config = spool_config(tmp.spool_dir(), FsyncPolicy::kInterval);
  {
    Registry registry;
    auto spool = open_spool(config, registry);
    for (std::uint32_t i = 0; i < 6; ++i) append_ok(*spool, i, 64, 2);
    for (std::uint32_t i = 0; i < 5; ++i) {
      auto record = spool->lease_next();
      REQUIRE(record);
      if (i == 1 || i == 3) spool->ack(record->id);  // leased, never acked: 0, 2, 4
    }
  }
  Registry registry;
  auto spool = open_spool(config, registry);
  CHECK(spool->recovered_records() == 4);
  CHECK(spool->stats().spans == 8);
  append_ok(*spool, 6);  // new records queue behind the recovered ones
  CHECK(lease_all(*spool, true) == std::vector<std::uint32_t>{0, 2, 4, 5, 6});
  CHECK(registry.value("spanrelay_spool_corrupt_records_total") == 0);
}

TEST_CASE("spool: a torn ack log tail is ignored and later acks still count") {
  TempDir tmp;
  const auto config = spool_config(tmp.spool_dir());
  {
    Registry registry;
    auto spool = open_spool(config, registry);
    for (std::uint32_t i = 0; i < 4; ++i) append_ok(*spool, i);
    auto record = spool->lease_next();
    REQUIRE(record);
    spool->ack(record->id);  // 0
  }
  const std::string ack_log = tmp.spool_dir() + "/00000000000000000001.ack";
  REQUIRE(fs::exists(ack_log));
  write_file(ack_log, read_file(ack_log) + "\x07\x07\x07");  // a crash mid-entry
  {
    Registry registry;
    auto spool = open_spool(config, registry);
    CHECK(spool->recovered_records() == 3);
    auto record = spool->lease_next();
    REQUIRE(record);
    CHECK(request_index(record->request) == 1);
    spool->ack(record->id);  // appended after the torn bytes were cut off
  }
  CHECK(fs::file_size(ack_log) == 2 * format::kAckEntryBytes);
  Registry registry;
  auto spool = open_spool(config, registry);
  CHECK(lease_all(*spool) == std::vector<std::uint32_t>{2, 3});
}

TEST_CASE("spool: segments roll over and fully acknowledged segments are deleted") {
  TempDir tmp;
  // max_size / 8 = 8 KiB segments; ~1 KiB records: several segments.
  const auto config = spool_config(tmp.spool_dir(), FsyncPolicy::kNever, 64 << 10);
  Registry registry;
  auto spool = open_spool(config, registry);
  for (std::uint32_t i = 0; i < 30; ++i) append_ok(*spool, i, 1000);
  const auto before = segment_files(tmp.spool_dir());
  CHECK(before.size() >= 4);
  for (const auto& file : before) CHECK(fs::file_size(file) <= 8 << 10);
  CHECK(spool->stats().bytes == total_size(before));

  for (std::uint32_t i = 0; i < 15; ++i) {
    auto record = spool->lease_next();
    REQUIRE(record);
    spool->ack(record->id);
  }
  const auto after = segment_files(tmp.spool_dir());
  CHECK(after.size() < before.size());
  CHECK(after.front() != before.front());  // the oldest segment is gone
  CHECK(spool->stats().bytes == total_size(after));
  CHECK(spool->stats().records == 15);

  lease_all(*spool, true);
  CHECK(segment_files(tmp.spool_dir()).size() <= 1);  // the active one may stay while open
  spool.reset();
  CHECK(segment_files(tmp.spool_dir()).empty());
  CHECK(fs::exists(tmp.spool_dir() + "/LOCK"));
}

TEST_CASE("spool: a torn tail is skipped and counted, the rest replays") {
  TempDir tmp;
  const auto config = spool_config(tmp.spool_dir());
  {
    Registry registry;
    auto spool = open_spool(config, registry);
    for (std::uint32_t i = 0; i < 5; ++i) append_ok(*spool, i, 200);
  }
  const auto files = segment_files(tmp.spool_dir());
  REQUIRE(files.size() == 1);
  fs::resize_file(files[0], fs::file_size(files[0]) - 50);  // crash mid-write of record 4

  Registry registry;
  auto spool = open_spool(config, registry);
  CHECK(registry.value("spanrelay_spool_corrupt_records_total") == 1);
  CHECK(spool->recovered_records() == 4);
  CHECK(lease_all(*spool) == range(0, 4));
}

TEST_CASE("spool: a corrupt middle record is skipped; later records and segments replay") {
  TempDir tmp;
  // 4 KiB segments, ~1.1 KiB records: 3 records per segment, 4 segments.
  const auto config = spool_config(tmp.spool_dir(), FsyncPolicy::kNever, 32 << 10);
  {
    Registry registry;
    auto spool = open_spool(config, registry);
    for (std::uint32_t i = 0; i < 12; ++i) append_ok(*spool, i, 1100);
  }
  const auto files = segment_files(tmp.spool_dir());
  REQUIRE(files.size() == 4);
  std::string bytes = read_file(files[0]);
  const auto scan = format::scan_segment(bytes);
  REQUIRE(scan.records.size() == 3);
  const std::uint64_t middle = scan.records[1].offset;

  SUBCASE("a flipped body byte") {
    bytes[middle + format::kFrameBytes + format::kHeaderBytes + 100] ^= 0x5a;
  }
  SUBCASE("a flipped length byte") { bytes[middle + 6] ^= 0x40; }
  SUBCASE("a flipped magic byte and header byte") {
    bytes[middle] ^= 0x01;
    bytes[middle + format::kFrameBytes + 2] ^= 0x01;
  }
  write_file(files[0], bytes);

  Registry registry;
  auto spool = open_spool(config, registry);
  CHECK(registry.value("spanrelay_spool_corrupt_records_total") == 1);
  CHECK(spool->recovered_records() == 11);
  std::vector<std::uint32_t> expected = range(0, 12);
  expected.erase(expected.begin() + 1);
  CHECK(lease_all(*spool) == expected);
}

TEST_CASE("spool: unrelated files are left alone, a garbage segment is counted and removed") {
  TempDir tmp;
  const auto config = spool_config(tmp.spool_dir());
  {
    Registry registry;
    auto spool = open_spool(config, registry);
    for (std::uint32_t i = 0; i < 3; ++i) append_ok(*spool, i);
  }
  write_file(tmp.spool_dir() + "/notes.txt", "not a segment");
  write_file(tmp.spool_dir() + "/00000000000000000999.seg", std::string(5000, 'x'));
  write_file(tmp.spool_dir() + "/00000000000000000777.ack", "orphan");

  Registry registry;
  auto spool = open_spool(config, registry);
  CHECK(registry.value("spanrelay_spool_corrupt_records_total") == 1);
  CHECK(spool->recovered_records() == 3);
  CHECK(fs::exists(tmp.spool_dir() + "/notes.txt"));
  CHECK_FALSE(fs::exists(tmp.spool_dir() + "/00000000000000000999.seg"));
  CHECK_FALSE(fs::exists(tmp.spool_dir() + "/00000000000000000777.ack"));
  append_ok(*spool, 3);  // new segments are numbered after every name seen
  CHECK(fs::exists(tmp.spool_dir() + "/00000000000000001000.seg"));
  CHECK(lease_all(*spool) == range(0, 4));
}

TEST_CASE("spool: a record damaged after it was written is leased as corrupt") {
  TempDir tmp;
  Registry registry;
  auto spool = open_spool(spool_config(tmp.spool_dir()), registry);
  append_ok(*spool, 0, 300, 7);
  append_ok(*spool, 1, 300, 1);
  const auto files = segment_files(tmp.spool_dir());
  REQUIRE(files.size() == 1);
  std::string bytes = read_file(files[0]);
  bytes[100] ^= 0x01;
  write_file(files[0], bytes);  // same size, same inode: the open fd sees it

  auto damaged = spool->lease_next();
  REQUIRE(damaged);
  CHECK(damaged->corrupt);
  CHECK(damaged->spans == 7);
  CHECK(damaged->request.empty());
  CHECK(registry.value("spanrelay_spool_corrupt_records_total") == 1);
  spool->ack(damaged->id);
  CHECK(lease_all(*spool) == std::vector<std::uint32_t>{1});
}

TEST_CASE("spool: drop_oldest evicts whole oldest segments, never a leased record") {
  TempDir tmp;
  // 2 KiB segments of 3 records (~560 bytes each), 16 KiB cap.
  const std::uint64_t max_size = 16 << 10;
  Registry registry;
  auto spool = open_spool(spool_config(tmp.spool_dir(), FsyncPolicy::kNever, max_size), registry);
  append_ok(*spool, 0, 500, 1);
  auto held = spool->lease_next();  // a lessee is sending record 0
  REQUIRE(held);

  std::uint64_t evicted = 0;
  std::uint64_t appended_spans = 1;
  for (std::uint32_t i = 1; i < 80; ++i) {
    const auto result = spool->append(make_request(i, 500), i);
    REQUIRE(result.status == AppendStatus::kOk);
    evicted += result.evicted_spans;
    appended_spans += i;
    CHECK(spool->stats().bytes <= max_size);
  }
  CHECK(evicted > 0);
  // Nothing is lost silently: what is left plus what was reported evicted is everything.
  CHECK(spool->stats().spans + evicted == appended_spans);
  CHECK(spool->stats().bytes == total_size(segment_files(tmp.spool_dir())));

  // The oldest records are the ones gone: one contiguous run after record 0
  // (whose segment, leased, stays whole), with exactly the spans reported.
  const auto left = lease_all(*spool);
  REQUIRE_FALSE(left.empty());
  CHECK(left.back() == 79);
  CHECK(std::is_sorted(left.begin(), left.end()));
  std::vector<std::uint32_t> missing;
  std::uint64_t missing_spans = 0;
  for (std::uint32_t i = 1; i < 80; ++i) {
    if (std::find(left.begin(), left.end(), i) != left.end()) continue;
    missing.push_back(i);
    missing_spans += i;
  }
  REQUIRE_FALSE(missing.empty());
  CHECK(missing == range(missing.front(), missing.back() + 1));
  CHECK(evicted == missing_spans);
  CHECK(missing.back() + 1 < 80);
  spool->ack(held->id);  // the leased record survived the evictions
  CHECK(spool->stats().records == left.size());
}

TEST_CASE("spool: refuse_new refuses an append over max_size and evicts nothing") {
  TempDir tmp;
  const std::uint64_t max_size = 16 << 10;
  Registry registry;
  auto spool = open_spool(
      spool_config(tmp.spool_dir(), FsyncPolicy::kNever, max_size, WhenFull::kRefuseNew), registry);
  std::uint32_t appended = 0;
  for (;; ++appended) {
    const auto result = spool->append(make_request(appended, 500), 1);
    if (result.status == AppendStatus::kFull) {
      CHECK(result.evicted_spans == 0);
      CHECK_FALSE(result.error.empty());
      break;
    }
    REQUIRE(result.status == AppendStatus::kOk);
    REQUIRE(appended < 1000);
  }
  CHECK(appended >= 20);
  CHECK(spool->stats().records == appended);
  CHECK(spool->stats().bytes <= max_size);
  CHECK(spool->writable());  // full is not broken

  // Delivering the oldest segment's records frees its space.
  for (int i = 0; i < 3; ++i) {
    auto record = spool->lease_next();
    REQUIRE(record);
    spool->ack(record->id);
  }
  append_ok(*spool, appended, 500);
  CHECK(lease_all(*spool) == range(3, appended + 1));
}

TEST_CASE("spool: format helpers round-trip file names and ack entries") {
  CHECK(format::segment_file_name(42) == "00000000000000000042.seg");
  const auto parsed = format::parse_spool_file_name("00000000000000000042.ack");
  REQUIRE(parsed);
  CHECK(parsed->seq == 42);
  CHECK(parsed->is_ack);
  CHECK_FALSE(format::parse_spool_file_name("0000000000000000004x.seg"));
  CHECK_FALSE(format::parse_spool_file_name("42.seg"));
  CHECK_FALSE(format::parse_spool_file_name("99999999999999999999.seg"));  // > 2^64-1

  std::string log = format::encode_ack(7) + format::encode_ack(9) + format::encode_ack(11);
  log[format::kAckEntryBytes + 3] ^= 0x10;  // damage the entry for 9
  log += "\x01\x02";                        // torn tail
  CHECK(format::decode_acks(log) == std::vector<std::uint64_t>{7, 11});
}
