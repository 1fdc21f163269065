// SimulatedPayments: the test cards, seeded decline/error rates, per-reference idempotent
// authorization, the charge state machine, the ledger across reopen, latency, card validation.

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "sd/base/ids.hpp"
#include "sd/testing/testing.hpp"
#include "sd/ticketing/payments.hpp"

using namespace sd;
using namespace sd::ticketing;

namespace {

constexpr const char* kApproved = "4242424242424242";
constexpr const char* kDeclined = "4000000000000002";
constexpr const char* kError = "4000000000000119";
constexpr const char* kTimeoutAfterSuccess = "4000000000009995";

struct Fixture {
  testing::TempDir dir{"sd-payments"};
  std::atomic<int64_t> now_ms{1'700'000'000'000};
  NowMs now = [this] { return now_ms.load(); };

  PaymentOptions options(uint64_t seed = 1) const {
    PaymentOptions o;
    o.ledger_path = dir.file("ledger/payments.db");
    o.seed = seed;
    return o;
  }

  std::unique_ptr<SimulatedPayments> open(PaymentOptions o) {
    auto p = SimulatedPayments::open(std::move(o), now);
    INFO(p.status().to_string());
    REQUIRE(p.is_ok());
    return std::move(*p);
  }
  std::unique_ptr<SimulatedPayments> open() { return open(options()); }
};

std::vector<Charge> ledger(PaymentProvider& p) {
  auto c = p.charges();
  INFO(c.status().to_string());
  REQUIRE(c.is_ok());
  return std::move(*c);
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// prefix + the Luhn check digit.
std::string luhn_complete(const std::string& prefix) {
  int sum = 0;
  bool twice = true;  // the check digit is not doubled, so the last prefix digit is
  for (auto it = prefix.rbegin(); it != prefix.rend(); ++it) {
    int d = *it - '0';
    if (twice) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    twice = !twice;
  }
  return prefix + static_cast<char>('0' + (10 - sum % 10) % 10);
}

}  // namespace

TEST_CASE("payments test cards behave as documented", "[unit][payments]") {
  Fixture f;
  auto p = f.open();

  SECTION("4242... is approved") {
    auto c = p->authorize("h_1", 12'500, kApproved);
    INFO(c.status().to_string());
    REQUIRE(c.is_ok());
    CHECK(starts_with(c->id, "pay_"));
    CHECK(is_valid_id(c->id.substr(4)));
    CHECK(c->reference == "h_1");
    CHECK(c->amount_cents == 12'500);
    CHECK(c->state == ChargeState::kAuthorized);
    CHECK(c->created_ms == f.now_ms.load());
    auto all = ledger(*p);
    REQUIRE(all.size() == 1);
    CHECK(all[0].id == c->id);
  }
  SECTION("4000...0002 is always declined and records nothing") {
    for (int i = 0; i < 5; ++i) {
      auto c = p->authorize("h_" + std::to_string(i), 100, kDeclined);
      REQUIRE_FALSE(c.is_ok());
      CHECK(c.status().code() == Code::kFailedPrecondition);
      CHECK(starts_with(c.status().message(), "card_declined: "));
    }
    CHECK(ledger(*p).empty());
  }
  SECTION("4000...0119 is a provider error and records nothing") {
    auto c = p->authorize("h_1", 100, kError);
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().code() == Code::kUnavailable);
    CHECK(starts_with(c.status().message(), "payment_unavailable: "));
    CHECK(ledger(*p).empty());
    // Nothing blocks the retry with a working card.
    CHECK(p->authorize("h_1", 100, kApproved).is_ok());
  }
  SECTION("4000...9995 records the authorization but reports a timeout") {
    auto c = p->authorize("h_1", 700, kTimeoutAfterSuccess);
    REQUIRE_FALSE(c.is_ok());
    CHECK(c.status().code() == Code::kUnavailable);
    CHECK(starts_with(c.status().message(), "payment_unavailable: "));
    auto all = ledger(*p);
    REQUIRE(all.size() == 1);
    CHECK(all[0].reference == "h_1");
    CHECK(all[0].state == ChargeState::kAuthorized);
    // The retry finds the authorization that went through instead of making a second one.
    auto retry = p->authorize("h_1", 700, kTimeoutAfterSuccess);
    REQUIRE(retry.is_ok());
    CHECK(retry->id == all[0].id);
    CHECK(ledger(*p).size() == 1);
  }
  SECTION("any other valid card is approved; spaces and dashes are accepted") {
    CHECK(p->authorize("h_1", 100, "5555555555554444").is_ok());
    CHECK(p->authorize("h_2", 100, "4242 4242 4242 4242").is_ok());
    CHECK(p->authorize("h_3", 100, "4000-0000-0000-0002").status().code() ==
          Code::kFailedPrecondition);
    auto bad = p->authorize("h_4", 100, "4242424242424241");
    CHECK(bad.status().code() == Code::kInvalidArgument);
    CHECK(starts_with(bad.status().message(), "invalid_card: "));
    CHECK(p->authorize("", 100, kApproved).status().code() == Code::kInvalidArgument);
    CHECK(p->authorize("h_5", -1, kApproved).status().code() == Code::kInvalidArgument);
    CHECK(ledger(*p).size() == 2);
  }
}

TEST_CASE("payments seeded decline and error rates", "[unit][payments]") {
  Fixture f;
  auto o = f.options(7);
  o.decline_rate = 0.10;
  o.error_rate = 0.05;
  auto p = f.open(o);
  constexpr int kN = 10'000;
  int approved = 0, declined = 0, errors = 0, other = 0;
  for (int i = 0; i < kN; ++i) {
    auto c = p->authorize("h_" + std::to_string(i), 1000, kApproved);
    if (c.is_ok()) {
      ++approved;
    } else if (c.status().code() == Code::kFailedPrecondition) {
      ++declined;
    } else if (c.status().code() == Code::kUnavailable) {
      ++errors;
    } else {
      ++other;
    }
  }
  CHECK(other == 0);
  // Binomial standard deviations: declines 30, errors 22; allow 5 of them.
  CHECK(declined > 1000 - 150);
  CHECK(declined < 1000 + 150);
  CHECK(errors > 500 - 110);
  CHECK(errors < 500 + 110);
  CHECK(approved == kN - declined - errors);
  // Half the errors are "timeout after success": recorded in the ledger.
  const auto recorded = static_cast<int>(ledger(*p).size());
  const int recorded_errors = recorded - approved;
  CHECK(recorded_errors > errors / 2 - 80);
  CHECK(recorded_errors < errors / 2 + 80);

  SECTION("the same seed gives the same outcomes") {
    Fixture g;
    auto o2 = g.options(7);
    o2.decline_rate = 0.10;
    o2.error_rate = 0.05;
    auto a = g.open(o2);
    Fixture h;
    auto o3 = h.options(7);
    o3.decline_rate = 0.10;
    o3.error_rate = 0.05;
    auto b = h.open(o3);
    for (int i = 0; i < 500; ++i) {
      auto ra = a->authorize("h_" + std::to_string(i), 1000, kApproved);
      auto rb = b->authorize("h_" + std::to_string(i), 1000, kApproved);
      REQUIRE(ra.status().code() == rb.status().code());
    }
  }
}

TEST_CASE("payments authorize is idempotent per reference", "[unit][payments]") {
  Fixture f;
  auto p = f.open();
  auto first = p->authorize("h_1", 5000, kApproved);
  REQUIRE(first.is_ok());
  f.now_ms += 1000;
  auto again = p->authorize("h_1", 5000, "5555555555554444");
  REQUIRE(again.is_ok());
  CHECK(again->id == first->id);
  CHECK(again->created_ms == first->created_ms);
  CHECK(ledger(*p).size() == 1);

  auto other_amount = p->authorize("h_1", 6000, kApproved);
  CHECK(other_amount.status().code() == Code::kConflict);
  CHECK(starts_with(other_amount.status().message(), "payment_reference_conflict: "));

  SECTION("a voided authorization does not block a new one") {
    REQUIRE(p->void_authorization(first->id).is_ok());
    auto fresh = p->authorize("h_1", 5000, kApproved);
    REQUIRE(fresh.is_ok());
    CHECK(fresh->id != first->id);
    CHECK(ledger(*p).size() == 2);
  }
  SECTION("a captured charge is not authorized again") {
    REQUIRE(p->capture(first->id).is_ok());
    auto again2 = p->authorize("h_1", 5000, kApproved);
    CHECK(again2.status().code() == Code::kConflict);
    CHECK(starts_with(again2.status().message(), "already_captured: "));
    CHECK(ledger(*p).size() == 1);
  }
  SECTION("concurrent retries of one reference make one authorization") {
    std::vector<std::thread> threads;
    std::vector<std::string> ids(16);
    for (size_t t = 0; t < ids.size(); ++t) {
      threads.emplace_back([&, t] {
        auto c = p->authorize("h_2", 900, kApproved);
        if (c.is_ok()) ids[t] = c->id;
      });
    }
    for (auto& th : threads) th.join();
    std::set<std::string> distinct(ids.begin(), ids.end());
    CHECK(distinct.size() == 1);
    CHECK_FALSE(distinct.begin()->empty());
    CHECK(ledger(*p).size() == 2);
  }
}

TEST_CASE("payments charge state machine", "[unit][payments]") {
  Fixture f;
  auto p = f.open();
  auto state_of = [&](const std::string& id) {
    for (const auto& c : ledger(*p)) {
      if (c.id == id) return c.state;
    }
    FAIL("no charge " << id);
    return ChargeState::kAuthorized;
  };

  SECTION("authorized -> captured -> refunded") {
    auto c = p->authorize("h_1", 100, kApproved);
    REQUIRE(c.is_ok());
    CHECK(p->refund(c->id).code() == Code::kConflict);  // not captured yet: void it instead
    REQUIRE(p->capture(c->id).is_ok());
    CHECK(state_of(c->id) == ChargeState::kCaptured);
    CHECK(p->capture(c->id).is_ok());  // same target state: ok
    auto v = p->void_authorization(c->id);
    CHECK(v.code() == Code::kConflict);
    CHECK(starts_with(v.message(), "charge_state_conflict: "));
    REQUIRE(p->refund(c->id).is_ok());
    CHECK(state_of(c->id) == ChargeState::kRefunded);
    CHECK(p->refund(c->id).is_ok());
    CHECK(p->capture(c->id).code() == Code::kConflict);
    CHECK(p->void_authorization(c->id).code() == Code::kConflict);
  }
  SECTION("authorized -> voided") {
    auto c = p->authorize("h_1", 100, kApproved);
    REQUIRE(c.is_ok());
    REQUIRE(p->void_authorization(c->id).is_ok());
    CHECK(state_of(c->id) == ChargeState::kVoided);
    CHECK(p->void_authorization(c->id).is_ok());
    CHECK(p->capture(c->id).code() == Code::kConflict);
    CHECK(p->refund(c->id).code() == Code::kConflict);
    CHECK(state_of(c->id) == ChargeState::kVoided);
  }
  SECTION("unknown charges") {
    CHECK(p->capture("pay_nope").code() == Code::kNotFound);
    CHECK(p->void_authorization("pay_nope").code() == Code::kNotFound);
    CHECK(p->refund("pay_nope").code() == Code::kNotFound);
  }
  CHECK(charge_state_name(ChargeState::kAuthorized) == "authorized");
  CHECK(charge_state_name(ChargeState::kCaptured) == "captured");
  CHECK(charge_state_name(ChargeState::kVoided) == "voided");
  CHECK(charge_state_name(ChargeState::kRefunded) == "refunded");
}

TEST_CASE("payments ledger survives a reopen", "[unit][payments]") {
  Fixture f;
  std::string captured, authorized;
  {
    auto p = f.open();
    auto a = p->authorize("h_1", 100, kApproved);
    auto b = p->authorize("h_2", 200, kApproved);
    REQUIRE(a.is_ok());
    REQUIRE(b.is_ok());
    REQUIRE(p->capture(a->id).is_ok());
    captured = a->id;
    authorized = b->id;
  }
  f.now_ms += 60'000;
  auto p = f.open();
  auto all = ledger(*p);
  REQUIRE(all.size() == 2);
  CHECK(all[0].id == captured);
  CHECK(all[0].state == ChargeState::kCaptured);
  CHECK(all[0].amount_cents == 100);
  CHECK(all[0].created_ms == 1'700'000'000'000);
  CHECK(all[1].id == authorized);
  CHECK(all[1].state == ChargeState::kAuthorized);
  // The live authorization is still the one a retry gets.
  auto retry = p->authorize("h_2", 200, kApproved);
  REQUIRE(retry.is_ok());
  CHECK(retry->id == authorized);
  CHECK(p->capture(captured).is_ok());
}

TEST_CASE("payments open validates its options", "[unit][payments]") {
  Fixture f;
  auto bad = [&](PaymentOptions o) {
    return SimulatedPayments::open(std::move(o), f.now).status().code();
  };
  PaymentOptions o = f.options();
  o.ledger_path = "";
  CHECK(bad(o) == Code::kInvalidArgument);
  o = f.options();
  o.min_latency_ms = 10;
  o.max_latency_ms = 5;
  CHECK(bad(o) == Code::kInvalidArgument);
  o = f.options();
  o.decline_rate = 0.7;
  o.error_rate = 0.4;
  CHECK(bad(o) == Code::kInvalidArgument);
  o = f.options();
  o.decline_rate = -0.1;
  CHECK(bad(o) == Code::kInvalidArgument);
}

TEST_CASE("payments simulate latency", "[unit][payments]") {
  Fixture f;
  auto o = f.options();
  o.min_latency_ms = 5;
  o.max_latency_ms = 10;
  auto p = f.open(o);
  for (int i = 0; i < 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto c = p->authorize("h_" + std::to_string(i), 100, kApproved);
    REQUIRE(c.is_ok());
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(5));
    start = std::chrono::steady_clock::now();
    REQUIRE(p->capture(c->id).is_ok());
    CHECK(std::chrono::steady_clock::now() - start >= std::chrono::milliseconds(5));
  }
}

TEST_CASE("payments card validation", "[unit][payments]") {
  CHECK(validate_card(kApproved).is_ok());
  CHECK(validate_card(kDeclined).is_ok());
  CHECK(validate_card(kError).is_ok());
  CHECK(validate_card(kTimeoutAfterSuccess).is_ok());
  CHECK(validate_card("378282246310005").is_ok());      // Amex, 15 digits
  CHECK(validate_card("6011111111111117").is_ok());     // Discover
  CHECK(validate_card("4242 4242 4242 4242").is_ok());  // separators are stripped
  CHECK(validate_card("4242-4242-4242-4242").is_ok());
  for (size_t len = 12; len <= 19; ++len) {
    const std::string n = luhn_complete(std::string(len - 1, '4'));
    INFO(n);
    CHECK(validate_card(n).is_ok());
    // Changing one digit breaks the checksum.
    std::string broken = n;
    broken[0] = broken[0] == '9' ? '0' : static_cast<char>(broken[0] + 1);
    CHECK(validate_card(broken).code() == Code::kInvalidArgument);
  }
  auto invalid = [](const std::string& card) {
    Status st = validate_card(card);
    INFO(card << " -> " << st.to_string());
    CHECK(st.code() == Code::kInvalidArgument);
    CHECK(starts_with(st.message(), "invalid_card: "));
  };
  invalid("");
  invalid("4242424242424241");                   // Luhn fails
  invalid(luhn_complete(std::string(10, '4')));  // 11 digits
  invalid(luhn_complete(std::string(19, '4')));  // 20 digits
  invalid("4242x42424242424");
  invalid("4242.4242.4242.4242");
  invalid(" - - ");
  invalid("\xef\xbc\x94\xef\xbc\x92\xef\xbc\x94\xef\xbc\x92");  // full-width digits
}
