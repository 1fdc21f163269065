#pragma once
// Persistence for LockCore. The core keeps the authoritative state in memory and writes each
// operation's changes through to a Store as one atomic batch before acknowledging it. Waiters are
// never persisted (a restart drops them; their clients retry). Lease deadlines are not persisted:
// on recovery every lease gets its full TTL again (safe: a holder keeps its lock at least as long
// as promised; a dead holder's lock frees one TTL after the restart).

#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/dlock/types.hpp"

namespace sd::dlock {

struct PutLease {
  LeaseId id;
  long long ttl_ms = 0;
};
struct DeleteLease {
  LeaseId id;
};  // also deletes the lease's holds
struct PutHold {
  Kind kind = Kind::kLock;
  std::string name;
  LeaseId lease_id;
  Mode mode = Mode::kExclusive;
  uint32_t permits = 1;
  uint32_t limit = 1;
  Token token = 0;
};
struct DeleteHold {
  Kind kind = Kind::kLock;
  std::string name;
  LeaseId lease_id;
};
// Durably records that no token above `upto` has been issued yet. The core reserves tokens in
// blocks; after a crash it resumes above the last reservation, so no token is ever reused.
// Stores must make this mutation durable against power loss (fsync), not only process crash.
struct ReserveTokens {
  Token upto = 0;
};

using Mutation = std::variant<PutLease, DeleteLease, PutHold, DeleteHold, ReserveTokens>;

struct Snapshot {
  std::vector<PutLease> leases;
  std::vector<PutHold> holds;
  Token token_reserved = 0;  // highest ReserveTokens.upto ever applied
  std::vector<std::pair<std::pair<Kind, std::string>, Token>> last_tokens;  // per name, best effort
};

class Store {
 public:
  virtual ~Store() = default;
  // Not allowed while a group is pending (commit or discard it first).
  virtual Result<Snapshot> load() = 0;
  // Applies all mutations atomically (all or none), in order. Outside group mode the batch is
  // durable when this returns ok. In group mode it is only staged: a failing batch still changes
  // nothing, but the ones that succeed become durable together at the next commit_pending().
  virtual Status apply(const std::vector<Mutation>& batch) = 0;
  virtual std::string describe() const = 0;  // "memory", "sqlite:///path"

  // --- Group commit (optional) ---
  // Committing costs far more than the statements of one batch (WAL append, locks, BEGIN/COMMIT),
  // so a server that answers only after a commit can let every batch decided meanwhile share one.
  // Turns group mode on or off (off commits what is pending first). kUnimplemented if the store
  // does not support it; a store with nothing to make durable (memory) accepts and never pends.
  virtual Status set_group_commit(bool on) {
    if (!on) return Status::ok();
    return {Code::kUnimplemented, describe() + " does not support group commit"};
  }
  // True when batches were applied since the last commit_pending() (group mode).
  virtual bool has_pending() const { return false; }
  // Makes every pending batch durable, all of them or none. On failure nothing is pending
  // afterwards and none of those batches is in the store (the caller's view is ahead of it).
  virtual Status commit_pending() { return Status::ok(); }
  // Drops every pending batch (rollback).
  virtual void discard_pending() {}
};

// Keeps nothing across restarts.
std::unique_ptr<Store> make_memory_store();
// SQLite file in WAL mode, created with its schema (migrations) when missing. Parent directories
// are created. Errors (unwritable path, corrupt file) are returned, not thrown.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path);

}  // namespace sd::dlock
