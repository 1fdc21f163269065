// redis:// store: every decision is one Lua script run atomically by Redis (ratelimit_scripts.*),
// so any number of rate-limiter processes share one limit exactly. A decide() with several items
// sends all their EVALSHAs in one write on one pooled connection and reads the replies together
// (pipelining: one round trip per call, whatever the number of items). Time is Redis's TIME
// unless StoreOptions::redis_client_time (tests).

#include <chrono>
#include <optional>

#include "limiter_math.hpp"
#include "ratelimit_scripts.hpp"
#include "store_impl.hpp"

namespace sd::ratelimit::detail {
namespace {

class RedisStore final : public Store {
 public:
  RedisStore(RedisStoreConfig config, const StoreOptions& options)
      : pool_(config.addr, config.timeout, /*max_idle=*/64),
        prefix_(std::move(config.prefix)),
        client_clock_(!options.redis_client_time ? nullptr
                      : options.clock != nullptr ? options.clock
                                                 : &SystemClock::instance()) {}

  Result<std::vector<Decision>> decide(std::span<const StoreItem> items) override {
    std::vector<redis::ScriptCall> calls;
    calls.reserve(items.size());
    std::optional<double> t_us;
    if (client_clock_ != nullptr) t_us = to_us(client_clock_->now());
    for (const StoreItem& item : items) {
      if (std::string err = validate_limit(item.algorithm, item.limit); !err.empty())
        return invalid_argument(std::string(algorithm_name(item.algorithm)) + ": " + err);
      calls.push_back(decide_call(prefix_, item, t_us));
    }
    if (items.empty()) return std::vector<Decision>{};

    auto conn = pool_.checkout();
    auto replies =
        redis::run_scripts(*conn, calls, std::chrono::steady_clock::now() + pool_.timeout());
    pool_.checkin(std::move(conn));
    if (!replies.is_ok()) return replies.status();

    std::vector<Decision> out;
    out.reserve(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      auto d = parse_decision(pool_.addr(), items[i], (*replies)[i]);
      if (!d.is_ok()) return d.status();
      out.push_back(*d);
    }
    return out;
  }

  std::string describe() const override { return "redis://" + pool_.addr().str(); }

 private:
  redis::RedisPool pool_;  // thread-safe: concurrent decide() calls use separate connections
  std::string prefix_;
  const Clock* client_clock_;  // nullptr: Redis TIME
};

}  // namespace

std::unique_ptr<Store> make_redis_store(RedisStoreConfig config, const StoreOptions& options) {
  return std::make_unique<RedisStore>(std::move(config), options);
}

}  // namespace sd::ratelimit::detail
