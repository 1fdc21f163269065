// LockService unit tests on when (and whether) replies leave: a parked long-poll whose client
// disconnects (Responder::on_abandoned) leaves the queue at once instead of being granted a lock
// nobody will learn about; with group commit, no reply leaves before the commit that makes what
// it shows durable, and a failed commit answers 503 and returns to the durable state.

#include "core_test_util.hpp"
#include "sd/storage/sqlite.hpp"
#include "service_test_support.hpp"

using namespace service_test;  // NOLINT(google-build-using-namespace)

namespace {

std::shared_ptr<Reply> wait_acquire(Fixture& f, const std::string& target, json body) {
  body["wait_ms"] = 5000;
  auto r = f.send(Method::kPost, target, body.dump());
  REQUIRE_FALSE(r->ready());
  REQUIRE(r->has_abandon_handler());
  return r;
}

bool has_metric(Fixture& f, const std::string& line) {
  return f.registry.render().find(line) != std::string::npos;
}

}  // namespace

TEST_CASE("service: an abandoned waiter leaves the queue and is never granted", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  uint64_t t1 = f.acquire("res", a)["token"];
  auto gone = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  auto next = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", c}});
  REQUIRE(f.describe("res")["waiters"].size() == 2);

  REQUIRE(gone->abandon());
  REQUIRE(f.service->parked_waiters() == 1);
  json d = f.describe("res");
  REQUIRE(d["waiters"].size() == 1);
  REQUIRE(d["waiters"][0]["lease_id"] == c);
  REQUIRE(has_metric(f, "dlock_waiters_abandoned_total 1"));
  REQUIRE(has_metric(f, "dlock_waiters 1"));

  REQUIRE(f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1}})->status() == 200);
  REQUIRE(next->status() == 200);
  REQUIRE(next->body()["lease_id"] == c);
  REQUIRE_FALSE(gone->ready());
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == c);
  // The lease that waited is untouched (it belongs to a client session, not to the request).
  REQUIRE(f.call(Method::kGet, "/v1/leases/" + b)->status() == 200);

  // Abandoning an answered request does nothing.
  REQUIRE_FALSE(next->abandon());
  REQUIRE(has_metric(f, "dlock_waiters_abandoned_total 1"));
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == c);
}

TEST_CASE("service: abandoning the only waiter frees the lock for later acquires", "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  uint64_t t1 = f.acquire("res", a)["token"];
  auto gone = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  REQUIRE(gone->abandon());
  REQUIRE(f.post("/v1/locks/res/release", {{"lease_id", a}, {"token", t1}})->status() == 200);
  REQUIRE(f.describe("res")["holders"].empty());
  f.acquire("res", c);
  // Nothing is left for the timer: the wait deadline went with the waiter.
  f.timers.advance(6000ms);
  REQUIRE_FALSE(gone->ready());
  REQUIRE(f.describe("res")["holders"][0]["lease_id"] == c);
}

TEST_CASE("service: an abandoned ttl_ms-shortcut waiter has its lease revoked", "[unit]") {
  Fixture f;
  std::string a = f.lease();
  f.acquire("res", a);
  auto gone = wait_acquire(f, "/v1/locks/res/acquire", {{"ttl_ms", 60'000}});
  REQUIRE(f.core.stats().leases == 2);
  REQUIRE(gone->abandon());
  REQUIRE(f.core.stats().leases == 1);
  REQUIRE(f.core.stats().waiters == 0);
  REQUIRE(f.describe("res")["waiters"].empty());
}

TEST_CASE("service: abandoning a big semaphore request at the head grants those behind it",
          "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease(), c = f.lease();
  const std::string sem = "/v1/semaphores/pool/acquire";
  REQUIRE(f.post(sem, {{"lease_id", a}, {"limit", 3}})->status() == 200);
  // b wants all 3 permits: it queues at the head, and c (1 permit, which is free) queues behind.
  auto big = wait_acquire(f, sem, {{"lease_id", b}, {"limit", 3}, {"permits", 3}});
  auto small = wait_acquire(f, sem, {{"lease_id", c}, {"limit", 3}});
  REQUIRE(f.call(Method::kGet, "/v1/semaphores/pool")->body()["waiters"].size() == 2);

  REQUIRE(big->abandon());
  REQUIRE(small->ready());  // delivered by the abandon callback itself
  REQUIRE(small->status() == 200);
  REQUIRE(small->body()["lease_id"] == c);
  REQUIRE(f.service->parked_waiters() == 0);
  auto d = f.call(Method::kGet, "/v1/semaphores/pool")->body();
  REQUIRE(d["waiters"].empty());
  REQUIRE(d["holders"].size() == 2);
  REQUIRE(has_metric(f, "dlock_grants_to_waiters_total 1"));
}

TEST_CASE("service: abandon callbacks after superseding, shutdown or destruction are no-ops",
          "[unit]") {
  Fixture f;
  std::string a = f.lease(), b = f.lease();
  f.acquire("res", a);
  auto first = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  auto retry = wait_acquire(f, "/v1/locks/res/acquire", {{"lease_id", b}});
  require_error(first, 409, "superseded");
  REQUIRE_FALSE(first->abandon());  // answered: its handler was dropped
  REQUIRE(f.describe("res")["waiters"].size() == 1);

  // A callback the server already took, running after the service is gone.
  std::function<void()> late;
  {
    std::lock_guard lock(retry->mu);
    late = retry->on_abandon;
  }
  REQUIRE(late);
  f.service->shutdown();
  require_error(retry, 503, "unavailable");
  late();  // after shutdown: nothing parked
  f.service.reset();
  late();  // after destruction: the gate is closed
  REQUIRE(f.core.stats().waiters == 0);
}

// ---------------------------------------------------------------------------------------------
// Group commit

namespace {

using sd::dlock::Store;

// A sqlite store whose commits are logged into `log` (next to the replies, see LogSink) and fail
// (rolling the group back, as a failed COMMIT does) or whose loads fail, while told to.
class CommitLogStore final : public Store {
 public:
  CommitLogStore(Store& inner, std::vector<std::string>& log) : inner_(inner), log_(log) {}
  sd::Result<sd::dlock::Snapshot> load() override {
    if (fail_load) return sd::unavailable("injected load failure");
    return inner_.load();
  }
  sd::Status apply(const std::vector<sd::dlock::Mutation>& b) override { return inner_.apply(b); }
  std::string describe() const override { return "log+" + inner_.describe(); }
  sd::Status set_group_commit(bool on) override { return inner_.set_group_commit(on); }
  bool has_pending() const override { return inner_.has_pending(); }
  sd::Status commit_pending() override {
    if (fail_commit) {
      inner_.discard_pending();
      log_.push_back("commit failed");
      return sd::unavailable("injected commit failure (disk full)");
    }
    sd::Status st = inner_.commit_pending();
    log_.push_back("commit");
    return st;
  }
  void discard_pending() override { inner_.discard_pending(); }

  bool fail_commit = false;
  bool fail_load = false;

 private:
  Store& inner_;
  std::vector<std::string>& log_;
};

// Like CaptureSink, and logs "reply <tag>" when the reply is delivered.
class LogSink final : public sd::net::Responder::Sink {
 public:
  LogSink(std::shared_ptr<Reply> r, std::vector<std::string>& log, std::string tag)
      : inner_(r), log_(log), tag_(std::move(tag)) {}
  void deliver(sd::net::Response r) override {
    log_.push_back("reply " + tag_);
    inner_.deliver(std::move(r));
  }
  void set_abandon_handler(std::function<void()> fn) override {
    inner_.set_abandon_handler(std::move(fn));
  }

 private:
  CaptureSink inner_;
  std::vector<std::string>& log_;
  std::string tag_;
};

std::unique_ptr<Store> open_store(const std::string& path) {
  auto s = sd::dlock::open_sqlite_store(path);
  REQUIRE(s.is_ok());
  return std::move(*s);
}

// The service over a SQLite store with group commit; posted tasks run when the test says so.
struct GroupFixture {
  sd::dlock::testing::QuietLogs quiet;
  sd::dlock::testing::TempDir dir;
  std::string path = dir.file("dlock.db");
  std::vector<std::string> log;
  std::unique_ptr<Store> sqlite = open_store(path);
  CommitLogStore store{*sqlite, log};
  sd::FakeClock clock;
  sd::SeededIdGenerator ids{7};
  sd::dlock::LockCore core{store, clock, ids, {}};
  sd::metrics::Registry registry;
  ManualTimers timers{clock};
  std::vector<std::function<void()>> posted;
  std::unique_ptr<sd::dlock::LockService> service;
  sd::net::Router router;

  GroupFixture() {
    REQUIRE(core.recover().is_ok());
    service = std::make_unique<sd::dlock::LockService>(
        core, clock, registry,
        [this](std::chrono::milliseconds d, std::function<void()> fn) {
          return timers.schedule(d, std::move(fn));
        },
        [this](std::function<void()> fn) { posted.push_back(std::move(fn)); });
    service->register_routes(router);
  }

  std::shared_ptr<Reply> send(const std::string& tag, Method m, const std::string& target,
                              const json& body = nullptr) {
    auto reply = std::make_shared<Reply>();
    sd::net::Request req;
    req.method = m;
    req.target = target;
    req.body = body.is_null() ? "" : body.dump();
    router.dispatch(req, sd::net::Responder(std::make_shared<LogSink>(reply, log, tag)));
    return reply;
  }
  // Runs the posted commit task(s), as the I/O loop would next.
  void run_posted() {
    while (!posted.empty()) {
      auto tasks = std::move(posted);
      posted.clear();
      for (auto& fn : tasks) fn();
    }
  }
  // A request answered after the next commit.
  std::shared_ptr<Reply> call(const std::string& tag, Method m, const std::string& target,
                              const json& body = nullptr) {
    auto r = send(tag, m, target, body);
    run_posted();
    REQUIRE(r->ready());
    return r;
  }
  std::string lease() {
    auto r = call("lease", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
    REQUIRE(r->status() == 201);
    return r->body()["lease_id"].get<std::string>();
  }
  // Rows as another connection sees them: only what was committed.
  int64_t committed(const std::string& sql) {
    auto db = sd::storage::Db::open(path);
    REQUIRE(db.is_ok());
    auto n = db->query_int64(sql);
    REQUIRE(n.is_ok());
    return *n;
  }
  bool has_metric(const std::string& line) {
    return registry.render().find(line) != std::string::npos;
  }
};

}  // namespace

TEST_CASE("service: with group commit no reply leaves before its commit", "[unit][commit]") {
  GroupFixture f;
  // Two requests before the loop gets to the commit task: one task, one commit, then both replies.
  auto l1 = f.send("l1", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
  auto l2 = f.send("l2", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
  CHECK_FALSE(l1->ready());
  CHECK_FALSE(l2->ready());
  CHECK(f.posted.size() == 1);
  CHECK(f.committed("SELECT count(*) FROM leases") == 0);
  f.run_posted();
  CHECK(f.log == std::vector<std::string>{"commit", "reply l1", "reply l2"});
  REQUIRE(l1->status() == 201);
  REQUIRE(l2->status() == 201);
  CHECK(f.committed("SELECT count(*) FROM leases") == 2);
  CHECK(f.has_metric("dlock_store_commits_total 1"));
  CHECK(f.has_metric("dlock_store_committed_replies_total 2"));
  const std::string a = l1->body()["lease_id"], b = l2->body()["lease_id"];

  // Nothing staged: a read is answered at once, without a commit.
  f.log.clear();
  auto r = f.send("get", Method::kGet, "/v1/leases/" + a);
  REQUIRE(r->ready());
  CHECK(f.posted.empty());

  // A grant, a read that shows it and a 409 against it all wait for the grant's commit.
  f.log.clear();
  auto acq = f.send("acquire a", Method::kPost, "/v1/locks/x/acquire", {{"lease_id", a}});
  auto show = f.send("describe", Method::kGet, "/v1/locks/x");
  auto busy = f.send("acquire b", Method::kPost, "/v1/locks/x/acquire", {{"lease_id", b}});
  CHECK_FALSE(acq->ready());
  CHECK_FALSE(show->ready());
  CHECK_FALSE(busy->ready());
  f.run_posted();
  CHECK(f.log ==
        std::vector<std::string>{"commit", "reply acquire a", "reply describe", "reply acquire b"});
  REQUIRE(acq->status() == 200);
  REQUIRE(show->body()["holders"].size() == 1);
  require_error(busy, 409, "locked");
  const uint64_t t = acq->body()["token"];

  // A handoff to a parked waiter commits at once (it is a serial chain: waiting for the loop
  // would only lengthen it), together with what is staged, then both replies leave.
  auto waiting =
      f.send("wait b", Method::kPost, "/v1/locks/x/acquire", {{"lease_id", b}, {"wait_ms", 5000}});
  f.run_posted();  // queuing writes nothing: no commit
  CHECK_FALSE(waiting->ready());
  auto l3 = f.send("l3", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
  REQUIRE_FALSE(l3->ready());
  f.log.clear();
  auto rel =
      f.send("release a", Method::kPost, "/v1/locks/x/release", {{"lease_id", a}, {"token", t}});
  CHECK(f.log == std::vector<std::string>{"commit", "reply l3", "reply wait b", "reply release a"});
  REQUIRE(rel->status() == 200);
  f.run_posted();  // the posted task finds nothing left
  CHECK(f.log.size() == 4);
  REQUIRE(waiting->status() == 200);
  CHECK(f.committed("SELECT count(*) FROM holds WHERE lease_id = '" + b + "'") == 1);
  CHECK(f.committed("SELECT count(*) FROM holds WHERE lease_id = '" + a + "'") == 0);

  // Timers take the same path: b's lease expires, the tick's deletion is committed first.
  f.log.clear();
  f.timers.advance(10'001ms);
  CHECK(f.committed("SELECT count(*) FROM leases WHERE id = '" + b + "'") == 1);
  REQUIRE(f.posted.size() == 1);
  f.run_posted();
  CHECK(f.committed("SELECT count(*) FROM leases WHERE id = '" + b + "'") == 0);
}

TEST_CASE("service: a failed group commit answers 503 and reloads the durable state",
          "[unit][commit]") {
  GroupFixture f;
  std::string a = f.lease(), b = f.lease();
  auto acq = f.call("acquire", Method::kPost, "/v1/locks/x/acquire", {{"lease_id", a}});
  const uint64_t t = acq->body()["token"];
  auto waiting =
      f.send("wait b", Method::kPost, "/v1/locks/x/acquire", {{"lease_id", b}, {"wait_ms", 5000}});
  f.run_posted();
  REQUIRE_FALSE(waiting->ready());

  f.store.fail_commit = true;
  f.log.clear();
  auto l3 = f.send("lease", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
  auto rel =
      f.send("release", Method::kPost, "/v1/locks/x/release", {{"lease_id", a}, {"token", t}});
  f.run_posted();
  REQUIRE(f.log.size() == 4);
  CHECK(f.log[0] == "commit failed");  // every reply after the failure
  require_error(rel, 503, "unavailable");
  require_error(l3, 503, "unavailable");
  require_error(waiting, 503, "unavailable");  // the grant to b was never durable
  CHECK(f.service->parked_waiters() == 0);
  CHECK(f.has_metric("dlock_store_commit_failures_total 1"));

  // Back to what the disk holds: a still holds x with the same token; two leases, no waiters.
  f.store.fail_commit = false;
  auto d = f.call("describe", Method::kGet, "/v1/locks/x")->body();
  REQUIRE(d["holders"].size() == 1);
  CHECK(d["holders"][0]["lease_id"] == a);
  CHECK(d["holders"][0]["token"] == t);
  CHECK(d["waiters"].empty());
  CHECK(f.core.stats().leases == 2);
  // The client retries and succeeds.
  auto again =
      f.call("release", Method::kPost, "/v1/locks/x/release", {{"lease_id", a}, {"token", t}});
  REQUIRE(again->status() == 200);
  CHECK(f.committed("SELECT count(*) FROM holds") == 0);

  SECTION("when the reload fails too, requests get 503 until one reloads") {
    f.store.fail_commit = true;
    f.store.fail_load = true;
    auto l4 = f.send("lease", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
    f.run_posted();
    require_error(l4, 503, "unavailable");
    auto r = f.send("get", Method::kGet, "/v1/leases/" + a);
    REQUIRE(r->ready());  // nothing to commit
    require_error(r, 503, "unavailable");
    f.timers.advance(20'000ms);  // timers do nothing meanwhile
    f.store.fail_commit = false;
    f.store.fail_load = false;
    auto ok = f.call("get", Method::kGet, "/v1/leases/" + b);
    REQUIRE(ok->status() == 200);
  }
}

TEST_CASE("service: shutdown commits what is pending and sends the waiting replies",
          "[unit][commit]") {
  GroupFixture f;
  auto l1 = f.send("l1", Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
  REQUIRE_FALSE(l1->ready());
  f.service->shutdown();  // the server stops: the posted task would never run
  CHECK(f.log == std::vector<std::string>{"commit", "reply l1"});
  REQUIRE(l1->status() == 201);
  f.run_posted();  // if it does run, it finds nothing to do
  CHECK(f.log.size() == 2);
  CHECK(f.committed("SELECT count(*) FROM leases") == 1);
}

TEST_CASE("service: the memory store never defers a reply", "[unit][commit]") {
  sd::FakeClock clock;
  sd::SeededIdGenerator ids{1};
  auto store = sd::dlock::make_memory_store();
  sd::dlock::LockCore core{*store, clock, ids, {}};
  REQUIRE(core.recover().is_ok());
  sd::metrics::Registry registry;
  ManualTimers timers{clock};
  size_t posted = 0;
  sd::dlock::LockService service(
      core, clock, registry,
      [&](std::chrono::milliseconds d, std::function<void()> fn) {
        return timers.schedule(d, std::move(fn));
      },
      [&](std::function<void()>) { ++posted; });
  sd::net::Router router;
  service.register_routes(router);
  auto reply = std::make_shared<Reply>();
  sd::net::Request req;
  req.method = Method::kPost;
  req.target = "/v1/leases";
  req.body = R"({"ttl_ms":1000})";
  router.dispatch(req, sd::net::Responder(std::make_shared<CaptureSink>(reply)));
  REQUIRE(reply->ready());
  CHECK(reply->status() == 201);
  CHECK(posted == 0);
}

TEST_CASE("service: solo groups switch to inline commits and a probe group switches back",
          "[unit][commit]") {
  GroupFixture f;
  for (int i = 0; i < 8; ++i) f.lease();  // 8 posted groups of one reply each
  auto create = [&](const std::string& tag) {
    return f.send(tag, Method::kPost, "/v1/leases", {{"ttl_ms", 10'000}});
  };
  // Inline now: committed and answered within the call, still commit first.
  f.log.clear();
  auto r = create("inline");
  REQUIRE(r->ready());
  CHECK(f.posted.empty());
  CHECK(f.log == std::vector<std::string>{"commit", "reply inline"});
  CHECK(f.committed("SELECT count(*) FROM leases") == 9);
  for (int i = 2; i < 16; ++i) REQUIRE(create("inline")->ready());
  // Every 16th commit is a probe through the loop; a request arriving meanwhile joins it...
  auto probe = create("probe");
  REQUIRE_FALSE(probe->ready());
  auto joined = create("joined");
  REQUIRE_FALSE(joined->ready());
  f.log.clear();
  f.run_posted();
  CHECK(f.log == std::vector<std::string>{"commit", "reply probe", "reply joined"});
  // ...which ends solo mode: the next request is grouped again.
  auto grouped = create("grouped");
  REQUIRE_FALSE(grouped->ready());
  f.run_posted();
  REQUIRE(grouped->status() == 201);
}
