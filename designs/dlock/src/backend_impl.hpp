#pragma once
// Private to the client library: constructors of the concrete backends behind open_backend().

#include <memory>

#include "sd/base/status.hpp"
#include "sd/dlock/backend.hpp"

namespace sd::dlock {

// memory:// and sqlite:// -- LockCore in this process.
Result<std::shared_ptr<Backend>> open_local_backend(const BackendUri& uri,
                                                    const BackendOptions& options);
// dlockd://host:port -- HTTP client of a dlockd server.
Result<std::shared_ptr<Backend>> open_http_backend(const BackendUri& uri,
                                                   const BackendOptions& options);

}  // namespace sd::dlock
