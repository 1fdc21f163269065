// The dlock client library against a real dlockd process over HTTP.

#if defined(SD_DLOCKD_BIN)

#include <signal.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "sd/dlock/client.hpp"
#include "sd/testing/testing.hpp"

using namespace sd;
using namespace sd::dlock;
using namespace std::chrono_literals;

namespace {

// A dlockd child process on a loopback port; always stopped (Process SIGKILLs on destruction).
class DlockdProcess {
 public:
  DlockdProcess(uint16_t port, std::string store, std::string log)
      : port_(port), store_(std::move(store)), log_(std::move(log)) {}

  bool start() {
    sd::testing::ProcessOptions po;
    po.stderr_path = log_;
    po.stdout_path = log_;
    auto p = sd::testing::Process::spawn(
        {SD_DLOCKD_BIN, "--port", std::to_string(port_), "--store", store_}, po);
    if (!p.is_ok()) return false;
    proc_.emplace(std::move(*p));
    return sd::testing::wait_for_port(port_, 10s);
  }
  void kill9() {
    if (proc_) {
      (void)proc_->signal(SIGKILL);
      proc_->wait();
      proc_.reset();
    }
  }
  std::string uri() const { return "dlockd://127.0.0.1:" + std::to_string(port_); }
  uint16_t port() const { return port_; }

 private:
  uint16_t port_;
  std::string store_, log_;
  std::optional<sd::testing::Process> proc_;
};

// Starts dlockd on a fresh free port (retrying if another process grabbed it).
std::unique_ptr<DlockdProcess> start_dlockd(const sd::testing::TempDir& dir,
                                            const std::string& store = "memory://") {
  for (int i = 0; i < 5; ++i) {
    auto d =
        std::make_unique<DlockdProcess>(sd::testing::free_port(), store, dir.file("dlockd.log"));
    if (d->start()) return d;
  }
  FAIL("dlockd did not start; log: " << sd::testing::read_file(dir.file("dlockd.log")));
  return nullptr;
}

}  // namespace

TEST_CASE("dlockd backend: 16 threads x 50 increments, no lost updates, increasing tokens",
          "[integration]") {
  sd::testing::TempDir dir("dlock-http");
  auto d = start_dlockd(dir);
  auto backend = open_backend(d->uri());
  REQUIRE(backend.is_ok());
  constexpr int kThreads = 16;
  constexpr int kIters = 50;
  long counter = 0;           // protected only by the distributed lock
  std::vector<Token> tokens;  // ditto, in acquisition order
  std::atomic<int> failures{0};
  std::mutex err_mu;
  std::string first_error;
  auto note = [&](const Status& s) {
    ++failures;
    std::lock_guard lk(err_mu);
    if (first_error.empty()) first_error = s.to_string();
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      auto s = Session::create(*backend);
      if (!s.is_ok()) return note(s.status());
      Mutex m(*s, "it/counter");
      for (int k = 0; k < kIters; ++k) {
        auto t = m.lock(60s);
        if (!t.is_ok()) {
          note(t.status());
          continue;
        }
        long v = counter;
        std::this_thread::yield();
        counter = v + 1;
        tokens.push_back(*t);
        if (Status u = m.unlock(); !u.is_ok()) note(u);
      }
      (void)(*s)->close();
    });
  }
  for (auto& t : threads) t.join();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                                  start);
  INFO("first error: " << first_error);
  CHECK(failures == 0);
  CHECK(counter == kThreads * kIters);
  REQUIRE(tokens.size() == static_cast<size_t>(kThreads * kIters));
  for (size_t i = 1; i < tokens.size(); ++i) REQUIRE(tokens[i] > tokens[i - 1]);
  WARN("dlockd contention: " << kThreads * kIters << " lock/unlock cycles in " << ms.count()
                             << " ms");
}

TEST_CASE("dlockd backend: session is lost within ttl after dlockd is SIGKILLed", "[integration]") {
  sd::testing::TempDir dir("dlock-http");
  auto d = start_dlockd(dir);
  auto backend = open_backend(d->uri());
  REQUIRE(backend.is_ok());
  SessionOptions so;
  so.ttl = 1s;
  auto s = Session::create(*backend, so);
  REQUIRE(s.is_ok());
  Mutex m(*s, "it/lost");
  REQUIRE(m.try_lock().is_ok());
  std::atomic<bool> fired{false};
  (*s)->on_lost([&](const Status&) { fired = true; });
  std::this_thread::sleep_for(1500ms);  // keepalive works while dlockd is up
  REQUIRE((*s)->alive());
  REQUIRE(m.held());

  auto killed = std::chrono::steady_clock::now();
  d->kill9();
  while (!fired && std::chrono::steady_clock::now() - killed < 5s) std::this_thread::sleep_for(5ms);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - killed);
  REQUIRE(fired);
  CHECK(took <= 1s + 700ms);  // ttl + one in-flight keepalive's retries
  CHECK_FALSE(m.held());
  CHECK_FALSE((*s)->alive());
  CHECK((*s)->lost_reason().code() == Code::kUnavailable);
  WARN("lock-lost signal " << took.count() << " ms after SIGKILL (ttl 1000 ms)");
}

TEST_CASE("dlockd backend: a call made while dlockd restarts succeeds after backoff",
          "[integration]") {
  sd::testing::TempDir dir("dlock-http");
  const std::string store = "sqlite://" + dir.file("dlock.db");
  auto d = start_dlockd(dir, store);
  BackendOptions bo;
  bo.max_attempts = 10;
  bo.initial_backoff = Duration{50};
  bo.max_backoff = Duration{500};
  auto backend = open_backend(d->uri(), bo);
  REQUIRE(backend.is_ok());
  auto lease = (*backend)->grant_lease(Duration{30'000});
  REQUIRE(lease.is_ok());

  d->kill9();
  const uint16_t port = d->port();
  std::thread restarter([&] {
    std::this_thread::sleep_for(400ms);
    auto again = std::make_unique<DlockdProcess>(port, store, dir.file("dlockd2.log"));
    if (again->start()) d = std::move(again);
  });
  auto start = std::chrono::steady_clock::now();
  auto g = (*backend)->grant_lease(Duration{30'000});  // first attempts fail: connection refused
  auto took = std::chrono::steady_clock::now() - start;
  restarter.join();
  INFO(sd::testing::read_file(dir.file("dlockd2.log")));
  REQUIRE(g.is_ok());
  CHECK(took >= 300ms);
  // The sqlite store kept the first lease across the restart.
  CHECK((*backend)->keepalive(lease->id).is_ok());
}

TEST_CASE("dlockd backend: HTTP errors map back to Status codes", "[integration]") {
  sd::testing::TempDir dir("dlock-http");
  auto d = start_dlockd(dir);
  auto backend = *open_backend(d->uri());
  auto s1 = *Session::create(backend);
  auto s2 = *Session::create(backend);
  Mutex a(s1, "it/map/a b%2F/ü");  // needs percent-encoding in the URL
  Mutex b(s2, "it/map/a b%2F/ü");
  auto t = a.try_lock();
  REQUIRE(t.is_ok());
  auto busy = b.try_lock();
  CHECK(busy.status().code() == Code::kConflict);
  CHECK(busy.status().message() == "locked");
  auto timed = b.lock(200ms);
  CHECK(timed.status().message() == "locked");
  CHECK(backend->release(Kind::kLock, "it/map/a b%2F/ü", s2->lease_id(), *t).message() ==
        "not_holder");
  CHECK(backend->keepalive("0123456789abcdef0123456789abcdef").code() == Code::kNotFound);
  CHECK(backend->grant_lease(Duration{0}).status().code() == Code::kInvalidArgument);
  auto info = backend->describe(Kind::kLock, "it/map/a b%2F/ü");
  REQUIRE(info.is_ok());
  REQUIRE(info->holders.size() == 1);
  CHECK(info->holders[0].token == *t);
  CHECK(info->holders[0].lease_id == s1->lease_id());
  auto listed = backend->list(Kind::kLock, "it/map/");
  REQUIRE(listed.is_ok());
  REQUIRE(listed->size() == 1);
  CHECK(listed->at(0).name == "it/map/a b%2F/ü");

  SharedMutex r1(s1, "it/map/rw");
  SharedMutex r2(s2, "it/map/rw");
  REQUIRE(r1.lock_shared(1s).is_ok());
  REQUIRE(r2.try_lock_shared().is_ok());
  Semaphore sem1(s1, "it/map/sem", 2);
  Semaphore sem2(s2, "it/map/sem", 2);
  REQUIRE(sem1.try_acquire().is_ok());
  REQUIRE(sem2.acquire(1s).is_ok());
  auto sinfo = backend->describe(Kind::kSemaphore, "it/map/sem");
  REQUIRE(sinfo.is_ok());
  CHECK(sinfo->holders.size() == 2);
  CHECK(sinfo->limit == 2);
  CHECK(sem1.release().is_ok());
  CHECK(a.unlock().is_ok());
  CHECK(s1->close().is_ok());
  CHECK(s2->close().is_ok());
}

#endif  // SD_DLOCKD_BIN
