// memory:// store: decisions match a bare limiter, items are independent, threads on one key
// share the limit exactly, a changed limit starts fresh, and maintain() evicts idle keys.

#include <catch2/catch.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "store_impl.hpp"
#include "store_test_util.hpp"

using namespace std::chrono_literals;
using namespace sd;
using namespace sd::ratelimit;
using test::decide_one;
using test::item;

namespace {

StoreOptions fake(const FakeClock& clock, size_t shards = 16) {
  StoreOptions o;
  o.clock = &clock;
  o.memory_shards = shards;
  return o;
}

}  // namespace

TEST_CASE("memory store: decisions are the limiter's and each item consumes on its own", "[unit]") {
  FakeClock clock;
  auto store = test::open("memory://", fake(clock));
  auto ref = make_limiter(Algorithm::kTokenBucket, {.requests = 3, .period = 1s});
  const Limit three{.requests = 3, .period = 1s};
  for (int i = 0; i < 5; ++i) {
    const Decision d = decide_one(*store, item(Algorithm::kTokenBucket, three, "k"));
    const Decision r = ref->decide("k", 1, clock.now());
    CHECK(d.allowed == r.allowed);
    CHECK(d.remaining == r.remaining);
    CHECK(d.reset_after == r.reset_after);
    CHECK(d.retry_after == r.retry_after);
    CHECK(d.limit == 3);
    clock.advance(100ms);
  }
  // Envoy semantics: one item denying does not stop the others from consuming.
  const Limit one{.requests = 1, .period = 1h};
  const StoreItem items[] = {item(Algorithm::kFixedWindow, one, "a"),
                             item(Algorithm::kFixedWindow, one, "a"),
                             item(Algorithm::kFixedWindow, one, "b")};
  auto r = store->decide(items);
  REQUIRE(r.is_ok());
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].allowed);
  CHECK_FALSE((*r)[1].allowed);
  CHECK((*r)[2].allowed);
  CHECK_FALSE(decide_one(*store, item(Algorithm::kFixedWindow, one, "b")).allowed);
}

TEST_CASE("memory store: an invalid limit fails the call before anything is consumed", "[unit]") {
  FakeClock clock;
  auto store = test::open("memory://", fake(clock));
  const Limit one{.requests = 1, .period = 1h};
  const StoreItem items[] = {item(Algorithm::kFixedWindow, one, "a"),
                             item(Algorithm::kFixedWindow, {.requests = 0, .period = 1s}, "b")};
  auto r = store->decide(items);
  REQUIRE_FALSE(r.is_ok());
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK_THAT(r.status().message(), Catch::Contains("fixed_window: requests must be > 0"));
  CHECK(decide_one(*store, item(Algorithm::kFixedWindow, one, "a")).allowed);  // not consumed
}

TEST_CASE("memory store: a changed limit or algorithm uses fresh state", "[unit]") {
  FakeClock clock;
  auto store = test::open("memory://", fake(clock));
  const Limit three{.requests = 3, .period = 1h};
  for (int i = 0; i < 3; ++i)
    CHECK(decide_one(*store, item(Algorithm::kFixedWindow, three, "k")).allowed);
  CHECK_FALSE(decide_one(*store, item(Algorithm::kFixedWindow, three, "k")).allowed);
  const Decision d =
      decide_one(*store, item(Algorithm::kFixedWindow, {.requests = 4, .period = 1h}, "k"));
  CHECK(d.allowed);
  CHECK(d.remaining == 3);
  CHECK(decide_one(*store, item(Algorithm::kSlidingLog, three, "k")).remaining == 2);
}

TEST_CASE("memory store: threads on one key share the limit exactly", "[unit]") {
  FakeClock clock;
  for (size_t shards : {size_t{1}, size_t{16}}) {
    auto store = test::open("memory://", fake(clock, shards));
    const Limit limit{.requests = 1000, .period = 1h};
    std::atomic<int> allowed{0}, other_allowed{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        const std::string other = "other" + std::to_string(t);
        for (int i = 0; i < 500; ++i) {
          // Two items per call: the shared key and a per-thread key (500 < 1000: all pass).
          const StoreItem items[] = {item(Algorithm::kFixedWindow, limit, "shared"),
                                     item(Algorithm::kFixedWindow, limit, other)};
          auto r = store->decide(items);
          if (r.is_ok() && (*r)[0].allowed) ++allowed;
          if (r.is_ok() && (*r)[1].allowed) ++other_allowed;
        }
      });
    }
    for (auto& t : threads) t.join();
    CHECK(allowed == 1000);
    CHECK(other_allowed == 8 * 500);
  }
}

TEST_CASE("memory store: maintain evicts idle keys and keeps busy ones", "[unit]") {
  FakeClock clock;
  auto store = test::open("memory://", fake(clock, 4));
  const Limit fast{.requests = 10, .period = 1s};
  const Limit slow{.requests = 10, .period = 1h};
  for (int i = 0; i < 100; ++i) {
    REQUIRE(
        decide_one(*store, item(Algorithm::kTokenBucket, fast, "k" + std::to_string(i))).allowed);
  }
  REQUIRE(decide_one(*store, item(Algorithm::kSlidingLog, slow, "busy")).allowed);
  CHECK(detail::memory_store_key_count(*store) == 101);
  store->maintain();
  CHECK(detail::memory_store_key_count(*store) == 101);  // nothing idle yet
  clock.advance(50ms);                                   // half a token back: still not full
  store->maintain();
  CHECK(detail::memory_store_key_count(*store) == 101);
  clock.advance(1s);
  store->maintain();
  CHECK(detail::memory_store_key_count(*store) == 1);  // only the hour-long log entry is left
  clock.advance(1h);
  store->maintain();
  CHECK(detail::memory_store_key_count(*store) == 0);
  // An evicted key decides like a fresh one.
  CHECK(decide_one(*store, item(Algorithm::kTokenBucket, fast, "k1")).remaining == 9);
}
