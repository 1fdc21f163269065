#pragma once
// Client API modelled on etcd's concurrency package: a Session owns a lease and keeps it alive in
// the background; Mutex/SharedMutex/Semaphore only deal with names and tokens on top of it.
//
//   auto backend = sd::dlock::open_backend("dlockd://127.0.0.1:7401");
//   auto session = sd::dlock::Session::create(*backend);
//   sd::dlock::Mutex m(*session, "jobs/nightly");
//   if (auto t = m.lock(std::chrono::seconds(5)); t) { ... write with fencing token *t ... }
//   (void)m.unlock();

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "sd/base/status.hpp"
#include "sd/dlock/backend.hpp"
#include "sd/dlock/types.hpp"

namespace sd::dlock {

struct SessionOptions {
  Duration ttl{10'000};
  Duration keepalive_interval{0};  // 0: ttl / 3
};

// Owns one lease. A background thread renews it every keepalive_interval; on failure it retries
// with backoff until the lease's local deadline (last successful keepalive's send time + ttl), then
// declares the session lost (on_lost callbacks fire once, alive() = false). kNotFound from the
// engine (lease expired or revoked) means lost at once. alive() also turns false by itself when
// the local deadline passes, even while a keepalive call is still in flight.
//
// Lock-lost signal: Session::on_lost + Mutex::held() (false once the session is lost).
class Session {
 public:
  static Result<std::shared_ptr<Session>> create(std::shared_ptr<Backend> backend,
                                                 SessionOptions options = {});
  ~Session();  // close()
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const LeaseId& lease_id() const;
  Backend& backend() const;
  bool alive() const;          // false once the lease is lost or closed
  Status lost_reason() const;  // why, once !alive()
  // Called once, when the lease is lost (not on close()): from the keepalive thread, or from the
  // thread whose call learnt that the lease is gone (renew(), a lock call getting kNotFound). If
  // already lost, called immediately. Callbacks may call alive()/close() but must not block long.
  void on_lost(std::function<void(const Status&)> callback);
  // One keepalive now, on the calling thread (etcd's KeepAliveOnce). kNotFound -> the session is
  // lost (callbacks fire). Useful in tests with a FakeClock and a huge keepalive_interval.
  Status renew();
  Status close();  // stops keepalive and revokes the lease (releasing its locks); idempotent

 private:
  friend class Mutex;
  friend class SharedMutex;
  friend class Semaphore;
  void lease_gone(const Status& why);  // the engine said the lease no longer exists
  // The lock classes' one path to the engine: checks alive(), fills in this lease, and marks the
  // session lost when the engine says the lease is gone.
  Result<Token> acquire_on_lease(Kind kind, const std::string& name, Mode mode, uint32_t limit,
                                 uint32_t permits, Duration wait);
  Status release_on_lease(Kind kind, const std::string& name, Token token);
  struct Impl;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// An exclusive lock named `name`, held by the session's lease. Not for concurrent use by several
// threads (make one Mutex per thread; they exclude each other through the backend).
class Mutex {
 public:
  Mutex(std::shared_ptr<Session> session, std::string name);
  ~Mutex();  // does not unlock: the lock lives until unlock() or the session ends

  Result<Token> try_lock();              // kConflict "locked" if held elsewhere
  Result<Token> lock(Duration timeout);  // waits FIFO up to timeout
  Status unlock();                       // kConflict if not held
  std::optional<Token> token() const;    // while held
  bool held() const;                     // false after unlock or once the session is lost
  const std::string& name() const { return name_; }
  Session& session() const { return *session_; }

 private:
  Result<Token> acquire(Duration wait);
  std::shared_ptr<Session> session_;
  std::string name_;
  std::optional<Token> token_;
};

// Reader/writer lock: many shared holders or one exclusive holder.
class SharedMutex {
 public:
  SharedMutex(std::shared_ptr<Session> session, std::string name);
  Result<Token> try_lock();
  Result<Token> lock(Duration timeout);
  Result<Token> try_lock_shared();
  Result<Token> lock_shared(Duration timeout);
  Status unlock();  // releases whichever mode is held
  std::optional<Token> token() const;
  bool held() const;
  std::optional<Mode> mode() const;

 private:
  Result<Token> acquire(Mode mode, Duration wait);
  std::shared_ptr<Session> session_;
  std::string name_;
  std::optional<Token> token_;
  std::optional<Mode> mode_;
};

// Counting semaphore: at most `limit` permits held in total across all sessions.
class Semaphore {
 public:
  Semaphore(std::shared_ptr<Session> session, std::string name, uint32_t limit,
            uint32_t permits = 1);
  Result<Token> try_acquire();
  Result<Token> acquire(Duration timeout);
  Status release();
  std::optional<Token> token() const;
  bool held() const;

 private:
  Result<Token> acquire_for(Duration wait);
  std::shared_ptr<Session> session_;
  std::string name_;
  uint32_t limit_, permits_;
  std::optional<Token> token_;
};

// RAII: holds a Mutex for its lifetime.
//   auto g = LockGuard::acquire(m, 5s); if (!g) return g.status(); ... use g->token() ...
class LockGuard {
 public:
  static Result<LockGuard> acquire(Mutex& m, Duration timeout);
  LockGuard(LockGuard&& o) noexcept : m_(o.m_), token_(o.token_) { o.m_ = nullptr; }
  LockGuard& operator=(LockGuard&&) = delete;
  LockGuard(const LockGuard&) = delete;
  ~LockGuard();
  Token token() const { return token_; }

 private:
  LockGuard(Mutex& m, Token t) : m_(&m), token_(t) {}
  Mutex* m_;
  Token token_;
};

}  // namespace sd::dlock
