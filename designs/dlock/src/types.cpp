#include "sd/dlock/types.hpp"

#include <string>

#include "sd/base/utf8.hpp"

namespace sd::dlock {

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::kLock:
      return "lock";
    case Kind::kSemaphore:
      return "semaphore";
  }
  return "unknown";
}

std::string_view mode_name(Mode m) {
  switch (m) {
    case Mode::kExclusive:
      return "exclusive";
    case Mode::kShared:
      return "shared";
  }
  return "unknown";
}

std::optional<Mode> parse_mode(std::string_view s) {
  if (s == "exclusive") return Mode::kExclusive;
  if (s == "shared") return Mode::kShared;
  return std::nullopt;
}

Status validate_name(std::string_view name, size_t max_bytes) {
  if (name.empty()) return invalid_argument("name must not be empty");
  if (name.size() > max_bytes) {
    return invalid_argument("name is longer than " + std::to_string(max_bytes) + " bytes");
  }
  if (!is_valid_utf8(name)) return invalid_argument("name is not valid UTF-8");
  // C0 controls and DEL are single bytes; C1 controls (U+0080..U+009F) are encoded C2 80..C2 9F.
  for (size_t i = 0; i < name.size(); ++i) {
    auto c = static_cast<unsigned char>(name[i]);
    if (c < 0x20 || c == 0x7F) return invalid_argument("name contains a control character");
    if (c == 0xC2 && i + 1 < name.size()) {
      auto d = static_cast<unsigned char>(name[i + 1]);
      if (d >= 0x80 && d <= 0x9F) return invalid_argument("name contains a control character");
    }
  }
  return Status::ok();
}

Status validate_acquire(const AcquireRequest& req, const Limits& lim) {
  SD_RETURN_IF_ERROR(validate_name(req.name, lim.max_name_bytes));
  if (req.kind != Kind::kLock && req.kind != Kind::kSemaphore) {
    return invalid_argument("unknown kind");
  }
  if (req.kind == Kind::kLock && req.mode != Mode::kExclusive && req.mode != Mode::kShared) {
    return invalid_argument("unknown mode");
  }
  if (req.kind == Kind::kSemaphore) {
    if (req.limit < 1 || req.limit > lim.max_semaphore_limit) {
      return invalid_argument("limit must be between 1 and " +
                              std::to_string(lim.max_semaphore_limit));
    }
    if (req.permits < 1 || req.permits > req.limit) {
      return invalid_argument("permits must be between 1 and limit");
    }
  }
  if (req.wait < Duration{0} || req.wait > lim.max_wait) {
    return invalid_argument("wait must be between 0 and " + std::to_string(lim.max_wait.count()) +
                            " ms");
  }
  return Status::ok();
}

}  // namespace sd::dlock
