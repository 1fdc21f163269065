#pragma once
// Rate-limit response headers, IETF draft-ietf-httpapi-ratelimit-headers-08/09 (Structured Field
// lists whose members are sf-strings naming the policy), plus Retry-After and the legacy
// X-RateLimit-* trio. Pure formatting, no I/O.
//
//   RateLimit-Policy: "api/remote_address";q=10;w=1, "login";q=5;w=60
//   RateLimit: "api/remote_address";r=9;t=1, "login";r=0;t=42

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sd/net/http.hpp"
#include "sd/ratelimit/limiter.hpp"

namespace sd::ratelimit::headers {

// An sf-string for `s`: quoted, '"' and '\' escaped; bytes outside printable ASCII (which an
// sf-string cannot hold) become '_'.
std::string sf_string(std::string_view s);

// Whole seconds, rounded up (a client waiting this long is never early). Negative -> 0.
uint64_t ceil_seconds(Nanos d);
// Whole milliseconds, rounded up. Negative -> 0.
uint64_t ceil_millis(Nanos d);

// One rule's contribution to the headers of a decision.
struct Quota {
  std::string_view name;  // policy name
  uint64_t quota = 0;     // requests per window
  Nanos window{0};
  uint64_t remaining = 0;
  Nanos reset_after{0};
};

std::string policy_member(const Quota& q);     // "<name>";q=<quota>;w=<window s>
std::string ratelimit_member(const Quota& q);  // "<name>";r=<remaining>;t=<reset s>

// Appends RateLimit-Policy and RateLimit (one member per quota, in order; identical policy
// members once) to `out`; nothing when `quotas` is empty. With `legacy`, also X-RateLimit-Limit,
// -Remaining and -Reset (seconds) of the most restrictive quota: least remaining, then latest
// reset.
void append(const std::vector<Quota>& quotas, bool legacy, net::Headers& out);

// Retry-After delta-seconds: ceil, at least 1.
std::string retry_after(Nanos d);

}  // namespace sd::ratelimit::headers
