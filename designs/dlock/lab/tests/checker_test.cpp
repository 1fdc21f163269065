// The checker's resource rules (mutual exclusion, fencing, lost update) on hand-made histories,
// and its reports.

#include "sd/dlock/lab/checker.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "checker_test_util.hpp"

namespace sd::dlock::lab::test {

namespace {
constexpr auto kOk = EventType::kOk;
constexpr auto kFail = EventType::kFail;
constexpr auto kInvoke = EventType::kInvoke;

bool has(const std::vector<size_t>& v, size_t i) {
  return std::find(v.begin(), v.end(), i) != v.end();
}
}  // namespace

TEST_CASE("checker: sequential handoffs with waiting acquires are clean", "[unit][lab]") {
  Builder b;
  // c1 and c2 wait in acquire while c0 holds; each gets the lock as the previous one releases.
  b.op(kInvoke, "c0", "acquire", 0);
  b.op(kInvoke, "c1", "acquire", 0.5);
  b.op(kInvoke, "c2", "acquire", 0.7);
  b.op(kOk, "c0", "acquire", 1, 1);
  b.res(kOk, "read", "c0", 3, 1, 0);
  b.res(kOk, "write", "c0", 6, 1, 1);
  b.op(kInvoke, "c0", "release", 8, 1);
  b.op(kOk, "c0", "release", 9, 1);
  b.op(kOk, "c1", "acquire", 8.5, 2);  // granted before c0's release reply arrived
  b.op(kInvoke, "c1", "read", 10, 2);
  b.res(kOk, "read", "c1", 11, 2, 1);
  b.op(kOk, "c1", "read", 12, 2, 1);
  b.res(kOk, "write", "c1", 13, 2, 2);
  b.op(kInvoke, "c1", "release", 14, 2);
  b.op(kOk, "c1", "release", 15, 2);
  b.op(kOk, "c2", "acquire", 14.5, 3);
  b.res(kOk, "read", "c2", 16, 3, 2);
  b.res(kOk, "write", "c2", 17, 3, 3);
  b.op(kInvoke, "c2", "release", 18, 3);
  b.op(kOk, "c2", "release", 19, 3);
  b.cycle("c0", 20, 4, 3);
  auto h = b.sorted();
  auto r = check_history(h);
  REQUIRE(r.rules.size() == 4);
  CHECK(r.rules[0].rule == "mutual-exclusion");
  CHECK(r.rules[1].rule == "fencing");
  CHECK(r.rules[2].rule == "lost-update");
  CHECK(r.rules[3].rule == "linearizable");
  for (const RuleResult& x : r.rules) {
    INFO(x.rule << ": " << x.note);
    CHECK(x.verdict == Verdict::kOk);
    CHECK(x.violations.empty());
  }
  CHECK_FALSE(r.violated());
  CHECK(format_report(r, h).find("result: no violation found") != std::string::npos);
}

TEST_CASE("checker: overlapping accepted sections violate mutual exclusion", "[unit][lab]") {
  Builder b;
  size_t r0 = b.res(kOk, "read", "c0", 0, 5, 0);
  size_t r1 = b.res(kOk, "read", "c1", 10, 6, 0);
  size_t w1 = b.res(kOk, "write", "c1", 20, 6, 1);
  size_t w0 = b.res(kOk, "write", "c0", 30, 5, 1);  // unfenced: the paused holder's write lands
  auto r = check_history(b.events);
  const RuleResult& me = rule(r, "mutual-exclusion");
  REQUIRE(me.verdict == Verdict::kViolated);
  REQUIRE(me.violations.size() == 1);
  CHECK(me.violations[0].rule == "mutual-exclusion");
  CHECK(me.violations[0].events == std::vector<size_t>{r0, r1, w1, w0});
  CHECK(me.violations[0].message.find("c0's critical section") != std::string::npos);
  CHECK(me.violations[0].message.find("c1's critical section") != std::string::npos);
  // The same history also accepted a stale token and lost c1's increment.
  const RuleResult& f = rule(r, "fencing");
  REQUIRE(f.verdict == Verdict::kViolated);
  CHECK(has(f.violations[0].events, w0));
  CHECK(f.violations[0].message.find("stale write accepted") != std::string::npos);
  const RuleResult& lu = rule(r, "lost-update");
  REQUIRE(lu.verdict == Verdict::kViolated);
  CHECK(lu.violations[0].message.find("1 increment was lost") != std::string::npos);
  CHECK(has(lu.violations[0].events, w0));
  CHECK(has(lu.violations[0].events, w1));
  CHECK(has(lu.violations[0].events, r0));  // the read the lost write was based on
  CHECK(r.violated());
  CHECK(rule(r, "linearizable").verdict == Verdict::kOk);  // no lock operations in it
}

TEST_CASE("checker: sections that only touch do not overlap", "[unit][lab]") {
  Builder b;
  b.res(kOk, "read", "c0", 0, 1, 0);
  b.res(kOk, "write", "c0", 10, 1, 1);
  b.res(kOk, "read", "c1", 10, 2, 1);  // same instant as c0's write: ordered, not overlapping
  b.res(kOk, "write", "c1", 20, 2, 2);
  b.res(kOk, "write", "c2", 30, 3, 3);  // a write without a read: an instant
  auto r = check_history(b.events);
  CHECK_FALSE(r.violated());
}

TEST_CASE("checker: an accepted stale token violates fencing", "[unit][lab]") {
  Builder b;
  b.res(kOk, "read", "c0", 0, 5, 0);
  size_t w0 = b.res(kOk, "write", "c0", 10, 5, 1);
  b.res(kOk, "read", "c1", 20, 4, 1);
  size_t w1 = b.res(kOk, "write", "c1", 30, 4, 2);  // token 4 after 5 was written
  auto r = check_history(b.events);
  CHECK(rule(r, "mutual-exclusion").verdict == Verdict::kOk);
  CHECK(rule(r, "lost-update").verdict == Verdict::kOk);
  const RuleResult& f = rule(r, "fencing");
  REQUIRE(f.verdict == Verdict::kViolated);
  REQUIRE(f.violations.size() == 1);
  CHECK(f.violations[0].events == std::vector<size_t>{0, w0, w1});  // max read #0, both writes
  CHECK(f.violations[0].message.find("not greater than the previous accepted write's token 5") !=
        std::string::npos);

  SECTION("an equal token is stale too") {
    Builder e;
    e.res(kOk, "write", "c0", 0, 7, 1);
    e.res(kOk, "write", "c1", 5, 7, 2);
    CHECK(rule(check_history(e.events), "fencing").verdict == Verdict::kViolated);
  }
  SECTION("a token lower than one already read is stale even if above the last write") {
    Builder e;
    e.res(kOk, "read", "c0", 0, 3, 0);
    e.res(kOk, "write", "c0", 1, 3, 1);
    e.res(kOk, "read", "c2", 2, 9, 1);  // c2 read with 9, then paused
    size_t w = e.res(kOk, "write", "c1", 3, 8, 2);
    auto report = check_history(e.events);
    const RuleResult& ff = rule(report, "fencing");
    REQUIRE(ff.violations.size() == 1);
    CHECK(ff.violations[0].events == std::vector<size_t>{2, w});
    CHECK(ff.violations[0].message.find("lower than token 9") != std::string::npos);
  }
}

TEST_CASE("checker: a lost increment is caught", "[unit][lab]") {
  Builder b;
  b.res(kOk, "read", "c0", 0, 1, 0);
  b.res(kOk, "write", "c0", 1, 1, 1);
  b.res(kOk, "read", "c1", 2, 2, 1);
  size_t w1 = b.res(kOk, "write", "c1", 3, 2, 2);
  b.res(kOk, "read", "c2", 4, 3, 1);  // a stale read (say, from a lagging replica)
  size_t w2 = b.res(kOk, "write", "c2", 5, 3, 2);
  b.res(kOk, "read", "c0", 6, 4, 2);
  b.res(kOk, "write", "c0", 7, 4, 3);  // goes on from what the resource holds: no cascade
  auto r = check_history(b.events);
  CHECK(rule(r, "mutual-exclusion").verdict == Verdict::kOk);
  CHECK(rule(r, "fencing").verdict == Verdict::kOk);
  const RuleResult& lu = rule(r, "lost-update");
  REQUIRE(lu.verdict == Verdict::kViolated);
  REQUIRE(lu.violations.size() == 1);
  CHECK(lu.violations[0].events == std::vector<size_t>{w1, 4, w2});
  CHECK(lu.violations[0].message.find("c2 wrote 2") != std::string::npos);
  CHECK(lu.violations[0].message.find("expected 3") != std::string::npos);

  SECTION("the first write must be 1") {
    Builder e;
    e.res(kOk, "write", "c0", 0, 1, 5);
    auto lr = rule(check_history(e.events), "lost-update");
    REQUIRE(lr.verdict == Verdict::kViolated);
    CHECK(lr.violations[0].message.find("the initial value 0") != std::string::npos);
    CHECK(lr.violations[0].message.find("jumped") != std::string::npos);
  }
}

TEST_CASE("checker: stale writes rejected under fencing are no violation", "[unit][lab]") {
  Builder b;
  b.op(kInvoke, "c0", "acquire", 0);
  b.op(kOk, "c0", "acquire", 1, 5);
  b.res(kOk, "read", "c0", 2, 5, 0);
  // c0 pauses; its lease runs out and c1 takes the lock.
  b.op(kInvoke, "c1", "acquire", 1.5);
  b.op(kOk, "c1", "acquire", 2001, 6);
  b.res(kOk, "read", "c1", 2002, 6, 0);
  b.res(kOk, "write", "c1", 2003, 6, 1);
  b.op(kInvoke, "c1", "release", 2004, 6);
  b.op(kOk, "c1", "release", 2005, 6);
  b.res(kFail, "write", "c0", 3000, 5, 1);  // 409: stale
  b.res(kFail, "read", "c0", 3010, 5, 1);   // a later stale read is rejected too
  b.op(kInvoke, "c0", "release", 3011, 5);
  b.op(kFail, "c0", "release", 3012, 5, std::nullopt, "lease expired");
  auto h = b.sorted();
  auto r = check_history(h);
  CHECK(rule(r, "mutual-exclusion").verdict == Verdict::kOk);
  CHECK(rule(r, "fencing").verdict == Verdict::kOk);
  CHECK(rule(r, "lost-update").verdict == Verdict::kOk);
  // The lock history itself is not a mutex history: c1 acquired while c0 held it.
  CHECK(rule(r, "linearizable").verdict == Verdict::kViolated);
}

TEST_CASE("checker: failed acquires and other keys raise no alarm", "[unit][lab]") {
  Builder b;
  b.cycle("c0", 0, 1, 0);
  b.op(kInvoke, "c1", "acquire", 2);
  b.op(kFail, "c1", "acquire", 5, std::nullopt, std::nullopt, "locked");
  b.cycle("c1", 20, 2, 1);
  Event other = b.events[3];  // c0's accepted read, copied onto another key with a clash
  other.key = "other";
  other.f = "write";
  other.value = 42;
  other.time_ns = ns(21);
  b.events.push_back(other);
  auto r = check_history(b.sorted());
  for (const RuleResult& x : r.rules) {
    INFO(x.rule << ": " << x.note);
    CHECK(x.verdict == Verdict::kOk);
  }
}

TEST_CASE("checker: an empty history is ok with notes", "[unit][lab]") {
  auto r = check_history({});
  CHECK_FALSE(r.violated());
  for (const RuleResult& x : r.rules) {
    CHECK(x.verdict == Verdict::kOk);
    CHECK_FALSE(x.note.empty());
  }
}

TEST_CASE("checker: violations beyond the cap are counted in the note", "[unit][lab]") {
  Builder b;
  // Every write is accepted with the same token: one fencing violation per write after the first.
  for (size_t i = 0; i < kMaxViolationsPerRule + 11; ++i) {
    b.res(kOk, "write", "c0", static_cast<double>(i), 1, static_cast<int64_t>(i + 1));
  }
  auto report = check_history(b.events);
  const RuleResult& f = rule(report, "fencing");
  CHECK(f.violations.size() == kMaxViolationsPerRule);
  CHECK(f.note.find("10 more violations not listed") != std::string::npos);
}

TEST_CASE("checker: reports name the operations with relative times", "[unit][lab]") {
  Builder b;
  b.res(kOk, "read", "c0", 1000, 5, 0);
  b.res(kOk, "read", "c1", 1010, 6, 0);
  b.res(kOk, "write", "c1", 1020, 6, 1);
  b.res(kOk, "write", "c0", 1030.5, 5, 1);
  auto r = check_history(b.events);
  std::string text = format_report(r, b.events);
  CHECK(text.find("mutual-exclusion  VIOLATED  1 violation") != std::string::npos);
  CHECK(text.find("linearizable      OK") != std::string::npos);
  CHECK(text.find("#3 resource write ok client=c0 key=counter token=5 value=1 @30.500ms") !=
        std::string::npos);
  CHECK(text.find("result: VIOLATED (mutual-exclusion, fencing, lost-update)") !=
        std::string::npos);
  CHECK(describe_event(b.events, 0) ==
        "#0 resource read ok client=c0 key=counter token=5 value=0 @0.000ms");

  auto j = nlohmann::json::parse(report_json(r, b.events));
  CHECK(j["violated"] == true);
  REQUIRE(j["rules"].size() == 4);
  CHECK(j["rules"][0]["rule"] == "mutual-exclusion");
  CHECK(j["rules"][0]["verdict"] == "violated");
  CHECK(j["rules"][3]["verdict"] == "ok");
  auto v = j["rules"][0]["violations"][0];
  CHECK(v["events"] == nlohmann::json::array({0, 1, 2, 3}));
  CHECK(v["operations"][3]["client"] == "c0");
  CHECK(v["operations"][3]["time_ms"].get<double>() == Approx(30.5));
}

}  // namespace sd::dlock::lab::test
