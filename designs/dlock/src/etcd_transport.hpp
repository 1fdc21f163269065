#pragma once
// The etcd:// backend's way to the cluster: JSON POSTs to etcd's gRPC gateway (/v3/...) over
// sd::net::HttpClient, with endpoint failover, and the watch stream.
//
// Failover: calls go to the endpoint that last answered. A transport failure (refused, reset,
// timeout) or a retryable gateway error (gRPC Unavailable, DeadlineExceeded, ...: "no leader",
// "leader changed", "request timed out") moves on to the next endpoint; after a full round over
// all endpoints the call backs off and tries another round, up to options.max_attempts rounds and
// twice options.request_timeout in total. So calls keep succeeding while any member that is part
// of a quorum answers. A call that never got an answer is kUnavailable naming every endpoint.
//
// Thread-safe: HttpClient is one connection and not thread-safe, so each endpoint has a pool of
// idle clients (a mutex-guarded free list) that calls check out and return.

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/base/status.hpp"
#include "sd/dlock/backend.hpp"

namespace sd::net {
class HttpClient;
}

namespace sd::dlock::etcd {

enum class WatchOutcome {
  kEvent,    // a watched event arrived (re-check the queue)
  kTimeout,  // the deadline passed with no event
  kBroken,   // the stream ended or failed, or etcd canceled the watch (e.g. compaction): re-check
};

class Transport {
 public:
  Transport(std::vector<std::pair<std::string, uint16_t>> endpoints, const BackendOptions& options);
  ~Transport();
  Transport(const Transport&) = delete;
  Transport& operator=(const Transport&) = delete;

  // POSTs `body` to `path` (e.g. "/v3/kv/txn") and returns the response object. *resent is set
  // when the request was sent more than once (an earlier attempt may have been applied: callers
  // of non-idempotent requests interpret "already done" accordingly).
  Result<nlohmann::json> call(const std::string& path, const nlohmann::json& body,
                              bool* resent = nullptr);

  // Watches the key `key` (or the range [key, range_end) when range_end is not empty) for
  // deletions from start_revision on, until a deletion arrives or `deadline` passes. Events at or
  // after start_revision that already happened are delivered at once (from etcd's history), so a
  // deletion between the caller's last read and this call is not missed.
  Result<WatchOutcome> watch_deletes(const std::string& key, const std::string& range_end,
                                     int64_t start_revision,
                                     std::chrono::steady_clock::time_point deadline);

  std::string endpoints_text() const;  // "h1:p1,h2:p2,..."

 private:
  Result<nlohmann::json> call_once(size_t endpoint, const std::string& path,
                                   const std::string& body, std::chrono::milliseconds timeout);
  std::unique_ptr<net::HttpClient> checkout(size_t endpoint);
  void checkin(size_t endpoint, std::unique_ptr<net::HttpClient> client);
  size_t preferred();
  void answered(size_t endpoint);  // this endpoint works: prefer it
  void failed(size_t endpoint);    // move the preference past it (if it was preferred)
  std::string where(size_t endpoint) const;

  std::vector<std::pair<std::string, uint16_t>> endpoints_;
  BackendOptions options_;
  std::mutex mu_;
  size_t preferred_ = 0;                                             // guarded by mu_
  std::vector<std::vector<std::unique_ptr<net::HttpClient>>> idle_;  // guarded by mu_; per endpoint
};

}  // namespace sd::dlock::etcd
