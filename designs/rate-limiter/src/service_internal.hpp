#pragma once
// RateLimitService internals shared by service.cpp (decisions), service_concurrency.cpp (permits),
// service_request.cpp (request parsing) and service_routes.cpp (handlers).

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "headers.hpp"
#include "sd/ratelimit/service.hpp"

namespace sd::ratelimit {

namespace service_detail {

// A client error: HTTP status and the project's {"error": code, "message": text}.
struct ApiError {
  int status = 400;
  std::string code;
  std::string message;
  net::Response response() const { return net::Response::error(status, code, message); }
};
template <class T>
using Parsed = std::variant<T, ApiError>;

// One decision request (POST /v1/check and /v1/concurrency/acquire bodies, /v1/auth queries).
struct CheckRequest {
  std::string domain;
  std::vector<std::vector<Entry>> descriptors;
  uint64_t cost = 1;
};

// {"domain":..,"descriptors":[{"entries":[{"key":..,"value":..}]}],"cost":n}, within `o`'s limits.
Parsed<CheckRequest> parse_check(const std::string& body, const ServiceOptions& o);
// /v1/auth/{domain}?entries=key:Header,...[&cost=n]: one descriptor from the request's headers.
Parsed<CheckRequest> parse_auth(const net::Request& req, const ServiceOptions& o);
// {"permit": "<id>"}
Parsed<std::string> parse_release(const std::string& body, const ServiceOptions& o);

// The policy name a rule advertises in headers: its rate_limit name, else its id.
const std::string& policy_name(const RuleNode& rule);

}  // namespace service_detail

struct RateLimitService::Impl {
  using ApiError = service_detail::ApiError;
  using CheckRequest = service_detail::CheckRequest;

  Impl(RulesSource& r, Store& s, ConcurrencyLimiter* c, const Clock& cl, metrics::Registry& m,
       Scheduler sch, IdGenerator& i, ServiceOptions o);

  // ---- metrics, resolved once per rules version ----
  struct RuleCounters {
    metrics::Counter* allowed = nullptr;
    metrics::Counter* limited = nullptr;
    metrics::Counter* shadow_limited = nullptr;
    metrics::Counter* near_limit = nullptr;
  };
  struct Cache {
    std::shared_ptr<const RuleSet> rules;  // keeps the RuleNode keys below alive
    std::unordered_set<std::string> domains;
    std::unordered_map<const RuleNode*, RuleCounters> counters;
    std::unordered_map<const RuleNode*, std::string> rule_domain;
    std::unordered_map<std::string, metrics::Counter*> store_errors;  // by domain
  };
  // The cache for `rules` (rebuilt when the rules changed since the last call).
  std::shared_ptr<const Cache> cache_for(const std::shared_ptr<const RuleSet>& rules);
  // The current rules and their cache, or 400 unknown_domain.
  std::variant<std::shared_ptr<const Cache>, ApiError> resolve(const std::string& domain);

  // ---- decisions (service.cpp) ----
  struct Evaluation {
    int status = 200;  // 200 allowed, 429 denied (or store down and fail-closed)
    nlohmann::json body;
    net::Headers headers;
    Nanos delay{0};  // leaky queue: hold the reply this long (allowed only)
  };
  // A request matched against the rules, waiting for its store decisions; owns everything the
  // decision needs (it may finish on a store thread, after the request is gone).
  struct Prepared {
    static constexpr size_t kNone = static_cast<size_t>(-1);
    std::shared_ptr<const Cache> cache;  // keeps the matched rules alive
    std::string domain;
    std::vector<std::optional<Match>> matches;  // keys moved into items
    std::vector<size_t> item_of;                // matches[i] -> items index, or kNone
    std::vector<OwnedStoreItem> items;          // handed to the store
    size_t item_count = 0;
  };
  service_detail::Parsed<Prepared> prepare(const CheckRequest& req);
  Evaluation finish(const Prepared& p, Result<std::vector<Decision>> decided);
  // Decides `req` and calls done exactly once: inline for a client error, nothing to decide or a
  // synchronous store (memory://); else on the store's thread (redis://).
  using EvalDone = std::function<void(service_detail::Parsed<Evaluation>)>;
  void evaluate_async(const CheckRequest& req, EvalDone done);
  // Sends `resp` through `out` after `delay` (at once when zero or after shutdown).
  void send_later(Nanos delay, net::Responder out, net::Response resp);

  // ---- concurrency (service_concurrency.cpp) ----
  net::Response acquire(const CheckRequest& req);
  net::Response release(const std::string& permit);
  void reap_permits(TimePoint now);  // releases permits past their TTL
  void release_all_permits();

  void maintain();
  void arm_maintenance();
  void shutdown();

  RulesSource& rules;
  Store& store;
  ConcurrencyLimiter* concurrency;
  const Clock& clock;
  metrics::Registry& registry;
  Scheduler scheduler;
  IdGenerator& ids;
  const ServiceOptions options;
  Reloader reloader;

  metrics::Counter& reloads_ok;
  metrics::Counter& reloads_error;
  metrics::Gauge& rules_version;
  metrics::Gauge& in_flight;
  metrics::Histogram& latency_check;
  metrics::Histogram& latency_auth;
  metrics::Histogram& latency_acquire;

  std::mutex cache_mu;
  std::shared_ptr<const Cache> cache;  // guarded by cache_mu

  // A reply held for its leaky-queue delay; sent once, by the timer or by shutdown().
  struct Delayed {
    std::mutex mu;
    net::Responder out;  // guarded by mu
    net::Response resp;  // guarded by mu
    bool sent = false;   // guarded by mu
    void send();
    bool done();
  };
  struct Held {
    std::vector<Permit> permits;
    TimePoint expires;
  };
  mutable std::mutex mu;  // guards everything below
  std::vector<std::pair<std::shared_ptr<Delayed>, net::TimerHandle>> delayed;
  std::unordered_map<std::string, Held> permits;
  size_t permits_in_flight = 0;      // sum of permits[*].permits.size()
  size_t async_pending = 0;          // evaluate_async calls whose store answer has not run yet
  std::condition_variable async_cv;  // async_pending reached 0
  net::TimerHandle maintenance_timer;
  bool stopped = false;
};

}  // namespace sd::ratelimit
