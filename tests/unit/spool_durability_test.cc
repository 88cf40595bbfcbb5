// The spool's durability: fsync policies (group commit), a SIGKILLed writer,
// and open() failures.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/delivery/spool.h"
#include "tests/unit/spool_test_support.h"

using namespace spanrelay::delivery::spool_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("spool: fsync always group-commits concurrent appenders") {
  TempDir tmp;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  const auto config = spool_config(tmp.spool_dir(), FsyncPolicy::kAlways);
  Registry registry;
  // Hold the first group fsync until all 8 appenders have written a record:
  // that makes at least one fsync cover 8 appends, deterministically.
  std::atomic<Spool*> spool_ptr{nullptr};
  std::atomic<bool> first_group{true};
  SpoolHooks hooks;
  hooks.before_group_fsync = [&] {
    if (!first_group.exchange(false)) return;
    while (spool_ptr.load()->stats().records < kThreads) std::this_thread::yield();
  };
  auto spool = open_spool(config, registry, std::move(hooks));
  spool_ptr = spool.get();

  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const auto result = spool->append(make_request(t * 1000 + i), 1);
        if (result.status != AppendStatus::kOk) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures == 0);
  const double fsyncs = registry.value("spanrelay_spool_fsyncs_total");
  CHECK(fsyncs >= 1);
  CHECK(fsyncs < kThreads * kPerThread);

  spool.reset();
  Registry reopened_registry;
  auto reopened = open_spool(config, reopened_registry);
  CHECK(reopened->recovered_records() == kThreads * kPerThread);
  std::vector<int> next_per_thread(kThreads, 0);
  for (const std::uint32_t index : lease_all(*reopened)) {
    const int thread = static_cast<int>(index / 1000);
    CHECK(static_cast<int>(index % 1000) == next_per_thread[thread]++);  // per-thread order kept
  }
  CHECK(next_per_thread == std::vector<int>(kThreads, kPerThread));
}

TEST_CASE("spool: fsync interval syncs in the background, fsync never does not sync") {
  TempDir tmp;
  SUBCASE("interval") {
    auto config = spool_config(tmp.spool_dir(), FsyncPolicy::kInterval);
    config.fsync_interval = std::chrono::milliseconds(5);
    Registry registry;
    auto spool = open_spool(config, registry);
    append_ok(*spool, 0);
    // Await the background flusher (bounded, so a broken flusher fails the test).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (registry.value("spanrelay_spool_fsyncs_total") < 1 &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    CHECK(registry.value("spanrelay_spool_fsyncs_total") >= 1);
  }
  SUBCASE("never") {
    Registry registry;
    {
      auto spool = open_spool(spool_config(tmp.spool_dir(), FsyncPolicy::kNever), registry);
      for (std::uint32_t i = 0; i < 10; ++i) append_ok(*spool, i);
      auto record = spool->lease_next();
      REQUIRE(record);
      spool->ack(record->id);
    }
    CHECK(registry.value("spanrelay_spool_fsyncs_total") == 0);
  }
}

TEST_CASE("spool: open errors name the path; one spool per directory") {
  TempDir tmp;
  write_file(tmp.path() + "/plain-file", "x");
  Registry registry;
  auto blocked = Spool::open(spool_config(tmp.path() + "/plain-file/spool"), registry);
  REQUIRE_FALSE(blocked.ok());
  CHECK(blocked.error().message.find(tmp.path() + "/plain-file/spool") != std::string::npos);

  auto empty = Spool::open(spool_config(""), registry);
  CHECK_FALSE(empty.ok());

  auto first = open_spool(spool_config(tmp.spool_dir()), registry);
  auto second = Spool::open(spool_config(tmp.spool_dir()), registry);
  REQUIRE_FALSE(second.ok());
  CHECK(second.error().message.find(tmp.spool_dir()) != std::string::npos);
  first.reset();
  CHECK(Spool::open(spool_config(tmp.spool_dir()), registry).ok());
}

TEST_CASE("spool: an append that returned survives SIGKILL of the process (fsync always)") {
  TempDir tmp;
  const auto config = spool_config(tmp.spool_dir(), FsyncPolicy::kAlways, 1ull << 20);
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(pipe_fds[0]);
    Registry child_registry;
    auto spool = Spool::open(config, child_registry);
    if (!spool.ok()) ::_exit(2);
    for (std::uint32_t i = 0;; ++i) {
      if (spool.value()->append(make_request(i, 2000), 1).status != AppendStatus::kOk) ::_exit(3);
      if (::write(pipe_fds[1], &i, sizeof i) != sizeof i) ::_exit(4);
    }
  }
  ::close(pipe_fds[1]);
  std::set<std::uint32_t> returned;
  std::uint32_t index = 0;
  bool killed = false;
  while (::read(pipe_fds[0], &index, sizeof index) == sizeof index) {
    returned.insert(index);
    if (!killed && returned.size() == 200) {
      REQUIRE(::kill(child, SIGKILL) == 0);
      killed = true;
    }
  }
  ::close(pipe_fds[0]);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  REQUIRE(killed);
  CHECK(WIFSIGNALED(status));

  Registry registry;
  auto spool = open_spool(config, registry);
  const auto replayed = lease_all(*spool);
  const std::set<std::uint32_t> present(replayed.begin(), replayed.end());
  for (const std::uint32_t i : returned) {
    CHECK_MESSAGE(present.count(i) == 1, "append ", i, " returned but is lost");
  }
  CHECK(std::is_sorted(replayed.begin(), replayed.end()));
  CHECK(registry.value("spanrelay_spool_corrupt_records_total") <= 1);  // at most a torn tail
}
