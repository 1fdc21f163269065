#pragma once
// Errors as values: Status for operations without a result, Result<T> for those with one.

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace sd {

enum class Code {
  kOk = 0,
  kInvalidArgument,     // caller's input is wrong (HTTP 400)
  kNotFound,            // the thing does not exist (404)
  kAlreadyExists,       // (409)
  kConflict,            // state forbids it: lock held, not the holder (409)
  kResourceExhausted,   // a limit was hit (429/503)
  kDeadlineExceeded,    // timed out (408/504)
  kUnavailable,         // transport or dependency down; retryable (503)
  kFailedPrecondition,  // e.g. backend does not support an operation (400/501)
  kUnimplemented,       // (501)
  kInternal,            // a bug or an I/O failure (500)
};

std::string_view code_name(Code c);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return {}; }
  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;  // "conflict: lock is held"

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {Code::kInvalidArgument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {Code::kNotFound, std::move(m)};
}
inline Status conflict(std::string m) {
  return {Code::kConflict, std::move(m)};
}
inline Status unavailable(std::string m) {
  return {Code::kUnavailable, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {Code::kInternal, std::move(m)};
}
inline Status deadline_exceeded(std::string m) {
  return {Code::kDeadlineExceeded, std::move(m)};
}
inline Status resource_exhausted(std::string m) {
  return {Code::kResourceExhausted, std::move(m)};
}

// Result<T>: a T or a non-ok Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(implicit)
  Result(Status status) : v_(std::move(status)) {
    assert(!std::get<Status>(v_).is_ok());
  }  // NOLINT

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  const Status& status() const {
    static const Status kOk;
    return is_ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace sd

// Propagate a non-ok Status from an expression returning Status. The variable name is unique per
// expansion so nested uses (e.g. inside a lambda) do not shadow each other.
#define SD_CONCAT_INNER_(a, b) a##b
#define SD_CONCAT_(a, b) SD_CONCAT_INNER_(a, b)
#define SD_RETURN_IF_ERROR(expr) SD_RETURN_IF_ERROR_IMPL_(SD_CONCAT_(sd_status_, __COUNTER__), expr)
#define SD_RETURN_IF_ERROR_IMPL_(var, expr) \
  do {                                      \
    ::sd::Status var = (expr);              \
    if (!var.is_ok()) return var;           \
  } while (0)
