// redis:// store: every decision is one Lua script run atomically by Redis (ratelimit_scripts.*),
// so any number of rate-limiter processes share one limit exactly. A decide() with several items
// sends all their EVALSHAs in one write on one pooled connection and reads the replies together
// (pipelining: one round trip per call, whatever the number of items). Time is Redis's TIME
// unless StoreOptions::redis_client_time (tests).
//
// decide_async() queues the call for a few batching workers: each takes every queued call at once
// (up to batch_max_items items), pipelines all their EVALSHAs on its connection and splits the
// replies back per call. So N concurrent callers cost about one round trip, not N, and the caller
// (the HTTP I/O thread) never waits on Redis. The timeout applies per batch; a transport failure
// fails every call of the batch with kUnavailable, as it would have failed each call on its own.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

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
                                                 : &SystemClock::instance()),
        max_batch_items_(std::max<size_t>(1, config.batch_max_items)) {
    const size_t n = std::max<size_t>(1, config.batch_workers);
    for (size_t i = 0; i < n; ++i) workers_.emplace_back([this] { work(); });
  }

  // Workers finish their batch in flight (bounded by the timeout); calls still queued fail, so
  // every done runs exactly once.
  ~RedisStore() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (std::thread& t : workers_) t.join();
    std::deque<Pending> left;
    {
      std::lock_guard lock(mu_);
      left.swap(queue_);
    }
    for (Pending& p : left) {
      p.done(unavailable("redis://" + pool_.addr().str() + ": store shut down"));
    }
  }

  Result<std::vector<Decision>> decide(std::span<const StoreItem> items) override {
    std::optional<double> t_us;
    if (client_clock_ != nullptr) t_us = to_us(client_clock_->now());
    std::vector<redis::ScriptCall> calls;
    calls.reserve(items.size());
    for (const StoreItem& item : items) {
      if (Status st = validate(item); !st) return st;
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

  void decide_async(std::vector<OwnedStoreItem> items, DecideDone done) override {
    // Invalid or empty calls never reach Redis: answer them here, as decide() would.
    for (const OwnedStoreItem& item : items) {
      if (Status st = validate(item.view()); !st) return done(st);
    }
    if (items.empty()) return done(std::vector<Decision>{});
    {
      std::lock_guard lock(mu_);
      queue_.push_back({std::move(items), std::move(done)});
    }
    cv_.notify_one();
  }

  std::string describe() const override { return "redis://" + pool_.addr().str(); }

  uint64_t batches() const { return batches_.load(std::memory_order_relaxed); }

 private:
  struct Pending {
    std::vector<OwnedStoreItem> items;
    DecideDone done;
  };

  static Status validate(const StoreItem& item) {
    if (std::string err = validate_limit(item.algorithm, item.limit); !err.empty())
      return invalid_argument(std::string(algorithm_name(item.algorithm)) + ": " + err);
    return Status();
  }

  void work() {
    std::vector<Pending> batch;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_) return;  // the destructor fails what is left
        // Whole calls only; one call larger than the cap still goes, alone.
        size_t n = 0;
        while (!queue_.empty() &&
               (batch.empty() || n + queue_.front().items.size() <= max_batch_items_)) {
          n += queue_.front().items.size();
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      run_batch(batch);
      batch.clear();
    }
  }

  void run_batch(std::vector<Pending>& batch) {
    batches_.fetch_add(1, std::memory_order_relaxed);
    std::optional<double> t_us;
    if (client_clock_ != nullptr) t_us = to_us(client_clock_->now());
    std::vector<redis::ScriptCall> calls;
    for (const Pending& p : batch) {
      for (const OwnedStoreItem& item : p.items) {
        calls.push_back(decide_call(prefix_, item.view(), t_us));
      }
    }
    auto conn = pool_.checkout();
    auto replies =
        redis::run_scripts(*conn, calls, std::chrono::steady_clock::now() + pool_.timeout());
    pool_.checkin(std::move(conn));

    size_t at = 0;
    for (Pending& p : batch) {
      const size_t first = at;
      at += p.items.size();
      if (!replies.is_ok()) {
        p.done(replies.status());
        continue;
      }
      // One bad reply fails its own call only, as if each call had gone alone.
      Result<std::vector<Decision>> out = std::vector<Decision>{};
      for (size_t i = 0; i < p.items.size(); ++i) {
        auto d = parse_decision(pool_.addr(), p.items[i].view(), (*replies)[first + i]);
        if (!d.is_ok()) {
          out = d.status();
          break;
        }
        out->push_back(*d);
      }
      p.done(std::move(out));
    }
  }

  redis::RedisPool pool_;  // thread-safe: concurrent decide() calls use separate connections
  std::string prefix_;
  const Clock* client_clock_;  // nullptr: Redis TIME
  const size_t max_batch_items_;
  std::atomic<uint64_t> batches_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Pending> queue_;         // guarded by mu_
  bool stopping_ = false;             // guarded by mu_
  std::vector<std::thread> workers_;  // last: started once everything above exists
};

}  // namespace

std::unique_ptr<Store> make_redis_store(RedisStoreConfig config, const StoreOptions& options) {
  return std::make_unique<RedisStore>(std::move(config), options);
}

std::optional<uint64_t> redis_store_batches(const Store& store) {
  if (const auto* s = dynamic_cast<const RedisStore*>(&store)) return s->batches();
  return std::nullopt;
}

}  // namespace sd::ratelimit::detail
