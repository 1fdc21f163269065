#pragma once
// The per-key half shared by every algorithm: a hash map from key to the algorithm's small State,
// cost-0 and fresh-key handling, memory accounting and idle eviction. An algorithm file supplies
// only its State and step function:
//
//   struct Algo {
//     using State = ...;                              // small: it is most of bytes/key
//     static constexpr Algorithm kAlgorithm = ...;
//     static constexpr bool kHeapState = false;       // true: State owns heap memory (heap_bytes)
//     explicit Algo(const Limit&);
//     State fresh(double t) const;                    // a key never seen, at t
//     Decision step(State& s, double t, double c) const;  // commits to s only if allowed && c > 0
//     bool idle(const State& s, double t) const;      // s is indistinguishable from fresh(t)
//     size_t heap_bytes(const State& s) const;        // only when kHeapState
//   };

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "limiter_math.hpp"
#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit::detail {

// Transparent hashing so decide() looks a string_view key up without building a std::string.
struct KeyHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
struct KeyEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const noexcept { return a == b; }
};

template <class Algo>
class KeyedLimiter final : public Limiter {
 public:
  using State = typename Algo::State;

  explicit KeyedLimiter(const Limit& limit) : limit_(limit), algo_(limit) {}

  Algorithm algorithm() const override { return Algo::kAlgorithm; }
  const Limit& limit() const override { return limit_; }

  Decision decide(std::string_view key, uint64_t cost, TimePoint now) override {
    const double t = to_us(now);
    const double c = static_cast<double>(cost);
    Decision d;
    auto it = map_.find(key);
    if (it != map_.end()) {
      d = algo_.step(it->second, t, c);
    } else {
      // A key is stored only once it holds something: a denial or a cost-0 report of a fresh key
      // leaves it fresh, and fresh(t) evolves into fresh(t') unchanged, so nothing is lost.
      State s = algo_.fresh(t);
      d = algo_.step(s, t, c);
      if (d.allowed && cost > 0) {
        auto [pos, inserted] = map_.try_emplace(std::string(key), std::move(s));
        (void)inserted;
        key_heap_bytes_ += key_heap(pos->first);
      }
    }
    if (cost == 0) {  // report only: the algorithm committed nothing
      d.allowed = true;
      d.retry_after = Nanos{0};
      d.delay = Nanos{0};
    }
    d.limit = limit_.requests;
    return d;
  }

  size_t key_count() const override { return map_.size(); }

  size_t memory_bytes() const override {
    // libstdc++ node: next pointer + (key, State) + cached hash, one malloc each.
    constexpr size_t kNode =
        malloc_footprint(sizeof(void*) + sizeof(typename Map::value_type) + sizeof(size_t));
    size_t bytes = map_.bucket_count() * sizeof(void*) + map_.size() * kNode + key_heap_bytes_;
    if constexpr (Algo::kHeapState) {
      for (const auto& [k, s] : map_) bytes += algo_.heap_bytes(s);
    }
    return bytes;
  }

  size_t evict_idle(TimePoint now) override {
    const double t = to_us(now);
    size_t dropped = 0;
    for (auto it = map_.begin(); it != map_.end();) {
      if (algo_.idle(it->second, t)) {
        key_heap_bytes_ -= key_heap(it->first);
        it = map_.erase(it);
        ++dropped;
      } else {
        ++it;
      }
    }
    return dropped;
  }

 private:
  using Map = std::unordered_map<std::string, State, KeyHash, KeyEq>;

  // Heap bytes of a key string beyond the node (none while it fits the small-string buffer).
  static size_t key_heap(const std::string& k) {
    return k.capacity() > 15 ? malloc_footprint(k.capacity() + 1) : 0;
  }

  Limit limit_;
  Algo algo_;
  Map map_;
  size_t key_heap_bytes_ = 0;  // sum of key_heap over map_'s keys
};

// One factory per algorithm file.
std::unique_ptr<Limiter> make_token_bucket(const Limit& limit);
std::unique_ptr<Limiter> make_leaky_bucket(const Limit& limit);
std::unique_ptr<Limiter> make_leaky_queue(const Limit& limit);
std::unique_ptr<Limiter> make_fixed_window(const Limit& limit);
std::unique_ptr<Limiter> make_sliding_log(const Limit& limit);
std::unique_ptr<Limiter> make_sliding_window(const Limit& limit);
std::unique_ptr<Limiter> make_gcra(const Limit& limit);

}  // namespace sd::ratelimit::detail
