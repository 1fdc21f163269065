// Cross-process tests of the real dlockd binary over HTTP: contention, long-poll handoff latency,
// TTL expiry, a bad-input matrix, and mutual exclusion under 16 concurrent clients.

#include <csignal>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "dlockd_test_support.hpp"

using namespace dlockd_test;

TEST_CASE("dlockd: contention and long-poll handoff without polling", "[integration]") {
  sd::testing::TempDir dir("dlockd-http");
  Dlockd d = Dlockd::start(dir, "sqlite://" + dir.file("dlock.db"));
  auto c = d.client();
  std::string a = new_lease(c, 10'000), b = new_lease(c, 10'000);

  Reply g = post(c, "/v1/locks/res/acquire", {{"lease_id", a}});
  REQUIRE(g.status == 200);
  uint64_t t1 = g.body["token"];
  Reply busy = post(c, "/v1/locks/res/acquire", {{"lease_id", b}});
  REQUIRE(busy.status == 409);
  REQUIRE(busy.body["error"] == "locked");

  std::atomic<bool> answered{false};
  Reply waited;
  std::chrono::steady_clock::time_point answered_at;
  std::thread waiter([&] {
    auto wc = d.client();
    waited = post(wc, "/v1/locks/res/acquire", {{"lease_id", b}, {"wait_ms", 5000}}, 10s);
    answered_at = std::chrono::steady_clock::now();
    answered = true;
  });
  // Wait until the server has queued it.
  auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until) {
    Reply s = get(c, "/v1/locks/res");
    if (s.status == 200 && s.body["waiters"].size() == 1) break;
    std::this_thread::sleep_for(5ms);
  }
  REQUIRE(get(c, "/v1/locks/res").body["waiters"].size() == 1);
  REQUIRE_FALSE(answered.load());

  auto released_at = std::chrono::steady_clock::now();
  REQUIRE(post(c, "/v1/locks/res/release", {{"lease_id", a}, {"token", t1}}).status == 200);
  waiter.join();
  double handoff_ms = std::chrono::duration<double, std::milli>(answered_at - released_at).count();
  std::fprintf(stderr, "[dlockd_http] long-poll handoff latency: %.2f ms\n", handoff_ms);
  REQUIRE(waited.status == 200);
  REQUIRE(waited.body["lease_id"] == b);
  REQUIRE(waited.body["token"].get<uint64_t>() > t1);
  REQUIRE(handoff_ms < 200.0);

  auto m = c.get("/metrics");
  REQUIRE(m.is_ok());
  REQUIRE(m->status == 200);
  REQUIRE(m->body.find("dlock_grants_to_waiters_total 1") != std::string::npos);
  REQUIRE(m->body.find("dlock_handoff_seconds_count 1") != std::string::npos);
  REQUIRE(m->body.find("dlock_holds 1") != std::string::npos);
}

TEST_CASE("dlockd: TTL expiry frees the lock", "[integration]") {
  sd::testing::TempDir dir("dlockd-http");
  Dlockd d = Dlockd::start(dir, "sqlite://" + dir.file("dlock.db"));
  auto c = d.client();
  auto t0 = std::chrono::steady_clock::now();
  Reply g = post(c, "/v1/locks/ttl/acquire", {{"ttl_ms", 300}});
  REQUIRE(g.status == 200);
  REQUIRE(g.body["ttl_ms"] == 300);
  std::string other = new_lease(c, 10'000);
  REQUIRE(post(c, "/v1/locks/ttl/acquire", {{"lease_id", other}}).status == 409);

  Reply w = post(c, "/v1/locks/ttl/acquire", {{"lease_id", other}, {"wait_ms", 3000}}, 5s);
  double after_ms = ms_since(t0);
  std::fprintf(stderr, "[dlockd_http] lock freed by TTL expiry after %.1f ms (ttl 300 ms)\n",
               after_ms);
  REQUIRE(w.status == 200);
  REQUIRE(w.body["lease_id"] == other);
  REQUIRE(w.body["token"].get<uint64_t>() > g.body["token"].get<uint64_t>());
  REQUIRE(after_ms >= 290.0);
  REQUIRE(after_ms < 1000.0);
  Reply gone = get(c, "/v1/leases/" + g.body["lease_id"].get<std::string>());
  REQUIRE(gone.status == 404);
  REQUIRE(gone.body["error"] == "lease_not_found");
}

TEST_CASE("dlockd: bad input is a JSON 4xx and the server stays up, state unchanged",
          "[integration]") {
  sd::testing::TempDir dir("dlockd-http");
  Dlockd d = Dlockd::start(dir, "sqlite://" + dir.file("dlock.db"));
  auto c = d.client();
  std::string a = new_lease(c, 30'000), b = new_lease(c, 30'000);
  Reply g = post(c, "/v1/locks/res/acquire", {{"lease_id", a}});
  REQUIRE(g.status == 200);
  Reply before = get(c, "/v1/locks/res");
  REQUIRE(before.status == 200);
  before.body["holders"][0].erase("ttl_ms_left");

  using sd::net::Method;
  struct Case {
    Method method;
    std::string target;
    std::string body;
    int status;
  };
  const std::string lb = json{{"lease_id", b}}.dump();
  std::vector<Case> cases = {
      {Method::kPost, "/v1/locks/res/acquire", std::string((1 << 20) + 1, 'x'), 413},
      {Method::kGet, "/v1/no/such/route", "", 404},
      {Method::kDelete, "/v1/locks/res", "", 405},
      {Method::kPut, "/v1/leases", "{}", 405},
      {Method::kPost, "/v1/leases", "{\"ttl_ms\":", 400},
      {Method::kPost, "/v1/leases", "[]", 400},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":"100"})", 400},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":1.5})", 400},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":false})", 400},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":-5})", 400},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":0})", 400},
      {Method::kPost, "/v1/leases", R"({"ttl_ms":360000000000})", 400},
      {Method::kPost, "/v1/locks/res/acquire", "{oops", 400},
      {Method::kPost, "/v1/locks/res/acquire", R"({"lease_id":"short"})", 400},
      {Method::kPost, "/v1/locks/res/acquire", json{{"lease_id", b}, {"ttl_ms", 1000}}.dump(), 400},
      {Method::kPost, "/v1/locks/res/acquire", json{{"lease_id", b}, {"mode", "x"}}.dump(), 400},
      {Method::kPost, "/v1/locks/res/acquire", json{{"lease_id", b}, {"wait_ms", -1}}.dump(), 400},
      {Method::kPost, "/v1/locks/res/acquire", json{{"lease_id", b}, {"wait_ms", 300001}}.dump(),
       400},
      {Method::kPost, "/v1/locks/%FF/acquire", lb, 400},
      {Method::kPost, "/v1/locks/" + std::string(300, 'n') + "/acquire", lb, 400},
      {Method::kPost, "/v1/locks//acquire", lb, 404},
      {Method::kPost, "/v1/locks/res/release", json{{"lease_id", a}, {"token", -1}}.dump(), 400},
      {Method::kPost, "/v1/locks/res/release", json{{"lease_id", a}, {"token", "7"}}.dump(), 400},
      {Method::kPost, "/v1/locks/res/release", json{{"lease_id", b}, {"token", 1}}.dump(), 409},
      {Method::kGet, "/v1/leases/xyz", "", 400},
      {Method::kGet, "/v1/locks?limit=99999", "", 400},
  };
  for (const auto& k : cases) {
    INFO(sd::net::method_name(k.method)
         << " " << k.target.substr(0, 80) << " " << k.body.substr(0, 80));
    auto r = c.request(k.method, k.target, k.body, {{"Content-Type", "application/json"}});
    REQUIRE(r.is_ok());
    INFO("response: " << r->body.substr(0, 200));
    REQUIRE(r->status == k.status);
    Reply rep = to_reply(r);
    REQUIRE(is_json_error(rep));
  }

  auto health = c.get("/healthz");
  REQUIRE(health.is_ok());
  REQUIRE(health->status == 200);
  Reply after = get(c, "/v1/locks/res");
  REQUIRE(after.status == 200);
  after.body["holders"][0].erase("ttl_ms_left");
  REQUIRE(after.body == before.body);
  REQUIRE(get(c, "/v1/leases/" + b).body["holds"] == 0);
}

TEST_CASE("dlockd: 16 clients increment a shared counter under the lock", "[integration][slow]") {
  sd::testing::TempDir dir("dlockd-http");
  Dlockd d = Dlockd::start(dir, "sqlite://" + dir.file("dlock.db"), 0, {"--threads", "4"});
  constexpr int kThreads = 16;
  constexpr int kIters = 50;

  long counter = 0;              // protected only by the distributed lock
  std::vector<uint64_t> tokens;  // appended inside the critical section: grant order
  std::mutex errors_mu;
  std::vector<std::string> errors;
  auto fail = [&](std::string e) {
    std::lock_guard lock(errors_mu);
    errors.push_back(std::move(e));
  };

  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      auto c = d.client();
      Reply l = post(c, "/v1/leases", {{"ttl_ms", 60'000}});
      if (l.status != 201) return fail("lease: " + std::to_string(l.status));
      std::string lease = l.body["lease_id"];
      for (int i = 0; i < kIters; ++i) {
        Reply g =
            post(c, "/v1/locks/counter/acquire", {{"lease_id", lease}, {"wait_ms", 20'000}}, 30s);
        if (g.status != 200)
          return fail("acquire: " + std::to_string(g.status) + " " + g.body.dump());
        uint64_t token = g.body["token"];
        long v = counter;
        tokens.push_back(token);
        std::this_thread::yield();
        counter = v + 1;
        Reply r = post(c, "/v1/locks/counter/release", {{"lease_id", lease}, {"token", token}});
        if (r.status != 200)
          return fail("release: " + std::to_string(r.status) + " " + r.body.dump());
      }
    });
  }
  for (auto& th : threads) th.join();
  double total_ms = ms_since(t0);
  std::fprintf(stderr, "[dlockd_http] %d x %d lock/increment/unlock cycles in %.0f ms (%.0f/s)\n",
               kThreads, kIters, total_ms, kThreads * kIters * 1000.0 / total_ms);
  REQUIRE(errors.empty());
  REQUIRE(counter == kThreads * kIters);
  REQUIRE(tokens.size() == static_cast<size_t>(kThreads * kIters));
  for (size_t i = 1; i < tokens.size(); ++i) {
    INFO("i=" << i);
    REQUIRE(tokens[i] > tokens[i - 1]);
  }
}

TEST_CASE("dlockd: bad flags and store URIs are config errors", "[integration]") {
  sd::testing::TempDir dir("dlockd-http");
  for (std::vector<std::string> args : {std::vector<std::string>{"--store", "postgres://x"},
                                        {"--store", "sqlite://"},
                                        {"--store", "memory"},
                                        {"--port", "70000"},
                                        {"--no-such-flag"}}) {
    std::vector<std::string> argv = {SD_DLOCKD_BIN};
    argv.insert(argv.end(), args.begin(), args.end());
    sd::testing::ProcessOptions opts;
    opts.stdout_path = dir.file("out.log");
    opts.stderr_path = dir.file("err.log");
    auto p = sd::testing::Process::spawn(argv, opts);
    REQUIRE(p.is_ok());
    auto rc = p->wait_for(5s);
    INFO(args[0] << " " << (args.size() > 1 ? args[1] : ""));
    REQUIRE(rc.has_value());
    REQUIRE(*rc == 2);
  }
  REQUIRE_FALSE(sd::testing::read_file(dir.file("err.log")).empty());

  // --port 0 picks a port and prints it; env fallback for the store.
  sd::testing::ProcessOptions opts;
  opts.stdout_path = dir.file("listen.log");
  opts.env["DLOCKD_STORE"] = "memory://";
  auto p = sd::testing::Process::spawn({SD_DLOCKD_BIN, "--port", "0"}, opts);
  REQUIRE(p.is_ok());
  std::string line;
  auto until = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < until) {
    line = sd::testing::read_file(dir.file("listen.log"));
    if (line.find('\n') != std::string::npos) break;
    std::this_thread::sleep_for(10ms);
  }
  const std::string prefix = "dlockd listening on http://127.0.0.1:";
  REQUIRE(line.starts_with(prefix));
  REQUIRE(line.find("(store: memory") != std::string::npos);
  int port = std::stoi(line.substr(prefix.size()));
  REQUIRE(port > 0);
  sd::net::HttpClient c("127.0.0.1", static_cast<uint16_t>(port));
  REQUIRE(get(c, "/healthz").status == 200);
  REQUIRE(p->stop() == 0);  // SIGTERM: graceful, exit 0
}

TEST_CASE("dlockd: SIGTERM answers parked long-polls and exits promptly", "[integration]") {
  sd::testing::TempDir dir("dlockd-http");
  Dlockd d = Dlockd::start(dir, "memory://");
  auto c = d.client();
  std::string a = new_lease(c, 30'000), b = new_lease(c, 30'000);
  REQUIRE(post(c, "/v1/locks/res/acquire", {{"lease_id", a}}).status == 200);
  Reply waited;
  std::thread waiter([&] {
    auto wc = d.client();
    waited = post(wc, "/v1/locks/res/acquire", {{"lease_id", b}, {"wait_ms", 60'000}}, 20s);
  });
  auto until = std::chrono::steady_clock::now() + 3s;
  while (std::chrono::steady_clock::now() < until &&
         get(c, "/v1/locks/res").body["waiters"].size() != 1) {
    std::this_thread::sleep_for(5ms);
  }
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(d.proc->signal(SIGTERM).is_ok());
  auto rc = d.proc->wait_for(3s);
  double stop_ms = ms_since(t0);
  waiter.join();
  std::fprintf(stderr, "[dlockd_http] SIGTERM with a parked long-poll: exit after %.1f ms\n",
               stop_ms);
  REQUIRE(rc.has_value());
  REQUIRE(*rc == 0);
  REQUIRE(stop_ms < 1000.0);
  REQUIRE(waited.status == 503);
  REQUIRE(is_json_error(waited));
}

TEST_CASE("dlockd: a long-poll whose client disconnects leaves the queue", "[integration]") {
  sd::testing::TempDir dir("dlockd-http");
  Dlockd d = Dlockd::start(dir, "memory://");
  auto c = d.client();
  std::string a = new_lease(c, 30'000), b = new_lease(c, 30'000), cl = new_lease(c, 30'000);
  Reply g = post(c, "/v1/locks/x/acquire", {{"lease_id", a}});
  REQUIRE(g.status == 200);
  uint64_t t1 = g.body["token"];

  // B long-polls, then its client gives up after ~100 ms and closes the connection. Its lease
  // stays alive (as a client library session keeps it), so only the disconnect can drop it.
  auto waiters_of = [&](const std::string& lease) {
    Reply info = get(c, "/v1/locks/x");
    size_t n = 0;
    for (const auto& w : info.body["waiters"]) n += w["lease_id"] == lease ? 1 : 0;
    return n;
  };
  {
    auto bc = d.client();
    Reply rb = post(bc, "/v1/locks/x/acquire", {{"lease_id", b}, {"wait_ms", 10'000}}, 100ms);
    REQUIRE(rb.status == 0);  // timed out client-side; the connection is closed
  }
  auto t0 = std::chrono::steady_clock::now();
  while (waiters_of(b) != 0 && ms_since(t0) < 2000) std::this_thread::sleep_for(5ms);
  std::fprintf(stderr, "[dlockd_http] disconnected long-poll left the queue after %.1f ms\n",
               ms_since(t0));
  REQUIRE(waiters_of(b) == 0);

  Reply waited;
  std::chrono::steady_clock::time_point answered_at;
  std::thread waiter([&] {
    auto wc = d.client();
    waited = post(wc, "/v1/locks/x/acquire", {{"lease_id", cl}, {"wait_ms", 10'000}}, 15s);
    answered_at = std::chrono::steady_clock::now();
  });
  t0 = std::chrono::steady_clock::now();
  while (waiters_of(cl) != 1 && ms_since(t0) < 3000) std::this_thread::sleep_for(5ms);
  const bool queued = waiters_of(cl) == 1;
  auto released_at = std::chrono::steady_clock::now();
  const int released = post(c, "/v1/locks/x/release", {{"lease_id", a}, {"token", t1}}).status;
  waiter.join();
  REQUIRE(queued);
  REQUIRE(released == 200);
  double handoff_ms = std::chrono::duration<double, std::milli>(answered_at - released_at).count();
  REQUIRE(waited.status == 200);
  REQUIRE(waited.body["lease_id"] == cl);
  REQUIRE(handoff_ms < 500.0);

  Reply info = get(c, "/v1/locks/x");
  REQUIRE(info.body["holders"].size() == 1);
  REQUIRE(info.body["holders"][0]["lease_id"] == cl);
  REQUIRE(info.body["waiters"].empty());
  REQUIRE(get(c, "/v1/leases/" + b).body["holds"] == 0);
  auto m = c.get("/metrics");
  REQUIRE(m.is_ok());
  REQUIRE(m->body.find("dlock_waiters_abandoned_total 1") != std::string::npos);
}
