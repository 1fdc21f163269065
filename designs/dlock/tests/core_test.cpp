// LockCore: leases, ownership, re-acquire, validation, store failures, describe/list.

#include <catch2/catch.hpp>

#include "core_test_util.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace sd::dlock::testing;

TEST_CASE("vocabulary helpers", "[unit][dlock]") {
  CHECK(kind_name(Kind::kLock) == "lock");
  CHECK(kind_name(Kind::kSemaphore) == "semaphore");
  CHECK(mode_name(Mode::kExclusive) == "exclusive");
  CHECK(mode_name(Mode::kShared) == "shared");
  CHECK(parse_mode("shared") == Mode::kShared);
  CHECK(parse_mode("exclusive") == Mode::kExclusive);
  CHECK_FALSE(parse_mode("Shared").has_value());
  CHECK_FALSE(parse_mode("").has_value());
}

TEST_CASE("name validation", "[unit][dlock]") {
  CHECK(validate_name("a", 8).is_ok());
  CHECK(validate_name("orders/42:write", 256).is_ok());
  CHECK(validate_name("\xC3\xA9t\xC3\xA9-\xE2\x82\xAC-\xF0\x9F\x94\x92", 256).is_ok());  // été-€-🔒
  CHECK(validate_name(std::string(8, 'x'), 8).is_ok());
  CHECK(validate_name(" spaces are fine ", 256).is_ok());

  auto bad = [](std::string_view n, size_t max, const char* why) {
    Status s = validate_name(n, max);
    CHECK(s.code() == Code::kInvalidArgument);
    CHECK_THAT(s.message(), Catch::Contains(why));
  };
  bad("", 8, "empty");
  bad(std::string(9, 'x'), 8, "longer than 8");
  bad("\xC3", 8, "UTF-8");          // truncated sequence
  bad("\xC0\xAF", 8, "UTF-8");      // overlong '/'
  bad("\xED\xA0\x80", 8, "UTF-8");  // surrogate
  bad("\xFF", 8, "UTF-8");          // never valid
  bad(std::string("a\0b", 3), 8, "control");
  bad("a\nb", 8, "control");
  bad("tab\there", 16, "control");
  bad("del\x7F", 8, "control");
  bad("c1\xC2\x85", 8, "control");  // U+0085 NEL

  // The core applies it on acquire and describe.
  Fixture f;
  auto l = f.lease();
  auto r = f.lock("", l);
  CHECK(r.status().code() == Code::kInvalidArgument);
  CHECK(f.lock(std::string(257, 'n'), l).status().code() == Code::kInvalidArgument);
  CHECK(f.lock(std::string(256, 'n'), l).is_ok());
  CHECK(f.lock("bad\x01", l).status().code() == Code::kInvalidArgument);
  CHECK(f.core->describe(Kind::kLock, "\xFF").status().code() == Code::kInvalidArgument);
  CHECK(f.core->stats().holds == 1);
}

TEST_CASE("lease TTL bounds", "[unit][dlock]") {
  Fixture f;  // min 10ms, max 60s
  CHECK(f.core->create_lease(9ms).status().code() == Code::kInvalidArgument);
  CHECK(f.core->create_lease(0ms).status().code() == Code::kInvalidArgument);
  CHECK(f.core->create_lease(-5ms).status().code() == Code::kInvalidArgument);
  CHECK(f.core->create_lease(60001ms).status().code() == Code::kInvalidArgument);
  CHECK_THAT(f.core->create_lease(9ms).status().message(), Catch::Contains("between 10 and 60000"));
  auto lo = f.core->create_lease(10ms);
  auto hi = f.core->create_lease(60s);
  REQUIRE(lo.is_ok());
  REQUIRE(hi.is_ok());
  CHECK(lo->ttl == 10ms);
  CHECK(lo->ttl_ms_left == 10);
  CHECK(hi->ttl_ms_left == 60000);
  CHECK(lo->holds == 0);
  CHECK(is_valid_id(lo->id));
  CHECK(lo->id != hi->id);
  CHECK(f.core->stats().leases == 2);

  // Ids come from the injected generator.
  SeededIdGenerator same{42};
  CHECK(lo->id == same.next());
  CHECK(hi->id == same.next());

  // The lease is written through before it exists.
  REQUIRE(f.store.batches.size() == 2);
  const auto& put = std::get<PutLease>(f.store.batches[0][0]);
  CHECK(put.id == lo->id);
  CHECK(put.ttl_ms == 10);

  SECTION("max_leases") {
    CoreOptions o = default_options();
    o.limits.max_leases = 2;
    Fixture g(o);
    g.lease();
    g.lease();
    CHECK(g.core->create_lease(1s).status().code() == Code::kResourceExhausted);
  }
}

TEST_CASE("keepalive extends a lease and expiry makes it unknown", "[unit][dlock]") {
  Fixture f;
  auto l = f.lease(1s);
  f.advance(900ms);
  auto info = f.core->lease(l);
  REQUIRE(info.is_ok());
  CHECK(info->ttl_ms_left == 100);
  auto ka = f.core->keepalive(l);
  REQUIRE(ka.is_ok());
  CHECK(ka->ttl_ms_left == 1000);
  CHECK(ka->ttl == 1s);
  f.advance(999ms);  // 1899ms after creation: alive only thanks to the keepalive
  CHECK(f.core->lease(l).is_ok());
  REQUIRE(f.core->keepalive(l).is_ok());
  f.advance(999ms);
  CHECK(f.core->lease(l)->ttl_ms_left == 1);
  f.advance(1ms);  // exactly at the deadline: expired
  CHECK(f.core->keepalive(l).status().code() == Code::kNotFound);
  CHECK(f.core->lease(l).status().code() == Code::kNotFound);
  CHECK(f.core->revoke_lease(l).code() == Code::kNotFound);
  CHECK(f.core->stats().leases == 0);
  CHECK(f.core->keepalive("0123456789abcdef0123456789abcdef").status().code() == Code::kNotFound);
  // Keepalives are not persisted (deadlines are not stored): one batch for the create, one for
  // the expiry.
  CHECK(f.store.batches.size() == 2);
  CHECK(std::holds_alternative<DeleteLease>(f.store.batches[1][0]));
}

TEST_CASE("expiry frees the lock and grants the next waiter at the exact instant",
          "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(1s);
  auto b = f.lease(10s);
  Token ta = f.must_lock("x", a);
  f.advance(200ms);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 5s);
  CHECK(f.core->next_deadline() == f.clock.now() + 800ms);  // a's expiry comes first

  f.advance(799ms);
  f.core->tick();
  CHECK(f.core->take_events().empty());
  CHECK(f.holders("x") == std::vector<LeaseId>{a});

  f.advance(1ms);
  f.core->tick();
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wb);
  CHECK(ev[0].granted);
  CHECK(ev[0].grant.lease_id == b);
  CHECK(ev[0].grant.name == "x");
  CHECK(ev[0].grant.token > ta);
  CHECK(f.holders("x") == std::vector<LeaseId>{b});
  CHECK(f.info("x").last_token == ev[0].grant.token);
  CHECK(f.core->lease(a).status().code() == Code::kNotFound);
  // The grant was persisted in the same batch as the lease deletion.
  const auto& last = f.store.batches.back();
  REQUIRE(last.size() >= 2);
  CHECK(std::get<DeleteLease>(last[0]).id == a);
  CHECK(std::get<PutHold>(last.back()).lease_id == b);
}

TEST_CASE("release checks the owner and the token", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  auto b = f.lease();
  Token t = f.must_lock("x", a);
  f.must_queue("x", b);
  const size_t batches = f.store.batches.size();
  const auto before = f.info("x");

  Status wrong_lease = f.core->release(Kind::kLock, "x", b, t);
  CHECK(wrong_lease.code() == Code::kConflict);
  CHECK(wrong_lease.message() == "not_holder");
  Status wrong_token = f.core->release(Kind::kLock, "x", a, t + 1);
  CHECK(wrong_token.code() == Code::kConflict);
  CHECK(wrong_token.message() == "not_holder");
  CHECK(f.core->release(Kind::kLock, "other", a, t).message() == "not_holder");
  CHECK(f.core->release(Kind::kSemaphore, "x", a, t).message() == "not_holder");
  CHECK(f.core->release(Kind::kLock, "x", "ffffffffffffffffffffffffffffffff", t).code() ==
        Code::kNotFound);

  // Nothing changed: same holder, same queue, nothing written, no events.
  const auto after = f.info("x");
  CHECK(after.holders.size() == 1);
  CHECK(after.holders[0].lease_id == a);
  CHECK(after.holders[0].token == before.holders[0].token);
  CHECK(after.waiters.size() == 1);
  CHECK(f.store.batches.size() == batches);
  CHECK(f.core->take_events().empty());

  // The right owner and token release, and the waiter gets it.
  REQUIRE(f.core->release(Kind::kLock, "x", a, t).is_ok());
  CHECK(f.holders("x") == std::vector<LeaseId>{b});
  CHECK(f.core->release(Kind::kLock, "x", a, t).message() == "not_holder");  // twice: no
}

TEST_CASE("re-acquire by the holder is idempotent", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  Token t = f.must_lock("x", a);
  const size_t batches = f.store.batches.size();
  auto again = f.lock("x", a, Mode::kExclusive, 1s);
  REQUIRE(again.is_ok());
  CHECK(again->granted);
  CHECK(again->grant.token == t);
  CHECK(again->grant.lease_id == a);
  CHECK(f.store.batches.size() == batches);  // nothing new written
  CHECK(f.core->stats().holds == 1);
  CHECK(f.core->stats().next_token == t + 1);
  CHECK(f.core->lease(a)->holds == 1);

  auto other_mode = f.lock("x", a, Mode::kShared);
  CHECK(other_mode.status().code() == Code::kConflict);
  CHECK(other_mode.status().message() == "mode_mismatch");

  Token ts = f.must_lock("r", a, Mode::kShared);
  CHECK(f.lock("r", a, Mode::kShared)->grant.token == ts);
  CHECK(f.lock("r", a, Mode::kExclusive).status().message() == "mode_mismatch");

  auto s1 = f.sem("s", a, 5, 2);
  REQUIRE(s1.is_ok());
  REQUIRE(s1->granted);
  auto s2 = f.sem("s", a, 5, 2);
  REQUIRE(s2.is_ok());
  CHECK(s2->grant.token == s1->grant.token);
  CHECK(s2->grant.permits == 2);
  CHECK(f.sem("s", a, 5, 3).status().message() == "permits_mismatch");
  CHECK(f.info("s", Kind::kSemaphore).holders.size() == 1);
}

TEST_CASE("locks and semaphores live in separate namespaces", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  auto b = f.lease();
  Token t1 = f.must_lock("same", a);
  auto s = f.sem("same", b, 1, 1);
  REQUIRE(s.is_ok());
  CHECK(s->granted);
  CHECK(s->grant.kind == Kind::kSemaphore);
  CHECK(s->grant.mode == Mode::kShared);
  CHECK(s->grant.token > t1);
  CHECK(f.info("same").holders[0].lease_id == a);
  CHECK(f.info("same", Kind::kSemaphore).holders[0].lease_id == b);
  CHECK(f.core->release(Kind::kSemaphore, "same", b, s->grant.token).is_ok());
  CHECK(f.holders("same") == std::vector<LeaseId>{a});
}

TEST_CASE("revoke releases holds and grants waiters and cancels the lease's waiters",
          "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  auto b = f.lease();
  auto c = f.lease();
  f.must_lock("x", a);
  f.must_lock("y", c);
  WaiterId wb = f.must_queue("x", b);
  WaiterId wa = f.must_queue("y", a);   // a also waits on y
  WaiterId wb2 = f.must_queue("y", b);  // behind a on y

  REQUIRE(f.core->revoke_lease(a).is_ok());
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 2);
  CHECK(ev[0].waiter == wa);
  CHECK_FALSE(ev[0].granted);
  CHECK(ev[0].status.code() == Code::kNotFound);
  CHECK(ev[0].status.message() == "lease gone");
  CHECK(ev[1].waiter == wb);
  CHECK(ev[1].granted);
  CHECK(ev[1].grant.name == "x");
  CHECK(f.holders("x") == std::vector<LeaseId>{b});
  CHECK(f.queue("y") == std::vector<LeaseId>{b});  // b moved up; c still holds y
  CHECK(f.info("x").lock_delay_ms_left == 0);      // revoke never triggers lock-delay
  CHECK(f.core->lease(a).status().code() == Code::kNotFound);
  CHECK(f.core->revoke_lease(a).code() == Code::kNotFound);

  // Revoking c hands y to b.
  REQUIRE(f.core->revoke_lease(c).is_ok());
  ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wb2);
  CHECK(ev[0].granted);
  CHECK(f.core->stats().waiters == 0);
  CHECK(f.core->stats().holds == 2);
  CHECK(f.core->lease(b)->holds == 2);
}

TEST_CASE("expiry of a waiting lease cancels its waits", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(10s);
  auto b = f.lease(1s);
  auto c = f.lease(10s);
  f.must_lock("x", a);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 5s);
  WaiterId wc = f.must_queue("x", c, Mode::kExclusive, 5s);
  f.advance(1s);
  f.core->tick();
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wb);
  CHECK(ev[0].status.code() == Code::kNotFound);
  CHECK(f.queue("x") == std::vector<LeaseId>{c});
  REQUIRE(f.core->release(Kind::kLock, "x", a, f.info("x").holders[0].token).is_ok());
  ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wc);
  CHECK(ev[0].granted);
}

TEST_CASE("a failing store leaves the state unchanged", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  auto b = f.lease();
  Token t = f.must_lock("x", a);
  WaiterId wb = f.must_queue("x", b);
  const CoreStats before = f.core->stats();
  f.store.fail = true;

  auto nl = f.core->create_lease(1s);
  CHECK(nl.status().code() == Code::kUnavailable);
  CHECK_THAT(nl.status().message(), Catch::Contains("injected"));
  CHECK(f.lock("y", a).status().code() == Code::kUnavailable);
  CHECK(f.core->describe(Kind::kLock, "y").status().code() == Code::kNotFound);
  CHECK(f.core->release(Kind::kLock, "x", a, t).code() == Code::kUnavailable);
  CHECK(f.core->revoke_lease(a).code() == Code::kUnavailable);
  // Queuing needs no write, so it still works.
  auto c = f.core->lease(b);
  REQUIRE(c.is_ok());

  const CoreStats after = f.core->stats();
  CHECK(after.leases == before.leases);
  CHECK(after.holds == before.holds);
  CHECK(after.waiters == before.waiters);
  CHECK(after.names == before.names);
  CHECK(after.next_token == before.next_token);  // no token consumed
  CHECK(f.holders("x") == std::vector<LeaseId>{a});
  CHECK(f.queue("x") == std::vector<LeaseId>{b});
  CHECK(f.core->lease(a)->holds == 1);
  CHECK(f.core->take_events().empty());

  f.store.fail = false;
  REQUIRE(f.core->release(Kind::kLock, "x", a, t).is_ok());
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wb);
  CHECK(ev[0].grant.token == t + 1);  // the failed attempts burned no tokens
}

TEST_CASE("lease expiry retries when the store fails", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(1s);
  auto b = f.lease(10s);
  f.must_lock("x", a);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 5s);
  f.store.fail = true;
  f.advance(1s);
  f.core->tick();
  CHECK(f.core->take_events().empty());
  CHECK(f.core->stats().leases == 2);  // kept: the deletion was not durable
  // ...but it is already gone for callers.
  CHECK(f.core->keepalive(a).status().code() == Code::kNotFound);
  CHECK(f.holders("x") == std::vector<LeaseId>{a});
  // No busy loop while the store is down: the next deadline is pushed out.
  auto next = f.core->next_deadline();
  REQUIRE(next.has_value());
  CHECK(*next > f.clock.now());

  f.store.fail = false;
  f.core->tick();
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wb);
  CHECK(ev[0].granted);
  CHECK(f.core->stats().leases == 1);
}

TEST_CASE("a waiter timeout whose follow-up grant fails is retried", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  auto b = f.lease();
  auto c = f.lease();
  f.must_lock("x", a, Mode::kShared);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive, 1s);  // head, blocks c
  WaiterId wc = f.must_queue("x", c, Mode::kShared, 5s);
  auto d = f.lease();
  f.store.fail = true;
  f.advance(1s);
  f.core->tick();
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);  // the timeout is reported even though the store is down
  CHECK(ev[0].waiter == wb);
  CHECK(ev[0].status.code() == Code::kConflict);
  CHECK(f.queue("x") == std::vector<LeaseId>{c});
  auto next = f.core->next_deadline();
  REQUIRE(next.has_value());
  CHECK(*next == f.clock.now() + 100ms);  // retry backoff
  // While the grant is pending, nobody barges in.
  f.store.fail = false;
  CHECK(f.lock("x", d, Mode::kShared).is_ok());  // this call's tick retried first...
  ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wc);
  CHECK(ev[0].granted);
  CHECK(f.holders("x") == std::vector<LeaseId>{a, c, d});  // ...so c is ahead of d
}

TEST_CASE("cancel_wait failure to grant the next waiter is retried on tick", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease();
  auto b = f.lease();
  auto c = f.lease();
  f.must_lock("x", a, Mode::kShared);
  WaiterId wb = f.must_queue("x", b, Mode::kExclusive);  // blocks c (no barging)
  WaiterId wc = f.must_queue("x", c, Mode::kShared);
  f.store.fail = true;
  f.core->cancel_wait(wb);  // c could now share with a, but the write fails
  CHECK(f.queue("x") == std::vector<LeaseId>{c});
  CHECK(f.core->take_events().empty());
  REQUIRE(f.core->next_deadline().has_value());
  f.core->tick();
  CHECK(f.core->take_events().empty());
  f.store.fail = false;
  f.core->tick();
  auto ev = f.core->take_events();
  REQUIRE(ev.size() == 1);
  CHECK(ev[0].waiter == wc);
  CHECK(ev[0].granted);
  CHECK(f.holders("x") == std::vector<LeaseId>{a, c});
  f.core->cancel_wait(wc);  // already granted: no-op
  f.core->cancel_wait(12345);
  CHECK(f.core->take_events().empty());
  CHECK(f.holders("x") == std::vector<LeaseId>{a, c});
}

TEST_CASE("describe and list", "[unit][dlock]") {
  Fixture f;
  auto a = f.lease(10s);
  auto b = f.lease(20s);
  CHECK(f.core->describe(Kind::kLock, "never").status().code() == Code::kNotFound);

  Token t1 = f.must_lock("jobs/1", a);
  f.must_lock("jobs/2", a, Mode::kShared);
  f.must_lock("jobs/2", b, Mode::kShared);
  f.must_lock("other", b);
  f.advance(1s);
  f.must_queue("jobs/1", b, Mode::kShared, 3s);

  LockInfo i1 = f.info("jobs/1");
  CHECK(i1.kind == Kind::kLock);
  CHECK(i1.name == "jobs/1");
  CHECK(i1.limit == 1);
  REQUIRE(i1.holders.size() == 1);
  CHECK(i1.holders[0].lease_id == a);
  CHECK(i1.holders[0].mode == Mode::kExclusive);
  CHECK(i1.holders[0].token == t1);
  CHECK(i1.holders[0].ttl_ms_left == 9000);
  REQUIRE(i1.waiters.size() == 1);
  CHECK(i1.waiters[0].lease_id == b);
  CHECK(i1.waiters[0].mode == Mode::kShared);
  CHECK(i1.waiters[0].wait_ms_left == 3000);
  CHECK(i1.last_token == t1);
  CHECK(i1.lock_delay_ms_left == 0);

  auto all = f.core->list(Kind::kLock, "", 100);
  REQUIRE(all.size() == 3);
  CHECK(all[0].name == "jobs/1");
  CHECK(all[1].name == "jobs/2");
  CHECK(all[2].name == "other");
  CHECK(all[1].holders.size() == 2);
  auto jobs = f.core->list(Kind::kLock, "jobs/", 100);
  REQUIRE(jobs.size() == 2);
  CHECK(f.core->list(Kind::kLock, "jobs/", 1).size() == 1);
  CHECK(f.core->list(Kind::kLock, "jobs/", 0).empty());
  CHECK(f.core->list(Kind::kLock, "zzz", 10).empty());
  CHECK(f.core->list(Kind::kSemaphore, "", 10).empty());

  // A released name stays describable through its last token, with no per-name state.
  const size_t active = f.core->stats().names;
  REQUIRE(f.core->release(Kind::kLock, "other", b, f.info("other").holders[0].token).is_ok());
  CHECK(f.core->stats().names == active - 1);
  LockInfo idle = f.info("other");
  CHECK(idle.holders.empty());
  CHECK(idle.waiters.empty());
  CHECK(idle.last_token > 0);
  CHECK(f.core->list(Kind::kLock, "o", 10).size() == 1);
}

TEST_CASE("stats count leases and holds and waiters and active names", "[unit][dlock]") {
  Fixture f;
  CHECK(f.core->stats().next_token == 1);
  auto a = f.lease();
  auto b = f.lease();
  f.must_lock("x", a);
  f.must_lock("y", a);
  f.must_queue("x", b);
  auto s = f.core->stats();
  CHECK(s.leases == 2);
  CHECK(s.holds == 2);
  CHECK(s.waiters == 1);
  CHECK(s.names == 2);
  CHECK(s.next_token == 3);
  REQUIRE(f.core->revoke_lease(a).is_ok());
  REQUIRE(f.core->revoke_lease(b).is_ok());
  s = f.core->stats();
  CHECK(s.leases == 0);
  CHECK(s.holds == 0);
  CHECK(s.waiters == 0);
  CHECK(s.names == 0);                 // per-name state dropped
  CHECK(f.info("x").last_token == 3);  // b got x with token 3 before its revoke
  CHECK(f.info("y").last_token == 2);
}
