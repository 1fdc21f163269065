// RateLimitService: concurrency permits. One acquire takes a permit for every matched concurrency
// rule or none (all or nothing); the permits are filed under one opaque id until released or
// until permit_ttl passes (a client that crashed must not hold its slots forever).

#include <utility>

#include "service_internal.hpp"

namespace sd::ratelimit {

using service_detail::ApiError;
using json = nlohmann::json;

namespace {

// Releases outside the service's mutex: a remote lock backend does I/O.
void release_permits(std::vector<Permit>& permits) {
  for (Permit& p : permits) (void)p.release();  // best effort: a lost release expires by TTL
  permits.clear();
}

}  // namespace

net::Response RateLimitService::Impl::acquire(const CheckRequest& req) {
  auto resolved = resolve(req.domain);
  if (auto* err = std::get_if<ApiError>(&resolved)) return err->response();
  const Cache& c = *std::get<std::shared_ptr<const Cache>>(resolved);

  std::vector<Permit> taken;
  json statuses = json::array();
  for (const auto& entries : req.descriptors) {
    std::optional<Match> m = c.rules->match(req.domain, entries);
    if (!m || !m->rule->concurrency) {
      statuses.push_back({{"code", "OK"}, {"rule", m ? json(m->rule->id) : json(nullptr)}});
      continue;
    }
    const RuleNode& rule = *m->rule;
    const uint32_t max = rule.concurrency->max_in_flight;
    json s = {
        {"code", "OK"}, {"rule", rule.id}, {"max_in_flight", max}, {"shadow", rule.shadow_mode}};
    if (concurrency == nullptr) {
      release_permits(taken);
      return net::Response::error(503, "concurrency_unavailable",
                                  "rule " + rule.id + " needs a lock backend (none configured)");
    }
    Result<Permit> p = concurrency->try_acquire(m->key, max);
    const RuleCounters& rc = c.counters.at(&rule);
    if (p) {
      rc.allowed->inc();
      taken.push_back(std::move(*p));
    } else if (p.status().code() == Code::kResourceExhausted && rule.shadow_mode) {
      rc.shadow_limited->inc();
      s["shadow_limited"] = true;
    } else if (p.status().code() == Code::kResourceExhausted) {
      rc.limited->inc();
      release_permits(taken);
      net::Response r = net::Response::error(
          429, "too_many_in_flight",
          "rule " + rule.id + ": " + std::to_string(max) + " requests already in flight");
      r.headers.emplace_back("Retry-After", "1");
      return r;
    } else {
      release_permits(taken);
      return net::Response::error(503, "concurrency_unavailable",
                                  "lock backend failed: " + p.status().to_string());
    }
    statuses.push_back(std::move(s));
  }

  if (taken.empty()) {  // nothing to hold: no id to release
    return net::Response::json(
        200, {{"permit", nullptr}, {"expires_in_ms", 0}, {"statuses", std::move(statuses)}});
  }
  std::string id = ids.next();
  size_t count = taken.size();
  bool filed = false;
  {
    std::lock_guard lock(mu);
    if (!stopped) {
      permits.emplace(id, Held{std::move(taken), clock.now() + options.permit_ttl});
      permits_in_flight += count;
      in_flight.set(static_cast<double>(permits_in_flight));
      filed = true;
    }
  }
  if (!filed) {  // shut down meanwhile
    release_permits(taken);
    return net::Response::error(503, "unavailable", "service is shutting down");
  }
  return net::Response::json(200, {{"permit", id},
                                   {"expires_in_ms", options.permit_ttl.count()},
                                   {"statuses", std::move(statuses)}});
}

net::Response RateLimitService::Impl::release(const std::string& permit) {
  std::vector<Permit> held;
  {
    std::lock_guard lock(mu);
    auto it = permits.find(permit);
    if (it == permits.end()) {
      return net::Response::error(404, "unknown_permit",
                                  "no permit '" + permit + "' (released, expired or never issued)");
    }
    held = std::move(it->second.permits);
    permits.erase(it);
    permits_in_flight -= held.size();
    in_flight.set(static_cast<double>(permits_in_flight));
  }
  size_t n = held.size();
  release_permits(held);
  return net::Response::json(200, {{"released", true}, {"permits", n}});
}

void RateLimitService::Impl::reap_permits(TimePoint now) {
  std::vector<Permit> expired;
  {
    std::lock_guard lock(mu);
    for (auto it = permits.begin(); it != permits.end();) {
      if (it->second.expires > now) {
        ++it;
        continue;
      }
      permits_in_flight -= it->second.permits.size();
      for (Permit& p : it->second.permits) expired.push_back(std::move(p));
      it = permits.erase(it);
    }
    in_flight.set(static_cast<double>(permits_in_flight));
  }
  release_permits(expired);
}

void RateLimitService::Impl::release_all_permits() {
  std::vector<Permit> all;
  {
    std::lock_guard lock(mu);
    for (auto& [id, held] : permits) {
      for (Permit& p : held.permits) all.push_back(std::move(p));
    }
    permits.clear();
    permits_in_flight = 0;
    in_flight.set(0);
  }
  release_permits(all);
}

}  // namespace sd::ratelimit
