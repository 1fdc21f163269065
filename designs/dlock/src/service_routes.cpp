// LockService HTTP handlers: /v1/leases, /v1/locks, /v1/semaphores.

#include <utility>

#include "sd/dlock/service.hpp"
#include "service_http.hpp"

namespace sd::dlock {

using namespace service_detail;  // NOLINT(google-build-using-namespace)

struct LockService::Routes {
  // Runs op(core) under core_mu_, then the common epilogue; sends waiter responses after unlocking.
  template <class Op>
  static net::Response with_core(LockService& s, Op&& op) {
    Outbox out;
    net::Response resp;
    {
      std::lock_guard lock(s.core_mu_);
      TimePoint start = s.clock_.now();
      resp = op(s.core_);
      s.after_core_call_locked(out, start);
    }
    s.flush(out);
    return resp;
  }

  static const Limits& limits(const LockService& s) { return s.core_.options().limits; }

  // ---- leases ----

  static net::Response create_lease(LockService& s, net::Request& req) {
    auto body = parse_body(req.body, false);
    if (!body) return status_response(body.status());
    const Limits& lim = limits(s);
    auto ttl = read_int(*body, "ttl_ms", "invalid_ttl", lim.min_ttl.count(), lim.max_ttl.count());
    if (!ttl) return status_response(ttl.status());
    if (!ttl->has_value()) return status_response(bad_request("invalid_ttl", "ttl_ms is required"));
    return with_core(s, [&](LockCore& core) {
      auto lease = core.create_lease(Duration(**ttl));
      if (!lease) return status_response(lease.status());
      return net::Response::json(201, {{"lease_id", lease->id}, {"ttl_ms", lease->ttl.count()}});
    });
  }

  static net::Response keepalive(LockService& s, net::Request& req) {
    const std::string& id = req.param("id");
    if (Status st = check_lease_id(id); !st) return status_response(st);
    if (auto body = parse_body(req.body, true); !body) return status_response(body.status());
    return with_core(s, [&](LockCore& core) {
      auto lease = core.keepalive(id);
      if (!lease) return status_response(lease.status(), "lease_not_found");
      return net::Response::json(200, {{"lease_id", lease->id}, {"ttl_ms", lease->ttl.count()}});
    });
  }

  static net::Response get_lease(LockService& s, net::Request& req) {
    const std::string& id = req.param("id");
    if (Status st = check_lease_id(id); !st) return status_response(st);
    return with_core(s, [&](LockCore& core) {
      auto lease = core.lease(id);
      if (!lease) return status_response(lease.status(), "lease_not_found");
      return net::Response::json(200, lease_json(*lease));
    });
  }

  static net::Response revoke_lease(LockService& s, net::Request& req) {
    const std::string& id = req.param("id");
    if (Status st = check_lease_id(id); !st) return status_response(st);
    return with_core(s, [&](LockCore& core) {
      Status st = core.revoke_lease(id);
      if (!st) return status_response(st, "lease_not_found");
      return net::Response::json(200, {{"lease_id", id}, {"revoked", true}});
    });
  }

  // ---- locks and semaphores ----

  // A waiting acquire finds the lease already waiting on this name. The usual cause is a client
  // that lost its connection while parked and retried: the old request can no longer be answered,
  // and if it were granted later the client would never learn its token. So the newer request
  // replaces it (at the back of the queue); the old one gets 409 "superseded". Returns false if no
  // such parked request.
  static bool supersede_locked(LockService& s, Kind kind, const AcquireRequest& ar, Outbox& out) {
    auto k = s.parked_by_key_.find(parked_key(kind, ar.lease_id, ar.name));
    if (k == s.parked_by_key_.end()) return false;
    auto it = s.parked_.find(k->second);
    if (it == s.parked_.end()) return false;
    WaiterId old_id = it->first;
    Parked old = s.unpark_locked(it);
    s.core_.cancel_wait(old_id);
    out.responses.push_back(
        {std::move(old.responder),
         net::Response::error(409, "superseded",
                              "replaced by a newer acquire of the same name by the same lease"),
         false,
         {}});
    return true;
  }

  static void acquire(LockService& s, Kind kind, net::Request& req, net::Responder responder) {
    const std::string& name = req.param("name");
    if (Status st = check_name(name, limits(s)); !st) {
      s.acquire_error_.inc();
      responder.send(status_response(st));
      return;
    }
    auto params = parse_acquire(kind, name, req.body, limits(s));
    if (!params) {
      s.acquire_error_.inc();
      responder.send(status_response(params.status()));
      return;
    }
    AcquireRequest& ar = params->request;
    Outbox out;
    net::Response resp;
    bool parked = false;
    {
      std::lock_guard lock(s.core_mu_);
      TimePoint start = s.clock_.now();
      std::optional<LeaseId> own_lease;
      long long own_ttl_ms = 0;
      if (params->shortcut_ttl) {
        auto lease = s.core_.create_lease(*params->shortcut_ttl);
        if (lease) {
          own_lease = lease->id;
          own_ttl_ms = lease->ttl.count();
          ar.lease_id = lease->id;
        } else {
          resp = status_response(lease.status());
        }
      }
      if (!ar.lease_id.empty()) {
        auto outcome = s.core_.acquire(ar);
        if (!outcome && ar.wait.count() > 0 && outcome.status().code() == Code::kConflict &&
            outcome.status().message().starts_with("already_waiting") &&
            supersede_locked(s, kind, ar, out)) {
          outcome = s.core_.acquire(ar);
        }
        if (!outcome) {
          if (own_lease) (void)s.core_.revoke_lease(*own_lease);
          const Status& st = outcome.status();
          bool locked = st.code() == Code::kConflict && st.message().starts_with("locked");
          (locked ? s.acquire_locked_ : s.acquire_error_).inc();
          resp = status_response(st, "lease_not_found");
        } else if (outcome->granted) {
          s.acquire_granted_.inc();
          resp = grant_response(outcome->grant, ar.limit, own_ttl_ms);
        } else if (s.stopped_) {
          s.core_.cancel_wait(outcome->waiter);
          if (own_lease) (void)s.core_.revoke_lease(*own_lease);
          s.acquire_error_.inc();
          resp = net::Response::error(503, "unavailable", "server is shutting down");
        } else {
          s.acquire_queued_.inc();
          // Fires (on an I/O thread, needing core_mu_) only after this handler has returned.
          responder.on_abandoned(s.abandon_callback(outcome->waiter));
          std::string key = parked_key(kind, ar.lease_id, ar.name);
          s.parked_by_key_[key] = outcome->waiter;
          s.parked_.emplace(outcome->waiter, Parked{std::move(responder), kind, ar.limit, own_lease,
                                                    own_ttl_ms, std::move(key)});
          parked = true;
        }
      } else {
        s.acquire_error_.inc();
      }
      s.after_core_call_locked(out, start);
    }
    s.flush(out);
    if (!parked) responder.send(std::move(resp));
  }

  static net::Response release(LockService& s, Kind kind, net::Request& req) {
    const std::string& name = req.param("name");
    if (Status st = check_name(name, limits(s)); !st) return status_response(st);
    auto params = parse_release(req.body);
    if (!params) return status_response(params.status());
    return with_core(s, [&](LockCore& core) {
      Status st = core.release(kind, name, params->lease_id, params->token);
      if (!st) return status_response(st, "lease_not_found");
      return net::Response::json(200, {{"released", true}});
    });
  }

  static net::Response describe(LockService& s, Kind kind, net::Request& req) {
    const std::string& name = req.param("name");
    if (Status st = check_name(name, limits(s)); !st) return status_response(st);
    return with_core(s, [&](LockCore& core) {
      auto info = core.describe(kind, name);
      if (!info) return status_response(info.status(), "not_found");
      return net::Response::json(200, lock_info_json(*info));
    });
  }

  static net::Response list(LockService& s, Kind kind, net::Request& req) {
    std::string prefix;
    if (auto it = req.query.find("prefix"); it != req.query.end()) prefix = it->second;
    if (!prefix.empty()) {
      if (Status st = check_name(prefix, limits(s)); !st) return status_response(st);
    }
    auto it = req.query.find("limit");
    auto limit = parse_list_limit(it == req.query.end() ? nullptr : &it->second);
    if (!limit) return status_response(limit.status());
    return with_core(s, [&](LockCore& core) {
      nlohmann::json items = nlohmann::json::array();
      for (const LockInfo& info : core.list(kind, prefix, *limit)) {
        items.push_back(lock_info_json(info));
      }
      const char* key = kind == Kind::kLock ? "locks" : "semaphores";
      return net::Response::json(200, {{key, std::move(items)}});
    });
  }
};

void LockService::register_routes(net::Router& router) {
  register_routes(router, [this] { return this; });
}

void LockService::register_routes(net::Router& router, std::function<LockService*()> resolve) {
  using net::Method;
  using R = Routes;
  auto sync = [&](Method m, const char* pattern, auto fn) {
    router.add(m, pattern, [resolve, fn](net::Request& req) {
      LockService* s = resolve();
      if (s == nullptr) return net::Response::error(503, "unavailable", "service not ready");
      return fn(*s, req);
    });
  };
  sync(Method::kPost, "/v1/leases", &R::create_lease);
  sync(Method::kGet, "/v1/leases/{id}", &R::get_lease);
  sync(Method::kDelete, "/v1/leases/{id}", &R::revoke_lease);
  sync(Method::kPost, "/v1/leases/{id}/keepalive", &R::keepalive);

  for (Kind kind : {Kind::kLock, Kind::kSemaphore}) {
    std::string base = kind == Kind::kLock ? "/v1/locks" : "/v1/semaphores";
    router.add_async(Method::kPost, base + "/{name}/acquire",
                     [resolve, kind](net::Request& req, net::Responder out) {
                       LockService* s = resolve();
                       if (s == nullptr) {
                         out.send(net::Response::error(503, "unavailable", "service not ready"));
                         return;
                       }
                       R::acquire(*s, kind, req, std::move(out));
                     });
    auto with_kind = [&](Method m, const std::string& pattern, auto fn) {
      sync(m, pattern.c_str(),
           [kind, fn](LockService& s, net::Request& req) { return fn(s, kind, req); });
    };
    with_kind(Method::kPost, base + "/{name}/release", &R::release);
    with_kind(Method::kGet, base + "/{name}", &R::describe);
    with_kind(Method::kGet, base, &R::list);
  }
}

}  // namespace sd::dlock
