#pragma once
// LockCore: the sans-io lock state machine. Leases with TTLs own holds on locks (exclusive/shared)
// and semaphores; waiters queue FIFO (no barging); each grant gets a fresh fencing token.
// Deterministic: time comes only from the injected Clock, ids from the injected IdGenerator.
// NOT thread-safe: callers serialize all calls (the service holds one mutex around it).

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/ids.hpp"
#include "sd/base/status.hpp"
#include "sd/dlock/store.hpp"
#include "sd/dlock/types.hpp"

namespace sd::dlock {

struct CoreOptions {
  // After a holder's lease EXPIRES (not on release/revoke), the lock grants nothing for this long,
  // so a paused ex-holder's in-flight writes can drain (Chubby/Consul lock-delay). 0 = off.
  Duration lock_delay{0};
  Limits limits;
  Token token_block = 4096;  // tokens reserved per durable ReserveTokens write
};

struct AcquireOutcome {
  bool granted = false;
  Grant grant;          // when granted
  WaiterId waiter = 0;  // when queued (request.wait > 0 and not grantable now)
};

// What happened to a queued waiter, reported by take_events().
struct WaiterEvent {
  WaiterId waiter = 0;
  bool granted = false;
  Grant grant;    // when granted
  Status status;  // when not: kConflict "locked" (wait timed out) or kNotFound (lease gone)
};

struct CoreStats {
  size_t leases = 0, holds = 0, waiters = 0, names = 0;
  Token next_token = 0;
};

class LockCore {
 public:
  LockCore(Store& store, const Clock& clock, IdGenerator& ids, CoreOptions options = {});
  ~LockCore();

  // Loads the store's state. Call once before anything else. Tokens resume above every token ever
  // reserved; every recovered lease gets a full TTL from now.
  Status recover();

  // Every call below first applies expiries due at clock.now() (tick()).
  Result<LeaseInfo> create_lease(Duration ttl);    // kInvalidArgument outside limits
  Result<LeaseInfo> keepalive(const LeaseId& id);  // kNotFound if unknown or expired
  Status revoke_lease(const LeaseId& id);          // releases holds, drops waiters; kNotFound
  Result<LeaseInfo> lease(const LeaseId& id);

  // Grants now, or queues (wait > 0), or returns kConflict "locked" (try-lock). Re-acquire by a
  // lease that already holds the name in the same mode returns the same grant (same token).
  // Errors: kInvalidArgument (bad name/limits), kNotFound (lease), kConflict (held in another mode,
  // semaphore limit mismatch), kResourceExhausted (too many waiters/holds).
  Result<AcquireOutcome> acquire(const AcquireRequest& req);

  // Only the holding lease with the matching token may release: otherwise kConflict
  // "not_holder" and nothing changes. kNotFound for an unknown lease.
  Status release(Kind kind, const std::string& name, const LeaseId& lease_id, Token token);

  // Gives up a queued wait (no-op if the waiter already got its event).
  void cancel_wait(WaiterId waiter);

  // Applies everything due at now: lease expiry (with lock-delay), lock-delay ends, waiter
  // timeouts; grants to waiters that became first in line and compatible.
  void tick();
  // Earliest instant at which tick() would change something; nullopt if nothing is pending.
  std::optional<TimePoint> next_deadline() const;
  // Events for queued waiters since the last call, in the order they happened.
  std::vector<WaiterEvent> take_events();

  // --- Group commit (Store::set_group_commit) ---
  // In group mode every call's store batch is staged in an open transaction (a failing batch
  // still leaves the state unchanged), and nothing is durable until commit(): the caller must
  // not reveal any result -- replies, waiter grants, even reads -- before the commit that covers
  // it succeeded.
  Status set_group_commit(bool on);
  bool uncommitted() const;  // batches staged since the last commit()
  Status commit();
  // After a failed commit() the in-memory state is ahead of the store. reload() rolls back what
  // is pending, drops ALL in-memory state (waiters and undelivered events too; the caller
  // answers them) and loads the store's state as recover() does: leases get a full TTL again,
  // tokens resume above every reservation. Waiter ids keep increasing (never reused).
  Status reload();

  Result<LockInfo> describe(Kind kind, const std::string& name);  // kNotFound if never used
  // Names with holders or waiters (or a last token) starting with prefix, sorted, at most limit.
  std::vector<LockInfo> list(Kind kind, const std::string& prefix, size_t limit);
  CoreStats stats() const;
  const CoreOptions& options() const { return options_; }

 private:
  struct State;
  CoreOptions options_;
  Store& store_;
  const Clock& clock_;
  IdGenerator& ids_;
  std::unique_ptr<State> state_;
};

}  // namespace sd::dlock
