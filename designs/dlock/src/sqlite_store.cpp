// sqlite:///path — the lock state in one SQLite file (WAL, synchronous=NORMAL; batches that
// reserve tokens commit with synchronous=FULL so a power loss can never roll the token counter
// back below a token that was handed out).
//
// Group mode (Store::set_group_commit): the first batch opens a write transaction (BEGIN
// IMMEDIATE) that stays open; each batch runs under its own SAVEPOINT, so a failing batch rolls
// back only itself and the core's all-or-nothing per operation holds; commit_pending() COMMITs
// them all at once. A batch that reserves tokens needs synchronous=FULL, which SQLite refuses to
// change inside a transaction: the open (NORMAL) group is committed first and a FULL one begun.
// Errors such as SQLITE_FULL/IOERR may roll back the whole transaction behind our back: then the
// group is "lost", later batches fail fast and commit_pending() reports the loss.

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "sd/dlock/store.hpp"
#include "sd/storage/sqlite.hpp"

namespace sd::dlock {
namespace {

using storage::Db;
using storage::Statement;

const std::vector<std::string>& migrations() {
  static const std::vector<std::string> kSteps = {
      // 1: initial schema
      R"sql(
        CREATE TABLE leases(
          id TEXT PRIMARY KEY NOT NULL,
          ttl_ms INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE TABLE holds(
          kind TEXT NOT NULL,          -- 'lock' | 'semaphore'
          name TEXT NOT NULL,
          lease_id TEXT NOT NULL,
          mode TEXT NOT NULL,          -- 'exclusive' | 'shared'
          permits INTEGER NOT NULL,
          "limit" INTEGER NOT NULL,
          token INTEGER NOT NULL,
          PRIMARY KEY(kind, name, lease_id)
        ) WITHOUT ROWID;
        CREATE INDEX holds_by_lease ON holds(lease_id);
        CREATE TABLE names(
          kind TEXT NOT NULL,
          name TEXT NOT NULL,
          last_token INTEGER NOT NULL,
          PRIMARY KEY(kind, name)
        ) WITHOUT ROWID;
        CREATE TABLE meta(
          id INTEGER PRIMARY KEY CHECK (id = 1),
          token_reserved INTEGER NOT NULL
        );
        INSERT INTO meta(id, token_reserved) VALUES(1, 0);
      )sql",
  };
  return kSteps;
}

constexpr const char* kPutLease =
    "INSERT INTO leases(id, ttl_ms) VALUES(?1, ?2) "
    "ON CONFLICT(id) DO UPDATE SET ttl_ms = excluded.ttl_ms";
constexpr const char* kDeleteLeaseHolds = "DELETE FROM holds WHERE lease_id = ?1";
constexpr const char* kDeleteLease = "DELETE FROM leases WHERE id = ?1";
constexpr const char* kPutHold =
    "INSERT INTO holds(kind, name, lease_id, mode, permits, \"limit\", token) "
    "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) "
    "ON CONFLICT(kind, name, lease_id) DO UPDATE SET mode = excluded.mode, "
    "permits = excluded.permits, \"limit\" = excluded.\"limit\", token = excluded.token";
constexpr const char* kPutName =
    "INSERT INTO names(kind, name, last_token) VALUES(?1, ?2, ?3) "
    "ON CONFLICT(kind, name) DO UPDATE SET last_token = max(last_token, excluded.last_token)";
constexpr const char* kDeleteHold =
    "DELETE FROM holds WHERE kind = ?1 AND name = ?2 AND lease_id = ?3";
constexpr const char* kReserve =
    "UPDATE meta SET token_reserved = max(token_reserved, ?1) WHERE id = 1";

Result<Kind> parse_kind(std::string_view s) {
  if (s == "lock") return Kind::kLock;
  if (s == "semaphore") return Kind::kSemaphore;
  return internal_error("sqlite store: unknown kind '" + std::string(s) + "'");
}

// An exclusive flock on "<db>.owner" for the store's lifetime. The core's in-memory state is
// authoritative, so two processes on one file would each grant the same lock; the second one must
// fail to open instead. The kernel drops the flock when the process dies (also on kill -9).
class OwnerLock {
 public:
  static Result<OwnerLock> acquire(const std::string& db_path) {
    std::string path = db_path + ".owner";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
      return unavailable("sqlite store: cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int err = errno;
      ::close(fd);
      if (err == EWOULDBLOCK) {
        return unavailable("sqlite store: " + db_path +
                           " is in use by another process (only one dlockd or in-process client "
                           "may own a store file)");
      }
      return unavailable("sqlite store: cannot lock " + path + ": " + std::strerror(err));
    }
    return OwnerLock(fd);
  }
  OwnerLock(OwnerLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  OwnerLock& operator=(OwnerLock&&) = delete;
  ~OwnerLock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

 private:
  explicit OwnerLock(int fd) : fd_(fd) {}
  int fd_;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(Db db, std::string path, OwnerLock owner)
      : owner_(std::move(owner)), db_(std::move(db)), path_(std::move(path)) {}

  Result<Snapshot> load() override {
    Snapshot snap;
    auto tx = storage::Transaction::begin(db_, {storage::TxMode::kDeferred, false});
    if (!tx) return tx.status();
    {
      auto st = db_.cached("SELECT id, ttl_ms FROM leases");
      if (!st) return st.status();
      for (;;) {
        auto row = (*st)->step();
        if (!row) return row.status();
        if (!*row) break;
        snap.leases.push_back(PutLease{(*st)->column_text(0), (*st)->column_int64(1)});
      }
    }
    {
      // Token order is grant order, so holders come back in the order they were granted.
      auto st = db_.cached(
          "SELECT kind, name, lease_id, mode, permits, \"limit\", token FROM holds ORDER BY token");
      if (!st) return st.status();
      for (;;) {
        auto row = (*st)->step();
        if (!row) return row.status();
        if (!*row) break;
        Statement& s = **st;
        auto kind = parse_kind(s.column_text_view(0));
        if (!kind) return kind.status();
        auto mode = parse_mode(s.column_text_view(3));
        if (!mode) return internal_error("sqlite store: unknown mode in holds");
        snap.holds.push_back(PutHold{*kind, s.column_text(1), s.column_text(2), *mode,
                                     static_cast<uint32_t>(s.column_int64(4)),
                                     static_cast<uint32_t>(s.column_int64(5)), s.column_uint64(6)});
      }
    }
    {
      auto v = db_.query_int64("SELECT token_reserved FROM meta WHERE id = 1");
      if (!v) return v.status();
      snap.token_reserved = static_cast<Token>(*v);
    }
    {
      auto st = db_.cached("SELECT kind, name, last_token FROM names");
      if (!st) return st.status();
      for (;;) {
        auto row = (*st)->step();
        if (!row) return row.status();
        if (!*row) break;
        auto kind = parse_kind((*st)->column_text_view(0));
        if (!kind) return kind.status();
        snap.last_tokens.push_back({{*kind, (*st)->column_text(1)}, (*st)->column_uint64(2)});
      }
    }
    SD_RETURN_IF_ERROR(tx->commit());
    return snap;
  }

  Status apply(const std::vector<Mutation>& batch) override {
    if (batch.empty()) return Status::ok();
    bool durable = false;
    for (const Mutation& m : batch) durable = durable || std::holds_alternative<ReserveTokens>(m);
    if (group_) return apply_grouped(batch, durable);
    auto tx = storage::Transaction::begin(db_, {storage::TxMode::kImmediate, durable});
    if (!tx) return tx.status();
    SD_RETURN_IF_ERROR(apply_all(batch));
    return tx->commit();
  }

  std::string describe() const override { return "sqlite://" + path_; }

  Status set_group_commit(bool on) override {
    if (!on && has_pending()) SD_RETURN_IF_ERROR(commit_pending());
    group_ = on;
    return Status::ok();
  }

  bool has_pending() const override { return open_ || !lost_.is_ok(); }

  Status commit_pending() override {
    if (!lost_.is_ok()) {
      discard_pending();
      return std::exchange(lost_, Status::ok());
    }
    if (!open_) return Status::ok();
    return end_group("COMMIT");
  }

  void discard_pending() override {
    lost_ = Status::ok();
    if (open_) (void)end_group("ROLLBACK");
  }

 private:
  Status apply_all(const std::vector<Mutation>& batch) {
    for (const Mutation& m : batch) {
      SD_RETURN_IF_ERROR(std::visit([this](const auto& x) { return apply_one(x); }, m));
    }
    return Status::ok();
  }

  // Runs a statement without parameters (BEGIN, SAVEPOINT, ...) from the statement cache.
  Status exec_cached(const char* sql) {
    auto st = db_.cached(sql);
    if (!st) return st.status();
    return (*st)->run();
  }

  // Ends the open group with COMMIT or ROLLBACK. Afterwards no transaction is open (a failed
  // COMMIT is rolled back) and the connection is at its default synchronous level again.
  Status end_group(const char* how) {
    Status st = exec_cached(how);
    if (!st && db_.in_transaction()) (void)db_.exec("ROLLBACK");
    open_ = false;
    if (open_durable_) {
      open_durable_ = false;
      Status rs = db_.set_synchronous(db_.default_synchronous());
      if (st && !rs) st = rs;
    }
    return st;
  }

  Status apply_grouped(const std::vector<Mutation>& batch, bool durable) {
    if (!lost_.is_ok()) return lost_;  // the group is gone already; commit_pending() says so
    if (durable && open_ && !open_durable_) {
      // Everything staged so far was decided before this batch: committing it early is safe.
      if (Status st = end_group("COMMIT"); !st) {
        lost_ = st;
        return st;
      }
    }
    const bool first = !open_;
    if (first) {
      if (durable) SD_RETURN_IF_ERROR(db_.set_synchronous(storage::Synchronous::kFull));
      if (Status st = exec_cached("BEGIN IMMEDIATE"); !st) {
        if (durable) (void)db_.set_synchronous(db_.default_synchronous());
        return st;
      }
      open_ = true;
      open_durable_ = durable;
    }
    if (first) {
      // Alone in the transaction: rolling all of it back undoes just this batch, so it needs no
      // savepoint (a solo request pays no more statements than without group mode).
      Status st = apply_all(batch);
      if (!st) (void)end_group("ROLLBACK");
      return st;
    }
    Status st = exec_cached("SAVEPOINT batch");
    if (st) st = apply_all(batch);
    if (st) st = exec_cached("RELEASE batch");
    if (st) return st;
    if (db_.in_transaction()) {
      // Only this batch goes; the batches staged before it stay pending.
      if (exec_cached("ROLLBACK TO batch") && exec_cached("RELEASE batch")) return st;
    }
    // SQLite rolled back the whole transaction (FULL, IOERR, ...) or the savepoint is stuck.
    lost_ = st;
    discard_open_group();
    return st;
  }

  // After the group was lost: ends whatever is left of the transaction, keeping lost_.
  void discard_open_group() {
    if (open_) (void)end_group("ROLLBACK");
  }

  // Runs a cached statement with the given binder.
  template <class Bind>
  Status run(const char* sql, Bind&& bind) {
    auto st = db_.cached(sql);
    if (!st) return st.status();
    SD_RETURN_IF_ERROR(bind(**st));
    return (*st)->run();
  }

  Status apply_one(const PutLease& m) {
    return run(kPutLease, [&](Statement& s) {
      SD_RETURN_IF_ERROR(s.bind_text(1, m.id));
      return s.bind_int64(2, m.ttl_ms);
    });
  }
  Status apply_one(const DeleteLease& m) {
    SD_RETURN_IF_ERROR(run(kDeleteLeaseHolds, [&](Statement& s) { return s.bind_text(1, m.id); }));
    return run(kDeleteLease, [&](Statement& s) { return s.bind_text(1, m.id); });
  }
  Status apply_one(const PutHold& m) {
    Status st = run(kPutHold, [&](Statement& s) {
      SD_RETURN_IF_ERROR(s.bind_text(1, kind_name(m.kind)));
      SD_RETURN_IF_ERROR(s.bind_text(2, m.name));
      SD_RETURN_IF_ERROR(s.bind_text(3, m.lease_id));
      SD_RETURN_IF_ERROR(s.bind_text(4, mode_name(m.mode)));
      SD_RETURN_IF_ERROR(s.bind_int64(5, m.permits));
      SD_RETURN_IF_ERROR(s.bind_int64(6, m.limit));
      return s.bind_uint64(7, m.token);
    });
    if (!st) return st;
    return run(kPutName, [&](Statement& s) {
      SD_RETURN_IF_ERROR(s.bind_text(1, kind_name(m.kind)));
      SD_RETURN_IF_ERROR(s.bind_text(2, m.name));
      return s.bind_uint64(3, m.token);
    });
  }
  Status apply_one(const DeleteHold& m) {
    return run(kDeleteHold, [&](Statement& s) {
      SD_RETURN_IF_ERROR(s.bind_text(1, kind_name(m.kind)));
      SD_RETURN_IF_ERROR(s.bind_text(2, m.name));
      return s.bind_text(3, m.lease_id);
    });
  }
  Status apply_one(const ReserveTokens& m) {
    return run(kReserve, [&](Statement& s) { return s.bind_uint64(1, m.upto); });
  }

  OwnerLock owner_;  // destroyed last: the file stays ours until the Db is closed
  Db db_;
  std::string path_;
  // Group mode state. A Store is used under its owner's serialization (LockCore callers), so
  // these need no lock of their own.
  bool group_ = false;
  bool open_ = false;          // a group transaction is open
  bool open_durable_ = false;  // ...with synchronous=FULL (it holds a token reservation)
  Status lost_;                // a failure that rolled back the open group; reported by commit
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path) {
  if (path.empty()) return invalid_argument("sqlite store: empty path");
  std::error_code ec;
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);  // Db::open reports failure
  auto owner = OwnerLock::acquire(path);
  if (!owner) return owner.status();
  auto db = Db::open(path);
  if (!db) return db.status();
  SD_RETURN_IF_ERROR(storage::migrate(*db, migrations()));
  return std::unique_ptr<Store>(
      std::make_unique<SqliteStore>(std::move(*db), path, std::move(*owner)));
}

}  // namespace sd::dlock
