// Stores: the SQLite store's schema, batches, atomicity and errors; the memory store.

#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core_test_util.hpp"
#include "sd/storage/sqlite.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace sd::dlock::testing;

namespace {

std::unique_ptr<Store> open_ok(const std::string& path) {
  auto s = open_sqlite_store(path);
  INFO(s.status().to_string());
  REQUIRE(s.is_ok());
  return std::move(*s);
}

Snapshot load_ok(Store& s) {
  auto snap = s.load();
  INFO(snap.status().to_string());
  REQUIRE(snap.is_ok());
  return std::move(*snap);
}

PutHold hold(Kind k, std::string name, LeaseId lease, Token token, Mode m = Mode::kExclusive,
             uint32_t permits = 1, uint32_t limit = 1) {
  return PutHold{k, std::move(name), std::move(lease), m, permits, limit, token};
}

Token last_token_of(const Snapshot& s, Kind k, const std::string& name) {
  for (const auto& [key, t] : s.last_tokens) {
    if (key.first == k && key.second == name) return t;
  }
  return 0;
}

}  // namespace

TEST_CASE("sqlite store round-trips every mutation", "[unit][dlock][store]") {
  TempDir dir;
  const std::string path = dir.file("nested/dir/s.db");
  {
    auto s = open_ok(path);
    CHECK(s->describe() == "sqlite://" + path);
    Snapshot empty = load_ok(*s);
    CHECK(empty.leases.empty());
    CHECK(empty.holds.empty());
    CHECK(empty.token_reserved == 0);

    REQUIRE(s->apply({PutLease{"L1", 1000}, PutLease{"L2", 2000}, ReserveTokens{100}}).is_ok());
    REQUIRE(
        s->apply({hold(Kind::kLock, "x", "L1", 5), hold(Kind::kLock, "r", "L1", 6, Mode::kShared),
                  hold(Kind::kLock, "r", "L2", 7, Mode::kShared),
                  hold(Kind::kSemaphore, "x", "L2", 8, Mode::kShared, 2, 3),
                  hold(Kind::kLock, "tmp", "L2", 9)})
            .is_ok());
    REQUIRE(s->apply({DeleteHold{Kind::kLock, "tmp", "L2"}, ReserveTokens{50},  // never lowers
                      PutLease{"L1", 1500}})
                .is_ok());
    REQUIRE(s->apply({}).is_ok());
  }
  auto s = open_ok(path);  // survives a reopen
  Snapshot snap = load_ok(*s);
  CHECK(snap.token_reserved == 100);
  REQUIRE(snap.leases.size() == 2);
  std::sort(snap.leases.begin(), snap.leases.end(),
            [](const PutLease& x, const PutLease& y) { return x.id < y.id; });
  CHECK(snap.leases[0].id == "L1");
  CHECK(snap.leases[0].ttl_ms == 1500);  // upserted
  CHECK(snap.leases[1].ttl_ms == 2000);
  REQUIRE(snap.holds.size() == 4);
  // In token order.
  CHECK(snap.holds[0].token == 5);
  CHECK(snap.holds[0].kind == Kind::kLock);
  CHECK(snap.holds[0].name == "x");
  CHECK(snap.holds[0].mode == Mode::kExclusive);
  CHECK(snap.holds[1].mode == Mode::kShared);
  CHECK(snap.holds[3].kind == Kind::kSemaphore);
  CHECK(snap.holds[3].permits == 2);
  CHECK(snap.holds[3].limit == 3);
  CHECK(last_token_of(snap, Kind::kLock, "tmp") == 9);  // released, still remembered
  CHECK(last_token_of(snap, Kind::kLock, "r") == 7);
  CHECK(last_token_of(snap, Kind::kSemaphore, "x") == 8);
  CHECK(last_token_of(snap, Kind::kLock, "x") == 5);

  // DeleteLease removes the lease's holds, but not the names' last tokens.
  REQUIRE(s->apply({DeleteLease{"L2"}}).is_ok());
  snap = load_ok(*s);
  CHECK(snap.leases.size() == 1);
  REQUIRE(snap.holds.size() == 2);
  for (const auto& h : snap.holds) CHECK(h.lease_id == "L1");
  CHECK(last_token_of(snap, Kind::kSemaphore, "x") == 8);

  // A lower token for a name never lowers its last token.
  REQUIRE(s->apply({hold(Kind::kLock, "r", "L1", 3, Mode::kShared)}).is_ok());
  CHECK(last_token_of(load_ok(*s), Kind::kLock, "r") == 7);
}

TEST_CASE("sqlite store batches are atomic", "[unit][dlock][store]") {
  TempDir dir;
  const std::string path = dir.file("atomic.db");
  auto s = open_ok(path);
  REQUIRE(s->apply({PutLease{"L1", 1000}}).is_ok());
  {
    // Sabotage the schema from another connection so the batch fails half-way.
    auto db = storage::Db::open(path);
    REQUIRE(db.is_ok());
    REQUIRE(db->exec("DROP TABLE names").is_ok());
  }
  Status st = s->apply({PutLease{"L2", 1000}, ReserveTokens{10}, hold(Kind::kLock, "x", "L1", 1)});
  CHECK_FALSE(st.is_ok());
  CHECK_THAT(st.message(), Catch::Contains("names"));
  // Nothing of the batch landed.
  auto db = storage::Db::open(path);
  REQUIRE(db.is_ok());
  CHECK(*db->query_int64("SELECT count(*) FROM leases") == 1);
  CHECK(*db->query_int64("SELECT count(*) FROM holds") == 0);
  CHECK(*db->query_int64("SELECT token_reserved FROM meta") == 0);
  // The connection is usable afterwards (no transaction left open).
  REQUIRE(db->exec("CREATE TABLE names(kind TEXT NOT NULL, name TEXT NOT NULL, "
                   "last_token INTEGER NOT NULL, PRIMARY KEY(kind, name)) WITHOUT ROWID")
              .is_ok());
  REQUIRE(s->apply({PutLease{"L2", 1000}, hold(Kind::kLock, "x", "L1", 1)}).is_ok());
  CHECK(*db->query_int64("SELECT count(*) FROM leases") == 2);
}

TEST_CASE("sqlite store schema and errors", "[unit][dlock][store]") {
  TempDir dir;
  SECTION("schema") {
    const std::string path = dir.file("schema.db");
    { open_ok(path); }
    auto db = storage::Db::open(path);
    REQUIRE(db.is_ok());
    CHECK(*storage::schema_version(*db) == 1);
    for (const char* t : {"leases", "holds", "names", "meta"}) {
      auto n =
          db->query_int64(std::string("SELECT count(*) FROM sqlite_master WHERE name='") + t + "'");
      CHECK(*n == 1);
    }
    auto st = db->prepare("PRAGMA journal_mode");
    REQUIRE(st.is_ok());
    REQUIRE(*st->step());
    CHECK(st->column_text(0) == "wal");
  }
  SECTION("one owner at a time") {
    const std::string path = dir.file("owned.db");
    {
      auto first = open_sqlite_store(path);
      REQUIRE(first.is_ok());
      auto second = open_sqlite_store(path);
      REQUIRE_FALSE(second.is_ok());
      CHECK(second.status().code() == Code::kUnavailable);
      CHECK_THAT(second.status().message(), Catch::Contains("in use by another process"));
    }
    CHECK(open_sqlite_store(path).is_ok());  // released with the first store
  }
  SECTION("empty path") {
    CHECK(open_sqlite_store("").status().code() == Code::kInvalidArgument);
  }
  SECTION("unwritable location") {
    std::string file = dir.file("plain");
    { std::ofstream(file) << "x"; }
    auto s = open_sqlite_store(file + "/sub/s.db");
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().code() == Code::kUnavailable);
  }
  SECTION("corrupt file") {
    std::string file = dir.file("corrupt.db");
    { std::ofstream(file) << std::string(8192, '\x5a'); }
    auto s = open_sqlite_store(file);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().code() == Code::kInternal);
  }
  SECTION("written by a newer build") {
    const std::string path = dir.file("newer.db");
    {
      auto db = storage::Db::open(path);
      REQUIRE(db.is_ok());
      REQUIRE(db->exec("PRAGMA user_version = 99").is_ok());
    }
    auto s = open_sqlite_store(path);
    REQUIRE_FALSE(s.is_ok());
    CHECK(s.status().code() == Code::kFailedPrecondition);
    CHECK_THAT(s.status().message(), Catch::Contains("newer"));
  }
}

TEST_CASE("memory store keeps only the token reservation", "[unit][dlock][store]") {
  auto s = make_memory_store();
  CHECK(s->describe() == "memory");
  REQUIRE(s->apply({PutLease{"L", 10}, hold(Kind::kLock, "x", "L", 1), ReserveTokens{64}}).is_ok());
  REQUIRE(s->apply({ReserveTokens{32}}).is_ok());
  Snapshot snap = load_ok(*s);
  CHECK(snap.leases.empty());
  CHECK(snap.holds.empty());
  CHECK(snap.last_tokens.empty());
  CHECK(snap.token_reserved == 64);
}

// ---------------------------------------------------------------------------------------------
// Group mode (group commit): batches staged in one transaction, a SAVEPOINT each.

namespace {

// Counts rows through a separate connection: it sees only committed data (WAL snapshot).
int64_t committed_count(const std::string& path, const std::string& sql) {
  auto db = storage::Db::open(path);
  REQUIRE(db.is_ok());
  auto n = db->query_int64(sql);
  INFO(n.status().to_string());
  REQUIRE(n.is_ok());
  return *n;
}

std::unique_ptr<Store> open_grouped(const std::string& path) {
  auto s = open_ok(path);
  REQUIRE(s->set_group_commit(true).is_ok());
  return s;
}

}  // namespace

TEST_CASE("sqlite store group mode: a failing batch rolls back only itself",
          "[unit][dlock][store]") {
  TempDir dir;
  const std::string path = dir.file("group.db");
  auto s = open_grouped(path);
  {
    // Any lease named BAD fails to insert, at the second statement of the batch below.
    auto db = storage::Db::open(path);
    REQUIRE(db.is_ok());
    REQUIRE(db->exec("CREATE TRIGGER no_bad BEFORE INSERT ON leases WHEN NEW.id = 'BAD' "
                     "BEGIN SELECT RAISE(ABORT, 'injected bad lease'); END")
                .is_ok());
  }
  REQUIRE(s->apply({PutLease{"L1", 1000}, hold(Kind::kLock, "x", "L1", 1)}).is_ok());
  CHECK(s->has_pending());
  Status st = s->apply({PutLease{"L2", 1000}, PutLease{"BAD", 1000}});
  CHECK_FALSE(st.is_ok());
  CHECK_THAT(st.message(), Catch::Contains("injected bad lease"));
  CHECK(s->has_pending());  // the batch before it is still staged
  REQUIRE(s->apply({PutLease{"L3", 1000}}).is_ok());
  REQUIRE(s->commit_pending().is_ok());
  CHECK_FALSE(s->has_pending());

  Snapshot snap = load_ok(*s);
  std::vector<std::string> ids;
  for (const auto& l : snap.leases) ids.push_back(l.id);
  std::sort(ids.begin(), ids.end());
  CHECK(ids == std::vector<std::string>{"L1", "L3"});  // L2 went with its failing batch
  REQUIRE(snap.holds.size() == 1);
  CHECK(snap.holds[0].token == 1);
}

TEST_CASE("sqlite store group mode: commit makes the whole group visible at once",
          "[unit][dlock][store]") {
  TempDir dir;
  const std::string path = dir.file("group.db");
  auto s = open_grouped(path);
  CHECK_FALSE(s->has_pending());
  CHECK(s->commit_pending().is_ok());  // nothing pending: a no-op
  REQUIRE(s->apply({PutLease{"L1", 1000}}).is_ok());
  REQUIRE(s->apply({hold(Kind::kLock, "x", "L1", 1)}).is_ok());
  REQUIRE(s->apply({PutLease{"L2", 1000}, DeleteHold{Kind::kLock, "x", "L1"}}).is_ok());
  CHECK(committed_count(path, "SELECT count(*) FROM leases") == 0);
  REQUIRE(s->commit_pending().is_ok());
  CHECK(committed_count(path, "SELECT count(*) FROM leases") == 2);
  CHECK(committed_count(path, "SELECT count(*) FROM holds") == 0);
  CHECK(committed_count(path, "SELECT last_token FROM names") == 1);

  SECTION("discard drops the group") {
    REQUIRE(s->apply({PutLease{"L3", 1000}}).is_ok());
    s->discard_pending();
    CHECK_FALSE(s->has_pending());
    CHECK(load_ok(*s).leases.size() == 2);
  }
  SECTION("a token reservation commits what was staged before it, then itself durably") {
    // synchronous=FULL cannot be set inside a transaction, so the NORMAL group ends first.
    REQUIRE(s->apply({PutLease{"L3", 1000}}).is_ok());
    REQUIRE(s->apply({ReserveTokens{4096}, hold(Kind::kLock, "y", "L3", 2)}).is_ok());
    CHECK(committed_count(path, "SELECT count(*) FROM leases") == 3);
    CHECK(committed_count(path, "SELECT token_reserved FROM meta") == 0);
    REQUIRE(s->apply({PutLease{"L4", 1000}}).is_ok());  // joins the durable group
    REQUIRE(s->commit_pending().is_ok());
    CHECK(committed_count(path, "SELECT token_reserved FROM meta") == 4096);
    CHECK(committed_count(path, "SELECT count(*) FROM leases") == 4);
    // Afterwards the connection is back to normal groups.
    REQUIRE(s->apply({PutLease{"L5", 1000}}).is_ok());
    REQUIRE(s->commit_pending().is_ok());
    CHECK(committed_count(path, "SELECT count(*) FROM leases") == 5);
  }
  SECTION("leaving group mode commits what is pending") {
    REQUIRE(s->apply({PutLease{"L3", 1000}}).is_ok());
    REQUIRE(s->set_group_commit(false).is_ok());
    CHECK(committed_count(path, "SELECT count(*) FROM leases") == 3);
    REQUIRE(s->apply({PutLease{"L4", 1000}}).is_ok());  // per-batch commits again
    CHECK_FALSE(s->has_pending());
    CHECK(committed_count(path, "SELECT count(*) FROM leases") == 4);
  }
}

TEST_CASE("sqlite store group mode: a crash before the commit leaves nothing of the group",
          "[unit][dlock][store]") {
  TempDir dir;
  const std::string path = dir.file("crash.db");
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The child commits one group, stages a second one and dies without committing it. No
    // Catch2 assertions here: only the exit code reports.
    auto s = open_sqlite_store(path);
    if (!s || !(*s)->set_group_commit(true)) ::_exit(10);
    if (!(*s)->apply({PutLease{"L1", 1000}, ReserveTokens{100}})) ::_exit(11);
    if (!(*s)->commit_pending()) ::_exit(12);
    if (!(*s)->apply({hold(Kind::kLock, "x", "L1", 1)})) ::_exit(13);
    if (!(*s)->apply({PutLease{"L2", 1000}, DeleteLease{"L1"}})) ::_exit(14);
    ::_exit(0);  // like kill -9: no destructors, no COMMIT
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 0);

  auto s = open_ok(path);  // a fresh open, as after a restart
  Snapshot snap = load_ok(*s);
  REQUIRE(snap.leases.size() == 1);
  CHECK(snap.leases[0].id == "L1");
  CHECK(snap.holds.empty());
  CHECK(snap.token_reserved == 100);
}
