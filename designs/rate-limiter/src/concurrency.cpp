// ConcurrencyLimiter: one dlock semaphore per key, one pooled dlock session per held permit.
//
// Why a pool: a lease holds a given semaphore name at most once, so N permits of one key in one
// process need N leases; creating a lease per request would cost a round trip (and a keepalive
// thread) each time. Idle sessions hold nothing, so reusing them is safe as long as we only pool a
// session whose last call had a definite outcome: after a transport error the engine may have
// granted (or kept) a permit we do not know about, and a pooled session would keep that phantom
// permit alive forever. Such sessions are dropped instead (closing revokes the lease; if that fails
// too, the lease expires after session_ttl).

#include <atomic>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "sd/dlock/client.hpp"
#include "sd/ratelimit/concurrency.hpp"

namespace sd::ratelimit {
namespace {

using SessionPtr = std::shared_ptr<dlock::Session>;

bool starts_with(const std::string& s, std::string_view prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// What the limiter does with the session after a failed acquire.
enum class After { kPool, kDrop, kRetryFresh };

struct MappedError {
  Status status;
  After after;
};

// Translates a dlock acquire error into the limiter's vocabulary.
MappedError map_acquire_error(const Status& s, const std::string& name, uint32_t max_in_flight,
                              const std::string& uri) {
  const std::string n = std::to_string(max_in_flight);
  switch (s.code()) {
    case Code::kConflict:
      if (starts_with(s.message(), "locked")) {
        return {resource_exhausted("too many requests in flight (" + n + ") for " + name),
                After::kPool};
      }
      if (starts_with(s.message(), "limit_mismatch")) {
        return {Status(Code::kFailedPrecondition,
                       "max_in_flight " + n + " for " + name +
                           " disagrees with the limit its current holders use (another process "
                           "configures a different max_in_flight for this key)"),
                After::kPool};
      }
      // mode/permits mismatch or already_waiting: impossible with one permit per idle session.
      return {internal_error("unexpected dlock conflict on " + name + ": " + s.message()),
              After::kDrop};
    case Code::kNotFound:            // the session's lease expired or was revoked, or it died
    case Code::kFailedPrecondition:  // between take() and the call ("session is not alive"):
                                     // try once more with a brand-new session
      return {unavailable("dlock lease lost while acquiring " + name + ": " + s.message()),
              After::kRetryFresh};
    case Code::kUnimplemented:
      return {Status(Code::kUnimplemented,
                     "lock backend " + uri +
                         " has no semaphores, so it cannot limit concurrency: " + s.message()),
              After::kPool};
    case Code::kInvalidArgument:
      return {invalid_argument("concurrency limit on " + name + ": " + s.message()), After::kPool};
    default:  // transport or engine failure: the outcome is unknown
      return {unavailable("lock backend " + uri + " unavailable: " + s.to_string()), After::kDrop};
  }
}

Status map_session_error(const Status& s, const std::string& uri) {
  if (s.code() == Code::kInvalidArgument || s.code() == Code::kUnimplemented) return s;
  return unavailable("lock backend " + uri + " unavailable (creating a session): " + s.to_string());
}

}  // namespace

namespace concurrency_detail {

// The limiter's state, shared with its permits (which give their sessions back to the pool).
struct SessionPool {
  std::shared_ptr<dlock::Backend> backend;
  ConcurrencyOptions options;
  std::string uri;
  std::atomic<size_t> created{0};

  mutable std::mutex mu;
  std::vector<SessionPtr> idle;  // guarded by mu; LIFO: the most recently renewed first
  bool closed = false;           // guarded by mu; the limiter is gone, pool nothing more

  // An alive idle session, or a new one. Dead idle sessions are dropped on the way.
  Result<SessionPtr> take(bool fresh) {
    std::vector<SessionPtr> dead;  // destroyed outside mu: closing one is a backend call
    if (!fresh) {
      std::lock_guard lk(mu);
      while (!idle.empty()) {
        SessionPtr s = std::move(idle.back());
        idle.pop_back();
        if (s->alive()) return s;
        dead.push_back(std::move(s));
      }
    }
    dead.clear();
    dlock::SessionOptions so;
    so.ttl = options.session_ttl;
    auto s = dlock::Session::create(backend, so);
    if (!s) return map_session_error(s.status(), uri);
    created.fetch_add(1, std::memory_order_relaxed);
    return std::move(*s);
  }

  // Pools `s` if there is room and its lease is still alive; otherwise closes it (after unlocking).
  void give_back(SessionPtr s) {
    {
      std::lock_guard lk(mu);
      if (!closed && idle.size() < options.max_idle_sessions && s->alive()) {
        idle.push_back(std::move(s));
        return;
      }
    }
    s.reset();
  }

  // Empties the pool for good; permits still out drop their sessions when released.
  void close() {
    std::vector<SessionPtr> drop;
    std::lock_guard lk(mu);
    closed = true;
    drop.swap(idle);
    // `drop` is destroyed after the guard (declared first): sessions close outside mu.
  }
};

}  // namespace concurrency_detail

struct ConcurrencyLimiter::Impl : concurrency_detail::SessionPool {};

struct Permit::State {
  std::shared_ptr<concurrency_detail::SessionPool> owner;
  SessionPtr session;
  std::optional<dlock::Semaphore> semaphore;
  dlock::Token token = 0;
  bool released = false;
};

Permit::Permit() = default;
Permit::Permit(Permit&&) noexcept = default;

Permit& Permit::operator=(Permit&& o) noexcept {
  if (this != &o) {
    (void)release();
    state_ = std::move(o.state_);
  }
  return *this;
}

Permit::~Permit() {
  (void)release();
}

Status Permit::release() {
  if (!state_ || state_->released) return Status::ok();
  state_->released = true;
  Status s = state_->semaphore->release();
  state_->semaphore.reset();  // drops its reference to the session
  if (s.is_ok()) {
    state_->owner->give_back(std::move(state_->session));
  } else {
    // Unknown outcome or lease already lost: never pool this session (it may still hold the
    // permit). Destroying it revokes the lease, which frees the permit if the backend is back.
    state_->session.reset();
  }
  return s;
}

bool Permit::held() const {
  return state_ && !state_->released && state_->semaphore && state_->semaphore->held();
}

uint64_t Permit::token() const {
  return state_ ? state_->token : 0;
}

ConcurrencyLimiter::ConcurrencyLimiter(std::shared_ptr<dlock::Backend> backend,
                                       ConcurrencyOptions options)
    : impl_(std::make_shared<Impl>()) {
  impl_->uri = backend ? backend->uri() : std::string("(null)");
  impl_->backend = std::move(backend);
  impl_->options = std::move(options);
}

ConcurrencyLimiter::~ConcurrencyLimiter() {
  impl_->close();
}

Result<Permit> ConcurrencyLimiter::try_acquire(const std::string& key, uint32_t max_in_flight) {
  return acquire(key, max_in_flight, Duration{0});
}

Result<Permit> ConcurrencyLimiter::acquire(const std::string& key, uint32_t max_in_flight,
                                           Duration wait) {
  if (!impl_->backend) return invalid_argument("ConcurrencyLimiter: null lock backend");
  if (max_in_flight == 0) return invalid_argument("max_in_flight must be at least 1");
  if (wait.count() < 0) return invalid_argument("wait must not be negative");
  const std::string name = impl_->options.name_prefix + key;
  // A pooled session whose lease died unnoticed gets one retry with a brand-new session.
  for (int attempt = 0; attempt < 2; ++attempt) {
    auto session = impl_->take(/*fresh=*/attempt > 0);
    if (!session) return session.status();
    dlock::Semaphore sem(*session, name, max_in_flight);
    auto token = wait.count() > 0 ? sem.acquire(wait) : sem.try_acquire();
    if (token) {
      auto state = std::make_unique<Permit::State>();
      state->owner = impl_;
      state->session = std::move(*session);
      state->semaphore.emplace(std::move(sem));
      state->token = *token;
      Permit p;
      p.state_ = std::move(state);
      return p;
    }
    MappedError e = map_acquire_error(token.status(), name, max_in_flight, impl_->uri);
    if (e.after == After::kPool) {
      impl_->give_back(std::move(*session));
      return e.status;
    }
    if (e.after == After::kDrop || attempt > 0) return e.status;  // `session` closes here
  }
  return internal_error("unreachable");
}

size_t ConcurrencyLimiter::sessions_created() const {
  return impl_->created.load(std::memory_order_relaxed);
}

size_t ConcurrencyLimiter::idle_sessions() const {
  std::lock_guard lk(impl_->mu);
  return impl_->idle.size();
}

}  // namespace sd::ratelimit
