// IdempotencyStore: proceed/replay/mismatch/in-progress, takeover of abandoned keys, "try again"
// responses freeing the key, TTL and purge, customer scoping, key validation, concurrent begin.

#include <catch2/catch.hpp>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "sd/testing/testing.hpp"
#include "sd/ticketing/db.hpp"
#include "sd/ticketing/idempotency.hpp"

using namespace sd;
using namespace sd::ticketing;
using Outcome = IdempotencyStore::Outcome;

namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
const std::string kReq = "POST /v1/events/1/holds\n{\"customer\":\"alice\",\"seats\":[1,2]}";

struct Fixture {
  testing::TempDir dir{"sd-idem"};
  std::unique_ptr<TicketDb> db;
  Fixture() {
    DbConfig c;
    c.path = dir.file("tickets.db");
    auto d = TicketDb::open(c);
    INFO(d.status().to_string());
    REQUIRE(d.is_ok());
    db = std::move(*d);
  }
};

IdempotencyStore::Begin begin_ok(IdempotencyStore& s, const std::string& customer,
                                 const std::string& key, const std::string& request, int64_t now) {
  auto b = s.begin(customer, key, request, now);
  INFO(b.status().to_string());
  REQUIRE(b.is_ok());
  return *b;
}

Outcome outcome(IdempotencyStore& s, const std::string& customer, const std::string& key,
                const std::string& request, int64_t now) {
  return begin_ok(s, customer, key, request, now).outcome;
}

}  // namespace

TEST_CASE("idempotency: first request proceeds, the repeat replays", "[unit][idempotency]") {
  Fixture f;
  IdempotencyStore store(*f.db);
  auto first = begin_ok(store, "alice", "k1", kReq, kT0);
  CHECK(first.outcome == Outcome::kProceed);
  CHECK_FALSE(first.stored.has_value());
  REQUIRE(store.finish("alice", "k1", {201, R"({"hold_id":"h_1"})"}, kT0 + 5).is_ok());
  auto again = begin_ok(store, "alice", "k1", kReq, kT0 + 1000);
  CHECK(again.outcome == Outcome::kReplay);
  REQUIRE(again.stored.has_value());
  CHECK(again.stored->status == 201);
  CHECK(again.stored->body == R"({"hold_id":"h_1"})");
  // Client errors are answers too: stored and replayed.
  CHECK(outcome(store, "alice", "k2", kReq, kT0) == Outcome::kProceed);
  REQUIRE(store.finish("alice", "k2", {409, R"({"error":"seat_unavailable"})"}, kT0).is_ok());
  auto conflict = begin_ok(store, "alice", "k2", kReq, kT0 + 1);
  CHECK(conflict.outcome == Outcome::kReplay);
  CHECK(conflict.stored->status == 409);
  // A second finish (e.g. of a request that was taken over) keeps the first response.
  REQUIRE(store.finish("alice", "k1", {500, "late"}, kT0 + 2000).is_ok());
  CHECK(begin_ok(store, "alice", "k1", kReq, kT0 + 3000).stored->status == 201);
}

TEST_CASE("idempotency: a different request with the same key is a mismatch",
          "[unit][idempotency]") {
  Fixture f;
  IdempotencyStore store(*f.db);
  CHECK(outcome(store, "alice", "k", kReq, kT0) == Outcome::kProceed);
  // While the first is still running.
  CHECK(outcome(store, "alice", "k", kReq + " ", kT0 + 1) == Outcome::kMismatch);
  REQUIRE(store.finish("alice", "k", {201, "{}"}, kT0 + 2).is_ok());
  // And after it finished: compared byte for byte.
  CHECK(outcome(store, "alice", "k", "POST /v1/holds/h_1/pay\n{}", kT0 + 3) == Outcome::kMismatch);
  std::string other = kReq;
  other.back() = '}';
  other[other.size() - 3] = '3';
  CHECK(outcome(store, "alice", "k", other, kT0 + 4) == Outcome::kMismatch);
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 5) == Outcome::kReplay);
}

TEST_CASE("idempotency: in progress, then taken over after the timeout", "[unit][idempotency]") {
  Fixture f;
  IdempotencyOptions o;
  o.in_progress_timeout_ms = 60'000;
  IdempotencyStore store(*f.db, o);
  CHECK(outcome(store, "alice", "k", kReq, kT0) == Outcome::kProceed);
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 1) == Outcome::kInProgress);
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 59'999) == Outcome::kInProgress);
  // The first request's process died: the key is free to run again.
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 60'000) == Outcome::kProceed);
  // ... and the new owner has the full timeout.
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 60'001) == Outcome::kInProgress);
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 119'999) == Outcome::kInProgress);
  REQUIRE(store.finish("alice", "k", {201, "ok"}, kT0 + 70'000).is_ok());
  CHECK(outcome(store, "alice", "k", kReq, kT0 + 70'001) == Outcome::kReplay);
}

TEST_CASE("idempotency: 5xx and 429 free the key", "[unit][idempotency]") {
  Fixture f;
  IdempotencyStore store(*f.db);
  for (int status : {500, 503, 429}) {
    const std::string key = "k" + std::to_string(status);
    CHECK(outcome(store, "alice", key, kReq, kT0) == Outcome::kProceed);
    REQUIRE(store.finish("alice", key, {status, R"({"error":"unavailable"})"}, kT0 + 1).is_ok());
    // The retry runs again (even with a different body: nothing is remembered).
    CHECK(outcome(store, "alice", key, kReq + "x", kT0 + 2) == Outcome::kProceed);
    REQUIRE(store.finish("alice", key, {201, "{}"}, kT0 + 3).is_ok());
    CHECK(outcome(store, "alice", key, kReq + "x", kT0 + 4) == Outcome::kReplay);
  }
  // finish() for a key that was never begun.
  CHECK(store.finish("alice", "never", {201, "{}"}, kT0).code() == Code::kNotFound);
}

TEST_CASE("idempotency: keys expire after the TTL and are purged", "[unit][idempotency]") {
  Fixture f;
  IdempotencyOptions o;
  o.ttl_ms = 24LL * 3600 * 1000;
  IdempotencyStore store(*f.db, o);
  CHECK(outcome(store, "alice", "old", kReq, kT0) == Outcome::kProceed);
  REQUIRE(store.finish("alice", "old", {201, "{}"}, kT0).is_ok());
  CHECK(outcome(store, "bob", "newer", kReq, kT0 + 1000) == Outcome::kProceed);
  REQUIRE(store.finish("bob", "newer", {201, "{}"}, kT0 + 1000).is_ok());

  auto none = store.purge(kT0 + o.ttl_ms - 1);
  REQUIRE(none.is_ok());
  CHECK(*none == 0);
  CHECK(outcome(store, "alice", "old", kReq, kT0 + o.ttl_ms - 1) == Outcome::kReplay);
  // Expired but not purged yet: already a fresh key (any request).
  CHECK(outcome(store, "bob", "newer", "other", kT0 + 1000 + o.ttl_ms) == Outcome::kProceed);

  auto one = store.purge(kT0 + o.ttl_ms);
  REQUIRE(one.is_ok());
  CHECK(*one == 1);  // alice's; bob's was re-begun at kT0 + 1000 + ttl
  CHECK(outcome(store, "alice", "old", "different now", kT0 + o.ttl_ms) == Outcome::kProceed);
  auto later = store.purge(kT0 + 10 * o.ttl_ms);
  REQUIRE(later.is_ok());
  CHECK(*later == 2);
}

TEST_CASE("idempotency: keys are scoped by customer", "[unit][idempotency]") {
  Fixture f;
  IdempotencyStore store(*f.db);
  CHECK(outcome(store, "alice", "same-key", kReq, kT0) == Outcome::kProceed);
  CHECK(outcome(store, "bob", "same-key", "POST /v1/events/1/holds\n{\"customer\":\"bob\"}", kT0) ==
        Outcome::kProceed);
  REQUIRE(store.finish("alice", "same-key", {201, "alice's"}, kT0).is_ok());
  REQUIRE(store.finish("bob", "same-key", {201, "bob's"}, kT0).is_ok());
  CHECK(begin_ok(store, "alice", "same-key", kReq, kT0 + 1).stored->body == "alice's");
  CHECK(outcome(store, "bob", "same-key", kReq, kT0 + 1) == Outcome::kMismatch);
}

TEST_CASE("idempotency: malformed keys are rejected", "[unit][idempotency]") {
  Fixture f;
  IdempotencyStore store(*f.db);
  auto rejected = [&](const std::string& key) {
    auto b = store.begin("alice", key, kReq, kT0);
    INFO("key of " << key.size() << " bytes");
    REQUIRE_FALSE(b.is_ok());
    CHECK(b.status().code() == Code::kInvalidArgument);
    CHECK(b.status().message().rfind("invalid_idempotency_key: ", 0) == 0);
    CHECK(store.finish("alice", key, {201, ""}, kT0).code() == Code::kInvalidArgument);
  };
  rejected("");
  rejected(std::string(256, 'a'));
  rejected("has space");
  rejected("tab\there");
  rejected(std::string("nul\0byte", 8));
  rejected("caf\xc3\xa9");
  rejected("del\x7f");
  CHECK(outcome(store, "alice", std::string(255, 'a'), kReq, kT0) == Outcome::kProceed);
  CHECK(outcome(store, "alice", "9f1c-4d2e_b7:a0/~!", kReq, kT0) == Outcome::kProceed);

  IdempotencyOptions small;
  small.max_key_bytes = 8;
  IdempotencyStore strict(*f.db, small);
  CHECK(strict.begin("alice", "123456789", kReq, kT0).status().code() == Code::kInvalidArgument);
  CHECK(outcome(strict, "alice", "12345678", kReq, kT0) == Outcome::kProceed);
}

TEST_CASE("idempotency: concurrent begin with one new key lets exactly one proceed",
          "[unit][idempotency]") {
  Fixture f;
  IdempotencyStore store(*f.db);
  for (int round = 0; round < 5; ++round) {
    const std::string key = "race-" + std::to_string(round);
    std::atomic<int> proceed{0}, in_progress{0}, other{0};
    std::atomic<bool> go{false};
    std::vector<std::thread> threads;
    for (int t = 0; t < 16; ++t) {
      threads.emplace_back([&] {
        while (!go.load()) std::this_thread::yield();
        auto b = store.begin("alice", key, kReq, kT0);
        if (!b.is_ok()) {
          ++other;
        } else if (b->outcome == Outcome::kProceed) {
          ++proceed;
        } else if (b->outcome == Outcome::kInProgress) {
          ++in_progress;
        } else {
          ++other;
        }
      });
    }
    go = true;
    for (auto& th : threads) th.join();
    CHECK(proceed == 1);
    CHECK(in_progress == 15);
    CHECK(other == 0);
  }
}

TEST_CASE("idempotency: stored responses survive a reopen", "[unit][idempotency]") {
  testing::TempDir dir("sd-idem-reopen");
  DbConfig c;
  c.path = dir.file("tickets.db");
  {
    auto db = TicketDb::open(c);
    REQUIRE(db.is_ok());
    IdempotencyStore store(**db);
    CHECK(outcome(store, "alice", "k", kReq, kT0) == Outcome::kProceed);
    REQUIRE(store.finish("alice", "k", {201, "kept"}, kT0).is_ok());
  }
  auto db = TicketDb::open(c);
  REQUIRE(db.is_ok());
  IdempotencyStore store(**db);
  auto b = begin_ok(store, "alice", "k", kReq, kT0 + 10);
  CHECK(b.outcome == Outcome::kReplay);
  CHECK(b.stored->body == "kept");
}
