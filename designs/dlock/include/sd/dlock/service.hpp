#pragma once
// LockService: the HTTP API v1 of dlockd on top of LockCore (Request -> Response handlers).
//
// Threading: one mutex (core_mu_) serializes every LockCore call and guards the waiter table and
// the timer state. Responses -- including those for long-poll waiters woken by another request --
// are sent after the mutex is released.
//
// Long-poll: an acquire with wait_ms > 0 that the core queues parks its net::Responder under the
// core's WaiterId and returns without blocking a thread. After every core call (and in the timer
// callback) the service drains core.take_events() and answers the parked Responders: granted ->
// 200, wait timed out -> 409 "locked", lease gone -> 404 "lease_not_found". One timer is kept
// armed at (or before) core.next_deadline(); its callback calls core.tick(). Nothing polls.
// A parked request whose client disconnects (net::Responder::on_abandoned) leaves the queue at
// once: its wait is cancelled, a ttl_ms-shortcut lease it created is revoked, and waiters it was
// blocking are granted -- so a vanished client is never granted a lock nobody will learn about.
//
// Group commit: with a Poster, the store runs in group mode (see Store::set_group_commit) and
// a reply -- including a grant to a parked waiter and the answer to a read -- leaves only after
// everything the core decided before it is durable. The first call that stages a write posts one
// commit task to the I/O loop; every reply produced until that task runs waits in `deferred_`;
// the task commits all of it in one transaction and then sends those replies. Requests that
// arrive together therefore share one commit, and a lone request is answered right after its own
// commit (the task is the next thing the loop runs). When the groups stay at one reply (a single
// client), the service commits inline instead, saving the parked reply's extra wake-ups, and
// probes with a posted group every few commits. Without a Poster (tests, embedding), each core
// call commits by itself as before.
// If a commit fails (disk full, I/O error), the memory state is ahead of the disk. The service
// then reloads the core from the store (LockCore::reload) and answers every deferred reply and
// every parked waiter with 503 "unavailable" -- to the client a lost reply: it retries (acquire
// and release are idempotent by lease and token) and meets the durable state. Chosen over exiting
// because it keeps serving what is durable and is testable in-process; if even the reload fails,
// every request gets 503 until a later request's reload succeeds.

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/dlock/core.hpp"
#include "sd/metrics/metrics.hpp"
#include "sd/net/router.hpp"
#include "sd/net/server.hpp"

namespace sd::dlock {

class LockService {
 public:
  // Runs fn once after delay, on some thread, never inline from the call itself (the service holds
  // its mutex while scheduling). Dropping or cancelling the returned handle cancels the timer.
  // Production: HttpServer::run_after. Tests: a manual queue fired by hand.
  using Scheduler =
      std::function<net::TimerHandle(std::chrono::milliseconds, std::function<void()>)>;

  // Runs fn soon on an I/O thread, after the work already queued there, never inline (the service
  // holds its mutex while posting). Production: HttpServer::post.
  using Poster = std::function<void(std::function<void()>)>;

  // `clock` must be the clock the core uses (timer delays are computed from it). The service keeps
  // references only; core, clock and registry must outlive it. A non-null `post` turns on group
  // commit (see above) if the core's store supports it.
  LockService(LockCore& core, const Clock& clock, metrics::Registry& metrics, Scheduler scheduler,
              Poster post = nullptr);
  ~LockService();  // calls shutdown()
  LockService(const LockService&) = delete;
  LockService& operator=(const LockService&) = delete;

  // Adds the /v1 routes; handlers call this service.
  void register_routes(net::Router& router);
  // Same routes, but every request resolves the service through `resolve` (must be non-null by the
  // time requests arrive). For dlockd, where the HttpServer -- which owns the metrics registry and
  // the timers the service needs -- has to be built from the router before the service exists.
  static void register_routes(net::Router& router, std::function<LockService*()> resolve);

  // Cancels the timer and answers every parked waiter with 503 "unavailable". Afterwards no timer
  // is armed again. Also commits what is pending and sends the replies waiting for it (a posted
  // commit task may never run once the server stopped). Idempotent; call it before the
  // scheduler's owner (the server) goes away.
  void shutdown();

  // Number of parked long-poll requests (for tests and metrics).
  size_t parked_waiters() const;

  struct Routes;  // the handlers (service_routes.cpp)

 private:
  friend struct Routes;

  // A parked long-poll request.
  struct Parked {
    net::Responder responder;
    Kind kind = Kind::kLock;
    uint32_t limit = 1;                // semaphores: echoed in the grant response
    std::optional<LeaseId> own_lease;  // created by the ttl_ms shortcut: revoked unless granted
    long long own_lease_ttl_ms = 0;
    std::string key;  // parked_by_key_ entry: (kind, lease, name)
  };
  // A response to send once core_mu_ is released.
  struct Outgoing {
    net::Responder responder;
    net::Response response;
    bool waiter_grant = false;               // counts toward grants_to_waiters / handoff
    std::optional<TimePoint> handoff_start;  // when the op that freed the lock began
  };
  // Work collected under core_mu_ and done after releasing it.
  struct Outbox {
    std::vector<Outgoing> responses;
    std::vector<net::TimerHandle> stale_timers;  // replaced timers, cancelled outside the mutex
  };

  static std::string parked_key(Kind kind, const LeaseId& lease, const std::string& name);
  // Removes a parked entry (both indexes) and returns it.
  Parked unpark_locked(std::unordered_map<WaiterId, Parked>::iterator it);
  // The callback registered with a parked waiter's Responder::on_abandoned.
  std::function<void()> abandon_callback(WaiterId waiter) const;
  // The client of a parked waiter went away: drop the waiter as if it had never queued.
  void on_waiter_abandoned(WaiterId waiter);

  // All *_locked functions require core_mu_.
  // Drains core events into `out`; revokes shortcut leases of waiters that were not granted.
  void drain_events_locked(Outbox& out, TimePoint op_start);
  // Arms the timer if the core's next deadline is earlier than the armed one (or none is armed).
  void rearm_locked(Outbox& out);
  // Refreshes the dlock_leases/holds/waiters gauges from core.stats().
  void update_gauges_locked();
  // drain + rearm + gauges: the common epilogue of every core call.
  void after_core_call_locked(Outbox& out, TimePoint op_start);
  // The last step under core_mu_ of every path that produced replies: with group commit and
  // uncommitted state, moves them to deferred_ and makes sure a commit task is posted.
  void hold_until_durable_locked(Outbox& out);
  // The posted commit task: commits, then releases the deferred replies (or fails them).
  void run_commit();
  // Commits and moves deferred_ into `out` (on failure: 503s, reload). `posted`: run_commit.
  void commit_locked(Outbox& out, bool posted);
  // False while the core could not be reloaded after a failed commit (then: answer 503).
  bool core_usable_locked();
  // Sends everything in `out` (without core_mu_) and records metrics.
  void flush(Outbox& out);
  void on_timer(uint64_t generation, TimePoint deadline);

  LockCore& core_;
  const Clock& clock_;
  Scheduler scheduler_;

  // Metrics (owned by the registry).
  metrics::Gauge& leases_gauge_;
  metrics::Gauge& holds_gauge_;
  metrics::Gauge& waiters_gauge_;
  metrics::Counter& acquire_granted_;
  metrics::Counter& acquire_queued_;
  metrics::Counter& acquire_locked_;
  metrics::Counter& acquire_error_;
  metrics::Counter& grants_to_waiters_;
  metrics::Counter& waiters_abandoned_;
  metrics::Histogram& handoff_seconds_;
  metrics::Counter& commits_;
  metrics::Counter& commit_failures_;
  metrics::Counter& committed_replies_;

  // Abandon callbacks are run by the server and may outlive the service: they reach it only
  // through this gate, which ~LockService closes (waiting out a callback that is running).
  struct AbandonGate {
    std::mutex mu;
    LockService* service = nullptr;  // guarded by mu
  };
  std::shared_ptr<AbandonGate> gate_ = std::make_shared<AbandonGate>();

  mutable std::mutex core_mu_;  // guards core_ (every call) and everything below
  std::unordered_map<WaiterId, Parked> parked_;
  // (kind, lease, name) -> its parked waiter. A lease can wait at most once per name; a second
  // acquire for the same key (a client retrying after its connection died while parked) replaces
  // the first, whose client is most likely gone: see Routes::acquire.
  std::unordered_map<std::string, WaiterId> parked_by_key_;
  net::TimerHandle timer_;
  std::optional<TimePoint> armed_at_;  // deadline the armed timer was set for
  uint64_t timer_generation_ = 0;
  bool stopped_ = false;
  // Group commit.
  Poster post_;                     // set once in the constructor; null: no group commit
  bool group_commit_ = false;       // the store runs in group mode
  bool commit_posted_ = false;      // a run_commit task is queued
  std::vector<Outgoing> deferred_;  // replies waiting for that task's commit
  bool needs_reload_ = false;       // a commit failed and the reload after it too
  // Solo mode (see hold_until_durable_locked): after kSoloGroups posted groups in a row released
  // at most one reply each, commit inline; every kSoloProbeEvery-th commit is posted again.
  static constexpr uint32_t kSoloGroups = 8;
  static constexpr uint32_t kSoloProbeEvery = 16;
  uint32_t solo_streak_ = 0;
  uint32_t solo_commits_ = 0;
  bool solo_mode_ = false;
};

}  // namespace sd::dlock
