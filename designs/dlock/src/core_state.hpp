#pragma once
// Internal state of LockCore (not a public header).
//
// Layout, chosen to keep held locks cheap and every operation O(log n) in the number of names:
//   leases      unordered_map<LeaseId, Lease>       node-stable; holders/waiters point into it
//   names[kind] map<string, NameEntry>              sorted (list by prefix); node-stable
//     NameEntry = {last_token, unique_ptr<Active>}  Active only while the name has holders,
//                                                   waiters or a pending lock-delay
//   waiters     unordered_map<WaiterId, Waiter>     also linked into the name's FIFO queue
//   lease_expiry / wait_expiry / delay_ends          ordered deadline indexes (std::set)
// Nothing is ever scanned in full by an operation; holders of one name and holds of one lease are
// scanned linearly (both are small in practice and bounded by Limits).

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "sd/dlock/core.hpp"

namespace sd::dlock {

struct Lease;
struct NameEntry;
struct Waiter;

using LeaseMap = std::unordered_map<LeaseId, Lease>;
using LeaseNode = LeaseMap::value_type;  // pair<const LeaseId, Lease>
using NameMap = std::map<std::string, NameEntry, std::less<>>;
using NameNode = NameMap::value_type;  // pair<const std::string, NameEntry>

struct Holder {
  LeaseNode* lease;
  Token token;
  uint32_t permits;
  Mode mode;
};

struct Active {
  std::vector<Holder> holders;  // in grant order
  Waiter* head = nullptr;       // FIFO queue, intrusive doubly-linked list
  Waiter* tail = nullptr;
  uint32_t queued = 0;
  uint32_t limit = 1;       // semaphores: capacity shared by holders and waiters
  uint32_t used = 0;        // semaphores: permits held
  TimePoint delay_until{};  // lock-delay end; TimePoint{} when none is pending
};

struct NameEntry {
  Token last_token = 0;
  std::unique_ptr<Active> active;  // null when idle
};

struct HoldRef {
  NameNode* name;
  Kind kind;
};

struct Lease {
  Duration ttl{0};
  TimePoint deadline{};
  uint64_t seq = 0;  // creation order: deterministic tie-break among equal deadlines
  std::vector<HoldRef> holds;
  std::vector<Waiter*> waits;
};

struct Waiter {
  WaiterId id = 0;
  LeaseNode* lease = nullptr;
  NameNode* name = nullptr;
  Kind kind = Kind::kLock;
  Mode mode = Mode::kExclusive;
  uint32_t permits = 1;
  TimePoint deadline{};
  Waiter* prev = nullptr;
  Waiter* next = nullptr;
};

struct LeaseExpiryKey {
  TimePoint at;
  uint64_t seq;
  LeaseNode* lease;
  bool operator<(const LeaseExpiryKey& o) const { return at != o.at ? at < o.at : seq < o.seq; }
};

struct DelayKey {
  TimePoint at;
  Kind kind;
  NameNode* name;  // stable: a name with a pending delay keeps its Active
  bool operator<(const DelayKey& o) const {
    if (at != o.at) return at < o.at;
    if (kind != o.kind) return kind < o.kind;
    return name->first < o.name->first;
  }
};

// The effects of one operation, computed before anything changes: the store batch plus the
// grants to execute once the batch is durable.
struct Plan {
  struct Grant {
    Waiter* waiter;
    Token token;
  };
  std::vector<Mutation> batch;
  std::vector<Grant> grants;
  Token counter = 0;   // tentative token counter
  Token reserved = 0;  // tentative reservation
};

struct LockCore::State {
  State(Store& s, const Clock& c, IdGenerator& i, const CoreOptions& o)
      : store(s), clock(c), ids(i), opt(o) {}
  ~State();

  Store& store;
  const Clock& clock;
  IdGenerator& ids;
  const CoreOptions& opt;

  LeaseMap leases;
  NameMap names[2];
  std::unordered_map<WaiterId, Waiter> waiters;
  std::set<LeaseExpiryKey> lease_expiry;
  std::set<std::pair<TimePoint, WaiterId>> wait_expiry;
  std::set<DelayKey> delay_ends;
  std::set<std::pair<Kind, std::string>> pending_pumps;  // grants deferred by a store failure
  std::vector<WaiterEvent> events;

  Token counter = 0;   // last token issued
  Token reserved = 0;  // durable: no token above this was issued
  uint64_t next_lease_seq = 1;
  WaiterId next_waiter = 1;
  size_t hold_count = 0;
  size_t active_names = 0;
  bool recovered = false;
  bool degraded = false;  // the last tick hit a store failure
  TimePoint retry_at{};   // when a degraded tick should retry

  static constexpr Duration kStoreRetry{100};

  NameMap& names_of(Kind k) { return names[k == Kind::kLock ? 0 : 1]; }
  const NameMap& names_of(Kind k) const { return names[k == Kind::kLock ? 0 : 1]; }

  // --- leases ---
  LeaseNode* find_live(const LeaseId& id, TimePoint now);
  LeaseInfo lease_info(const LeaseNode& n, TimePoint now) const;
  void index_lease(LeaseNode& n);
  void unindex_lease(LeaseNode& n);
  // Drops a lease from memory: cancels its waiters with `why`, removes its holders (without
  // granting; the caller's plan does that), erases it.
  void remove_lease(LeaseNode* n, const Status& why, std::vector<HoldRef>& touched);
  // Store batch + grant plan for removing lease n at instant `at`; with lock-delay (expiry only)
  // the names it held get a delay instead of grants.
  Plan plan_lease_removal(LeaseNode* n, TimePoint at, bool with_delay);
  Status expire_lease(LeaseNode* n, TimePoint at);

  // --- names, holders, waiters ---
  Active& ensure_active(Kind kind, NameNode& node);
  void maybe_drop(Kind kind, NameNode* node);  // node may be erased
  void add_holder(Kind kind, NameNode& node, LeaseNode* lease, Mode mode, uint32_t permits,
                  Token token);
  void remove_holder(Kind kind, NameNode& node, LeaseNode* lease);  // also from the lease's list
  Waiter& enqueue(const AcquireRequest& req, NameNode& node, LeaseNode* lease, TimePoint now);
  void unlink_waiter(Waiter& w);  // from queue, lease and timeout index; does not erase it
  void erase_waiter(Waiter& w);   // unlink + erase from `waiters`
  void set_delay(Kind kind, NameNode& node, TimePoint until);
  void clear_delay(Kind kind, NameNode& node);

  // --- grants ---
  Token take_token(Plan& plan) const;
  Plan new_plan() const;
  // Plans grants to `node`'s queue head while compatible, as if lease `gone` (may be null) held
  // nothing and waited on nothing there, evaluated at instant `at` (lock-delay).
  void plan_grants(Kind kind, NameNode& node, const LeaseNode* gone, TimePoint at, Plan& plan);
  // Executes a plan whose batch was applied.
  void commit_plan(const Plan& plan);
  void grant_waiter(Waiter& w, Token token);
  // Plans, applies and commits grants for one name; a store failure queues a retry.
  void pump(Kind kind, NameNode* node, TimePoint at);
  void retry_pending_pumps(TimePoint now);
  void note_store_failure(const Status& st, std::string_view what, TimePoint now);

  // --- API bodies ---
  Status recover();
  Result<LeaseInfo> create_lease(Duration ttl);
  Result<LeaseInfo> keepalive(const LeaseId& id);
  Status revoke_lease(const LeaseId& id);
  Result<LeaseInfo> lease(const LeaseId& id);
  Result<AcquireOutcome> acquire(const AcquireRequest& req);
  Status release(Kind kind, const std::string& name, const LeaseId& lease_id, Token token);
  void cancel_wait(WaiterId id);
  void tick();
  std::optional<TimePoint> next_deadline() const;
  Result<LockInfo> describe(Kind kind, const std::string& name);
  std::vector<LockInfo> list(Kind kind, const std::string& prefix, size_t limit);
  LockInfo info_of(Kind kind, const NameNode& node, TimePoint now) const;
  CoreStats stats() const;
};

}  // namespace sd::dlock
