// memory:// and sqlite:// backends: LockCore in this process behind one mutex.
//
// Blocking acquire without a background thread: a caller that got queued in the core sleeps on a
// condition variable until (a) another call produced its WaiterEvent (every state change pumps the
// core's events into a map and notify_all()s), or (b) core.next_deadline() is due, at which point
// the sleeper itself calls core.tick() -- so lease expiry, lock-delay ends and wait timeouts happen
// exactly when someone is waiting for them, and lazily (on the next call) otherwise.
// With an injected non-system clock (FakeClock) deadlines cannot be slept until, so sleepers poll
// the clock every few milliseconds of real time instead.

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <unordered_map>

#include "backend_impl.hpp"
#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/dlock/core.hpp"
#include "sd/dlock/store.hpp"

namespace sd::dlock {
namespace {

constexpr auto kFakeClockPoll = std::chrono::milliseconds(2);
constexpr size_t kListLimit = 100000;

CoreOptions core_options(const BackendOptions& o) {
  CoreOptions c;
  c.lock_delay = o.lock_delay;
  return c;
}

class LocalBackend final : public Backend {
 public:
  LocalBackend(std::unique_ptr<Store> store, const BackendOptions& options, std::string uri)
      : store_(std::move(store)),
        clock_(options.clock ? *options.clock : SystemClock::instance()),
        real_clock_(options.clock == nullptr || options.clock == &SystemClock::instance()),
        max_wait_per_call_(options.max_wait_per_call),
        uri_(std::move(uri)),
        core_(*store_, clock_, ids_, core_options(options)) {
    max_wait_per_call_ = std::min(max_wait_per_call_, core_.options().limits.max_wait);
  }

  Status init() {
    std::lock_guard lk(mu_);
    return core_.recover();
  }

  Result<LeaseGrant> grant_lease(Duration ttl) override {
    std::lock_guard lk(mu_);
    auto r = core_.create_lease(ttl);
    changed_locked();
    if (!r) return r.status();
    return LeaseGrant{r->id, r->ttl};
  }

  Status keepalive(const LeaseId& id) override {
    std::lock_guard lk(mu_);
    auto r = core_.keepalive(id);
    changed_locked();
    return r.status();
  }

  Status revoke(const LeaseId& id) override {
    std::lock_guard lk(mu_);
    Status s = core_.revoke_lease(id);
    changed_locked();
    return s;
  }

  Result<Grant> acquire(const AcquireRequest& req) override {
    return acquire_chunked(req, max_wait_per_call_,
                           [this](const AcquireRequest& r) { return acquire_once(r); });
  }

  Status release(Kind kind, const std::string& name, const LeaseId& lease, Token token) override {
    std::lock_guard lk(mu_);
    Status s = core_.release(kind, name, lease, token);
    changed_locked();
    return s;
  }

  Result<LockInfo> describe(Kind kind, const std::string& name) override {
    std::lock_guard lk(mu_);
    auto r = core_.describe(kind, name);
    changed_locked();  // describe ticks first, which may grant/expire
    return r;
  }

  Result<std::vector<LockInfo>> list(Kind kind, const std::string& prefix) override {
    std::lock_guard lk(mu_);
    auto r = core_.list(kind, prefix, kListLimit);
    changed_locked();
    return r;
  }

  std::string uri() const override { return uri_; }

 private:
  Result<Grant> acquire_once(const AcquireRequest& req) {
    std::unique_lock lk(mu_);
    auto out = core_.acquire(req);
    changed_locked();
    if (!out) return out.status();
    if (out->granted) return out->grant;
    if (out->waiter == 0) return conflict("locked");
    const WaiterId me = out->waiter;
    // The core times the waiter out at (its now + wait); this local deadline is never earlier, so
    // normally the core's timeout event arrives first and the fallback below never triggers.
    const TimePoint deadline = clock_.now() + req.wait;
    while (true) {
      if (auto ev = take_event_locked(me)) return *ev;
      const TimePoint now = clock_.now();
      if (now >= deadline) {
        core_.tick();
        changed_locked();
        if (auto ev = take_event_locked(me)) return *ev;
        core_.cancel_wait(me);
        changed_locked();
        if (auto ev = take_event_locked(me)) return *ev;
        return conflict("locked");
      }
      TimePoint wake = deadline;
      if (auto nd = core_.next_deadline()) wake = std::min(wake, *nd);
      if (wake <= now) {
        core_.tick();
        changed_locked();
        continue;
      }
      if (real_clock_) {
        cv_.wait_until(lk, wake);
      } else {
        cv_.wait_for(lk, kFakeClockPoll);
      }
      if (auto nd = core_.next_deadline(); nd && *nd <= clock_.now()) {
        core_.tick();
        changed_locked();
      }
    }
  }

  // Our queued waiter's outcome, if it arrived.
  std::optional<Result<Grant>> take_event_locked(WaiterId me) {
    auto it = events_.find(me);
    if (it == events_.end()) return std::nullopt;
    WaiterEvent ev = std::move(it->second);
    events_.erase(it);
    if (ev.granted) return Result<Grant>(std::move(ev.grant));
    if (ev.status.is_ok()) return Result<Grant>(conflict("locked"));
    return Result<Grant>(ev.status);
  }

  // After any call into the core: collect waiter events and wake every sleeper.
  void changed_locked() {
    for (auto& ev : core_.take_events()) events_[ev.waiter] = std::move(ev);
    cv_.notify_all();
  }

  std::unique_ptr<Store> store_;
  const Clock& clock_;
  const bool real_clock_;  // clock_ is the steady clock: deadlines can be slept until
  Duration max_wait_per_call_;
  std::string uri_;
  RandomIdGenerator ids_;
  std::mutex mu_;
  std::condition_variable cv_;
  LockCore core_;                                     // guarded by mu_
  std::unordered_map<WaiterId, WaiterEvent> events_;  // guarded by mu_; undelivered outcomes
};

}  // namespace

Result<std::shared_ptr<Backend>> open_local_backend(const BackendUri& uri,
                                                    const BackendOptions& options) {
  std::unique_ptr<Store> store;
  std::string canonical;
  if (uri.scheme == "memory") {
    store = make_memory_store();
    canonical = "memory://";
  } else {
    auto s = open_sqlite_store(uri.path);
    if (!s) return s.status();
    store = std::move(*s);
    canonical = "sqlite://" + uri.path;
  }
  auto backend = std::make_shared<LocalBackend>(std::move(store), options, canonical);
  SD_RETURN_IF_ERROR(backend->init());
  return std::shared_ptr<Backend>(std::move(backend));
}

}  // namespace sd::dlock
