#pragma once
// "At most N requests in flight" (Stripe's concurrent-requests limiter) on dlock semaphores,
// through dlock's public client API only, so any lock backend URI works: memory:// in one
// process, dlockd:// / redis:// / etcd:// across processes.
//
//   ConcurrencyLimiter limiter(*sd::dlock::open_backend(uri), {});
//   auto p = limiter.try_acquire("tenant=acme", 10);   // kResourceExhausted when 10 are in flight
//   if (!p) return 429;  ... serve ...  // p's destructor releases the permit
//
// A dlock lease holds one permit of a semaphore name at a time, so the limiter keeps a pool of
// sessions and takes one per permit; a crashed process's permits free themselves when its leases
// expire (session TTL).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "sd/base/status.hpp"
#include "sd/dlock/backend.hpp"

namespace sd::ratelimit {

struct ConcurrencyOptions {
  Duration session_ttl{10'000};   // how long a crashed holder's permits outlive it
  size_t max_idle_sessions = 64;  // pooled sessions kept for reuse
  std::string name_prefix = "ratelimit/concurrency/";
};

class ConcurrencyLimiter;

// One held permit; releases on destruction (or release()). Movable.
class Permit {
 public:
  Permit();  // empty: held() false (defined out of line: State is incomplete here)
  Permit(Permit&&) noexcept;
  Permit& operator=(Permit&&) noexcept;
  ~Permit();
  // Gives the permit back. Idempotent (a second call is ok). If the backend cannot confirm the
  // release (down, or the session's lease already lost) the error is returned and the permit frees
  // itself when the session's lease expires; either way held() is false afterwards.
  Status release();
  bool held() const;       // false after release, or once the session's lease is lost
  uint64_t token() const;  // the semaphore grant's fencing token

 private:
  friend class ConcurrencyLimiter;
  struct State;
  std::unique_ptr<State> state_;
};

class ConcurrencyLimiter {
 public:
  ConcurrencyLimiter(std::shared_ptr<dlock::Backend> backend, ConcurrencyOptions options = {});
  ~ConcurrencyLimiter();
  // A permit for `key` if fewer than `max_in_flight` are held across every process sharing the
  // backend; kResourceExhausted "too many requests in flight" otherwise; kUnavailable if the
  // backend is down. Thread-safe.
  Result<Permit> try_acquire(const std::string& key, uint32_t max_in_flight);
  // Like try_acquire, waiting up to `wait` (FIFO where the backend is) for a permit.
  Result<Permit> acquire(const std::string& key, uint32_t max_in_flight, Duration wait);
  // Errors: kInvalidArgument (max_in_flight 0, bad key); kFailedPrecondition when the key's current
  // holders use a different max_in_flight; kUnimplemented when the backend has no semaphores
  // (redlock://); kUnavailable when the backend is unreachable.

  // For metrics and tests: dlock sessions created so far, and sessions idle in the pool now.
  size_t sessions_created() const;
  size_t idle_sessions() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;  // shared with permits, which return sessions to the pool
};

}  // namespace sd::ratelimit
