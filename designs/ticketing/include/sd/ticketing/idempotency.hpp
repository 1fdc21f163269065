#pragma once
// Idempotency keys with Stripe's semantics, stored in the ticketing database:
//   - the first request with a key runs and its response (status + body) is stored;
//   - the same key with the same request (method, path, customer, body) -> the stored response;
//   - the same key with a different request -> 422 "idempotency_key_reused";
//   - the same key while the first is still running -> 409 "idempotency_key_in_use" (retry later);
//   - responses that say "try again" (5xx, 429) are not stored: the key is freed and the next
//     retry runs the request again. Keys are kept for `ttl_ms` (default 24 h), then purged.
// Keys are scoped by customer: two customers may use the same key.

#include <cstdint>
#include <optional>
#include <string>

#include "sd/base/status.hpp"
#include "sd/ticketing/db.hpp"

namespace sd::ticketing {

struct IdempotencyOptions {
  int64_t ttl_ms = 24LL * 3600 * 1000;
  size_t max_key_bytes = 255;  // keys: 1..255 printable ASCII bytes
  // An in-progress record older than this is treated as abandoned (its process died mid-request)
  // and the request may run again.
  int64_t in_progress_timeout_ms = 60'000;
};

struct StoredResponse {
  int status = 0;
  std::string body;
};

class IdempotencyStore {
 public:
  enum class Outcome { kProceed, kReplay, kMismatch, kInProgress };
  struct Begin {
    Outcome outcome = Outcome::kProceed;
    std::optional<StoredResponse> stored;  // kReplay
  };

  IdempotencyStore(TicketDb& db, IdempotencyOptions options = {});
  // kInvalidArgument for a malformed key. `request` is the canonical request text compared
  // byte for byte (method, path and body).
  Result<Begin> begin(const std::string& customer, const std::string& key,
                      const std::string& request, int64_t now_ms);
  // Stores the response for a key begin() answered kProceed to (or frees the key for 5xx/429).
  Status finish(const std::string& customer, const std::string& key, const StoredResponse& r,
                int64_t now_ms);
  Result<int> purge(int64_t now_ms);  // drops expired keys; returns how many

 private:
  TicketDb& db_;
  IdempotencyOptions options_;
};

}  // namespace sd::ticketing
