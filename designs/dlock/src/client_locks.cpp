// Mutex, SharedMutex, Semaphore and LockGuard: names and tokens on top of a Session's lease.

#include "sd/dlock/client.hpp"

namespace sd::dlock {
namespace {

// After an unlock attempt: whether our local "held" state is over. Transport errors leave it
// (the caller may retry the unlock); the engine saying we are not the holder ends it.
bool release_settled(const Status& s) {
  return s.is_ok() || s.code() == Code::kConflict || s.code() == Code::kNotFound;
}

}  // namespace

// --- Session: the path every lock class takes
// ------------------------------------------------------

Result<Token> Session::acquire_on_lease(Kind kind, const std::string& name, Mode mode,
                                        uint32_t limit, uint32_t permits, Duration wait) {
  if (!alive()) {
    Status why = lost_reason();
    return Status(Code::kFailedPrecondition,
                  "session is not alive" + (why.is_ok() ? std::string() : ": " + why.to_string()));
  }
  AcquireRequest req;
  req.kind = kind;
  req.name = name;
  req.lease_id = lease_id();
  req.mode = mode;
  req.limit = limit;
  req.permits = permits;
  req.wait = wait.count() > 0 ? wait : Duration{0};
  auto r = backend().acquire(req);
  if (!r) {
    if (r.status().code() == Code::kNotFound) lease_gone(r.status());
    return r.status();
  }
  return r->token;
}

Status Session::release_on_lease(Kind kind, const std::string& name, Token token) {
  return backend().release(kind, name, lease_id(), token);
}

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
  auto t = session_->acquire_on_lease(Kind::kLock, name_, Mode::kExclusive, 1, 1, wait);
  if (t) token_ = *t;
  return t;
}

Status Mutex::unlock() {
  if (!token_) return conflict("not_holder: " + name_ + " is not held by this Mutex");
  Status s = session_->release_on_lease(Kind::kLock, name_, *token_);
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
  if (token_ && mode_ && *mode_ != mode) {
    return conflict("already held in " + std::string(mode_name(*mode_)) +
                    " mode; unlock() before changing mode");
  }
  auto t = session_->acquire_on_lease(Kind::kLock, name_, mode, 1, 1, wait);
  if (t) {
    token_ = *t;
    mode_ = mode;
  }
  return t;
}

Status SharedMutex::unlock() {
  if (!token_) return conflict("not_holder: " + name_ + " is not held by this SharedMutex");
  Status s = session_->release_on_lease(Kind::kLock, name_, *token_);
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
  auto t =
      session_->acquire_on_lease(Kind::kSemaphore, name_, Mode::kShared, limit_, permits_, wait);
  if (t) token_ = *t;
  return t;
}

Status Semaphore::release() {
  if (!token_) return conflict("not_holder: semaphore " + name_ + " is not held");
  Status s = session_->release_on_lease(Kind::kSemaphore, name_, *token_);
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
