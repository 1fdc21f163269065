// redis:// store against a real redis-server, in server-time mode (Redis TIME): limits are exact
// across stores (as across processes), keys expire, a changed limit starts fresh, a dead or
// frozen Redis is kUnavailable within the timeout and a restarted one works again (scripts
// reloaded after NOSCRIPT). Also prints Redis memory per key for each algorithm.

#include <signal.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <span>
#include <thread>
#include <vector>

#include "ratelimit_scripts.hpp"
#include "store_test_util.hpp"

using namespace std::chrono_literals;
using namespace sd;
using namespace sd::ratelimit;
using Steady = std::chrono::steady_clock;
using test::decide_one;
using test::item;
using test::redis_cmd;

namespace {

double ms(Steady::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// Redis TIME in µs.
double redis_time_us(uint16_t port) {
  const auto v = redis_cmd(port, {"TIME"});
  REQUIRE(v.elements.size() == 2);
  return std::stod(v.elements[0].str) * 1e6 + std::stod(v.elements[1].str);
}

// Fixed windows are aligned to Redis's epoch clock: wait until the current window has more than
// `margin` left, so a test counting within one window cannot straddle two.
void clear_of_window_end(uint16_t port, std::chrono::seconds period, std::chrono::seconds margin) {
  const double p = static_cast<double>(period.count()) * 1e6;
  const double left = p - std::fmod(redis_time_us(port), p);
  if (left < static_cast<double>(margin.count()) * 1e6) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(left) + 10'000));
  }
}

long long pttl(uint16_t port, const std::string& key) {
  const auto v = redis_cmd(port, {"PTTL", key});
  REQUIRE(v.is_int());
  return v.integer;
}

long long memory_usage(uint16_t port, const std::string& key) {
  const auto v = redis_cmd(port, {"MEMORY", "USAGE", key, "SAMPLES", "0"});
  REQUIRE(v.is_int());
  return v.integer;
}

Limit limit_for(Algorithm a, uint64_t requests, Nanos period) {
  // Bucket algorithms get a burst so every field is exercised; windows must have none.
  const bool window =
      a == Algorithm::kFixedWindow || a == Algorithm::kSlidingLog || a == Algorithm::kSlidingWindow;
  return {.requests = requests, .period = period, .burst = window ? 0 : requests};
}

}  // namespace

TEST_CASE("redis store: server time fixed window admits exactly the limit", "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis));
  clear_of_window_end(redis->port(), 1h, 10s);
  const Limit limit{.requests = 50, .period = 1h};
  int allowed = 0;
  for (int i = 0; i < 200; ++i) {
    const Decision d = decide_one(*store, item(Algorithm::kFixedWindow, limit, "user:1"));
    allowed += d.allowed;
    CHECK(d.limit == 50);
    if (!d.allowed) {
      CHECK(d.remaining == 0);
      CHECK(d.retry_after > 0s);
      CHECK(d.retry_after <= 1h);
      CHECK(d.retry_after == d.reset_after);
    }
  }
  CHECK(allowed == 50);
  // A cost above the limit can never pass; a cost-0 report is allowed and changes nothing.
  CHECK(decide_one(*store, item(Algorithm::kFixedWindow, limit, "user:2", 51)).retry_after ==
        Nanos::max());
  const Decision report = decide_one(*store, item(Algorithm::kFixedWindow, limit, "user:1", 0));
  CHECK(report.allowed);
  CHECK(report.remaining == 0);
  CHECK(redis_cmd(redis->port(), {"EXISTS", "rl:fixed_window:3600000000:50:0:user:2"}).integer ==
        0);
}

TEST_CASE("redis store: two stores on one Redis share a limit exactly", "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  std::unique_ptr<Store> stores[] = {test::open(test::redis_uri(*redis, "?timeout_ms=2000")),
                                     test::open(test::redis_uri(*redis, "?timeout_ms=2000"))};

  SECTION("fixed window: 8 threads x 2 stores, exactly 1000 of 2400") {
    clear_of_window_end(redis->port(), 1h, 20s);
    const Limit limit{.requests = 1000, .period = 1h};
    std::atomic<int> allowed{0}, failed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 150; ++i) {
          for (auto& s : stores) {
            const StoreItem it = item(Algorithm::kFixedWindow, limit, "shared");
            auto r = s->decide({&it, 1});
            if (!r.is_ok())
              ++failed;
            else if ((*r)[0].allowed)
              ++allowed;
          }
        }
        (void)t;
      });
    }
    for (auto& t : threads) t.join();
    CHECK(failed == 0);
    CHECK(allowed == 1000);
  }

  SECTION("token bucket: allowed stays within burst + rate x elapsed") {
    const uint64_t burst = 20;
    const Limit limit{.requests = 20, .period = 1s, .burst = burst};  // 20/s after the burst
    std::atomic<int> allowed{0}, failed{0};
    const auto start = Steady::now();
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        while (Steady::now() - start < 700ms) {
          for (auto& s : stores) {
            const StoreItem it = item(Algorithm::kTokenBucket, limit, "tb");
            auto r = s->decide({&it, 1});
            if (!r.is_ok())
              ++failed;
            else if ((*r)[0].allowed)
              ++allowed;
          }
        }
      });
    }
    for (auto& t : threads) t.join();
    const double elapsed = std::chrono::duration<double>(Steady::now() - start).count();
    CHECK(failed == 0);
    CHECK(allowed >= static_cast<int>(burst));
    CHECK(allowed <= static_cast<double>(burst) + 20 * elapsed + 1);
    WARN("token bucket B=20 rate=20/s over "
         << elapsed << " s from 16 callers: " << allowed << " allowed (bound "
         << static_cast<double>(burst) + 20 * elapsed + 1 << ")");
  }
}

TEST_CASE("redis store: several items go in one call and each consumes on its own",
          "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis));
  std::vector<StoreItem> items;
  for (Algorithm a : kAllAlgorithms) items.push_back(item(a, limit_for(a, 1, 1h), "multi"));
  items.push_back(item(Algorithm::kGcra, limit_for(Algorithm::kGcra, 1, 1h), "multi"));  // again
  auto r = store->decide(items);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == items.size());
  for (size_t i = 0; i + 1 < items.size(); ++i) {
    INFO(algorithm_name(items[i].algorithm));
    CHECK((*r)[i].allowed);
  }
  CHECK_FALSE(r->back().allowed);  // the second gcra unit of a 1/hour limit
  // The leaky queue's second unit in the same call is queued, not denied (burst 1).
  auto again = store->decide(items);
  REQUIRE(again.is_ok());
  CHECK((*again)[2].allowed);
  CHECK((*again)[2].delay > 59min);

  // Pipelining: a call with 7 items costs about one round trip, not 7 (printed, not asserted:
  // timings on a shared machine are not a test).
  auto mean_us = [&](std::span<const StoreItem> batch) {
    const auto start = Steady::now();
    for (int i = 0; i < 500; ++i) REQUIRE(store->decide(batch).is_ok());
    return std::chrono::duration<double, std::micro>(Steady::now() - start).count() / 500;
  };
  const double one = mean_us({items.data(), 1});
  const double seven = mean_us({items.data(), 7});
  WARN("redis store decide() latency: " << one << " us for 1 item, " << seven
                                        << " us for 7 items in one call");
}

TEST_CASE("redis store: keys get a TTL and vanish, and a changed limit starts fresh",
          "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis, "?prefix=ttl:"));
  std::vector<std::string> keys;
  for (Algorithm a : kAllAlgorithms) {
    const StoreItem it = item(a, limit_for(a, 5, 300ms), "k");
    const Decision d = decide_one(*store, it);
    REQUIRE(d.allowed);
    keys.push_back(detail::state_key("ttl:", it));
    if (a == Algorithm::kSlidingLog) keys.push_back(detail::sum_key("ttl:", it));
  }
  for (const auto& k : keys) {
    INFO(k);
    const long long ms = pttl(redis->port(), k);
    CHECK(ms > 0);
    CHECK(ms <= 600 + detail::kTtlMarginMs);  // at most two windows (sliding window) + margin
  }
  const auto deadline = Steady::now() + 3s;
  size_t left = keys.size();
  while (left > 0 && Steady::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    left = 0;
    for (const auto& k : keys) left += redis_cmd(redis->port(), {"EXISTS", k}).integer;
  }
  CHECK(left == 0);

  // A changed limit is another key: fresh state, while the old one still counts for itself.
  const Limit three{.requests = 3, .period = 1h};
  clear_of_window_end(redis->port(), 1h, 5s);
  for (int i = 0; i < 3; ++i)
    CHECK(decide_one(*store, item(Algorithm::kFixedWindow, three, "c")).allowed);
  CHECK_FALSE(decide_one(*store, item(Algorithm::kFixedWindow, three, "c")).allowed);
  const Decision d =
      decide_one(*store, item(Algorithm::kFixedWindow, {.requests = 4, .period = 1h}, "c"));
  CHECK(d.allowed);
  CHECK(d.remaining == 3);
  CHECK(decide_one(*store, item(Algorithm::kSlidingWindow, three, "c")).remaining == 2);
}

TEST_CASE("redis store: a dead or frozen Redis is kUnavailable within the timeout",
          "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis, "?timeout_ms=50"));
  const StoreItem it = item(Algorithm::kGcra, {.requests = 100, .period = 1s}, "k");
  REQUIRE(decide_one(*store, it).allowed);  // a pooled connection exists now

  SECTION("killed, then restarted") {
    REQUIRE(redis->kill().is_ok());
    for (int i = 0; i < 3; ++i) {  // the pooled connection, then fresh connects
      const auto start = Steady::now();
      auto r = store->decide({&it, 1});
      const auto took = Steady::now() - start;
      REQUIRE_FALSE(r.is_ok());
      CHECK(r.status().code() == Code::kUnavailable);
      CHECK_THAT(r.status().message(), Catch::Contains(redis->address()));
      CHECK(took < 1s);
      WARN("redis killed: kUnavailable after " << ms(took) << " ms");
    }
    REQUIRE(redis->restart().is_ok());  // empty script cache: EVALSHA gets NOSCRIPT, reloads
    const Decision d = decide_one(*store, it);
    CHECK(d.allowed);
    CHECK(d.remaining == 99);  // no persistence: fresh state
    const auto stats = redis_cmd(redis->port(), {"INFO", "commandstats"});
    CHECK_THAT(stats.str, Catch::Contains("cmdstat_script|load:calls=1,"));
    CHECK_THAT(stats.str, Catch::Contains("cmdstat_evalsha:calls=2,"));  // NOSCRIPT + retry
  }

  SECTION("frozen (SIGSTOP): the timeout bounds the call") {
    const long pid = testing::redis_pid(redis->port());
    REQUIRE(pid > 0);
    REQUIRE(::kill(static_cast<pid_t>(pid), SIGSTOP) == 0);
    const auto start = Steady::now();
    auto r = store->decide({&it, 1});
    const auto took = Steady::now() - start;
    REQUIRE(::kill(static_cast<pid_t>(pid), SIGCONT) == 0);
    REQUIRE_FALSE(r.is_ok());
    CHECK(r.status().code() == Code::kUnavailable);
    CHECK_THAT(r.status().message(), Catch::Contains("timed out"));
    CHECK(took >= 45ms);
    CHECK(took < 1s);
    WARN("redis frozen: kUnavailable after " << ms(took) << " ms (timeout 50 ms)");
    CHECK(decide_one(*store, it).allowed);  // thawed: the broken connection was dropped
  }
}

TEST_CASE("redis store: memory per key for each algorithm", "[integration]") {
  testing::TempDir dir("sd-rl-store");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis));
  const std::string key = "user:0123456789";  // a 15-byte Match::key
  for (Algorithm a : kAllAlgorithms) {
    const StoreItem it = item(a, limit_for(a, 1000, 1h), key);
    REQUIRE(decide_one(*store, it).allowed);
    long long bytes = memory_usage(redis->port(), detail::state_key("rl:", it));
    if (a == Algorithm::kSlidingLog)
      bytes += memory_usage(redis->port(), detail::sum_key("rl:", it));
    CHECK(bytes > 0);
    WARN("redis memory " << algorithm_name(a) << ": " << bytes << " bytes/key after one decision");
  }
  // sliding_log grows with the entries in the window (one per admitting microsecond).
  for (uint64_t n : {100, 1000}) {
    const std::string log_key = "log" + std::to_string(n);  // StoreItem::key is a view
    const StoreItem it = item(Algorithm::kSlidingLog, {.requests = n, .period = 1h}, log_key);
    for (uint64_t i = 0; i < n; ++i) {
      REQUIRE(decide_one(*store, it).allowed);
    }
    CHECK_FALSE(decide_one(*store, it).allowed);
    const auto card = redis_cmd(redis->port(), {"ZCARD", detail::state_key("rl:", it)});
    const long long bytes = memory_usage(redis->port(), detail::state_key("rl:", it)) +
                            memory_usage(redis->port(), detail::sum_key("rl:", it));
    WARN("redis memory sliding_log: "
         << bytes << " bytes/key with " << card.integer << " entries (" << n << " admitted; "
         << bytes / (card.integer > 0 ? card.integer : 1) << " bytes/entry)");
    CHECK(card.integer >= static_cast<long long>(n) / 2);  // distinct µs, merged otherwise
  }
}
