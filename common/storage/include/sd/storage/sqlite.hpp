#pragma once
// A small RAII wrapper over SQLite: Db (connection, WAL, busy timeout, statement cache), Statement
// (bind/step/columns), Transaction (BEGIN IMMEDIATE, rollback unless committed, optional durable
// commit with synchronous=FULL) and schema migrations via PRAGMA user_version.
//
// Errors are values: every fallible call returns sd::Status or sd::Result<T> carrying SQLite's
// message. Nothing here throws on data paths. A Db is NOT thread-safe: use one per thread or
// serialize access (open several connections to the same file for concurrency; WAL allows one
// writer and many readers).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/clock.hpp"
#include "sd/base/status.hpp"

struct sqlite3;
struct sqlite3_stmt;

namespace sd::storage {

// PRAGMA synchronous levels. In WAL mode kNormal loses at most the last commits on power loss
// (never corrupts); kFull fsyncs the WAL on every commit.
enum class Synchronous { kOff = 0, kNormal = 1, kFull = 2, kExtra = 3 };

struct DbOptions {
  bool create = true;              // create the file when missing
  bool create_parent_dirs = true;  // mkdir -p the parent directory
  bool read_only = false;
  bool wal = true;  // PRAGMA journal_mode=WAL (ignored for in-memory databases)
  Synchronous synchronous = Synchronous::kNormal;
  Duration busy_timeout{5000};  // how long a writer waits for another connection's lock
};

// Maps a SQLite result code (+ the connection's message) to a Status:
// BUSY/LOCKED/IOERR/FULL/CANTOPEN/READONLY/PERM -> kUnavailable, CONSTRAINT (unique/pk) ->
// kAlreadyExists, other CONSTRAINT -> kConflict, everything else -> kInternal.
Status sqlite_status(int rc, std::string_view context, sqlite3* db = nullptr);

class Statement {
 public:
  Statement() = default;
  Statement(Statement&& o) noexcept;
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  bool valid() const { return stmt_ != nullptr; }

  // Parameters are 1-based (SQLite convention).
  Status bind_int64(int index, int64_t v);
  Status bind_uint64(int index, uint64_t v);  // stored as the same 64 bits in an INTEGER column
  Status bind_double(int index, double v);
  Status bind_text(int index, std::string_view v);
  Status bind_null(int index);

  // Advances: true when a row is available, false when the statement is done.
  Result<bool> step();
  // Steps until done (for INSERT/UPDATE/DELETE), then resets (bindings are kept).
  Status run();

  // Columns are 0-based and valid after step() returned true.
  int column_count() const;
  bool column_is_null(int col) const;
  int64_t column_int64(int col) const;
  uint64_t column_uint64(int col) const;
  double column_double(int col) const;
  std::string column_text(int col) const;
  // Valid until the next step()/reset() on this statement.
  std::string_view column_text_view(int col) const;

  // Resets for re-execution and clears bindings.
  Status reset();
  std::string sql() const;
  sqlite3_stmt* handle() const { return stmt_; }

 private:
  friend class Db;
  Statement(sqlite3_stmt* stmt, sqlite3* db) : stmt_(stmt), db_(db) {}
  Status bind_result(int rc, int index);
  sqlite3_stmt* stmt_ = nullptr;
  sqlite3* db_ = nullptr;
};

// A statement borrowed from Db's cache; reset (bindings cleared) when the handle goes away, so
// it never pins a read snapshot. Do not keep it beyond the Db's lifetime.
class CachedStatement {
 public:
  explicit CachedStatement(Statement* s) : s_(s) {}
  CachedStatement(CachedStatement&& o) noexcept : s_(o.s_) { o.s_ = nullptr; }
  CachedStatement& operator=(CachedStatement&&) = delete;
  CachedStatement(const CachedStatement&) = delete;
  CachedStatement& operator=(const CachedStatement&) = delete;
  ~CachedStatement();
  Statement& operator*() const { return *s_; }
  Statement* operator->() const { return s_; }
  Statement* get() const { return s_; }

 private:
  Statement* s_;
};

class Db {
 public:
  // Opens (creating when allowed) the database at `path`; ":memory:" gives a private in-memory db.
  // Applies WAL, busy_timeout and synchronous from options. A file that is not a database is an
  // error here, not later.
  static Result<Db> open(const std::string& path, const DbOptions& options = {});

  Db(Db&& o) noexcept;
  Db& operator=(Db&& o) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;
  ~Db();

  // Runs one or more SQL statements that return no rows of interest.
  Status exec(std::string_view sql);
  // A fresh prepared statement owned by the caller.
  Result<Statement> prepare(std::string_view sql);
  // A prepared statement cached by its SQL text (prepared on first use, reused afterwards).
  Result<CachedStatement> cached(std::string_view sql);
  size_t cached_statements() const;
  // First column of the first row as an integer (e.g. PRAGMA user_version); kNotFound if no row.
  Result<int64_t> query_int64(std::string_view sql);

  // Changes the connection's synchronous level (not allowed inside a transaction).
  Status set_synchronous(Synchronous s);
  // The level requested in DbOptions (what durable transactions restore afterwards).
  Synchronous default_synchronous() const;

  int64_t changes() const;  // rows changed by the last INSERT/UPDATE/DELETE
  int64_t last_insert_rowid() const;
  bool in_transaction() const;
  const std::string& path() const;
  sqlite3* handle() const;

 private:
  struct Impl;
  explicit Db(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

enum class TxMode { kDeferred, kImmediate, kExclusive };

struct TxOptions {
  TxMode mode = TxMode::kImmediate;
  // Commit with synchronous=FULL (fsync), then restore the connection's default level. Use for
  // writes that must survive power loss, not just a process crash.
  bool durable = false;
};

// RAII transaction: rolls back on destruction unless commit() succeeded.
class Transaction {
 public:
  static Result<Transaction> begin(Db& db, TxOptions options = {});

  Transaction(Transaction&& o) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  ~Transaction();

  Status commit();    // on failure the transaction is rolled back
  Status rollback();  // explicit; no-op when already finished
  bool active() const { return db_ != nullptr; }

 private:
  Transaction(Db* db, bool durable) : db_(db), durable_(durable) {}
  void finish();
  Db* db_;
  bool durable_;
};

// Runs fn inside a transaction; commits when fn returns ok, rolls back otherwise.
Status with_transaction(Db& db, const std::function<Status()>& fn, TxOptions options = {});

// Current PRAGMA user_version.
Result<int64_t> schema_version(Db& db);

// Brings the schema to version steps.size(): step i (0-based) moves the schema from version i to
// i+1 and runs in its own transaction together with the user_version bump. Steps already applied
// are skipped; a failing step rolls back and returns its error (earlier steps stay applied). A
// database whose version is newer than steps.size() is kFailedPrecondition (a newer build wrote
// it).
Status migrate(Db& db, const std::vector<std::string>& steps);

}  // namespace sd::storage
