// RateLimitService: decisions (rules -> one Store call -> statuses, headers, metrics), the
// per-rules-version metrics cache, delayed replies and maintenance.

#include "sd/ratelimit/service.hpp"

#include <algorithm>
#include <utility>

#include "service_internal.hpp"

namespace sd::ratelimit {

using service_detail::ApiError;
using service_detail::policy_name;
using json = nlohmann::json;

namespace {

constexpr const char* kDecisionsHelp = "Rate-limit decisions per rule, by result.";
constexpr const char* kLatencyHelp = "Time to decide one request (rules, store, response).";

metrics::Histogram& latency(metrics::Registry& m, const char* endpoint) {
  return m.histogram("ratelimit_decision_duration_seconds", kLatencyHelp, {{"endpoint", endpoint}});
}

// The domain a rule belongs to: its id is "<domain>/...", and the longest domain that prefixes it
// wins (a domain name may itself contain '/').
std::string domain_of(const RuleNode& rule, const std::vector<std::string>& domains) {
  std::string best;
  for (const std::string& d : domains) {
    if (d.size() > best.size() && rule.id.size() > d.size() && rule.id.starts_with(d) &&
        rule.id[d.size()] == '/') {
      best = d;
    }
  }
  return best;
}

json retry_json(const Decision& d) {
  if (d.allowed) return 0;
  if (d.retry_after == Nanos::max()) return nullptr;  // never
  return headers::ceil_millis(d.retry_after);
}

}  // namespace

namespace service_detail {
const std::string& policy_name(const RuleNode& rule) {
  if (rule.rate_limit && !rule.rate_limit->name.empty()) return rule.rate_limit->name;
  return rule.id;
}
}  // namespace service_detail

RateLimitService::Impl::Impl(RulesSource& r, Store& s, ConcurrencyLimiter* c, const Clock& cl,
                             metrics::Registry& m, Scheduler sch, IdGenerator& i, ServiceOptions o)
    : rules(r),
      store(s),
      concurrency(c),
      clock(cl),
      registry(m),
      scheduler(std::move(sch)),
      ids(i),
      options(std::move(o)),
      reloads_ok(m.counter("ratelimit_rules_reloads_total", "Rules reload attempts, by outcome.",
                           {{"result", "ok"}})),
      reloads_error(m.counter("ratelimit_rules_reloads_total", "Rules reload attempts, by outcome.",
                              {{"result", "error"}})),
      rules_version(m.gauge("ratelimit_rules_version",
                            "Version of the loaded rules (1 at start, +1 per successful reload).")),
      in_flight(m.gauge("ratelimit_concurrency_in_flight",
                        "Concurrency permits held through this service.")),
      latency_check(latency(m, "check")),
      latency_auth(latency(m, "auth")),
      latency_acquire(latency(m, "acquire")) {
  rules_version.set(static_cast<double>(rules.version()));
}

std::shared_ptr<const RateLimitService::Impl::Cache> RateLimitService::Impl::cache_for(
    const std::shared_ptr<const RuleSet>& rs) {
  std::lock_guard lock(cache_mu);
  if (cache && cache->rules == rs) return cache;
  auto c = std::make_shared<Cache>();
  c->rules = rs;
  std::vector<std::string> domains = rs->domains();
  c->domains.insert(domains.begin(), domains.end());
  for (const std::string& d : domains) {
    c->store_errors[d] =
        &registry.counter("ratelimit_store_errors_total",
                          "Store calls that failed (fail-open/closed applied).", {{"domain", d}});
  }
  for (const RuleNode* rule : rs->rules()) {
    std::string domain = domain_of(*rule, domains);
    auto counter = [&](const char* result) {
      return &registry.counter("ratelimit_decisions_total", kDecisionsHelp,
                               {{"domain", domain}, {"rule", rule->id}, {"result", result}});
    };
    RuleCounters rc;
    rc.allowed = counter("allowed");
    rc.limited = counter("limited");
    rc.shadow_limited = counter("shadow_limited");
    rc.near_limit = &registry.counter(
        "ratelimit_near_limit_total",
        "Allowed decisions that left less than 20% of the limit (envoy's near_limit).",
        {{"domain", domain}, {"rule", rule->id}});
    c->counters.emplace(rule, rc);
    c->rule_domain.emplace(rule, std::move(domain));
  }
  rules_version.set(static_cast<double>(rules.version()));
  cache = std::move(c);
  return cache;
}

std::variant<std::shared_ptr<const RateLimitService::Impl::Cache>, ApiError>
RateLimitService::Impl::resolve(const std::string& domain) {
  auto c = cache_for(rules.current());
  if (c->domains.contains(domain)) return c;
  std::vector<std::string> known(c->domains.begin(), c->domains.end());
  std::sort(known.begin(), known.end());
  std::string list;
  for (const std::string& d : known) list += (list.empty() ? "" : ", ") + d;
  return ApiError{
      400, "unknown_domain",
      "unknown domain '" + domain + "' (known: " + (list.empty() ? "none" : list) + ")"};
}

service_detail::Parsed<RateLimitService::Impl::Prepared> RateLimitService::Impl::prepare(
    const CheckRequest& req) {
  auto resolved = resolve(req.domain);
  if (auto* err = std::get_if<ApiError>(&resolved)) return *err;
  Prepared p;
  p.cache = std::move(std::get<std::shared_ptr<const Cache>>(resolved));
  p.domain = req.domain;
  const size_t n = req.descriptors.size();
  p.matches.reserve(n);
  for (const auto& entries : req.descriptors)
    p.matches.push_back(p.cache->rules->match(req.domain, entries));
  p.item_of.assign(n, Prepared::kNone);
  for (size_t i = 0; i < n; ++i) {
    if (!p.matches[i]) continue;
    const auto& spec = p.matches[i]->rule->rate_limit;
    if (!spec || spec->unlimited) continue;
    p.item_of[i] = p.items.size();
    // finish() needs only the rule, so the key moves to the store item.
    p.items.push_back({spec->algorithm, spec->limit, std::move(p.matches[i]->key), req.cost});
  }
  p.item_count = p.items.size();
  return p;
}

void RateLimitService::Impl::evaluate_async(const CheckRequest& req, EvalDone done) {
  auto prepared = prepare(req);
  if (auto* err = std::get_if<ApiError>(&prepared)) return done(*err);
  auto p = std::make_shared<Prepared>(std::move(std::get<Prepared>(prepared)));
  if (p->item_count == 0) return done(finish(*p, std::vector<Decision>{}));
  {
    std::lock_guard lock(mu);
    ++async_pending;
  }
  std::vector<OwnedStoreItem> items = std::move(p->items);
  // Runs inline (memory://) or on a store thread (redis://); shutdown() waits for it, so `this`
  // outlives it. Everything else it needs is owned by `p`.
  store.decide_async(std::move(items),
                     [this, p, done = std::move(done)](Result<std::vector<Decision>> decided) {
                       done(finish(*p, std::move(decided)));
                       std::lock_guard lock(mu);
                       if (--async_pending == 0) async_cv.notify_all();
                     });
}

RateLimitService::Impl::Evaluation RateLimitService::Impl::finish(
    const Prepared& p, Result<std::vector<Decision>> decided) {
  const Cache& c = *p.cache;
  const auto& matches = p.matches;
  const auto& item_of = p.item_of;
  const size_t n = matches.size();
  if (decided && decided->size() != p.item_count) {
    decided = internal_error("store answered " + std::to_string(decided->size()) +
                             " decisions for " + std::to_string(p.item_count) + " items");
  }
  Evaluation ev;
  if (!decided) {
    if (auto it = c.store_errors.find(p.domain); it != c.store_errors.end()) it->second->inc();
    if (options.on_store_error == StoreErrorPolicy::kClosed) {
      ev.status = 429;
      ev.body = {{"error", "store_unavailable"},
                 {"message", "rate-limit store failed (" + decided.status().to_string() +
                                 "); failing closed"}};
      ev.headers.emplace_back("Retry-After", "1");
      return ev;
    }
  }

  json statuses = json::array();
  std::vector<headers::Quota> quotas;
  bool allowed = true, never = false;
  Nanos retry{0}, delay{0};
  for (size_t i = 0; i < n; ++i) {
    if (!matches[i]) {
      statuses.push_back({{"code", "OK"}, {"rule", nullptr}});
      continue;
    }
    const RuleNode& rule = *matches[i]->rule;
    json s = {{"code", "OK"}, {"rule", rule.id}};
    if (!rule.rate_limit) {  // a concurrency-only rule: nothing to decide here
      s["shadow"] = rule.shadow_mode;
      statuses.push_back(std::move(s));
      continue;
    }
    const RateLimitSpec& spec = *rule.rate_limit;
    s["policy"] = policy_name(rule);
    s["shadow"] = rule.shadow_mode;
    if (spec.unlimited) {
      s["unlimited"] = true;
      statuses.push_back(std::move(s));
      continue;
    }
    s["algorithm"] = algorithm_name(spec.algorithm);
    s["limit"] = spec.requests_per_unit;
    s["unit"] = spec.unit;
    if (!decided) {
      s["code"] = "STORE_ERROR";
      statuses.push_back(std::move(s));
      continue;
    }
    const Decision& d = (*decided)[item_of[i]];
    const RuleCounters& rc = c.counters.at(&rule);
    s["remaining"] = d.remaining;
    s["reset_after_ms"] = headers::ceil_millis(d.reset_after);
    s["retry_after_ms"] = retry_json(d);
    if (d.allowed) {
      rc.allowed->inc();
      if (static_cast<double>(d.remaining) < 0.2 * static_cast<double>(d.limit)) {
        rc.near_limit->inc();
      }
      delay = std::max(delay, d.delay);
    } else if (rule.shadow_mode) {
      rc.shadow_limited->inc();
      s["shadow_limited"] = true;
    } else {
      rc.limited->inc();
      s["code"] = "OVER_LIMIT";
      allowed = false;
      if (d.retry_after == Nanos::max()) {
        never = true;
      } else {
        retry = std::max(retry, d.retry_after);
      }
    }
    // Shadow rules never deny, so advertising their quota would only mislead clients.
    if (!rule.shadow_mode) {
      quotas.push_back({policy_name(rule), d.limit, spec.limit.period, d.remaining, d.reset_after});
    }
    statuses.push_back(std::move(s));
  }

  if (!allowed) delay = Nanos{0};
  ev.status = allowed ? 200 : 429;
  ev.delay = delay;
  ev.body = {{"allowed", allowed},
             {"overall_code", allowed ? "OK" : "OVER_LIMIT"},
             {"retry_after_ms", allowed ? json(0)
                                : never ? json(nullptr)
                                        : json(headers::ceil_millis(retry))},
             {"delay_ms", headers::ceil_millis(delay)},
             {"statuses", std::move(statuses)}};
  if (!decided) ev.body["store_error"] = true;
  headers::append(quotas, options.legacy_headers, ev.headers);
  if (!allowed && !never) ev.headers.emplace_back("Retry-After", headers::retry_after(retry));
  return ev;
}

void RateLimitService::Impl::Delayed::send() {
  std::lock_guard lock(mu);
  if (sent) return;
  sent = true;
  out.send(std::move(resp));
}

bool RateLimitService::Impl::Delayed::done() {
  std::lock_guard lock(mu);
  return sent;
}

void RateLimitService::Impl::send_later(Nanos delay, net::Responder out, net::Response resp) {
  auto ms = std::chrono::milliseconds(headers::ceil_millis(delay));
  {
    std::lock_guard lock(mu);
    if (stopped) ms = std::chrono::milliseconds{0};
  }
  if (ms.count() == 0) {
    out.send(std::move(resp));
    return;
  }
  auto slot = std::make_shared<Delayed>();
  slot->out = std::move(out);
  slot->resp = std::move(resp);
  // The callback holds only the slot, never the service: it may run after the service is gone.
  net::TimerHandle timer = scheduler(ms, [slot] { slot->send(); });
  std::unique_lock lock(mu);
  if (stopped) {  // shut down meanwhile: nobody would fire it
    lock.unlock();
    slot->send();
    return;
  }
  std::erase_if(delayed, [](auto& d) { return d.first->done(); });
  delayed.emplace_back(std::move(slot), std::move(timer));
}

void RateLimitService::Impl::maintain() {
  store.maintain();
  reap_permits(clock.now());
  std::lock_guard lock(mu);
  std::erase_if(delayed, [](auto& d) { return d.first->done(); });
}

void RateLimitService::Impl::arm_maintenance() {
  net::TimerHandle old;
  std::lock_guard lock(mu);
  if (stopped) return;
  old = std::move(maintenance_timer);
  maintenance_timer = scheduler(options.maintain_interval, [this] {
    maintain();
    arm_maintenance();
  });
}

void RateLimitService::Impl::shutdown() {
  std::vector<std::pair<std::shared_ptr<Delayed>, net::TimerHandle>> pending;
  net::TimerHandle timer;
  {
    std::unique_lock lock(mu);
    stopped = true;
    // Store calls in flight answer through this service; a store bounds each by its timeout.
    // Their replies go out at once from here on (send_later sees `stopped`).
    async_cv.wait(lock, [this] { return async_pending == 0; });
    pending.swap(delayed);
    timer = std::move(maintenance_timer);
  }
  timer.cancel();
  for (auto& [slot, handle] : pending) {
    handle.cancel();
    slot->send();
  }
  release_all_permits();
}

// ---- RateLimitService ----

RateLimitService::RateLimitService(RulesSource& rules, Store& store,
                                   ConcurrencyLimiter* concurrency, const Clock& clock,
                                   metrics::Registry& metrics, Scheduler scheduler,
                                   IdGenerator& ids, ServiceOptions options)
    : impl_(std::make_unique<Impl>(rules, store, concurrency, clock, metrics, std::move(scheduler),
                                   ids, std::move(options))) {}

RateLimitService::~RateLimitService() {
  shutdown();
}

void RateLimitService::set_reloader(Reloader reloader) {
  impl_->reloader = std::move(reloader);
}

void RateLimitService::record_reload(const Status& outcome) {
  (outcome.is_ok() ? impl_->reloads_ok : impl_->reloads_error).inc();
  impl_->rules_version.set(static_cast<double>(impl_->rules.version()));
}

void RateLimitService::start() {
  impl_->arm_maintenance();
}
void RateLimitService::maintain() {
  impl_->maintain();
}
void RateLimitService::shutdown() {
  impl_->shutdown();
}

size_t RateLimitService::permits_held() const {
  std::lock_guard lock(impl_->mu);
  return impl_->permits.size();
}

size_t RateLimitService::delayed_replies() const {
  std::lock_guard lock(impl_->mu);
  size_t n = 0;
  for (const auto& d : impl_->delayed) n += d.first->done() ? 0 : 1;
  return n;
}

}  // namespace sd::ratelimit
