// LockCore: fencing-token monotonicity and reservation, recovery from a SQLite store.

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <random>

#include "core_test_util.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace sd::dlock::testing;

namespace {

std::unique_ptr<Store> sqlite_or_fail(const std::string& path) {
  auto s = open_sqlite_store(path);
  INFO(s.status().to_string());
  REQUIRE(s.is_ok());
  return std::move(*s);
}

// Checks that every PutHold in the recorded batches is covered by a reservation made in the same
// or an earlier batch, and that reservations only grow. Returns the highest reservation.
Token check_reservations(const std::vector<std::vector<Mutation>>& batches) {
  Token reserved = 0;
  for (const auto& b : batches) {
    for (const Mutation& m : b) {
      if (const auto* r = std::get_if<ReserveTokens>(&m)) {
        CHECK(r->upto > reserved);
        reserved = r->upto;
      } else if (const auto* h = std::get_if<PutHold>(&m)) {
        CHECK(h->token <= reserved);
      }
    }
  }
  return reserved;
}

}  // namespace

TEST_CASE("tokens strictly increase across many operations", "[unit][dlock]") {
  CoreOptions o = default_options();
  o.token_block = 7;  // cross many reservation boundaries
  Fixture f(o);
  std::mt19937 rng(7);
  std::vector<LeaseId> leases;
  for (int i = 0; i < 6; ++i) leases.push_back(f.lease(1s));
  const std::vector<std::string> names = {"a", "b", "c"};
  std::map<std::string, Token> last_per_name;
  Token last_global = 0;
  size_t grants = 0;
  auto saw = [&](const Grant& g) {
    CHECK(g.token > last_global);
    CHECK(g.token > last_per_name[g.name]);
    last_global = g.token;
    last_per_name[g.name] = g.token;
    ++grants;
  };
  for (int step = 0; step < 1500; ++step) {
    const auto& l = leases[rng() % leases.size()];
    const auto& n = names[rng() % names.size()];
    switch (rng() % 5) {
      case 0:
      case 1: {
        Mode m = rng() % 2 ? Mode::kShared : Mode::kExclusive;
        auto r = f.lock(n, l, m, Duration(rng() % 3 * 100));
        if (r && r->granted && r->grant.token > last_global) saw(r->grant);
        break;
      }
      case 2: {
        auto d = f.core->describe(Kind::kLock, n);
        if (d) {
          for (const auto& h : d->holders) {
            if (h.lease_id == l) REQUIRE(f.core->release(Kind::kLock, n, l, h.token).is_ok());
          }
        }
        break;
      }
      case 3:
        (void)f.core->keepalive(l);
        break;
      default:
        f.advance(Duration(rng() % 300));
        f.core->tick();
        break;
    }
    for (const auto& ev : f.core->take_events()) {
      if (ev.granted) saw(ev.grant);
    }
    // Keep the lease pool populated.
    for (auto& x : leases) {
      if (!f.core->lease(x)) x = f.lease(1s);
    }
  }
  CHECK(grants > 100);
  Token reserved = check_reservations(f.store.batches);
  CHECK(reserved >= last_global);
  CHECK(reserved < last_global + 7);
  CHECK(f.core->stats().next_token == last_global + 1);
}

TEST_CASE("token reservations ride in the batch of the grant that crosses them", "[unit][dlock]") {
  CoreOptions o = default_options();
  o.token_block = 3;
  Fixture f(o);
  auto l = f.lease();
  std::vector<Token> tokens;
  for (int i = 0; i < 7; ++i) {
    std::string name = std::to_string(i);  // (GCC 12 -Wrestrict false positive on "n" + string)
    tokens.push_back(f.must_lock(name, l));
  }
  CHECK(tokens == std::vector<Token>{1, 2, 3, 4, 5, 6, 7});
  // batches[0] is the lease; then one batch per grant.
  REQUIRE(f.store.batches.size() == 8);
  auto reserve_in = [&](size_t i) -> Token {
    for (const auto& m : f.store.batches[i]) {
      if (auto* r = std::get_if<ReserveTokens>(&m)) return r->upto;
    }
    return 0;
  };
  CHECK(reserve_in(1) == 3);  // token 1 reserves 1..3
  CHECK(reserve_in(2) == 0);
  CHECK(reserve_in(3) == 0);
  CHECK(reserve_in(4) == 6);  // token 4 crosses
  CHECK(reserve_in(7) == 9);
  // The reservation precedes the hold in its batch.
  CHECK(std::holds_alternative<ReserveTokens>(f.store.batches[4][0]));
  CHECK(std::get<PutHold>(f.store.batches[4][1]).token == 4);
}

TEST_CASE("recover from SQLite keeps holds and gives leases a full TTL and tokens above all issued",
          "[unit][dlock]") {
  TempDir dir;
  const std::string path = dir.file("var/dlock/locks.db");
  const std::string copy_dir = dir.file("copy");
  CoreOptions o = default_options();
  o.token_block = 5;
  LeaseId a, b, c;
  Token tx = 0, tr_a = 0, ts_b = 0, max_issued = 0;
  {
    Fixture f(o, sqlite_or_fail(path));
    CHECK(std::filesystem::exists(path));
    a = f.lease(10s);
    b = f.lease(20s);
    c = f.lease(5s);
    tx = f.must_lock("x", a);
    tr_a = f.must_lock("r", a, Mode::kShared);
    f.must_lock("r", b, Mode::kShared);
    auto s = f.sem("s", b, 3, 2);
    REQUIRE(s->granted);
    ts_b = s->grant.token;
    f.must_queue("x", c, Mode::kExclusive, 5s);  // waiters are not persisted
    Token tg = f.must_lock("gone", c);
    REQUIRE(f.core->release(Kind::kLock, "gone", c, tg).is_ok());
    for (int i = 0; i < 8; ++i) {
      Token t = f.must_lock("churn", a);
      REQUIRE(f.core->release(Kind::kLock, "churn", a, t).is_ok());
      max_issued = t;
    }
    f.advance(4s);
    f.core->tick();
    CHECK(f.core->lease(a)->ttl_ms_left == 6000);

    // Crash-copy: the database and its WAL while the store is still open.
    std::filesystem::create_directories(copy_dir);
    for (const char* suffix : {"", "-wal"}) {
      std::filesystem::copy_file(path + suffix, copy_dir + "/locks.db" + suffix);
    }
  }

  for (const std::string& db : {copy_dir + "/locks.db", path}) {
    DYNAMIC_SECTION("from " << (db == path ? "the reopened file" : "a crash copy")) {
      Fixture g(o, sqlite_or_fail(db));
      auto la = g.core->lease(a);
      auto lb = g.core->lease(b);
      auto lc = g.core->lease(c);
      REQUIRE(la.is_ok());
      REQUIRE(lb.is_ok());
      REQUIRE(lc.is_ok());
      CHECK(la->ttl_ms_left == 10000);  // full TTL again
      CHECK(lb->ttl_ms_left == 20000);
      CHECK(lc->ttl_ms_left == 5000);
      CHECK(la->holds == 2);
      CHECK(lb->holds == 2);
      CHECK(lc->holds == 0);

      LockInfo x = g.info("x");
      REQUIRE(x.holders.size() == 1);
      CHECK(x.holders[0].lease_id == a);
      CHECK(x.holders[0].token == tx);
      CHECK(x.holders[0].mode == Mode::kExclusive);
      CHECK(x.waiters.empty());  // waiters are gone
      LockInfo r = g.info("r");
      REQUIRE(r.holders.size() == 2);
      CHECK(r.holders[0].lease_id == a);  // grant order preserved
      CHECK(r.holders[0].token == tr_a);
      CHECK(r.holders[1].lease_id == b);
      CHECK(r.holders[1].mode == Mode::kShared);
      LockInfo s = g.info("s", Kind::kSemaphore);
      REQUIRE(s.holders.size() == 1);
      CHECK(s.limit == 3);
      CHECK(s.holders[0].permits == 2);
      CHECK(s.holders[0].token == ts_b);
      // Released names keep their last token.
      CHECK(g.info("gone").holders.empty());
      CHECK(g.info("gone").last_token > 0);
      CHECK(g.info("churn").last_token == max_issued);

      // Holds are still enforced.
      auto d = g.lease();
      CHECK(g.lock("x", d).status().message() == "locked");
      CHECK(g.sem("s", d, 3, 2).status().message() == "locked");
      CHECK(g.sem("s", d, 4, 1).status().message() == "limit_mismatch");
      // The re-acquire by the recovered holder returns the same token.
      CHECK(g.lock("x", a)->grant.token == tx);

      // New tokens exceed every token ever issued.
      Token t = g.must_lock("fresh", d);
      CHECK(t > max_issued);
      Token t2 = g.must_lock("churn", d);
      CHECK(t2 > t);

      // Expiry after recovery works off the new full TTL.
      g.advance(5s);
      g.core->tick();
      CHECK(g.core->lease(c).status().code() == Code::kNotFound);
      CHECK(g.core->lease(a).is_ok());
    }
  }
}

TEST_CASE("tokens never go backwards across restarts", "[unit][dlock]") {
  TempDir dir;
  const std::string path = dir.file("t.db");
  CoreOptions o = default_options();
  o.token_block = 4;
  Token prev = 0;
  for (int restart = 0; restart < 5; ++restart) {
    Fixture f(o, sqlite_or_fail(path));
    auto l = f.lease();
    for (int i = 0; i < 3 + restart; ++i) {
      Token t = f.must_lock("n", l);
      CHECK(t > prev);
      prev = t;
      REQUIRE(f.core->release(Kind::kLock, "n", l, t).is_ok());
    }
    REQUIRE(f.core->revoke_lease(l).is_ok());
    CHECK(f.info("n").last_token == prev);
  }
}

TEST_CASE("recover is once-only and reports store errors", "[unit][dlock]") {
  QuietLogs quiet;
  FakeClock clock;
  SeededIdGenerator ids(1);
  auto mem = make_memory_store();
  FlakyStore store(*mem);
  {
    LockCore core(store, clock, ids, default_options());
    store.fail_load = true;
    CHECK(core.recover().code() == Code::kUnavailable);
    store.fail_load = false;
    REQUIRE(core.recover().is_ok());
    CHECK(core.recover().code() == Code::kFailedPrecondition);
    auto l = core.create_lease(1s);
    REQUIRE(l.is_ok());
    AcquireRequest req;
    req.name = "n";
    req.lease_id = l->id;
    for (int i = 0; i < 3; ++i) {
      auto g = core.acquire(req);
      REQUIRE(g->granted);
      REQUIRE(core.release(Kind::kLock, "n", l->id, g->grant.token).is_ok());
    }
    CHECK(core.stats().next_token == 4);
  }
  // The memory store keeps no locks, but a new core on the same store object resumes above the
  // reservation, so tokens are still never reused within the process.
  LockCore again(store, clock, ids, default_options());
  REQUIRE(again.recover().is_ok());
  CHECK(again.stats().leases == 0);
  CHECK(again.stats().next_token == again.options().token_block + 1);
}

TEST_CASE("reload after a failed group commit returns to the durable state", "[unit][dlock]") {
  TempDir dir;
  const std::string path = dir.file("reload.db");
  // No reservation inside the failed group: a reserving batch commits what was staged before it.
  Fixture f(default_options(), sqlite_or_fail(path));
  REQUIRE(f.core->set_group_commit(true).is_ok());
  CHECK_FALSE(f.core->uncommitted());
  auto a = f.lease(10s);
  auto b = f.lease(10s);
  Token tx = f.must_lock("x", a);
  CHECK(f.core->uncommitted());
  REQUIRE(f.core->commit().is_ok());
  CHECK_FALSE(f.core->uncommitted());

  // A group that never becomes durable: a release handing x to a waiter, a new lock, a lease.
  WaiterId wb = f.must_queue("x", b);
  REQUIRE(f.core->release(Kind::kLock, "x", a, tx).is_ok());
  Token issued = 0;
  for (int i = 0; i < 6; ++i) issued = f.must_lock("y" + std::to_string(i), a);
  f.lease(10s);
  CHECK(f.core->uncommitted());
  CHECK(f.holders("x") == std::vector<LeaseId>{b});

  REQUIRE(f.core->reload().is_ok());  // what the service does when the COMMIT failed
  CHECK_FALSE(f.core->uncommitted());
  CHECK(f.core->take_events().empty());
  CHECK(f.holders("x") == std::vector<LeaseId>{a});  // the release never happened
  CHECK(f.info("x").holders[0].token == tx);
  CHECK(f.info("x").waiters.empty());  // the waiter is gone (its caller is answered)
  CHECK(f.core->describe(Kind::kLock, "y0").status().code() == Code::kNotFound);
  CHECK(f.core->stats().leases == 2);
  // Tokens and waiter ids continue above everything handed out before the reload.
  Token t = f.must_lock("z", b);
  CHECK(t > issued);
  WaiterId again = f.must_queue("x", b);
  CHECK(again > wb);
}
