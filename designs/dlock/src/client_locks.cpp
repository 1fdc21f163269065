// Mutex, SharedMutex, Semaphore and LockGuard: names and tokens on top of a Session's lease.

#include "sd/dlock/client.hpp"

namespace sd::dlock {
namespace {

Status session_not_alive(const Session& s) {
  Status why = s.lost_reason();
  return Status(Code::kFailedPrecondition,
                "session is not alive" + (why.is_ok() ? std::string() : ": " + why.to_string()));
}

AcquireRequest make_request(const Session& s, Kind kind, const std::string& name, Mode mode,
                            uint32_t limit, uint32_t permits, Duration wait) {
  AcquireRequest req;
  req.kind = kind;
  req.name = name;
  req.lease_id = s.lease_id();
  req.mode = mode;
  req.limit = limit;
  req.permits = permits;
  req.wait = wait.count() > 0 ? wait : Duration{0};
  return req;
}

// After an unlock attempt: whether our local "held" state is over. Transport errors leave it
// (the caller may retry the unlock); the engine saying we are not the holder ends it.
bool release_settled(const Status& s) {
  return s.is_ok() || s.code() == Code::kConflict || s.code() == Code::kNotFound;
}

}  // namespace

// --- Mutex ---------------------------------------------------------------------------------------

Mutex::Mutex(std::shared_ptr<Session> session, std::string name)
    : session_(std::move(session)), name_(std::move(name)) {}

Mutex::~Mutex() = default;

Result<Token> Mutex::try_lock() {
  return acquire(Duration{0});
}
Result<Token> Mutex::lock(Duration timeout) {
  return acquire(timeout);
}

Result<Token> Mutex::acquire(Duration wait) {
  if (!session_->alive()) return session_not_alive(*session_);
  auto r = session_->backend().acquire(
      make_request(*session_, Kind::kLock, name_, Mode::kExclusive, 1, 1, wait));
  if (!r) {
    if (r.status().code() == Code::kNotFound) session_->lease_gone(r.status());
    return r.status();
  }
  token_ = r->token;
  return r->token;
}

Status Mutex::unlock() {
  if (!token_) return conflict("not_holder: " + name_ + " is not held by this Mutex");
  Status s = session_->backend().release(Kind::kLock, name_, session_->lease_id(), *token_);
  if (release_settled(s)) token_.reset();
  return s;
}

std::optional<Token> Mutex::token() const {
  return held() ? token_ : std::nullopt;
}
bool Mutex::held() const {
  return token_.has_value() && session_->alive();
}

// --- SharedMutex ---------------------------------------------------------------------------------

SharedMutex::SharedMutex(std::shared_ptr<Session> session, std::string name)
    : session_(std::move(session)), name_(std::move(name)) {}

Result<Token> SharedMutex::try_lock() {
  return acquire(Mode::kExclusive, Duration{0});
}
Result<Token> SharedMutex::lock(Duration timeout) {
  return acquire(Mode::kExclusive, timeout);
}
Result<Token> SharedMutex::try_lock_shared() {
  return acquire(Mode::kShared, Duration{0});
}
Result<Token> SharedMutex::lock_shared(Duration timeout) {
  return acquire(Mode::kShared, timeout);
}

Result<Token> SharedMutex::acquire(Mode mode, Duration wait) {
  if (!session_->alive()) return session_not_alive(*session_);
  if (token_ && mode_ && *mode_ != mode) {
    return conflict("already held in " + std::string(mode_name(*mode_)) +
                    " mode; unlock() before changing mode");
  }
  auto r =
      session_->backend().acquire(make_request(*session_, Kind::kLock, name_, mode, 1, 1, wait));
  if (!r) {
    if (r.status().code() == Code::kNotFound) session_->lease_gone(r.status());
    return r.status();
  }
  token_ = r->token;
  mode_ = mode;
  return r->token;
}

Status SharedMutex::unlock() {
  if (!token_) return conflict("not_holder: " + name_ + " is not held by this SharedMutex");
  Status s = session_->backend().release(Kind::kLock, name_, session_->lease_id(), *token_);
  if (release_settled(s)) {
    token_.reset();
    mode_.reset();
  }
  return s;
}

std::optional<Token> SharedMutex::token() const {
  return held() ? token_ : std::nullopt;
}
bool SharedMutex::held() const {
  return token_.has_value() && session_->alive();
}
std::optional<Mode> SharedMutex::mode() const {
  return held() ? mode_ : std::nullopt;
}

// --- Semaphore -----------------------------------------------------------------------------------

Semaphore::Semaphore(std::shared_ptr<Session> session, std::string name, uint32_t limit,
                     uint32_t permits)
    : session_(std::move(session)), name_(std::move(name)), limit_(limit), permits_(permits) {}

Result<Token> Semaphore::try_acquire() {
  return acquire_for(Duration{0});
}
Result<Token> Semaphore::acquire(Duration timeout) {
  return acquire_for(timeout);
}

Result<Token> Semaphore::acquire_for(Duration wait) {
  if (!session_->alive()) return session_not_alive(*session_);
  auto r = session_->backend().acquire(
      make_request(*session_, Kind::kSemaphore, name_, Mode::kShared, limit_, permits_, wait));
  if (!r) {
    if (r.status().code() == Code::kNotFound) session_->lease_gone(r.status());
    return r.status();
  }
  token_ = r->token;
  return r->token;
}

Status Semaphore::release() {
  if (!token_) return conflict("not_holder: semaphore " + name_ + " is not held");
  Status s = session_->backend().release(Kind::kSemaphore, name_, session_->lease_id(), *token_);
  if (release_settled(s)) token_.reset();
  return s;
}

std::optional<Token> Semaphore::token() const {
  return held() ? token_ : std::nullopt;
}
bool Semaphore::held() const {
  return token_.has_value() && session_->alive();
}

// --- LockGuard -----------------------------------------------------------------------------------

Result<LockGuard> LockGuard::acquire(Mutex& m, Duration timeout) {
  auto t = m.lock(timeout);
  if (!t) return t.status();
  return LockGuard(m, *t);
}

LockGuard::~LockGuard() {
  if (m_ != nullptr && m_->held()) (void)m_->unlock();
}

}  // namespace sd::dlock
