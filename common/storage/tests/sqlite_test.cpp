#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>

#include "sd/storage/sqlite.hpp"

namespace fs = std::filesystem;
using sd::Code;
using sd::Status;
using namespace sd::storage;

namespace {

// A fresh directory under the system temp dir, removed (recursively) at scope exit.
struct TempDir {
  fs::path path;
  TempDir() {
    std::random_device rd;
    path = fs::temp_directory_path() /
           ("sd_storage_test_" + std::to_string(rd()) + "_" + std::to_string(rd()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

Db open_ok(const std::string& path, DbOptions opts = {}) {
  auto db = Db::open(path, opts);
  INFO(db.status().to_string());
  REQUIRE(db.is_ok());
  return std::move(db).value();
}

int64_t count_rows(Db& db, const std::string& table) {
  auto n = db.query_int64("SELECT count(*) FROM " + table);
  REQUIRE(n.is_ok());
  return *n;
}

}  // namespace

TEST_CASE("Db::open creates parent dirs and enables WAL", "[unit][storage]") {
  TempDir dir;
  std::string path = dir.file("a/b/c/test.db");
  Db db = open_ok(path);
  CHECK(fs::exists(path));
  CHECK(db.path() == path);
  auto st = db.prepare("PRAGMA journal_mode");
  REQUIRE(st.is_ok());
  REQUIRE(*st->step());
  CHECK(st->column_text(0) == "wal");
  CHECK(*db.query_int64("PRAGMA synchronous") == 1);  // NORMAL
  CHECK(*db.query_int64("PRAGMA busy_timeout") == 5000);
}

TEST_CASE("Db::open honours options and reports bad files", "[unit][storage]") {
  TempDir dir;
  SECTION("synchronous FULL and custom busy timeout") {
    DbOptions o;
    o.synchronous = Synchronous::kFull;
    o.busy_timeout = sd::Duration(123);
    Db db = open_ok(dir.file("x.db"), o);
    CHECK(*db.query_int64("PRAGMA synchronous") == 2);
    CHECK(*db.query_int64("PRAGMA busy_timeout") == 123);
  }
  SECTION("create=false on a missing file") {
    DbOptions o;
    o.create = false;
    auto db = Db::open(dir.file("missing.db"), o);
    REQUIRE_FALSE(db.is_ok());
    CHECK(db.status().code() == Code::kUnavailable);
    CHECK_THAT(db.status().message(), Catch::Contains("unable to open"));
  }
  SECTION("a file that is not a database") {
    std::string p = dir.file("garbage.db");
    {
      std::ofstream f(p, std::ios::binary);
      f << std::string(4096, 'x');
    }
    auto db = Db::open(p);
    REQUIRE_FALSE(db.is_ok());
    CHECK(db.status().code() == Code::kInternal);
    CHECK_THAT(db.status().message(), Catch::Contains("not a database"));
  }
  SECTION("parent is a regular file") {
    std::string p = dir.file("plain");
    { std::ofstream f(p); }
    auto db = Db::open(p + "/sub/x.db");
    REQUIRE_FALSE(db.is_ok());
    CHECK(db.status().code() == Code::kUnavailable);
  }
  SECTION("in-memory database") {
    Db db = open_ok(":memory:");
    REQUIRE(db.exec("CREATE TABLE t(x)").is_ok());
    CHECK(count_rows(db, "t") == 0);
  }
}

TEST_CASE("Statement binds and reads every supported type", "[unit][storage]") {
  Db db = open_ok(":memory:");
  REQUIRE(db.exec("CREATE TABLE t(i INTEGER, u INTEGER, s TEXT, n TEXT)").is_ok());
  auto ins = db.prepare("INSERT INTO t VALUES(?, ?, ?, ?)");
  REQUIRE(ins.is_ok());
  const uint64_t big = std::numeric_limits<uint64_t>::max() - 7;
  const std::string text("h\xC3\xA9llo\0world", 12);  // UTF-8 with an embedded NUL
  REQUIRE(ins->bind_int64(1, -42).is_ok());
  REQUIRE(ins->bind_uint64(2, big).is_ok());
  REQUIRE(ins->bind_text(3, text).is_ok());
  REQUIRE(ins->bind_null(4).is_ok());
  REQUIRE(ins->run().is_ok());
  CHECK(db.changes() == 1);
  CHECK(db.last_insert_rowid() == 1);

  // run() keeps bindings: a second run inserts the same row again.
  REQUIRE(ins->run().is_ok());
  CHECK(count_rows(db, "t") == 2);

  auto sel = db.prepare("SELECT i, u, s, n FROM t WHERE rowid = ?");
  REQUIRE(sel.is_ok());
  REQUIRE(sel->bind_int64(1, 1).is_ok());
  auto row = sel->step();
  REQUIRE(row.is_ok());
  REQUIRE(*row);
  CHECK(sel->column_count() == 4);
  CHECK(sel->column_int64(0) == -42);
  CHECK(sel->column_uint64(1) == big);
  CHECK(sel->column_text(2) == text);
  CHECK(sel->column_is_null(3));
  CHECK_FALSE(sel->column_is_null(0));
  auto done = sel->step();
  REQUIRE(done.is_ok());
  CHECK_FALSE(*done);

  // reset() clears bindings: an unbound parameter is NULL, which matches no rowid.
  REQUIRE(sel->reset().is_ok());
  CHECK_FALSE(*sel->step());
  CHECK(sel->sql() == "SELECT i, u, s, n FROM t WHERE rowid = ?");
}

TEST_CASE("Statement errors are values", "[unit][storage]") {
  Db db = open_ok(":memory:");
  SECTION("syntax error in prepare") {
    auto st = db.prepare("SELEC 1");
    REQUIRE_FALSE(st.is_ok());
    CHECK(st.status().code() == Code::kInternal);
    CHECK_THAT(st.status().message(), Catch::Contains("syntax error"));
  }
  SECTION("bind index out of range") {
    auto st = db.prepare("SELECT ?");
    REQUIRE(st.is_ok());
    Status s = st->bind_int64(5, 1);
    CHECK(s.code() == Code::kInternal);
    CHECK_THAT(s.message(), Catch::Contains("bind parameter 5"));
  }
  SECTION("constraint violation") {
    REQUIRE(db.exec("CREATE TABLE t(k TEXT PRIMARY KEY, v INTEGER NOT NULL)").is_ok());
    REQUIRE(db.exec("INSERT INTO t VALUES('a', 1)").is_ok());
    auto ins = db.prepare("INSERT INTO t VALUES('a', 2)");
    REQUIRE(ins.is_ok());
    Status s = ins->run();
    CHECK(s.code() == Code::kAlreadyExists);
    CHECK_THAT(s.message(), Catch::Contains("UNIQUE constraint failed"));
    Status s2 = db.exec("INSERT INTO t VALUES('b', NULL)");
    CHECK(s2.code() == Code::kConflict);
    CHECK_THAT(s2.message(), Catch::Contains("NOT NULL"));
  }
  SECTION("exec of bad SQL") {
    Status s = db.exec("CREATE TABLE (");
    CHECK_FALSE(s.is_ok());
    CHECK_THAT(s.message(), Catch::Contains("syntax error"));
  }
}

TEST_CASE("cached statements are prepared once and reset after use", "[unit][storage]") {
  Db db = open_ok(":memory:");
  REQUIRE(db.exec("CREATE TABLE t(x INTEGER)").is_ok());
  REQUIRE(db.exec("INSERT INTO t VALUES(1),(2),(3)").is_ok());
  const std::string sql = "SELECT x FROM t ORDER BY x";
  sd::storage::Statement* first = nullptr;
  {
    auto c = db.cached(sql);
    REQUIRE(c.is_ok());
    first = c->get();
    REQUIRE(*(*c)->step());
    CHECK((*c)->column_int64(0) == 1);
    // Left mid-iteration: the handle resets it on destruction.
  }
  {
    auto c = db.cached(sql);
    REQUIRE(c.is_ok());
    CHECK(c->get() == first);
    REQUIRE(*(*c)->step());
    CHECK((*c)->column_int64(0) == 1);  // starts over
  }
  CHECK(db.cached_statements() == 1);
  auto other = db.cached("SELECT count(*) FROM t");
  REQUIRE(other.is_ok());
  CHECK(db.cached_statements() == 2);
  CHECK_FALSE(db.cached("NOT SQL").is_ok());
  CHECK(db.cached_statements() == 2);
}

TEST_CASE("Transaction commits and rolls back on destruction and restores the sync level",
          "[unit][storage]") {
  TempDir dir;
  Db db = open_ok(dir.file("tx.db"));
  REQUIRE(db.exec("CREATE TABLE t(x INTEGER)").is_ok());

  {
    auto tx = Transaction::begin(db);
    REQUIRE(tx.is_ok());
    CHECK(db.in_transaction());
    REQUIRE(db.exec("INSERT INTO t VALUES(1)").is_ok());
    // no commit
  }
  CHECK_FALSE(db.in_transaction());
  CHECK(count_rows(db, "t") == 0);

  {
    auto tx = Transaction::begin(db);
    REQUIRE(tx.is_ok());
    REQUIRE(db.exec("INSERT INTO t VALUES(2)").is_ok());
    REQUIRE(tx->commit().is_ok());
    CHECK_FALSE(tx->active());
    CHECK(tx->commit().code() == Code::kFailedPrecondition);
  }
  CHECK(count_rows(db, "t") == 1);

  {
    auto tx = Transaction::begin(db);
    REQUIRE(tx.is_ok());
    REQUIRE(db.exec("INSERT INTO t VALUES(3)").is_ok());
    REQUIRE(tx->rollback().is_ok());
    CHECK(tx->rollback().is_ok());  // idempotent
  }
  CHECK(count_rows(db, "t") == 1);

  // Durable: synchronous is FULL for the transaction and back to NORMAL afterwards.
  {
    TxOptions o;
    o.durable = true;
    auto tx = Transaction::begin(db, o);
    REQUIRE(tx.is_ok());
    CHECK(*db.query_int64("PRAGMA synchronous") == 2);
    REQUIRE(db.exec("INSERT INTO t VALUES(4)").is_ok());
    REQUIRE(tx->commit().is_ok());
    CHECK(*db.query_int64("PRAGMA synchronous") == 1);
  }
  {
    TxOptions o;
    o.durable = true;
    auto tx = Transaction::begin(db, o);
    REQUIRE(tx.is_ok());
  }  // rolled back, level restored too
  CHECK(*db.query_int64("PRAGMA synchronous") == 1);
  CHECK(count_rows(db, "t") == 2);

  // Nested BEGIN is an error value.
  auto tx1 = Transaction::begin(db);
  REQUIRE(tx1.is_ok());
  auto tx2 = Transaction::begin(db);
  CHECK_FALSE(tx2.is_ok());
}

TEST_CASE("with_transaction commits on ok and rolls back on error", "[unit][storage]") {
  Db db = open_ok(":memory:");
  REQUIRE(db.exec("CREATE TABLE t(x INTEGER)").is_ok());
  CHECK(with_transaction(db, [&] { return db.exec("INSERT INTO t VALUES(1)"); }).is_ok());
  Status s = with_transaction(db, [&]() -> sd::Status {
    SD_RETURN_IF_ERROR(db.exec("INSERT INTO t VALUES(2)"));
    return sd::conflict("nope");
  });
  CHECK(s.code() == Code::kConflict);
  CHECK(count_rows(db, "t") == 1);
}

TEST_CASE("a second writer gets kUnavailable after busy_timeout", "[unit][storage]") {
  TempDir dir;
  std::string path = dir.file("busy.db");
  Db a = open_ok(path);
  DbOptions o;
  o.busy_timeout = sd::Duration(20);
  Db b = open_ok(path, o);
  REQUIRE(a.exec("CREATE TABLE t(x INTEGER)").is_ok());
  auto tx = Transaction::begin(a);
  REQUIRE(tx.is_ok());
  auto tb = Transaction::begin(b);
  REQUIRE_FALSE(tb.is_ok());
  CHECK(tb.status().code() == Code::kUnavailable);
  CHECK_THAT(tb.status().message(), Catch::Contains("locked"));
  // Readers still work under WAL.
  CHECK(count_rows(b, "t") == 0);
  REQUIRE(tx->commit().is_ok());
  auto tb2 = Transaction::begin(b);
  CHECK(tb2.is_ok());
}

TEST_CASE("migrate applies steps once and in order and each atomically", "[unit][storage]") {
  TempDir dir;
  std::string path = dir.file("m.db");
  std::vector<std::string> steps = {
      "CREATE TABLE a(x INTEGER);",
      "CREATE TABLE b(y TEXT); INSERT INTO a VALUES(7);",
  };
  {
    Db db = open_ok(path);
    CHECK(*schema_version(db) == 0);
    REQUIRE(migrate(db, steps).is_ok());
    CHECK(*schema_version(db) == 2);
    CHECK(count_rows(db, "a") == 1);
    // Idempotent: nothing re-runs.
    REQUIRE(migrate(db, steps).is_ok());
    CHECK(count_rows(db, "a") == 1);
  }
  {
    Db db = open_ok(path);
    CHECK(*schema_version(db) == 2);
    // A failing step rolls back completely and keeps the version.
    auto bad = steps;
    bad.push_back("INSERT INTO a VALUES(8); CREATE TABLE a(z);");
    Status s = migrate(db, bad);
    CHECK_FALSE(s.is_ok());
    CHECK_THAT(s.message(), Catch::Contains("migration 3 failed"));
    CHECK(*schema_version(db) == 2);
    CHECK(count_rows(db, "a") == 1);
    CHECK_FALSE(db.in_transaction());
    // A good third step applies only itself.
    auto good = steps;
    good.push_back("INSERT INTO a VALUES(9);");
    REQUIRE(migrate(db, good).is_ok());
    CHECK(*schema_version(db) == 3);
    CHECK(count_rows(db, "a") == 2);
    // The code now knows fewer steps than the file has: refuse.
    Status older = migrate(db, steps);
    CHECK(older.code() == Code::kFailedPrecondition);
    CHECK_THAT(older.message(), Catch::Contains("newer than this build"));
  }
}
