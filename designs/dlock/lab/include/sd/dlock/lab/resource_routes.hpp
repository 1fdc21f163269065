#pragma once
// HTTP front of the fenced resource (dlock-lab-resource), as sd::net routes:
//   POST /v1/read  {"key","client","token"}          -> 200 {"value"} | 409 stale_token
//   POST /v1/write {"key","client","token","value"}  -> 200 {"accepted":true} | 409 stale_token
//   GET  /v1/state?key=K (default "counter")          -> 200 {"key","value","max_token_seen",
//        "last_written_token","writes_accepted","writes_rejected","reads","fencing"}
// Bad input (not a JSON object, missing or mistyped field, negative token, body over
// kMaxResourceBody) -> 400 {"error","message"}.

#include <cstddef>
#include <memory>

#include "sd/dlock/lab/fenced_store.hpp"
#include "sd/net/router.hpp"

namespace sd::dlock::lab {

inline constexpr size_t kMaxResourceBody = 4096;
inline constexpr size_t kMaxResourceKey = 256;  // bytes, also for "client"

sd::net::Router make_resource_router(std::shared_ptr<FencedResource> resource);

}  // namespace sd::dlock::lab
