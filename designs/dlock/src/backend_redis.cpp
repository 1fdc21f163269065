// redis:// backend (stub until implemented).
#include "backend_impl.hpp"

namespace sd::dlock {

Result<std::shared_ptr<Backend>> open_redis_backend(const BackendUri& uri, const BackendOptions&) {
  return Status(Code::kUnimplemented, uri.scheme + ":// backend not available yet");
}

}  // namespace sd::dlock
