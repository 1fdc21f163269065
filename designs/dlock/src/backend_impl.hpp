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
// redis://host:port -- one Redis instance (SET NX PX + Lua; tokens from a per-lock counter).
Result<std::shared_ptr<Backend>> open_redis_backend(const BackendUri& uri,
                                                    const BackendOptions& options);
// redlock://h1:p1,...,hN:pN -- the Redlock algorithm over N independent Redis masters.
Result<std::shared_ptr<Backend>> open_redlock_backend(const BackendUri& uri,
                                                      const BackendOptions& options);
// etcd://h1:p1,... -- etcd v3 through its JSON gateway (leases + the concurrency.Mutex algorithm).
Result<std::shared_ptr<Backend>> open_etcd_backend(const BackendUri& uri,
                                                   const BackendOptions& options);

}  // namespace sd::dlock
