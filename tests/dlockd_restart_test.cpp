// Crash recovery of the real dlockd on a SQLite store: kill -9 mid-workload, restart on the same
// file and port, and check fencing tokens, held locks and lease expiry after the restart.

#include <csignal>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dlockd_test_support.hpp"

using namespace dlockd_test;

TEST_CASE("dlockd: kill -9 and restart keeps holds and never reuses tokens",
          "[integration][slow]") {
  sd::testing::TempDir dir("dlockd-restart");
  const std::string store = "sqlite://" + dir.file("state/dlock.db");
  Dlockd d = Dlockd::start(dir, store);
  const uint16_t port = d.port;
  auto c = d.client();

  // A lock held across the crash.
  constexpr long long kHeldTtlMs = 1500;
  std::string holder = new_lease(c, kHeldTtlMs);
  Reply held = post(c, "/v1/locks/held/acquire", {{"lease_id", holder}});
  REQUIRE(held.status == 200);
  uint64_t held_token = held.body["token"];

  // A workload issuing grants until the server dies under it.
  std::mutex mu;
  std::vector<uint64_t> tokens_before{held_token};
  std::vector<std::string> workload_leases;
  std::atomic<int> grants{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&, w] {
      auto wc = d.client();
      Reply l = post(wc, "/v1/leases", {{"ttl_ms", 10'000}});
      if (l.status != 201) return;
      std::string lease = l.body["lease_id"];
      {
        std::lock_guard lock(mu);
        workload_leases.push_back(lease);
      }
      const std::string name = "/v1/locks/work-" + std::to_string(w % 2);
      for (;;) {
        Reply g = post(wc, name + "/acquire", {{"lease_id", lease}, {"wait_ms", 1000}}, 3s);
        if (g.status != 200) return;  // the server is gone
        {
          std::lock_guard lock(mu);
          tokens_before.push_back(g.body["token"]);
        }
        ++grants;
        if (post(wc, name + "/release", {{"lease_id", lease}, {"token", g.body["token"]}}).status !=
            200) {
          return;
        }
      }
    });
  }
  auto give_up = std::chrono::steady_clock::now() + 5s;
  while (grants.load() < 200 && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(5ms);
  }
  const bool enough = grants.load() >= 200;
  const bool killed = d.proc->signal(SIGKILL).is_ok();
  const int exit_code = d.proc->wait();
  for (auto& t : workers) t.join();  // they stop on the first transport error
  REQUIRE(enough);
  REQUIRE(killed);
  REQUIRE(exit_code == 128 + SIGKILL);
  uint64_t max_before = *std::max_element(tokens_before.begin(), tokens_before.end());
  std::fprintf(stderr, "[dlockd_restart] killed after %d grants; highest token seen %llu\n",
               grants.load(), static_cast<unsigned long long>(max_before));

  // Restart on the same file and port.
  auto restart_t0 = std::chrono::steady_clock::now();
  d = Dlockd::start(dir, store, port);
  std::fprintf(stderr, "[dlockd_restart] restart until accepting: %.1f ms\n", ms_since(restart_t0));
  auto c2 = d.client();

  // The held lock survived with the same holder and token.
  Reply desc = get(c2, "/v1/locks/held");
  REQUIRE(desc.status == 200);
  REQUIRE(desc.body["holders"].size() == 1);
  REQUIRE(desc.body["holders"][0]["lease_id"] == holder);
  REQUIRE(desc.body["holders"][0]["token"] == held_token);
  std::string other = new_lease(c2, 10'000);
  Reply busy = post(c2, "/v1/locks/held/acquire", {{"lease_id", other}});
  REQUIRE(busy.status == 409);
  REQUIRE(busy.body["error"] == "locked");

  // Its lease can keep alive.
  Reply ka = post(c2, "/v1/leases/" + holder + "/keepalive", json::object());
  REQUIRE(ka.status == 200);
  auto last_keepalive = std::chrono::steady_clock::now();

  // New tokens are above every token handed out before the kill (also on the workload's names,
  // once their leases are revoked).
  for (const auto& l : workload_leases) {
    auto r = c2.del("/v1/leases/" + l);
    REQUIRE(r.is_ok());
    REQUIRE((r->status == 200 || r->status == 404));
  }
  for (const char* name : {"work-0", "work-1", "fresh"}) {
    Reply g = post(c2, std::string("/v1/locks/") + name + "/acquire", {{"lease_id", other}});
    REQUIRE(g.status == 200);
    INFO(name);
    REQUIRE(g.body["token"].get<uint64_t>() > max_before);
  }

  // Without further keepalives the held lock frees one TTL after the last keepalive.
  Reply w = post(c2, "/v1/locks/held/acquire", {{"lease_id", other}, {"wait_ms", 5000}}, 8s);
  double freed_after = ms_since(last_keepalive);
  std::fprintf(stderr,
               "[dlockd_restart] held lock freed %.1f ms after the last keepalive (ttl %lld)\n",
               freed_after, kHeldTtlMs);
  REQUIRE(w.status == 200);
  REQUIRE(w.body["token"].get<uint64_t>() > max_before);
  REQUIRE(freed_after >= kHeldTtlMs - 50);
  REQUIRE(freed_after < kHeldTtlMs + 1000);
  REQUIRE(get(c2, "/v1/leases/" + holder).status == 404);
}
