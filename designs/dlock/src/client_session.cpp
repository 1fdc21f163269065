// Session: one lease kept alive by a background thread.
//
// Timing is on the steady clock of this process (not the engine's clock): the local deadline of the
// lease is the SEND time of the last successful keepalive + ttl, which is never later than the
// engine's own deadline (the engine measures from receipt). Loss is sticky: once the local deadline
// passes without a confirmed renewal, the session is lost even if a late keepalive then succeeds.

#include <algorithm>
#include <condition_variable>
#include <thread>
#include <vector>

#include "sd/base/log.hpp"
#include "sd/dlock/client.hpp"

namespace sd::dlock {

using SteadyClock = std::chrono::steady_clock;

struct Session::Impl {
  std::shared_ptr<Backend> backend;
  LeaseId lease;
  Duration ttl{0};
  Duration interval{0};

  mutable std::mutex mu;
  std::condition_variable cv;
  bool closing = false;             // close() started: the keepalive thread exits
  bool closed = false;              // close() revoked (or tried to)
  bool lost = false;                // sticky
  Status reason;                    // why lost
  SteadyClock::time_point last_ok;  // send time of the last successful keepalive (or grant)
  std::vector<std::function<void(const Status&)>> callbacks;
  std::thread thread;

  SteadyClock::time_point deadline_locked() const { return last_ok + ttl; }

  // Declares the lease lost (once); fires callbacks on the calling thread, outside the mutex.
  // Must be the last thing the keepalive thread does with `this` (a callback may destroy it).
  void mark_lost(Status why) {
    std::vector<std::function<void(const Status&)>> cbs;
    {
      std::lock_guard lk(mu);
      if (lost || closing) return;
      lost = true;
      reason = why;
      cbs.swap(callbacks);
    }
    cv.notify_all();
    SD_LOG(kWarn) << "dlock session lease " << lease << " lost: " << why.to_string();
    for (auto& cb : cbs) cb(why);
  }

  void run() {
    std::unique_lock lk(mu);
    auto next = last_ok + interval;
    const Duration base_backoff = std::clamp(ttl / 20, Duration{10}, Duration{250});
    Duration backoff = base_backoff;
    while (true) {
      cv.wait_until(lk, std::min(next, deadline_locked()), [&] {
        return closing || lost || SteadyClock::now() >= std::min(next, deadline_locked());
      });
      if (closing || lost) return;
      if (SteadyClock::now() >= deadline_locked()) {
        lk.unlock();
        mark_lost(unavailable("lease " + lease + " reached its deadline without a renewal"));
        return;
      }
      const auto deadline_before = deadline_locked();
      lk.unlock();
      const auto sent = SteadyClock::now();
      Status s = backend->keepalive(lease);
      const auto done = SteadyClock::now();
      lk.lock();
      if (closing || lost) return;
      if (done >= deadline_before) {
        // The deadline passed while the call was in flight: lost, whatever the answer (sticky).
        if (s.is_ok()) s = unavailable("keepalive confirmed only after the lease deadline");
        lk.unlock();
        mark_lost(s.code() == Code::kNotFound ? s : unavailable(s.message()));
        return;
      }
      if (s.is_ok()) {
        last_ok = std::max(last_ok, sent);
        next = sent + interval;
        backoff = base_backoff;
        continue;
      }
      if (s.code() == Code::kNotFound) {
        lk.unlock();
        mark_lost(not_found("lease " + lease + " expired or was revoked: " + s.message()));
        return;
      }
      SD_LOG(kInfo) << "dlock keepalive of lease " << lease
                    << " failed (will retry): " << s.to_string();
      next = done + backoff;
      backoff = std::min(backoff * 2, std::max(base_backoff, interval));
    }
  }
};

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Result<std::shared_ptr<Session>> Session::create(std::shared_ptr<Backend> backend,
                                                 SessionOptions options) {
  if (!backend) return invalid_argument("Session::create: null backend");
  if (options.ttl.count() <= 0) return invalid_argument("session ttl must be positive");
  const auto sent = SteadyClock::now();
  auto grant = backend->grant_lease(options.ttl);
  if (!grant) return grant.status();
  auto impl = std::make_unique<Impl>();
  impl->backend = std::move(backend);
  impl->lease = grant->id;
  impl->ttl = grant->ttl.count() > 0 ? grant->ttl : options.ttl;
  impl->interval = options.keepalive_interval.count() > 0 ? options.keepalive_interval
                                                          : std::max(Duration{1}, impl->ttl / 3);
  impl->last_ok = sent;
  Impl* raw = impl.get();
  std::shared_ptr<Session> session(new Session(std::move(impl)));
  raw->thread = std::thread([raw] { raw->run(); });
  return session;
}

Session::~Session() {
  (void)close();
  if (impl_->thread.joinable()) {
    // Destroyed from an on_lost callback on the keepalive thread: it returns right after.
    if (impl_->thread.get_id() == std::this_thread::get_id()) {
      impl_->thread.detach();
    } else {
      impl_->thread.join();
    }
  }
}

const LeaseId& Session::lease_id() const {
  return impl_->lease;
}
Backend& Session::backend() const {
  return *impl_->backend;
}

bool Session::alive() const {
  std::lock_guard lk(impl_->mu);
  return !impl_->lost && !impl_->closing && SteadyClock::now() < impl_->deadline_locked();
}

Status Session::lost_reason() const {
  std::lock_guard lk(impl_->mu);
  if (impl_->lost) return impl_->reason;
  if (impl_->closing) return Status(Code::kFailedPrecondition, "session closed");
  if (SteadyClock::now() >= impl_->deadline_locked()) {
    return unavailable("lease " + impl_->lease + " reached its deadline without a renewal");
  }
  return Status::ok();
}

void Session::on_lost(std::function<void(const Status&)> callback) {
  if (!callback) return;
  Status reason;
  {
    std::lock_guard lk(impl_->mu);
    if (!impl_->lost) {
      impl_->callbacks.push_back(std::move(callback));
      return;
    }
    reason = impl_->reason;
  }
  callback(reason);
}

Status Session::renew() {
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->lost) return impl_->reason;
    if (impl_->closing) return Status(Code::kFailedPrecondition, "session closed");
  }
  const auto sent = SteadyClock::now();
  Status s = impl_->backend->keepalive(impl_->lease);
  if (s.is_ok()) {
    std::lock_guard lk(impl_->mu);
    if (sent < impl_->deadline_locked()) impl_->last_ok = std::max(impl_->last_ok, sent);
  } else if (s.code() == Code::kNotFound) {
    lease_gone(s);
  }
  return s;
}

void Session::lease_gone(const Status& why) {
  impl_->mark_lost(
      not_found("lease " + impl_->lease + " expired or was revoked: " + why.message()));
}

Status Session::close() {
  bool was_lost = false;
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->closing) return Status::ok();
    impl_->closing = true;
    was_lost = impl_->lost;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable() && impl_->thread.get_id() != std::this_thread::get_id()) {
    impl_->thread.join();
  }
  // Revoke even when lost through a transport failure: the engine may still hold the lease.
  Status s = impl_->backend->revoke(impl_->lease);
  {
    std::lock_guard lk(impl_->mu);
    impl_->closed = true;
  }
  if (was_lost || s.code() == Code::kNotFound) return Status::ok();
  return s;
}

}  // namespace sd::dlock
