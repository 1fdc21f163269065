// The checker on simulated lab runs: a 5-client 30 s history (clean, with lost replies, with a
// paused holder under and without fencing), and how long the check takes.

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <random>

#include "checker_test_util.hpp"

namespace sd::dlock::lab::test {

namespace {
struct Cycle {
  int client;
  uint64_t token;
  double read_inv, read_srv, read_ok;
  double write_inv, write_srv, write_ok;
  bool read_accepted = false;
  int64_t read_value = 0;
};
}  // namespace

std::vector<Event> synthetic_history(const SynthOptions& o) {
  std::mt19937_64 rng(o.seed);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<Event> out;
  auto name = [](int c) { return "c" + std::to_string(c); };
  auto emit = [&](EventType t, int c, const char* f, double ms, std::optional<uint64_t> token,
                  std::optional<int64_t> value = std::nullopt, const std::string& error = "") {
    Event e;
    e.type = t;
    e.process = name(c);
    e.f = f;
    e.time_ns = ns(ms);
    e.token = token;
    e.value = value;
    e.error = error;
    out.push_back(std::move(e));
  };

  // Phase 1: the lock. Clients invoke acquire when ready; grants go in invoke order.
  std::vector<double> ready(static_cast<size_t>(o.clients));
  for (size_t i = 0; i < ready.size(); ++i) ready[i] = 0.3 * static_cast<double>(i);
  double lock_free = 0;
  uint64_t token = 0;
  int cycle_no = 0;
  std::vector<Cycle> cycles;
  while (true) {
    int h = static_cast<int>(std::min_element(ready.begin(), ready.end()) - ready.begin());
    double& r = ready[static_cast<size_t>(h)];
    const double inv = r;
    if (inv > o.duration_ms) break;
    emit(EventType::kInvoke, h, "acquire", inv, std::nullopt);
    if (unit(rng) < o.info_rate) {  // the request never reached the lock service
      emit(EventType::kInfo, h, "acquire", inv + 5, std::nullopt, std::nullopt, "timeout");
      r = inv + 6;
      continue;
    }
    const double grant = std::max(lock_free, inv) + 0.1;
    if (grant - inv > o.wait_ms) {
      emit(EventType::kFail, h, "acquire", inv + o.wait_ms, std::nullopt, std::nullopt, "locked");
      r = inv + o.wait_ms + 0.5;
      continue;
    }
    ++token;
    emit(EventType::kOk, h, "acquire", grant + 0.1, token);
    Cycle cy{h, token, grant + 0.2, grant + 0.3, grant + 0.4, 0, 0, 0};
    const bool paused = std::count(o.pause_cycles.begin(), o.pause_cycles.end(), cycle_no++) > 0;
    const double pause = paused ? o.pause_ms : 0;
    cy.write_inv = cy.read_ok + o.work_ms + pause;
    cy.write_srv = cy.write_inv + 0.1;
    cy.write_ok = cy.write_inv + 0.2;
    const double rel_inv = cy.write_ok + 0.1, rel_srv = rel_inv + 0.1, rel_done = rel_inv + 0.2;
    emit(EventType::kInvoke, h, "release", rel_inv, token);
    if (paused && o.work_ms + pause > o.ttl_ms) {
      lock_free = grant + o.ttl_ms;  // the lease ran out during the pause
      emit(EventType::kFail, h, "release", rel_done, token, std::nullopt, "lease expired");
      r = rel_done + 0.5;
    } else if (unit(rng) < o.info_rate) {  // released, but the reply was lost
      lock_free = rel_srv;
      emit(EventType::kInfo, h, "release", rel_done + 5, token, std::nullopt, "timeout");
      r = rel_done + 6;
    } else {
      lock_free = rel_srv;
      emit(EventType::kOk, h, "release", rel_done, token);
      r = rel_done + 0.05 + unit(rng);
    }
    cycles.push_back(cy);
  }

  // Phase 2: the resource, in the order its requests arrive.
  struct Req {
    double t;
    bool write;
    size_t cycle;
  };
  std::vector<Req> reqs;
  for (size_t i = 0; i < cycles.size(); ++i) {
    reqs.push_back({cycles[i].read_srv, false, i});
    reqs.push_back({cycles[i].write_srv, true, i});
  }
  std::stable_sort(reqs.begin(), reqs.end(), [](const Req& a, const Req& b) { return a.t < b.t; });
  int64_t value = 0;
  uint64_t max_seen = 0, last_written = 0;
  for (const Req& q : reqs) {
    Cycle& cy = cycles[q.cycle];
    Event e;
    e.process = "resource";
    e.key = "counter";
    e.client = name(cy.client);
    e.token = cy.token;
    e.time_ns = ns(q.t);
    if (!q.write) {
      emit(EventType::kInvoke, cy.client, "read", cy.read_inv, cy.token);
      const bool stale = o.fencing && cy.token < max_seen;
      e.f = "read";
      e.type = stale ? EventType::kFail : EventType::kOk;
      e.value = value;
      out.push_back(e);
      if (stale) {
        emit(EventType::kFail, cy.client, "read", cy.read_ok, cy.token, std::nullopt,
             "stale_token");
        continue;
      }
      max_seen = std::max(max_seen, cy.token);
      cy.read_accepted = true;
      cy.read_value = value;
      emit(EventType::kOk, cy.client, "read", cy.read_ok, cy.token, value);
      continue;
    }
    if (!cy.read_accepted) continue;  // the client gave up this cycle
    const int64_t v = cy.read_value + 1;
    emit(EventType::kInvoke, cy.client, "write", cy.write_inv, cy.token, v);
    const bool stale = o.fencing && (cy.token < max_seen || cy.token <= last_written);
    e.f = "write";
    e.type = stale ? EventType::kFail : EventType::kOk;
    e.value = v;
    out.push_back(e);
    if (stale) {
      emit(EventType::kFail, cy.client, "write", cy.write_ok, cy.token, v, "stale_token");
      continue;
    }
    value = v;
    last_written = cy.token;
    max_seen = std::max(max_seen, cy.token);
    emit(EventType::kOk, cy.client, "write", cy.write_ok, cy.token, v);
  }
  sort_by_time(out);
  return out;
}

namespace {

size_t count_lock_ops(const std::vector<Event>& h) {
  return static_cast<size_t>(std::count_if(h.begin(), h.end(), [](const Event& e) {
    return e.type == EventType::kInvoke && (e.f == "acquire" || e.f == "release");
  }));
}

CheckReport timed_check(const std::vector<Event>& h, const char* what, double* ms_out = nullptr) {
  auto start = std::chrono::steady_clock::now();
  CheckReport r = check_history(h);
  double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  WARN(what << ": " << h.size() << " events, " << count_lock_ops(h)
            << " acquire/release operations checked in " << ms << " ms ("
            << rule(r, "linearizable").note << ")");
  if (ms_out) *ms_out = ms;
  return r;
}

}  // namespace

TEST_CASE("checker: a synthetic 5-client 30 s fenced run is clean and checked fast",
          "[unit][lab]") {
  SynthOptions o;
  auto h = synthetic_history(o);
  REQUIRE(count_lock_ops(h) > 1000);
  double ms = 0;
  auto r = timed_check(h, "5 clients 30 s work 50 ms", &ms);
  for (const RuleResult& x : r.rules) {
    INFO(x.rule << ": " << x.note);
    CHECK(x.verdict == Verdict::kOk);
  }
  CHECK(ms < 2000);  // well under a second in a release build; generous for Debug/sanitizers

  SECTION("shorter work: about five thousand lock operations") {
    o.work_ms = 10;
    auto h2 = synthetic_history(o);
    auto r2 = timed_check(h2, "5 clients 30 s work 10 ms");
    CHECK_FALSE(r2.violated());
    CHECK(rule(r2, "linearizable").verdict == Verdict::kOk);
  }
  SECTION("lost replies (info) and timed-out acquires: still no false alarm") {
    o.info_rate = 0.05;
    o.clients = 8;
    o.work_ms = 300;  // 7 waiters x 300 ms > 2 s wait: some acquires fail
    auto h2 = synthetic_history(o);
    auto r2 = timed_check(h2, "8 clients with 5% info");
    for (const RuleResult& x : r2.rules) {
      INFO(x.rule << ": " << x.note);
      CHECK(x.verdict == Verdict::kOk);
    }
    CHECK(std::count_if(h2.begin(), h2.end(), [](const Event& e) {
            return e.f == "acquire" && e.type == EventType::kFail;
          }) > 0);
  }
}

TEST_CASE("checker: a paused holder under fencing breaks only the lock history", "[unit][lab]") {
  SynthOptions o;
  o.pause_cycles = {40, 200};
  auto h = synthetic_history(o);
  auto r = timed_check(h, "fenced with 2 pauses");
  CHECK(rule(r, "mutual-exclusion").verdict == Verdict::kOk);
  CHECK(rule(r, "fencing").verdict == Verdict::kOk);
  CHECK(rule(r, "lost-update").verdict == Verdict::kOk);
  const RuleResult& lin = rule(r, "linearizable");
  CHECK(lin.verdict == Verdict::kViolated);
  CHECK(lin.violations.size() == 2);  // one per lease expiry, no cascade
  CHECK(r.violated());
}

TEST_CASE("checker: a paused holder without fencing breaks every rule", "[unit][lab]") {
  SynthOptions o;
  o.fencing = false;
  o.pause_cycles = {40};
  auto h = synthetic_history(o);
  auto r = timed_check(h, "unfenced with 1 pause");
  for (const RuleResult& x : r.rules) {
    INFO(x.rule);
    CHECK(x.verdict == Verdict::kViolated);
  }
  // The paused write overlaps every section accepted during the pause.
  CHECK(rule(r, "mutual-exclusion").violations.size() > 10);
  // The paused write overwrote many increments; the write in flight when it landed then jumps.
  CHECK(rule(r, "lost-update").violations.size() >= 1);
  CHECK(rule(r, "lost-update").violations[0].message.find("increments were lost") !=
        std::string::npos);
  CHECK(rule(r, "fencing").violations.size() == 1);
}

}  // namespace sd::dlock::lab::test
