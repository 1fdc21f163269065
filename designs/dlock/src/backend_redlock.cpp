// redlock://h1:p1,...,hN:pN backend: the Redlock algorithm over N independent Redis masters
// (https://redis.io/docs/latest/develop/use/patterns/distributed-locks/).
//
// Fencing tokens: Redlock has no safe fencing token. The token returned is the max of the
// per-instance counters among the quorum replies -- best-effort: increases in normal operation,
// but NOT safe: an instance restarted without persistence, or clock jumps, can repeat or reorder
// tokens.
//
// Each instance runs the single-instance data model and Lua scripts (redis_scripts.hpp): the lease
// and its holds exist on every instance, and an operation counts when a quorum (N/2+1) of them
// agrees. Requests go to all instances at once on one thread (non-blocking hiredis contexts +
// poll(), redis_exchange) with a short per-instance timeout (BackendOptions::instance_timeout,
// default 50 ms, capped by request_timeout; far below any sensible TTL), so a dead instance costs
// at most that timeout, never N round trips.
//   grant_lease: SET the lease key on all; needs a quorum within the validity time, else it is
//     revoked everywhere (kUnavailable). The TTL reported to the Session is TTL - drift, so its
//     local deadline never outlives the instances' (drift = TTL * 1% + 2 ms).
//   acquire: the acquire script on all; granted if a quorum granted and validity = (least lease
//     TTL left among the grants) - elapsed - drift > 0. Otherwise the fresh grants of this attempt
//     (and instances that did not answer, which may have granted) are released on all instances,
//     and, while req.wait lasts, retried after a random delay (no pub/sub, no FIFO).
//   keepalive: needs a quorum too. A quorum of instances saying the lease is gone -> kNotFound
//     (lost); too few answers -> kUnavailable (the Session retries until its deadline, then the
//     lease is lost).
//   release/revoke: sent to all; done if any instance released (the rest expire with the lease).
// Shared locks work (reader/writer conflicts are pairwise, so two quorums always meet on an
// instance that refuses one of them). Semaphores do not: with limit > 1 quorum intersection cannot
// bound the total count (with limit 2, three holders can each hold a different 3 of 5 instances),
// so they are kUnimplemented.

#include <algorithm>
#include <random>
#include <thread>

#include "backend_impl.hpp"
#include "redis_scripts.hpp"
#include "sd/base/ids.hpp"

namespace sd::dlock {
namespace {

using Steady = std::chrono::steady_clock;

constexpr Duration kRetryMin{10};
constexpr Duration kRetryMax{60};

Duration drift(Duration ttl) {
  return Duration{ttl.count() / 100 + 2};
}

Duration since(Steady::time_point t) {
  return std::chrono::duration_cast<Duration>(Steady::now() - t);
}

Status semaphores_unsupported() {
  return Status(Code::kUnimplemented,
                "semaphores are not supported by the redlock:// backend (quorum intersection "
                "cannot bound a count above 1); use redis://, dlockd:// or etcd://");
}

class RedlockBackend final : public Backend {
 public:
  RedlockBackend(const std::vector<std::pair<std::string, uint16_t>>& hosts,
                 const BackendOptions& options)
      : timeout_(std::clamp(options.instance_timeout, Duration{1},
                            std::max(Duration{1}, options.request_timeout))),
        max_wait_per_call_(std::min(options.max_wait_per_call, redis::kLimits.max_wait)) {
    for (const auto& [host, port] : hosts) {
      pools_.push_back(std::make_unique<RedisPool>(RedisAddr{host, port}, timeout_));
    }
    quorum_ = pools_.size() / 2 + 1;
  }

  Result<LeaseGrant> grant_lease(Duration ttl) override {
    SD_RETURN_IF_ERROR(redis::validate_ttl(ttl));
    const LeaseId id = ids_.next();
    const auto start = Steady::now();
    auto results = fan_out(redis::grant_lease_argv(id, ttl));
    const Duration validity = ttl - since(start) - drift(ttl);
    size_t ok = 0;
    for (const auto& r : results) ok += (r && r->is_str() && r->str == "OK") ? 1 : 0;
    if (ok >= quorum_ && validity.count() > 0) return LeaseGrant{id, ttl - drift(ttl)};
    (void)fan_out(redis::revoke_argv(id));
    return unavailable("redlock: lease granted by " + std::to_string(ok) + " of " + n_str() +
                       " instances (quorum " + std::to_string(quorum_) + ")" + errors(results));
  }

  Status keepalive(const LeaseId& id) override {
    auto results = fan_out(redis::keepalive_argv(id));
    auto [ok, gone] = count(results, redis::parse_lease_op);
    if (ok >= quorum_) return Status::ok();
    if (gone > pools_.size() - quorum_) {
      return not_found("lease not found or expired: extended on " + std::to_string(ok) + " of " +
                       n_str() + " instances (quorum " + std::to_string(quorum_) + ")");
    }
    return unavailable("redlock: keepalive confirmed by " + std::to_string(ok) + " of " + n_str() +
                       " instances (quorum " + std::to_string(quorum_) + ")" + errors(results));
  }

  Status revoke(const LeaseId& id) override {
    auto results = fan_out(redis::revoke_argv(id));
    auto [ok, gone] = count(results, redis::parse_lease_op);
    if (ok > 0) return Status::ok();
    if (gone >= quorum_) return not_found("lease not found or expired");
    return unavailable("redlock: revoke reached no instance" + errors(results));
  }

  Result<Grant> acquire(const AcquireRequest& req) override {
    if (req.kind == Kind::kSemaphore) return semaphores_unsupported();
    SD_RETURN_IF_ERROR(redis::validate_acquire(req));
    return acquire_chunked(req, max_wait_per_call_,
                           [this](const AcquireRequest& r) { return acquire_once(r); });
  }

  Status release(Kind kind, const std::string& name, const LeaseId& lease, Token token) override {
    if (kind == Kind::kSemaphore) return semaphores_unsupported();
    auto results = fan_out(redis::release_argv(kind, name, lease, token, /*exact_token=*/false));
    auto [ok, gone] = count(results, redis::parse_release);
    if (ok > 0) return Status::ok();
    size_t answered = 0;
    for (const auto& r : results) answered += r ? 1 : 0;
    if (gone >= quorum_) return not_found("lease not found or expired");
    if (answered >= quorum_) return conflict("not_holder");
    return unavailable("redlock: release reached " + std::to_string(answered) + " of " + n_str() +
                       " instances" + errors(results));
  }

  // Holders present on a quorum of instances (token: the max, TTL: the least); last_token: max.
  Result<LockInfo> describe(Kind kind, const std::string& name) override {
    if (kind == Kind::kSemaphore) return semaphores_unsupported();
    SD_RETURN_IF_ERROR(validate_name(name, redis::kLimits.max_name_bytes));
    auto results = fan_out(redis::describe_argv(kind, name));
    LockInfo merged;
    merged.kind = kind;
    merged.name = name;
    std::vector<std::pair<HolderInfo, size_t>> seen;  // holder, instances
    size_t answered = 0;
    for (const auto& r : results) {
      if (!r) continue;
      ++answered;
      auto info = redis::parse_describe(kind, name, *r);
      if (!info) continue;  // kNotFound on this instance
      merged.last_token = std::max(merged.last_token, info->last_token);
      for (const auto& h : info->holders) {
        auto it = std::find_if(seen.begin(), seen.end(), [&](const auto& s) {
          return s.first.lease_id == h.lease_id && s.first.mode == h.mode;
        });
        if (it == seen.end()) {
          seen.emplace_back(h, 1);
          continue;
        }
        it->first.token = std::max(it->first.token, h.token);
        it->first.ttl_ms_left = std::min(it->first.ttl_ms_left, h.ttl_ms_left);
        ++it->second;
      }
    }
    if (answered < quorum_) {
      return unavailable("redlock: describe answered by " + std::to_string(answered) + " of " +
                         n_str() + " instances" + errors(results));
    }
    for (auto& [h, n] : seen) {
      if (n >= quorum_) merged.holders.push_back(std::move(h));
    }
    if (merged.last_token == 0 && merged.holders.empty()) return not_found("lock not found");
    return merged;
  }

  // Names known to any reachable instance (SCAN on each in turn: an admin path), then describe.
  Result<std::vector<LockInfo>> list(Kind kind, const std::string& prefix) override {
    if (kind == Kind::kSemaphore) return semaphores_unsupported();
    std::vector<std::string> names;
    size_t reachable = 0;
    for (auto& pool : pools_) {
      if (redis::scan_names(*pool, kind, prefix, names).is_ok()) ++reachable;
    }
    if (reachable < quorum_) {
      return unavailable("redlock: list reached " + std::to_string(reachable) + " of " + n_str() +
                         " instances");
    }
    return redis::describe_names(std::move(names),
                                 [&](const std::string& n) { return describe(kind, n); });
  }

  std::string uri() const override {
    std::string u = "redlock://";
    for (size_t i = 0; i < pools_.size(); ++i) u += (i ? "," : "") + pools_[i]->addr().str();
    return u;
  }

 private:
  Result<Grant> acquire_once(const AcquireRequest& req) {
    const auto deadline = Steady::now() + req.wait;
    while (true) {
      auto r = attempt(req);
      if (r) return r;
      const Code c = r.status().code();
      const bool retryable =
          c == Code::kUnavailable || (c == Code::kConflict && r.status().message() == "locked");
      if (!retryable || Steady::now() >= deadline) return r;
      std::this_thread::sleep_until(std::min(deadline, Steady::now() + retry_delay()));
    }
  }

  // One round of the algorithm: all instances, quorum + validity, or undo.
  Result<Grant> attempt(const AcquireRequest& req) {
    const size_t n = pools_.size();
    const auto start = Steady::now();
    auto results = fan_out(redis::acquire_argv(req));
    const Duration elapsed = since(start);
    std::vector<Result<redis::ScriptGrant>> grants;
    size_t granted = 0, gone = 0, down = 0;  // the rest said "locked"
    Token token = 0;
    long long least_ttl = -1;
    std::optional<Status> refusal;  // mode_mismatch and the like: retrying cannot help
    for (const auto& r : results) {
      grants.push_back(r ? redis::parse_acquire(*r) : Result<redis::ScriptGrant>(r.status()));
      const auto& g = grants.back();
      if (g) {
        ++granted;
        token = std::max(token, g->token);
        least_ttl = least_ttl < 0 ? g->lease_ttl_ms : std::min(least_ttl, g->lease_ttl_ms);
      } else if (g.status().code() == Code::kNotFound) {
        ++gone;
      } else if (g.status().code() == Code::kConflict) {
        if (g.status().message() != "locked") refusal = g.status();
      } else {
        ++down;
      }
    }
    if (granted >= quorum_) {
      const Duration lease_left{least_ttl};
      if (lease_left - elapsed - drift(lease_left) > Duration{0}) {
        return Grant{req.kind, req.name, req.lease_id, req.mode, 1, token};
      }
    }
    undo(req, results, grants);
    if (granted >= quorum_) {
      return unavailable("redlock: quorum for \"" + req.name + "\" reached after " +
                         std::to_string(elapsed.count()) + " ms, past the lease's validity");
    }
    if (gone > n - quorum_) return not_found("lease not found or expired");
    if (refusal) return *refusal;
    // Only unreachable instances stood between us and a quorum: not a "locked" answer.
    if (granted + down >= quorum_) {
      return unavailable("redlock: \"" + req.name + "\" granted by " + std::to_string(granted) +
                         " of " + n_str() + " instances (quorum " + std::to_string(quorum_) + ")" +
                         errors(results));
    }
    return conflict("locked");
  }

  // Releases what this failed attempt may have taken: fresh grants (by their exact token) and
  // instances that did not answer (by lease: they may have granted before the timeout).
  void undo(const AcquireRequest& req, const std::vector<Result<RedisValue>>& results,
            const std::vector<Result<redis::ScriptGrant>>& grants) {
    std::vector<RedisArgv> argvs;
    std::vector<size_t> targets;
    for (size_t i = 0; i < pools_.size(); ++i) {
      const bool fresh = grants[i] && grants[i]->fresh;
      const bool unknown = !results[i] && results[i].status().code() == Code::kUnavailable;
      if (!fresh && !unknown) continue;
      argvs.push_back(redis::release_argv(req.kind, req.name, req.lease_id,
                                          fresh ? grants[i]->token : ~Token{0},
                                          /*exact_token=*/fresh));
      targets.push_back(i);
    }
    if (!targets.empty()) (void)fan_out(argvs, targets);
  }

  // The same command on every instance, in parallel.
  std::vector<Result<RedisValue>> fan_out(const RedisArgv& argv) {
    std::vector<size_t> all(pools_.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return fan_out(std::vector<RedisArgv>(pools_.size(), argv), all);
  }

  // argvs[k] on instance targets[k], in parallel; results indexed like targets.
  std::vector<Result<RedisValue>> fan_out(const std::vector<RedisArgv>& argvs,
                                          const std::vector<size_t>& targets) {
    std::vector<std::unique_ptr<RedisConn>> conns;
    std::vector<RedisConn*> raw;
    for (size_t i : targets) {
      conns.push_back(pools_[i]->checkout());
      raw.push_back(conns.back().get());
    }
    auto results = redis_exchange(raw, argvs, Steady::now() + timeout_);
    for (size_t k = 0; k < targets.size(); ++k) pools_[targets[k]]->checkin(std::move(conns[k]));
    return results;
  }

  // Counts successes and kNotFound ("lease gone") answers.
  template <class Parse>
  std::pair<size_t, size_t> count(const std::vector<Result<RedisValue>>& results, Parse parse) {
    size_t ok = 0, gone = 0;
    for (const auto& r : results) {
      if (!r) continue;
      Status s = parse(*r);
      if (s.is_ok()) ++ok;
      if (s.code() == Code::kNotFound) ++gone;
    }
    return {ok, gone};
  }

  // "; 127.0.0.1:1: connect: Connection refused; ..." -- the transport errors, for messages.
  static std::string errors(const std::vector<Result<RedisValue>>& results) {
    std::string out;
    for (const auto& r : results) {
      if (!r) out += "; " + r.status().message();
    }
    return out;
  }

  static Duration retry_delay() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uniform_int_distribution<long long> d(kRetryMin.count(), kRetryMax.count());
    return Duration{d(rng)};
  }

  std::string n_str() const { return std::to_string(pools_.size()); }

  Duration timeout_;  // per instance, per request (connect included)
  Duration max_wait_per_call_;
  std::vector<std::unique_ptr<RedisPool>> pools_;  // one per instance; each is thread-safe
  size_t quorum_ = 1;
  RandomIdGenerator ids_;
};

}  // namespace

Result<std::shared_ptr<Backend>> open_redlock_backend(const BackendUri& uri,
                                                      const BackendOptions& options) {
  return std::shared_ptr<Backend>(std::make_shared<RedlockBackend>(uri.hosts, options));
}

}  // namespace sd::dlock
