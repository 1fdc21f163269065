// redis:// store's decide_async against a real redis-server: concurrent calls are batched into
// shared pipelines yet stay exact (one fixed window admits exactly its limit), every done runs
// exactly once, a dead Redis fails every pending call with kUnavailable within the timeout, and
// destroying the store completes the calls still queued.

#include <signal.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "store_impl.hpp"
#include "store_test_util.hpp"

using namespace std::chrono_literals;
using namespace sd;
using namespace sd::ratelimit;
using Steady = std::chrono::steady_clock;

namespace {

using Outcome = Result<std::vector<Decision>>;

// Collects the outcome of calls 0..n-1, counting how often each call's done ran.
class Tracker {
 public:
  explicit Tracker(size_t n) : runs_(n, 0), outcomes_(n) {}

  Store::DecideDone done_for(size_t i) {
    return [this, i](Outcome r) {
      std::lock_guard lock(mu_);
      if (runs_[i]++ == 0) outcomes_[i].emplace(std::move(r));
      ++finished_;
      cv_.notify_all();
    };
  }
  bool wait_all(Steady::duration timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [this] { return finished_ >= runs_.size(); });
  }
  // After wait_all: no more done calls are expected.
  const std::vector<int>& runs() const { return runs_; }
  const Outcome& outcome(size_t i) const { return *outcomes_[i]; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<int> runs_;                         // guarded by mu_
  std::vector<std::optional<Outcome>> outcomes_;  // guarded by mu_
  size_t finished_ = 0;                           // guarded by mu_
};

OwnedStoreItem owned(Algorithm a, Limit l, std::string key) {
  OwnedStoreItem it;
  it.algorithm = a;
  it.limit = l;
  it.key = std::move(key);
  return it;
}

// Fixed windows are aligned to Redis's epoch clock: wait until the current window has more than
// `margin` left, so a test counting within one window cannot straddle two.
void clear_of_window_end(uint16_t port, std::chrono::seconds period, std::chrono::seconds margin) {
  const auto v = test::redis_cmd(port, {"TIME"});
  REQUIRE(v.elements.size() == 2);
  const double now_us = std::stod(v.elements[0].str) * 1e6 + std::stod(v.elements[1].str);
  const double p = static_cast<double>(period.count()) * 1e6;
  const double left = p - std::fmod(now_us, p);
  if (left < static_cast<double>(margin.count()) * 1e6) {
    std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int64_t>(left) + 10'000));
  }
}

}  // namespace

TEST_CASE("redis store: concurrent decide_async calls batch and stay exact", "[integration]") {
  testing::TempDir dir("sd-rl-batch");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis));
  clear_of_window_end(redis->port(), 1h, 10s);

  constexpr size_t kThreads = 8, kPerThread = 100, kCalls = kThreads * kPerThread;
  constexpr uint64_t kLimit = 150;
  const Limit shared{.requests = kLimit, .period = 1h};
  const Limit roomy{.requests = 1'000'000, .period = 1h};
  Tracker t(kCalls);
  std::vector<std::thread> threads;
  for (size_t th = 0; th < kThreads; ++th) {
    threads.emplace_back([&, th] {
      for (size_t j = 0; j < kPerThread; ++j) {
        // Two items per call: the replies must be split back per call, in item order.
        std::vector<OwnedStoreItem> items;
        items.push_back(owned(Algorithm::kFixedWindow, shared, "batch:shared"));
        items.push_back(owned(Algorithm::kFixedWindow, roomy, "batch:t" + std::to_string(th)));
        store->decide_async(std::move(items), t.done_for(th * kPerThread + j));
      }
    });
  }
  for (std::thread& th : threads) th.join();
  REQUIRE(t.wait_all(10s));

  size_t allowed = 0;
  for (size_t i = 0; i < kCalls; ++i) {
    CHECK(t.runs()[i] == 1);
    const Outcome& r = t.outcome(i);
    INFO("call " << i << ": " << (r.is_ok() ? "" : r.status().message()));
    REQUIRE(r.is_ok());
    REQUIRE(r->size() == 2);
    allowed += (*r)[0].allowed ? 1 : 0;
    CHECK((*r)[1].allowed);
    CHECK((*r)[1].limit == roomy.requests);
  }
  CHECK(allowed == kLimit);
  // Every per-thread key consumed exactly its thread's calls.
  for (size_t th = 0; th < kThreads; ++th) {
    const auto v =
        test::redis_cmd(redis->port(), {"KEYS", "rl:fixed_window:*:batch:t" + std::to_string(th)});
    REQUIRE(v.elements.size() == 1);
    const auto val = test::redis_cmd(redis->port(), {"GET", v.elements[0].str});
    CHECK_THAT(val.str, Catch::EndsWith(" " + std::to_string(kPerThread)));
  }
  const auto batches = detail::redis_store_batches(*store);
  REQUIRE(batches.has_value());
  CHECK(*batches >= 1);
  CHECK(*batches < kCalls);
  WARN(kCalls << " concurrent calls went out in " << *batches << " pipelines");
  // The synchronous path still works next to the batched one.
  const StoreItem it = test::item(Algorithm::kFixedWindow, shared, "batch:shared");
  CHECK_FALSE(test::decide_one(*store, it).allowed);
  CHECK(detail::redis_store_batches(*test::open("memory://")) == std::nullopt);
}

TEST_CASE("redis store: decide_async on a dead Redis fails every call within the timeout",
          "[integration]") {
  testing::TempDir dir("sd-rl-batch");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis, "?timeout_ms=50"));
  const Limit limit{.requests = 100, .period = 1s};
  REQUIRE(test::decide_one(*store, test::item(Algorithm::kGcra, limit, "k")).allowed);

  REQUIRE(redis->kill().is_ok());
  constexpr size_t kCalls = 200;
  Tracker t(kCalls);
  const auto start = Steady::now();
  for (size_t i = 0; i < kCalls; ++i) {
    std::vector<OwnedStoreItem> items;
    items.push_back(owned(Algorithm::kGcra, limit, "k"));
    store->decide_async(std::move(items), t.done_for(i));
  }
  REQUIRE(t.wait_all(5s));
  const auto took = Steady::now() - start;
  for (size_t i = 0; i < kCalls; ++i) {
    CHECK(t.runs()[i] == 1);
    REQUIRE_FALSE(t.outcome(i).is_ok());
    CHECK(t.outcome(i).status().code() == Code::kUnavailable);
  }
  CHECK(took < 1s);
  const double took_ms = std::chrono::duration<double, std::milli>(took).count();
  WARN("redis killed: " << kCalls << " async calls failed after " << took_ms << " ms");

  // An invalid item is answered at once, without Redis.
  std::optional<Outcome> bad;
  std::vector<OwnedStoreItem> items;
  items.push_back(owned(Algorithm::kFixedWindow, {.requests = 0, .period = 1s}, "k"));
  store->decide_async(std::move(items), [&bad](Outcome r) { bad.emplace(std::move(r)); });
  REQUIRE(bad.has_value());
  CHECK(bad->status().code() == Code::kInvalidArgument);
}

TEST_CASE("redis store: destruction completes the decide_async calls still queued",
          "[integration]") {
  testing::TempDir dir("sd-rl-batch");
  auto redis = test::start_redis(dir);
  auto store = test::open(test::redis_uri(*redis, "?timeout_ms=200"));
  const Limit limit{.requests = 100, .period = 1s};
  REQUIRE(test::decide_one(*store, test::item(Algorithm::kGcra, limit, "k")).allowed);

  // Frozen: the workers sit in their batch until the timeout, so later calls stay queued.
  const long pid = testing::redis_pid(redis->port());
  REQUIRE(pid > 0);
  REQUIRE(::kill(static_cast<pid_t>(pid), SIGSTOP) == 0);
  constexpr size_t kCalls = 100;
  Tracker t(kCalls);
  for (size_t i = 0; i < kCalls; ++i) {
    std::vector<OwnedStoreItem> items;
    items.push_back(owned(Algorithm::kGcra, limit, "k"));
    store->decide_async(std::move(items), t.done_for(i));
    if (i == 0) std::this_thread::sleep_for(20ms);  // a worker is on the wire with call 0
  }
  store.reset();  // returns once every done ran
  REQUIRE(::kill(static_cast<pid_t>(pid), SIGCONT) == 0);
  REQUIRE(t.wait_all(0s));
  size_t shut_down = 0;
  for (size_t i = 0; i < kCalls; ++i) {
    CHECK(t.runs()[i] == 1);
    REQUIRE_FALSE(t.outcome(i).is_ok());
    CHECK(t.outcome(i).status().code() == Code::kUnavailable);
    if (t.outcome(i).status().message().find("shut down") != std::string::npos) ++shut_down;
  }
  CHECK(shut_down > 0);
}
