#pragma once
// Where limiter state lives, chosen by URI:
//   memory://                      this process only (the embedded default); sharded, mutex per
//   shard redis://host:port[?timeout_ms=50&prefix=rl:]
//                                  one Redis shared by every rate-limiter process; each decision is
//                                  one atomic Lua script (EVALSHA, NOSCRIPT -> reload) keyed by the
//                                  rule's state key, with Redis's own clock (TIME) so processes
//                                  agree
// A decision needs the algorithm and limit with the key, so a changed rule (new limit or
// algorithm) starts fresh state instead of misreading the old one.

#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/status.hpp"
#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit {

struct StoreItem {
  Algorithm algorithm = Algorithm::kTokenBucket;
  Limit limit;
  std::string_view key;  // Match::key
  uint64_t cost = 1;
};

// A StoreItem that owns its key, for decide_async (the caller's request may be gone when the
// store gets to it).
struct OwnedStoreItem {
  Algorithm algorithm = Algorithm::kTokenBucket;
  Limit limit;
  std::string key;
  uint64_t cost = 1;
  StoreItem view() const { return {algorithm, limit, key, cost}; }
};

class Store {
 public:
  virtual ~Store() = default;
  // One decision per item, each atomic on its own (items are independent limits; envoy semantics:
  // every item that allows consumes, even if another item denies). A store failure (Redis down,
  // timeout) fails the whole call with kUnavailable; the caller applies its fail-open/closed
  // policy.
  virtual Result<std::vector<Decision>> decide(std::span<const StoreItem> items) = 0;
  // decide() without blocking the caller on network I/O. `done` is called exactly once with what
  // decide() would return, possibly inline (before decide_async returns) and possibly on another
  // thread (redis:// answers from its batching workers, and fails calls still queued at
  // destruction with kUnavailable). Default: decide() inline (memory:// is fast and local).
  using DecideDone = std::function<void(Result<std::vector<Decision>>)>;
  virtual void decide_async(std::vector<OwnedStoreItem> items, DecideDone done) {
    std::vector<StoreItem> views;
    views.reserve(items.size());
    for (const OwnedStoreItem& it : items) views.push_back(it.view());
    done(decide(views));
  }
  virtual std::string describe() const = 0;  // "memory://", "redis://127.0.0.1:6379"
  // Housekeeping (memory: evict idle keys); called about once a second by the service.
  virtual void maintain() {}
};

struct StoreOptions {
  const Clock* clock = nullptr;  // memory store's time source; nullptr: SystemClock
  // redis://: use this clock instead of Redis TIME (deterministic tests comparing the Redis
  // scripts with the in-memory algorithms; never in production — processes' clocks differ).
  // Keys still expire on Redis's clock (PEXPIRE from the decision's reset_after), so a FakeClock
  // trace must use periods far longer than the test runs.
  bool redis_client_time = false;
  size_t memory_shards = 16;
};

// Bad URI -> kInvalidArgument naming it; redis:// does not connect until the first decide().
Result<std::unique_ptr<Store>> open_store(std::string_view uri, StoreOptions options = {});

}  // namespace sd::ratelimit
