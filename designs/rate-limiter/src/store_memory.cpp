// memory:// store: the algorithms' in-process limiters, sharded by key hash so concurrent callers
// on different keys rarely share a mutex. Each shard maps (algorithm, limit) to one Limiter that
// holds that shard's keys, so a changed rule gets a fresh limiter (fresh state).

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "store_impl.hpp"

namespace sd::ratelimit::detail {
namespace {

// (algorithm, requests, period ns, burst): the identity of a rule's state.
using LimiterId = std::tuple<Algorithm, uint64_t, int64_t, uint64_t>;

struct Shard {
  std::mutex mu;
  std::map<LimiterId, std::unique_ptr<Limiter>> limiters;  // guarded by mu
};

class MemoryStore final : public Store {
 public:
  explicit MemoryStore(const StoreOptions& options)
      : clock_(options.clock != nullptr ? options.clock : &SystemClock::instance()),
        shards_(options.memory_shards > 0 ? options.memory_shards : 1) {}

  Result<std::vector<Decision>> decide(std::span<const StoreItem> items) override {
    // Validate first: an invalid item fails the call before any item consumes.
    for (const StoreItem& item : items) {
      if (std::string err = validate_limit(item.algorithm, item.limit); !err.empty())
        return invalid_argument(std::string(algorithm_name(item.algorithm)) + ": " + err);
    }
    const TimePoint now = clock_->now();
    std::vector<Decision> out;
    out.reserve(items.size());
    for (const StoreItem& item : items) {
      Shard& shard = shards_[std::hash<std::string_view>{}(item.key) % shards_.size()];
      const LimiterId id{item.algorithm, item.limit.requests, item.limit.period.count(),
                         item.limit.burst};
      std::lock_guard lk(shard.mu);
      auto& limiter = shard.limiters[id];
      if (!limiter) limiter = make_limiter(item.algorithm, item.limit);
      out.push_back(limiter->decide(item.key, item.cost, now));
    }
    return out;
  }

  std::string describe() const override { return "memory://"; }

  size_t key_count() const {
    size_t n = 0;
    for (Shard& shard : shards_) {
      std::lock_guard lk(shard.mu);
      for (const auto& [id, limiter] : shard.limiters) n += limiter->key_count();
    }
    return n;
  }

  // Evicts idle keys and drops limiters left without keys (e.g. of a rule that changed).
  void maintain() override {
    const TimePoint now = clock_->now();
    for (Shard& shard : shards_) {
      std::lock_guard lk(shard.mu);
      for (auto it = shard.limiters.begin(); it != shard.limiters.end();) {
        it->second->evict_idle(now);
        it = it->second->key_count() == 0 ? shard.limiters.erase(it) : std::next(it);
      }
    }
  }

 private:
  const Clock* clock_;
  mutable std::vector<Shard> shards_;
};

}  // namespace

std::unique_ptr<Store> make_memory_store(const StoreOptions& options) {
  return std::make_unique<MemoryStore>(options);
}

std::optional<size_t> memory_store_key_count(const Store& store) {
  const auto* m = dynamic_cast<const MemoryStore*>(&store);
  if (m == nullptr) return std::nullopt;
  return m->key_count();
}

}  // namespace sd::ratelimit::detail
