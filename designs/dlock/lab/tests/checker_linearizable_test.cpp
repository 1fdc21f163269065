// The linearizability rule: acquire/release histories against a mutex model.

#include <catch2/catch.hpp>
#include <chrono>

#include "checker_test_util.hpp"

namespace sd::dlock::lab::test {

namespace {
constexpr auto kOk = EventType::kOk;
constexpr auto kFail = EventType::kFail;
constexpr auto kInfo = EventType::kInfo;
constexpr auto kInvoke = EventType::kInvoke;

RuleResult lin(const Builder& b, uint64_t max_states = 2'000'000) {
  CheckOptions o;
  o.max_search_states = max_states;
  return rule(check_history(b.sorted(), o), "linearizable");
}

// acquire or release by c over [from, to] ms, completed with `t`.
void op(Builder& b, const std::string& c, const std::string& f, double from, double to,
        EventType t = kOk, std::optional<uint64_t> token = std::nullopt) {
  b.op(kInvoke, c, f, from);
  b.op(t, c, f, to, token);
}
}  // namespace

TEST_CASE("linearizable: an acquire while another holds and never released", "[unit][lab]") {
  Builder b;
  op(b, "c0", "acquire", 0, 1, kOk, 5);
  op(b, "c1", "acquire", 2, 2001, kOk, 6);  // c0's lease expired; c0 never released
  auto h = b.sorted();
  auto r = rule(check_history(h), "linearizable");
  REQUIRE(r.verdict == Verdict::kViolated);
  REQUIRE(r.violations.size() == 1);
  const Violation& v = r.violations[0];
  CHECK(v.rule == "linearizable");
  CHECK(v.events == std::vector<size_t>{1, 2, 3});  // c0's acquire ok, c1's invoke and ok
  CHECK(v.message.find("c1's acquire") != std::string::npos);
  CHECK(v.message.find("token 6") != std::string::npos);
  CHECK(v.message.find("held by c0") != std::string::npos);
  CHECK(v.message.find("token 5") != std::string::npos);
}

TEST_CASE("linearizable: handoffs with overlapping release and acquire are ok", "[unit][lab]") {
  Builder b;
  op(b, "c0", "acquire", 0, 1);
  b.op(kInvoke, "c1", "acquire", 0.5);
  b.op(kInvoke, "c2", "acquire", 0.6);
  b.op(kInvoke, "c0", "release", 10);
  b.op(kOk, "c1", "acquire", 10.5);  // the reply to c1 beats the reply to c0
  b.op(kOk, "c0", "release", 11);
  b.op(kInvoke, "c1", "release", 20);
  b.op(kOk, "c2", "acquire", 20.1);
  b.op(kOk, "c1", "release", 20.2);
  op(b, "c2", "release", 30, 31);
  auto r = lin(b);
  INFO(r.note);
  CHECK(r.verdict == Verdict::kOk);
  CHECK(r.violations.empty());
}

TEST_CASE("linearizable: an acquire that returned before the release began", "[unit][lab]") {
  Builder b;
  op(b, "c0", "acquire", 0, 1);
  op(b, "c1", "acquire", 2, 5);
  op(b, "c0", "release", 6, 7);  // too late: c1 already held it
  op(b, "c1", "release", 8, 9);
  auto r = lin(b);
  CHECK(r.verdict == Verdict::kViolated);
}

TEST_CASE("linearizable: unknown outcomes may or may not have happened", "[unit][lab]") {
  SECTION("an info acquire that did not happen") {
    Builder b;
    op(b, "c0", "acquire", 0, 5, kInfo);
    op(b, "c1", "acquire", 10, 11);
    op(b, "c1", "release", 12, 13);
    CHECK(lin(b).verdict == Verdict::kOk);
  }
  SECTION("an info acquire that did happen: its holder's release explains it") {
    Builder b;
    op(b, "c0", "acquire", 0, 5, kInfo);
    op(b, "c0", "release", 10, 11);
    op(b, "c1", "acquire", 12, 13);
    CHECK(lin(b).verdict == Verdict::kOk);
  }
  SECTION("an info release that happened lets the next acquire through") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    op(b, "c0", "release", 2, 7, kInfo);
    op(b, "c1", "acquire", 10, 11);
    op(b, "c1", "release", 12, 13);
    CHECK(lin(b).verdict == Verdict::kOk);
  }
  SECTION("an info op cannot take effect before its invoke") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    op(b, "c1", "acquire", 2, 3);         // needs c0's release first...
    op(b, "c0", "release", 5, 6, kInfo);  // ...which was only invoked later
    CHECK(lin(b).verdict == Verdict::kViolated);
  }
  SECTION("an operation still open at the end is unknown") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    b.op(kInvoke, "c0", "release", 2);  // c0 was killed mid-release
    op(b, "c1", "acquire", 10, 11);
    CHECK(lin(b).verdict == Verdict::kOk);
    b.op(kInvoke, "c2", "acquire", 12);  // may never happen: no effect on c1's release
    op(b, "c1", "release", 13, 14);
    CHECK(lin(b).verdict == Verdict::kOk);
  }
  SECTION("an invoke before the previous one completed makes that one unknown") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    b.op(kInvoke, "c0", "release", 2);
    op(b, "c0", "acquire", 3, 4);  // the restarted client went on
    op(b, "c0", "release", 5, 6);
    auto r = lin(b);
    CHECK(r.verdict == Verdict::kOk);
    CHECK(r.note.find("re-invoked") != std::string::npos);
  }
}

TEST_CASE("linearizable: failed operations did not happen", "[unit][lab]") {
  SECTION("a failed acquire while another holds is fine") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    op(b, "c1", "acquire", 2, 2002, kFail);
    op(b, "c0", "release", 2003, 2004);
    CHECK(lin(b).verdict == Verdict::kOk);
  }
  SECTION("a failed release leaves the lock held") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    op(b, "c0", "release", 2, 3, kFail);
    op(b, "c1", "acquire", 4, 5);
    CHECK(lin(b).verdict == Verdict::kViolated);
  }
}

TEST_CASE("linearizable: releases and re-acquires the mutex does not allow", "[unit][lab]") {
  SECTION("release of a free lock") {
    Builder b;
    op(b, "c0", "release", 0, 1);
    auto r = lin(b);
    REQUIRE(r.verdict == Verdict::kViolated);
    CHECK(r.violations[0].message.find("c0 did not hold the lock; it was free") !=
          std::string::npos);
  }
  SECTION("release of another's lock") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    op(b, "c1", "release", 2, 3);
    auto r = lin(b);
    REQUIRE(r.verdict == Verdict::kViolated);
    CHECK(r.violations[0].message.find("held by c0") != std::string::npos);
  }
  SECTION("the holder acquires again") {
    Builder b;
    op(b, "c0", "acquire", 0, 1);
    op(b, "c0", "acquire", 2, 3);
    CHECK(lin(b).verdict == Verdict::kViolated);
  }
}

TEST_CASE("linearizable: each lease expiry is one violation and not a cascade", "[unit][lab]") {
  Builder b;
  for (int round = 0; round < 3; ++round) {
    const double t = round * 100.0;
    const uint64_t tok = static_cast<uint64_t>(round) * 10;
    op(b, "c0", "acquire", t, t + 1, kOk, tok + 1);
    op(b, "c1", "acquire", t + 2, t + 30, kOk, tok + 2);  // c0's lease ran out
    op(b, "c1", "release", t + 31, t + 32);
    op(b, "c0", "release", t + 40, t + 41, kFail);  // too late
  }
  auto r = lin(b);
  CHECK(r.verdict == Verdict::kViolated);
  CHECK(r.violations.size() == 3);
  CHECK(r.note.find("as if that operation took effect") != std::string::npos);
}

TEST_CASE("linearizable: a tiny search budget gives unknown and not a verdict", "[unit][lab]") {
  Builder b;
  for (int i = 0; i < 20; ++i) b.cycle("c" + std::to_string(i % 3), i * 20.0, i + 1, i);
  auto r = lin(b, 5);
  CHECK(r.verdict == Verdict::kUnknown);
  CHECK(r.violations.empty());
  CHECK(r.note.find("search budget of 5 states exhausted") != std::string::npos);
  CHECK(lin(b).verdict == Verdict::kOk);

  SECTION("a violation found before the budget ran out still counts") {
    Builder v;
    op(v, "c0", "acquire", 0, 1);
    op(v, "c1", "acquire", 2, 3);
    for (int i = 0; i < 20; ++i) op(v, "c2", "acquire", 10 + i, 10.5 + i, kFail);
    op(v, "c1", "release", 40, 41);
    op(v, "c1", "acquire", 42, 43);
    op(v, "c1", "release", 44, 45);
    auto rv = lin(v, 3);
    CHECK(rv.verdict == Verdict::kViolated);
    CHECK(rv.note.find("budget") != std::string::npos);
  }
}

TEST_CASE("linearizable: many unknown outcomes stay cheap", "[unit][lab]") {
  // Five clients; every other cycle ends in a lost reply, and stray info acquires pile up.
  Builder b;
  double t = 0;
  for (int i = 0; i < 400; ++i) {
    const std::string c = "c" + std::to_string(i % 5);
    const std::string other = "c" + std::to_string((i + 2) % 5);
    b.op(kInvoke, other, "acquire", t + 0.5);  // never completes before `other` re-invokes
    op(b, c, "acquire", t, t + 1);
    op(b, c, "release", t + 2, t + 3, i % 2 ? kInfo : kOk);
    t += 10;
  }
  auto start = std::chrono::steady_clock::now();
  auto r = lin(b);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  INFO(r.note << " in " << ms << " ms");
  CHECK(r.verdict == Verdict::kOk);
  CHECK(ms < 2000);
}

TEST_CASE("linearizable: a lock-service outage full of uncertain operations stays cheap",
          "[unit][lab]") {
  // For 5 s every client's acquire times out and it drops its session (invoke release + info),
  // as the lab client does when dlockd is down; then normal cycles resume.
  Builder b;
  double t = 0;
  for (int i = 0; i < 50; ++i) {
    for (int c = 0; c < 5; ++c) {
      const std::string p = "c" + std::to_string(c);
      const double s = t + c * 0.1;
      op(b, p, "acquire", s, s + 90, kInfo);
      op(b, p, "release", s + 90.01, s + 90.02, kInfo);
    }
    t += 100;
  }
  for (int i = 0; i < 200; ++i) b.cycle("c" + std::to_string(i % 5), t + i * 20.0, i + 1, i);
  auto start = std::chrono::steady_clock::now();
  CheckOptions o;
  o.max_search_states = 200'000;
  auto r = rule(check_history(b.sorted(), o), "linearizable");
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  INFO(r.note << " in " << ms << " ms");
  CHECK(r.verdict == Verdict::kOk);
  CHECK(ms < 2000);
}

}  // namespace sd::dlock::lab::test
