// RateLimitService HTTP handlers: /v1/check, /v1/auth/{domain}, /v1/concurrency/*, /v1/rules.

#include <chrono>
#include <utility>

#include "service_internal.hpp"

namespace sd::ratelimit {

using service_detail::ApiError;
using service_detail::CheckRequest;
using json = nlohmann::json;

struct RateLimitService::Routes {
  using Impl = RateLimitService::Impl;

  static void observe(metrics::Histogram& h, const Clock& clock, TimePoint start) {
    h.observe(std::chrono::duration<double>(clock.now() - start).count());
  }

  static void check(Impl& s, net::Request& req, net::Responder out) {
    TimePoint start = s.clock.now();
    auto parsed = service_detail::parse_check(req.body, s.options);
    if (auto* err = std::get_if<ApiError>(&parsed)) return out.send(err->response());
    // std::function needs a copyable callable; the Responder is move-only.
    auto o = std::make_shared<net::Responder>(std::move(out));
    s.evaluate_async(std::get<CheckRequest>(parsed), [&s, o, start](auto ev) {
      if (auto* err = std::get_if<ApiError>(&ev)) return o->send(err->response());
      auto& e = std::get<Impl::Evaluation>(ev);
      net::Response r = net::Response::json(e.status, e.body);
      r.headers = std::move(e.headers);
      observe(s.latency_check, s.clock, start);
      o->send(std::move(r));  // the caller applies delay_ms itself
    });
  }

  // nginx auth_request: 204 lets the request through, 429 stops it; the leaky-queue delay is
  // applied here by holding the answer (nginx waits for the subrequest). auth_request passes only
  // 2xx/401/403 through and logs any other status as an error, so ?deny_status=403 lets the nginx
  // config map a denial to 429 without an error log line per denied request.
  static void auth(Impl& s, net::Request& req, net::Responder out) {
    TimePoint start = s.clock.now();
    int deny_status = 429;
    if (auto it = req.query.find("deny_status"); it != req.query.end()) {
      if (it->second != "403" && it->second != "429") {
        return out.send(
            net::Response::error(400, "invalid_deny_status", "deny_status must be 403 or 429"));
      }
      deny_status = it->second == "403" ? 403 : 429;
    }
    auto parsed = service_detail::parse_auth(req, s.options);
    if (auto* err = std::get_if<ApiError>(&parsed)) return out.send(err->response());
    auto o = std::make_shared<net::Responder>(std::move(out));
    s.evaluate_async(std::get<CheckRequest>(parsed), [&s, o, start, deny_status](auto ev) {
      if (auto* err = std::get_if<ApiError>(&ev)) return o->send(err->response());
      auto& e = std::get<Impl::Evaluation>(ev);
      net::Response r;
      if (e.status == 200) {
        r.status = 204;
        r.content_type.clear();
      } else {
        r = net::Response::json(e.status == 429 ? deny_status : e.status, e.body);
      }
      r.headers = std::move(e.headers);
      observe(s.latency_auth, s.clock, start);
      s.send_later(e.delay, std::move(*o), std::move(r));
    });
  }

  static void acquire(Impl& s, net::Request& req, net::Responder out) {
    TimePoint start = s.clock.now();
    auto parsed = service_detail::parse_check(req.body, s.options);
    if (auto* err = std::get_if<ApiError>(&parsed)) return out.send(err->response());
    net::Response r = s.acquire(std::get<CheckRequest>(parsed));
    observe(s.latency_acquire, s.clock, start);
    out.send(std::move(r));
  }

  static void release(Impl& s, net::Request& req, net::Responder out) {
    auto parsed = service_detail::parse_release(req.body, s.options);
    if (auto* err = std::get_if<ApiError>(&parsed)) return out.send(err->response());
    out.send(s.release(std::get<std::string>(parsed)));
  }

  static json rule_json(const RuleNode& rule, const std::string& domain) {
    json j = {{"id", rule.id},
              {"domain", domain},
              {"key", rule.key},
              {"value", rule.value ? json(*rule.value) : json(nullptr)},
              {"shadow", rule.shadow_mode},
              {"file", rule.file},
              {"line", rule.line}};
    if (rule.rate_limit) {
      const RateLimitSpec& r = *rule.rate_limit;
      j["rate_limit"] = {{"policy", service_detail::policy_name(rule)},
                         {"unit", r.unit},
                         {"requests_per_unit", r.requests_per_unit},
                         {"algorithm", algorithm_name(r.algorithm)},
                         {"burst", r.limit.burst},
                         {"unlimited", r.unlimited}};
    }
    if (rule.concurrency) j["concurrency"] = {{"max_in_flight", rule.concurrency->max_in_flight}};
    return j;
  }

  static void rules(Impl& s, net::Request&, net::Responder out) {
    uint64_t version = s.rules.version();
    auto c = s.cache_for(s.rules.current());
    json list = json::array();
    for (const RuleNode* rule : c->rules->rules()) {
      list.push_back(rule_json(*rule, c->rule_domain.at(rule)));
    }
    out.send(net::Response::json(200, {{"version", version},
                                       {"files", c->rules->files()},
                                       {"domains", c->rules->domains()},
                                       {"rules", std::move(list)}}));
  }

  static void reload(Impl& s, net::Request&, net::Responder out) {
    if (!s.reloader) {
      return out.send(net::Response::error(501, "reload_unsupported", "no rules path to reload"));
    }
    Status st = s.reloader();  // RulesWatcher::reload reports to record_reload itself
    if (!st) return out.send(net::Response::error(400, "invalid_rules", st.message()));
    out.send(net::Response::json(200, {{"reloaded", true}, {"version", s.rules.version()}}));
  }
};

void RateLimitService::register_routes(net::Router& router) {
  register_routes(router, [this] { return this; });
}

void RateLimitService::register_routes(net::Router& router,
                                       std::function<RateLimitService*()> resolve) {
  using net::Method;
  using R = Routes;
  auto route = [&](Method m, const std::string& pattern, auto fn) {
    router.add_async(m, pattern, [resolve, fn](net::Request& req, net::Responder out) {
      RateLimitService* s = resolve();
      if (s == nullptr) {
        out.send(net::Response::error(503, "unavailable", "service not ready"));
        return;
      }
      fn(*s->impl_, req, std::move(out));
    });
  };
  route(Method::kPost, "/v1/check", &R::check);
  route(Method::kGet, "/v1/auth/{domain}", &R::auth);
  route(Method::kPost, "/v1/auth/{domain}", &R::auth);
  route(Method::kPost, "/v1/concurrency/acquire", &R::acquire);
  route(Method::kPost, "/v1/concurrency/release", &R::release);
  route(Method::kGet, "/v1/rules", &R::rules);
  route(Method::kPost, "/v1/rules/reload", &R::reload);
}

}  // namespace sd::ratelimit
