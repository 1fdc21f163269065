#include "sd/storage/sqlite.hpp"

#include <sqlite3.h>

#include <filesystem>
#include <string>
#include <unordered_map>
#include <utility>

#include "sd/base/log.hpp"

namespace sd::storage {
namespace {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

bool is_memory_path(const std::string& path) {
  return path.empty() || path == ":memory:" || path.rfind("file::memory:", 0) == 0;
}

const char* sync_pragma(Synchronous s) {
  switch (s) {
    case Synchronous::kOff:
      return "PRAGMA synchronous=OFF";
    case Synchronous::kNormal:
      return "PRAGMA synchronous=NORMAL";
    case Synchronous::kFull:
      return "PRAGMA synchronous=FULL";
    case Synchronous::kExtra:
      return "PRAGMA synchronous=EXTRA";
  }
  return "PRAGMA synchronous=NORMAL";
}

}  // namespace

Status sqlite_status(int rc, std::string_view context, sqlite3* db) {
  std::string msg = "sqlite: ";
  msg.append(context);
  msg += ": ";
  // The connection's message is only meaningful when it describes this error.
  if (db && sqlite3_extended_errcode(db) == rc) {
    msg += sqlite3_errmsg(db);
  } else {
    msg += sqlite3_errstr(rc);
  }
  msg += " (code " + std::to_string(rc) + ")";
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
      return {Code::kUnavailable, std::move(msg)};
    case SQLITE_CONSTRAINT:
      if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        return {Code::kAlreadyExists, std::move(msg)};
      }
      return {Code::kConflict, std::move(msg)};
    default:
      return {Code::kInternal, std::move(msg)};
  }
}

// ---------------------------------------------------------------------------------------------
// Statement

Statement::Statement(Statement&& o) noexcept
    : stmt_(std::exchange(o.stmt_, nullptr)), db_(std::exchange(o.db_, nullptr)) {}

Statement& Statement::operator=(Statement&& o) noexcept {
  if (this != &o) {
    if (stmt_) sqlite3_finalize(stmt_);
    stmt_ = std::exchange(o.stmt_, nullptr);
    db_ = std::exchange(o.db_, nullptr);
  }
  return *this;
}

Statement::~Statement() {
  if (stmt_) sqlite3_finalize(stmt_);
}

Status Statement::bind_result(int rc, int index) {
  if (rc == SQLITE_OK) return Status::ok();
  return sqlite_status(rc, "bind parameter " + std::to_string(index), db_);
}

Status Statement::bind_double(int index, double v) {
  return bind_result(sqlite3_bind_double(stmt_, index, v), index);
}

Status Statement::bind_int64(int index, int64_t v) {
  return bind_result(sqlite3_bind_int64(stmt_, index, v), index);
}

Status Statement::bind_uint64(int index, uint64_t v) {
  return bind_int64(index, static_cast<int64_t>(v));
}

Status Statement::bind_text(int index, std::string_view v) {
  return bind_result(
      sqlite3_bind_text64(stmt_, index, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), index);
}

Status Statement::bind_null(int index) {
  return bind_result(sqlite3_bind_null(stmt_, index), index);
}

Result<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Status st = sqlite_status(rc, "step", db_);
  sqlite3_reset(stmt_);
  return st;
}

Status Statement::run() {
  for (;;) {
    auto r = step();
    if (!r) return r.status();
    if (!*r) break;
  }
  int rc = sqlite3_reset(stmt_);
  if (rc != SQLITE_OK) return sqlite_status(rc, "reset", db_);
  return Status::ok();
}

int Statement::column_count() const {
  return sqlite3_column_count(stmt_);
}

bool Statement::column_is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

double Statement::column_double(int col) const {
  return sqlite3_column_double(stmt_, col);
}

int64_t Statement::column_int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

uint64_t Statement::column_uint64(int col) const {
  return static_cast<uint64_t>(sqlite3_column_int64(stmt_, col));
}

std::string_view Statement::column_text_view(int col) const {
  const auto* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  if (!p) return {};
  return {reinterpret_cast<const char*>(p), static_cast<size_t>(n)};
}

std::string Statement::column_text(int col) const {
  return std::string(column_text_view(col));
}

Status Statement::reset() {
  sqlite3_clear_bindings(stmt_);
  int rc = sqlite3_reset(stmt_);
  if (rc != SQLITE_OK) return sqlite_status(rc, "reset", db_);
  return Status::ok();
}

std::string Statement::sql() const {
  const char* s = stmt_ ? sqlite3_sql(stmt_) : nullptr;
  return s ? s : "";
}

CachedStatement::~CachedStatement() {
  if (s_) {
    sqlite3_clear_bindings(s_->handle());
    sqlite3_reset(s_->handle());  // its error, if any, was already reported by step()
  }
}

// ---------------------------------------------------------------------------------------------
// Db

struct Db::Impl {
  sqlite3* db = nullptr;
  std::string path;
  Synchronous sync = Synchronous::kNormal;
  std::unordered_map<std::string, std::unique_ptr<Statement>, StringHash, std::equal_to<>> cache;

  ~Impl() {
    cache.clear();  // finalize statements before closing
    if (db) sqlite3_close_v2(db);
  }
};

Db::Db(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Db::Db(Db&& o) noexcept = default;
Db& Db::operator=(Db&& o) noexcept = default;
Db::~Db() = default;

Result<Db> Db::open(const std::string& path, const DbOptions& options) {
  const bool memory = is_memory_path(path);
  if (!memory && options.create && options.create_parent_dirs && !options.read_only) {
    std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(parent, ec);
      if (ec) {
        return unavailable("sqlite: cannot create directory " + parent.string() + ": " +
                           ec.message());
      }
    }
  }

  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->sync = options.synchronous;
  int flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE;
    if (options.create) flags |= SQLITE_OPEN_CREATE;
  }
  int rc = sqlite3_open_v2(path.empty() ? ":memory:" : path.c_str(), &impl->db, flags, nullptr);
  if (rc != SQLITE_OK) {
    Status st = sqlite_status(rc, "open " + path, impl->db);
    return st;
  }
  sqlite3_extended_result_codes(impl->db, 1);
  sqlite3_busy_timeout(impl->db, static_cast<int>(options.busy_timeout.count()));

  Db db(std::move(impl));
  // Touching the schema validates that the file is a database at all.
  if (auto r = db.query_int64("PRAGMA schema_version"); !r) return r.status();
  if (options.wal && !memory && !options.read_only) {
    auto st = db.prepare("PRAGMA journal_mode=WAL");
    if (!st) return st.status();
    auto row = st->step();
    if (!row) return row.status();
    std::string mode = *row ? st->column_text(0) : "";
    if (mode != "wal")
      return internal_error("sqlite: cannot enable WAL on " + path + " (" + mode + ")");
  }
  SD_RETURN_IF_ERROR(db.set_synchronous(options.synchronous));
  return db;
}

Status Db::exec(std::string_view sql) {
  std::string s(sql);  // sqlite3_exec wants a NUL-terminated string
  char* err = nullptr;
  int rc = sqlite3_exec(impl_->db, s.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return Status::ok();
  std::string msg = err ? err : sqlite3_errstr(rc);
  sqlite3_free(err);
  Status st = sqlite_status(rc, "exec", nullptr);
  return {st.code(), "sqlite: exec: " + msg + " (code " + std::to_string(rc) + ")"};
}

Result<Statement> Db::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(impl_->db, sql.data(), static_cast<int>(sql.size()),
                              SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    if (stmt) sqlite3_finalize(stmt);
    return sqlite_status(rc, "prepare '" + std::string(sql) + "'", impl_->db);
  }
  if (!stmt) return invalid_argument("sqlite: prepare: empty statement");
  return Statement(stmt, impl_->db);
}

Result<CachedStatement> Db::cached(std::string_view sql) {
  auto it = impl_->cache.find(sql);
  if (it == impl_->cache.end()) {
    auto st = prepare(sql);
    if (!st) return st.status();
    it = impl_->cache.emplace(std::string(sql), std::make_unique<Statement>(std::move(*st))).first;
  }
  return CachedStatement(it->second.get());
}

size_t Db::cached_statements() const {
  return impl_->cache.size();
}

Result<int64_t> Db::query_int64(std::string_view sql) {
  auto st = prepare(sql);
  if (!st) return st.status();
  auto row = st->step();
  if (!row) return row.status();
  if (!*row) return not_found("sqlite: no row for '" + std::string(sql) + "'");
  return st->column_int64(0);
}

Status Db::set_synchronous(Synchronous s) {
  return exec(sync_pragma(s));
}
Synchronous Db::default_synchronous() const {
  return impl_->sync;
}
int64_t Db::changes() const {
  return sqlite3_changes64(impl_->db);
}
int64_t Db::last_insert_rowid() const {
  return sqlite3_last_insert_rowid(impl_->db);
}
bool Db::in_transaction() const {
  return sqlite3_get_autocommit(impl_->db) == 0;
}
const std::string& Db::path() const {
  return impl_->path;
}
sqlite3* Db::handle() const {
  return impl_->db;
}

// ---------------------------------------------------------------------------------------------
// Transaction

Result<Transaction> Transaction::begin(Db& db, TxOptions options) {
  // The safety level cannot change inside a transaction, so a durable commit raises it first.
  if (options.durable) SD_RETURN_IF_ERROR(db.set_synchronous(Synchronous::kFull));
  const char* sql = options.mode == TxMode::kImmediate   ? "BEGIN IMMEDIATE"
                    : options.mode == TxMode::kExclusive ? "BEGIN EXCLUSIVE"
                                                         : "BEGIN DEFERRED";
  Status st = db.exec(sql);
  if (!st) {
    if (options.durable) (void)db.set_synchronous(db.default_synchronous());
    return st;
  }
  return Transaction(&db, options.durable);
}

Transaction::Transaction(Transaction&& o) noexcept
    : db_(std::exchange(o.db_, nullptr)), durable_(o.durable_) {}

Transaction::~Transaction() {
  if (db_) {
    Status st = rollback();
    if (!st) {
      SD_LOG(kWarn) << "transaction rollback failed: " << st.to_string();
    }
  }
}

void Transaction::finish() {
  Db* db = std::exchange(db_, nullptr);
  if (durable_) {
    Status st = db->set_synchronous(db->default_synchronous());
    if (!st) {
      SD_LOG(kWarn) << "cannot restore synchronous level: " << st.to_string();
    }
  }
}

Status Transaction::commit() {
  if (!db_) return {Code::kFailedPrecondition, "transaction already finished"};
  Status st = db_->exec("COMMIT");
  if (!st) {
    // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); make sure it ends.
    if (db_->in_transaction()) (void)db_->exec("ROLLBACK");
    finish();
    return st;
  }
  finish();
  return Status::ok();
}

Status Transaction::rollback() {
  if (!db_) return Status::ok();
  Status st = Status::ok();
  if (db_->in_transaction()) st = db_->exec("ROLLBACK");
  finish();
  return st;
}

Status with_transaction(Db& db, const std::function<Status()>& fn, TxOptions options) {
  auto tx = Transaction::begin(db, options);
  if (!tx) return tx.status();
  SD_RETURN_IF_ERROR(fn());
  return tx->commit();
}

// ---------------------------------------------------------------------------------------------
// Migrations

Result<int64_t> schema_version(Db& db) {
  return db.query_int64("PRAGMA user_version");
}

Status migrate(Db& db, const std::vector<std::string>& steps) {
  auto current = schema_version(db);
  if (!current) return current.status();
  const auto known = static_cast<int64_t>(steps.size());
  if (*current > known) {
    return {Code::kFailedPrecondition,
            "sqlite: " + db.path() + " has schema version " + std::to_string(*current) +
                ", newer than this build knows (" + std::to_string(known) + ")"};
  }
  for (int64_t v = *current; v < known; ++v) {
    auto tx = Transaction::begin(db);
    if (!tx) return tx.status();
    // Re-check under the write lock: another connection may have migrated meanwhile.
    auto now = schema_version(db);
    if (!now) return now.status();
    if (*now > v) continue;  // rolled back by ~Transaction; nothing to do for this step
    Status st = db.exec(steps[static_cast<size_t>(v)]);
    if (!st) {
      return {st.code(), "migration " + std::to_string(v + 1) + " failed: " + st.message()};
    }
    SD_RETURN_IF_ERROR(db.exec("PRAGMA user_version = " + std::to_string(v + 1)));
    SD_RETURN_IF_ERROR(tx->commit());
  }
  return Status::ok();
}

}  // namespace sd::storage
