// redis://host:port backend: one Redis instance, the lease model of redis_scripts.hpp.
//
// Every operation is one Lua script (atomic on the server), sent on a connection checked out of a
// small mutex-guarded pool; a connection that failed or timed out (options.request_timeout covers
// connect + reply) is dropped and the call is kUnavailable naming the server; the next call
// reconnects.
// Waiting (req.wait > 0), as Redisson does: SUBSCRIBE to the name's release channel on a dedicated
// connection BEFORE trying (so a release between a failed try and the subscription is not missed),
// then try; on failure sleep until a release message or the fallback poll interval, and try again
// until the deadline. The poll catches what publishes nothing: a holder's lease expiring in Redis.
// No FIFO promise: every waiter retries on each release and the fastest wins (readers can starve a
// writer on a busy shared lock).

#include <algorithm>
#include <thread>

#include "backend_impl.hpp"
#include "redis_scripts.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/log.hpp"

namespace sd::dlock {
namespace {

using Steady = std::chrono::steady_clock;

class RedisBackend final : public Backend {
 public:
  RedisBackend(RedisAddr addr, const BackendOptions& options)
      : pool_(std::move(addr), std::max(Duration{1}, options.request_timeout)),
        max_wait_per_call_(std::min(options.max_wait_per_call, redis::kLimits.max_wait)),
        fallback_poll_(std::max(Duration{1}, options.fallback_poll)) {}

  Result<LeaseGrant> grant_lease(Duration ttl) override {
    SD_RETURN_IF_ERROR(redis::validate_ttl(ttl));
    for (int attempt = 0; attempt < 4; ++attempt) {
      LeaseId id = ids_.next();
      auto r = pool_.command(redis::grant_lease_argv(id, ttl));
      if (!r) return r.status();
      if (r->is_str() && r->str == "OK") return LeaseGrant{std::move(id), ttl};
      // nil: SET NX found the id taken (2^-128 per try); draw another.
    }
    return internal_error("lease id generator keeps colliding");
  }

  Status keepalive(const LeaseId& id) override {
    auto r = pool_.command(redis::keepalive_argv(id));
    return r ? redis::parse_lease_op(*r) : r.status();
  }

  Status revoke(const LeaseId& id) override {
    auto r = pool_.command(redis::revoke_argv(id));
    return r ? redis::parse_lease_op(*r) : r.status();
  }

  Result<Grant> acquire(const AcquireRequest& req) override {
    SD_RETURN_IF_ERROR(redis::validate_acquire(req));
    return acquire_chunked(req, max_wait_per_call_,
                           [this](const AcquireRequest& r) { return acquire_once(r); });
  }

  Status release(Kind kind, const std::string& name, const LeaseId& lease, Token token) override {
    auto r = pool_.command(redis::release_argv(kind, name, lease, token, /*exact_token=*/true));
    return r ? redis::parse_release(*r) : r.status();
  }

  Result<LockInfo> describe(Kind kind, const std::string& name) override {
    SD_RETURN_IF_ERROR(validate_name(name, redis::kLimits.max_name_bytes));
    auto r = pool_.command(redis::describe_argv(kind, name));
    if (!r) return r.status();
    return redis::parse_describe(kind, name, *r);
  }

  // Names are those with a token counter (every name ever granted, like the core's idle names).
  Result<std::vector<LockInfo>> list(Kind kind, const std::string& prefix) override {
    std::vector<std::string> names;
    SD_RETURN_IF_ERROR(redis::scan_names(pool_, kind, prefix, names));
    return redis::describe_names(std::move(names),
                                 [&](const std::string& n) { return describe(kind, n); });
  }

  std::string uri() const override { return "redis://" + pool_.addr().str(); }

 private:
  Result<Grant> try_once(const AcquireRequest& req) {
    auto r = pool_.command(redis::acquire_argv(req));
    if (!r) return r.status();
    auto g = redis::parse_acquire(*r);
    if (!g) return g.status();
    const bool sem = req.kind == Kind::kSemaphore;
    return Grant{
        req.kind, req.name, req.lease_id, sem ? Mode::kShared : req.mode, sem ? req.permits : 1u,
        g->token};
  }

  static bool is_locked(const Result<Grant>& r) {
    return !r.is_ok() && r.status().code() == Code::kConflict && r.status().message() == "locked";
  }

  Result<Grant> acquire_once(const AcquireRequest& req) {
    if (req.wait.count() <= 0) return try_once(req);
    const auto deadline = Steady::now() + req.wait;
    // Subscribed before the first try: see the file comment.
    auto sub = subscribe(redis::released_channel(req.kind, req.name));
    if (!sub) return sub.status();
    std::unique_ptr<RedisConn> conn = std::move(*sub);
    while (true) {
      auto r = try_once(req);
      if (!is_locked(r)) return r;
      const auto now = Steady::now();
      if (now >= deadline) return r;
      const auto wake = std::min(deadline, now + fallback_poll_);
      if (conn) {
        // Any message (or the poll timeout) means: try again. A broken subscription degrades
        // to polling for the rest of this call.
        auto m = conn->next_push(wake);
        if (!m) {
          SD_LOG(kDebug) << "redis release subscription lost: " << m.status().to_string();
          conn.reset();
        }
      } else {
        std::this_thread::sleep_until(wake);
      }
    }
  }

  // A fresh connection subscribed to `channel`, once Redis confirmed the subscription. Not pooled:
  // after UNSUBSCRIBE, messages already in flight would have to be drained first; waiting is the
  // slow path, and a loopback connect costs ~0.1 ms.
  Result<std::unique_ptr<RedisConn>> subscribe(const std::string& channel) {
    auto conn = RedisConn::open(pool_.addr());
    SD_RETURN_IF_ERROR(conn->send({"SUBSCRIBE", channel}));
    auto m = conn->next_push(Steady::now() + pool_.timeout());
    if (!m) return m.status();
    if (!*m) return unavailable("redis " + pool_.addr().str() + ": SUBSCRIBE timed out");
    const auto& v = **m;
    if (!v.is_array() || v.elements.empty() || v.elements[0].str != "subscribe") {
      return internal_error("redis " + pool_.addr().str() + ": unexpected reply to SUBSCRIBE");
    }
    return conn;
  }

  RedisPool pool_;
  Duration max_wait_per_call_;
  Duration fallback_poll_;
  RandomIdGenerator ids_;
};

}  // namespace

Result<std::shared_ptr<Backend>> open_redis_backend(const BackendUri& uri,
                                                    const BackendOptions& options) {
  const auto& [host, port] = uri.hosts.front();
  return std::shared_ptr<Backend>(std::make_shared<RedisBackend>(RedisAddr{host, port}, options));
}

}  // namespace sd::dlock
