// LockCore: FIFO queueing, shared/exclusive, semaphores, waiter timeouts, lock-delay, deadlines.

#include <catch2/catch.hpp>

#include "core_test_util.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace sd::dlock::testing;

namespace {

Token holder_token(Fixture& f, const std::string& name, const LeaseId& l, Kind kind = Kind::kLock) {
  for (const auto& h : f.info(name, kind).holders) {
    if (h.lease_id == l) return h.token;
  }
  FAIL("not a holder");
  return 0;
}

}  // namespace

TEST_CASE("strict FIFO with several waiters and no barging", "[unit][dlock]") {
  Fixture f;
  auto h = f.lease();
  std::vector<LeaseId> w;
  for (int i = 0; i < 4; ++i) w.push_back(f.lease());
  Token last = f.must_lock("q", h);
  std::vector<WaiterId> ids;
  for (auto& l : w) ids.push_back(f.must_queue("q", l));
  CHECK(f.queue("q") == w);
  CHECK(f.core->stats().waiters == 4);

  // A newcomer's try-lock fails while others wait, even at the instant the lock frees up.
  auto late = f.lease();
  auto t = f.lock("q", late);
  CHECK(t.status().code() == Code::kConflict);
  CHECK(t.status().message() == "locked");
  // A newcomer with a wait goes to the back.
  WaiterId wl = f.must_queue("q", late);

  // Already waiting on that name: refused.
  auto dup = f.lock("q", w[1], Mode::kExclusive, 1s);
  CHECK(dup.status().message() == "already_waiting");
  CHECK(f.lock("q", w[1]).status().message() == "already_waiting");

  LeaseId current = h;
  for (size_t i = 0; i < w.size(); ++i) {
    REQUIRE(f.core->release(Kind::kLock, "q", current, last).is_ok());
    auto ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == ids[i]);
    CHECK(ev[0].granted);
    CHECK(ev[0].grant.lease_id == w[i]);
    CHECK(ev[0].grant.token > last);
    last = ev[0].grant.token;
    current = w[i];
    CHECK(f.holders("q") == std::vector<LeaseId>{current});
    // Try-lock by someone else still fails while the queue is non-empty.
    CHECK(f.lock("q", h).status().message() == "locked");
  }
  REQUIRE(f.core->release(Kind::kLock, "q", current, last).is_ok());
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wl);
  REQUIRE(f.core->release(Kind::kLock, "q", late, ev[0].grant.token).is_ok());
  // Free and nobody waiting: a try-lock succeeds immediately.
  CHECK(f.lock("q", h)->granted);
}

TEST_CASE("shared and exclusive compatibility", "[unit][dlock]") {
  Fixture f;
  auto r1 = f.lease(), r2 = f.lease(), r3 = f.lease(), wr = f.lease(), r4 = f.lease(),
       r5 = f.lease(), wr2 = f.lease();

  SECTION("readers share; a writer waits; later readers queue behind the writer") {
    f.must_lock("db", r1, Mode::kShared);
    f.must_lock("db", r2, Mode::kShared);
    CHECK(f.lock("db", wr).status().message() == "locked");
    WaiterId ww = f.must_queue("db", wr);
    // Compatible with the holders, but a writer is waiting: no barging.
    CHECK(f.lock("db", r3, Mode::kShared).status().message() == "locked");
    WaiterId w3 = f.must_queue("db", r3, Mode::kShared);
    WaiterId w4 = f.must_queue("db", r4, Mode::kShared);
    WaiterId ww2 = f.must_queue("db", wr2);
    WaiterId w5 = f.must_queue("db", r5, Mode::kShared);

    REQUIRE(f.core->release(Kind::kLock, "db", r1, holder_token(f, "db", r1)).is_ok());
    CHECK(f.core->take_events().empty());  // r2 still reads
    REQUIRE(f.core->release(Kind::kLock, "db", r2, holder_token(f, "db", r2)).is_ok());
    auto ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == ww);
    CHECK(ev[0].grant.mode == Mode::kExclusive);

    // Writer done: the two consecutive readers are granted together; the second writer stops the
    // walk, so r5 (behind it) waits even though it is compatible.
    REQUIRE(f.core->release(Kind::kLock, "db", wr, ev[0].grant.token).is_ok());
    ev = f.core->take_events();
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].waiter == w3);
    CHECK(ev[1].waiter == w4);
    CHECK(ev[0].grant.mode == Mode::kShared);
    CHECK(ev[1].grant.token == ev[0].grant.token + 1);
    CHECK(f.holders("db") == std::vector<LeaseId>{r3, r4});
    CHECK(f.queue("db") == std::vector<LeaseId>{wr2, r5});

    REQUIRE(f.core->release(Kind::kLock, "db", r3, ev[0].grant.token).is_ok());
    REQUIRE(f.core->release(Kind::kLock, "db", r4, ev[1].grant.token).is_ok());
    ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == ww2);
    REQUIRE(f.core->release(Kind::kLock, "db", wr2, ev[0].grant.token).is_ok());
    ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == w5);
  }

  SECTION("an exclusive holder excludes readers and writers") {
    f.must_lock("db", wr);
    CHECK(f.lock("db", r1, Mode::kShared).status().message() == "locked");
    CHECK(f.lock("db", wr2).status().message() == "locked");
    WaiterId a = f.must_queue("db", r1, Mode::kShared);
    WaiterId b = f.must_queue("db", r2, Mode::kShared);
    REQUIRE(f.core->release(Kind::kLock, "db", wr, holder_token(f, "db", wr)).is_ok());
    auto ev = f.core->take_events();
    REQUIRE(ev.size() == 2);
    CHECK(ev[0].waiter == a);
    CHECK(ev[1].waiter == b);
    // With only readers holding and nobody waiting, a new reader joins immediately.
    CHECK(f.lock("db", r3, Mode::kShared)->granted);
  }
}

TEST_CASE("semaphore permits", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(), b = f.lease(), c = f.lease(), d = f.lease(), e = f.lease();
  auto ga = f.sem("pool", a, 3, 2);
  REQUIRE(ga.is_ok());
  CHECK(ga->granted);
  CHECK(ga->grant.permits == 2);
  auto gb = f.sem("pool", b, 3, 1);
  REQUIRE(gb.is_ok());
  CHECK(gb->granted);
  CHECK(f.info("pool", Kind::kSemaphore).limit == 3);

  // Full: the third waits (or fails as a try-lock).
  CHECK(f.sem("pool", c, 3, 1).status().message() == "locked");
  auto qc = f.sem("pool", c, 3, 1, 5s);
  REQUIRE(qc.is_ok());
  CHECK_FALSE(qc->granted);

  // Limit must match the holders' and waiters'.
  auto mm = f.sem("pool", d, 4, 1);
  CHECK(mm.status().code() == Code::kConflict);
  CHECK(mm.status().message() == "limit_mismatch");
  CHECK(f.sem("pool", d, 2, 1, 5s).status().message() == "limit_mismatch");

  // Bounds.
  CHECK(f.sem("p2", d, 3, 0).status().code() == Code::kInvalidArgument);
  CHECK(f.sem("p2", d, 3, 4).status().code() == Code::kInvalidArgument);
  CHECK(f.sem("p2", d, 0, 1).status().code() == Code::kInvalidArgument);
  CHECK(f.sem("p2", d, 1'000'001, 1).status().code() == Code::kInvalidArgument);
  CHECK(f.sem("p2", d, 1'000'000, 1'000'000)->granted);

  // b releases one permit: c gets it.
  REQUIRE(f.core->release(Kind::kSemaphore, "pool", b, gb->grant.token).is_ok());
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == qc->waiter);
  CHECK(ev[0].grant.kind == Kind::kSemaphore);
  CHECK(ev[0].grant.permits == 1);

  // A big request at the head blocks smaller ones behind it (FIFO), until it times out.
  auto big = f.sem("pool", d, 3, 3, 1s);
  REQUIRE(big.is_ok());
  REQUIRE_FALSE(big->granted);
  auto small = f.sem("pool", e, 3, 1, 10s);
  REQUIRE(small.is_ok());
  REQUIRE_FALSE(small->granted);
  REQUIRE(f.core->release(Kind::kSemaphore, "pool", c, ev[0].grant.token).is_ok());
  CHECK(f.core->take_events().empty());  // 1 permit free, but the head needs 3
  f.advance(1s);
  f.core->tick();
  ev = f.core->take_events();
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].waiter == big->waiter);
  CHECK_FALSE(ev[0].granted);
  CHECK(ev[0].status.message() == "locked");
  CHECK(ev[1].waiter == small->waiter);
  CHECK(ev[1].granted);
  auto info = f.info("pool", Kind::kSemaphore);
  REQUIRE(info.holders.size() == 2);
  CHECK(info.holders[0].permits == 2);
  CHECK(info.holders[1].permits == 1);

  // Once every holder and waiter is gone, a new limit is accepted.
  REQUIRE(f.core->release(Kind::kSemaphore, "pool", a, ga->grant.token).is_ok());
  REQUIRE(f.core->release(Kind::kSemaphore, "pool", e, ev[1].grant.token).is_ok());
  CHECK(f.info("pool", Kind::kSemaphore).limit == 0);  // idle
  CHECK(f.sem("pool", a, 10, 7)->granted);
  CHECK(f.info("pool", Kind::kSemaphore).limit == 10);
}

TEST_CASE("semaphore waiters are granted in order while permits suffice", "[unit][dlock]") {
  Fixture f;
  auto h = f.lease();
  std::vector<LeaseId> w;
  for (int i = 0; i < 4; ++i) w.push_back(f.lease());
  auto g = f.sem("s", h, 4, 4);
  REQUIRE(g->granted);
  std::vector<WaiterId> ids;
  for (uint32_t p : {1u, 2u, 2u, 1u}) {
    auto r = f.sem("s", w[ids.size()], 4, p, 5s);
    REQUIRE_FALSE(r->granted);
    ids.push_back(r->waiter);
  }
  REQUIRE(f.core->release(Kind::kSemaphore, "s", h, g->grant.token).is_ok());
  auto ev = f.core->take_events();
  // 1 + 2 fit (3 of 4); the next needs 2 with 1 left: stop. The trailing 1 must not overtake.
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].waiter == ids[0]);
  CHECK(ev[1].waiter == ids[1]);
  CHECK(f.queue("s", Kind::kSemaphore) == std::vector<LeaseId>{w[2], w[3]});
}

TEST_CASE("waiter timeouts", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(), b = f.lease(), c = f.lease();
  Token ta = f.must_lock("x", a);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 2s);
  f.advance(500ms);
  WaiterId wc = f.must_queue("x", c, Mode::kExclusive, 2s);
  CHECK(f.core->next_deadline() == f.clock.now() + 1500ms);

  f.advance(1499ms);
  f.core->tick();
  CHECK(f.core->take_events().empty());
  CHECK(f.info("x").waiters[0].wait_ms_left == 1);
  f.advance(1ms);
  f.core->tick();
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wb);
  CHECK_FALSE(ev[0].granted);
  CHECK(ev[0].status.code() == Code::kConflict);
  CHECK(ev[0].status.message() == "locked");
  CHECK(f.queue("x") == std::vector<LeaseId>{c});
  // b may queue again (it is no longer waiting).
  WaiterId wb2 = f.must_queue("x", b, Mode::kExclusive, 10s);
  CHECK(wb2 != wb);

  f.advance(500ms);
  f.core->tick();
  ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wc);
  CHECK(f.holders("x") == std::vector<LeaseId>{a});
  CHECK(ta > 0);

  // wait bounds
  CHECK(f.lock("x", c, Mode::kExclusive, 30001ms).status().code() == Code::kInvalidArgument);
  CHECK(f.lock("x", c, Mode::kExclusive, -1ms).status().code() == Code::kInvalidArgument);
  CHECK_FALSE(f.lock("x", c, Mode::kExclusive, 30s)->granted);
}

TEST_CASE("a waiter is never granted at or after its deadline even by a late tick",
          "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(1s), b = f.lease(10s), c = f.lease(10s);
  f.must_lock("x", a);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 1s);  // deadline == a's expiry
  WaiterId wc = f.must_queue("x", c, Mode::kExclusive, 3s);
  f.advance(5s);  // the service was slow: one tick covers everything
  f.core->tick();
  auto ev = f.core->take_events();
  // At t=1s: b times out first, then a expires and c gets the lock (c's deadline is 3s).
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].waiter == wb);
  CHECK_FALSE(ev[0].granted);
  CHECK(ev[1].waiter == wc);
  CHECK(ev[1].granted);
  CHECK(f.holders("x") == std::vector<LeaseId>{c});
}

TEST_CASE("lock-delay after expiry but not after release or revoke", "[unit][dlock]") {
  CoreOptions o = default_options();
  o.lock_delay = 2s;
  Fixture f(o);
  auto a = f.lease(1s), b = f.lease(30s), c = f.lease(30s);

  SECTION("expiry") {
    f.must_lock("x", a);
    f.must_lock("s", a, Mode::kShared);  // only a holds
    WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 10s);
    f.advance(1s);
    f.core->tick();
    CHECK(f.core->take_events().empty());  // expired, but the delay holds the lock back
    LockInfo i = f.info("x");
    CHECK(i.holders.empty());
    CHECK(i.waiters.size() == 1);
    CHECK(i.lock_delay_ms_left == 2000);
    CHECK(f.core->next_deadline() == f.clock.now() + 2s);
    // Newcomers cannot take it either.
    CHECK(f.lock("s", c).status().message() == "locked");
    CHECK(f.info("s").lock_delay_ms_left == 2000);

    f.advance(1999ms);
    f.core->tick();
    CHECK(f.core->take_events().empty());
    f.advance(1ms);
    f.core->tick();
    auto ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == wb);
    CHECK(ev[0].granted);
    CHECK(f.info("x").lock_delay_ms_left == 0);
    CHECK(f.lock("s", c)->granted);
    CHECK(f.core->next_deadline() == f.clock.now() + 27s);  // b's lease
  }

  SECTION("release") {
    Token t = f.must_lock("x", a);
    WaiterId wb = f.must_queue("x", b);
    REQUIRE(f.core->release(Kind::kLock, "x", a, t).is_ok());
    auto ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == wb);
    CHECK(f.info("x").lock_delay_ms_left == 0);
  }

  SECTION("revoke") {
    f.must_lock("x", a);
    REQUIRE(f.core->revoke_lease(a).is_ok());
    CHECK(f.info("x").lock_delay_ms_left == 0);
    CHECK(f.lock("x", c)->granted);
  }

  SECTION("a late tick starts the delay at the expiry instant") {
    f.must_lock("x", a);
    WaiterId wc = f.must_queue("x", c, Mode::kExclusive, 20s);
    f.advance(2500ms);  // expiry at 1s, delay until 3s
    f.core->tick();
    CHECK(f.core->take_events().empty());
    CHECK(f.info("x").lock_delay_ms_left == 500);
    f.advance(10s);
    f.core->tick();
    auto ev = f.core->take_events();
    REQUIRE(ev.size() == 1);
    CHECK(ev[0].waiter == wc);
  }

  SECTION("delay with no waiters ends quietly and the name becomes idle") {
    f.must_lock("x", a);
    f.advance(1s);
    f.core->tick();
    CHECK(f.core->stats().names == 1);
    f.advance(2s);
    f.core->tick();
    CHECK(f.core->stats().names == 0);
    CHECK(f.info("x").last_token > 0);
    CHECK(f.core->next_deadline() == f.clock.now() + 27s);  // only b's and c's leases remain
  }
}

TEST_CASE("next_deadline covers every pending instant", "[unit][dlock]") {
  Fixture f;
  CHECK_FALSE(f.core->next_deadline().has_value());
  auto a = f.lease(5s);
  CHECK(f.core->next_deadline() == f.clock.now() + 5s);
  auto b = f.lease(10s);
  f.must_lock("x", a);
  f.must_queue("x", b, Mode::kExclusive, 2s);
  CHECK(f.core->next_deadline() == f.clock.now() + 2s);
  REQUIRE(f.core->keepalive(a).is_ok());
  f.advance(2s);
  f.core->tick();
  CHECK(f.core->take_events().size() == 1);
  CHECK(f.core->next_deadline() == f.clock.now() + 3s);  // a's deadline
  REQUIRE(f.core->revoke_lease(a).is_ok());
  REQUIRE(f.core->revoke_lease(b).is_ok());
  CHECK_FALSE(f.core->next_deadline().has_value());
}

TEST_CASE("queue limits", "[unit][dlock]") {
  CoreOptions o = default_options();
  o.limits.max_waiters_per_name = 2;
  o.limits.max_holds_per_lease = 3;
  Fixture f(o);
  auto a = f.lease(), b = f.lease(), c = f.lease(), d = f.lease();
  f.must_lock("x", a);
  f.must_queue("x", b);
  f.must_queue("x", c);
  CHECK(f.lock("x", d, Mode::kExclusive, 1s).status().code() == Code::kResourceExhausted);
  CHECK(f.lock("x", d).status().message() == "locked");  // try-lock still answers "locked"
  // Holds + waits per lease.
  f.must_lock("y1", d);
  f.must_lock("y2", d);
  f.must_queue("y1", a);  // a: x + waiting on y1 = 2
  f.must_lock("y3", d);
  CHECK(f.lock("y4", d).status().code() == Code::kResourceExhausted);
  // Re-acquire of something already held is still fine.
  CHECK(f.lock("y3", d)->granted);
}
