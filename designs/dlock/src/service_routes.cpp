// LockService HTTP handlers: /v1/leases, /v1/locks, /v1/semaphores.

#include <utility>

#include "sd/dlock/service.hpp"
#include "service_http.hpp"

namespace sd::dlock {

using namespace service_detail;  // NOLINT(google-build-using-namespace)

struct LockService::Routes {
  // Runs op(core) under core_mu_, then the common epilogue; answers `responder` with op's
  // response after the waiter responses, after unlocking -- and, with group commit, only once the
  // state it shows is durable.
  template <class Op>
  static void with_core(LockService& s, net::Responder responder, Op&& op) {
    Outbox out;
    {
      std::lock_guard lock(s.core_mu_);
      TimePoint start = s.clock_.now();
      net::Response resp = s.core_usable_locked() ? op(s.core_) : store_failed();
      s.after_core_call_locked(out, start);
      out.responses.push_back({std::move(responder), std::move(resp), false, {}});
      s.hold_until_durable_locked(out);
    }
    s.flush(out);
  }

  static net::Response store_failed() {
    return net::Response::error(503, "unavailable", "the store is failing; retry later");
  }

  static const Limits& limits(const LockService& s) { return s.core_.options().limits; }

  // ---- leases ----

  static void create_lease(LockService& s, net::Request& req, net::Responder out) {
    auto body = parse_body(req.body, false);
    if (!body) return out.send(status_response(body.status()));
    const Limits& lim = limits(s);
    auto ttl = read_int(*body, "ttl_ms", "invalid_ttl", lim.min_ttl.count(), lim.max_ttl.count());
    if (!ttl) return out.send(status_response(ttl.status()));
    if (!ttl->has_value())
      return out.send(status_response(bad_request("invalid_ttl", "ttl_ms is required")));
    with_core(s, std::move(out), [&](LockCore& core) {
      auto lease = core.create_lease(Duration(**ttl));
      if (!lease) return status_response(lease.status());
      return net::Response::json(201, {{"lease_id", lease->id}, {"ttl_ms", lease->ttl.count()}});
    });
  }

  static void keepalive(LockService& s, net::Request& req, net::Responder out) {
    const std::string& id = req.param("id");
    if (Status st = check_lease_id(id); !st) return out.send(status_response(st));
    if (auto body = parse_body(req.body, true); !body)
      return out.send(status_response(body.status()));
    with_core(s, std::move(out), [&](LockCore& core) {
      auto lease = core.keepalive(id);
      if (!lease) return status_response(lease.status(), "lease_not_found");
      return net::Response::json(200, {{"lease_id", lease->id}, {"ttl_ms", lease->ttl.count()}});
    });
  }

  static void get_lease(LockService& s, net::Request& req, net::Responder out) {
    const std::string& id = req.param("id");
    if (Status st = check_lease_id(id); !st) return out.send(status_response(st));
    with_core(s, std::move(out), [&](LockCore& core) {
      auto lease = core.lease(id);
      if (!lease) return status_response(lease.status(), "lease_not_found");
      return net::Response::json(200, lease_json(*lease));
    });
  }

  static void revoke_lease(LockService& s, net::Request& req, net::Responder out) {
    const std::string& id = req.param("id");
    if (Status st = check_lease_id(id); !st) return out.send(status_response(st));
    with_core(s, std::move(out), [&](LockCore& core) {
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
      const bool usable = s.core_usable_locked();
      if (!usable) resp = store_failed();
      if (usable && params->shortcut_ttl) {
        auto lease = s.core_.create_lease(*params->shortcut_ttl);
        if (lease) {
          own_lease = lease->id;
          own_ttl_ms = lease->ttl.count();
          ar.lease_id = lease->id;
        } else {
          resp = status_response(lease.status());
        }
      }
      if (usable && !ar.lease_id.empty()) {
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
      if (!parked) out.responses.push_back({std::move(responder), std::move(resp), false, {}});
      s.hold_until_durable_locked(out);
    }
    s.flush(out);
  }

  static void release(LockService& s, Kind kind, net::Request& req, net::Responder out) {
    const std::string& name = req.param("name");
    if (Status st = check_name(name, limits(s)); !st) return out.send(status_response(st));
    auto params = parse_release(req.body);
    if (!params) return out.send(status_response(params.status()));
    with_core(s, std::move(out), [&](LockCore& core) {
      Status st = core.release(kind, name, params->lease_id, params->token);
      if (!st) return status_response(st, "lease_not_found");
      return net::Response::json(200, {{"released", true}});
    });
  }

  static void describe(LockService& s, Kind kind, net::Request& req, net::Responder out) {
    const std::string& name = req.param("name");
    if (Status st = check_name(name, limits(s)); !st) return out.send(status_response(st));
    with_core(s, std::move(out), [&](LockCore& core) {
      auto info = core.describe(kind, name);
      if (!info) return status_response(info.status(), "not_found");
      return net::Response::json(200, lock_info_json(*info));
    });
  }

  static void list(LockService& s, Kind kind, net::Request& req, net::Responder out) {
    std::string prefix;
    if (auto it = req.query.find("prefix"); it != req.query.end()) prefix = it->second;
    if (!prefix.empty()) {
      if (Status st = check_name(prefix, limits(s)); !st) return out.send(status_response(st));
    }
    auto it = req.query.find("limit");
    auto limit = parse_list_limit(it == req.query.end() ? nullptr : &it->second);
    if (!limit) return out.send(status_response(limit.status()));
    with_core(s, std::move(out), [&](LockCore& core) {
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
  // Every route answers through a Responder: with group commit a reply may have to wait for the
  // commit that makes what it shows durable.
  auto route = [&](Method m, const std::string& pattern, auto fn) {
    router.add_async(m, pattern, [resolve, fn](net::Request& req, net::Responder out) {
      LockService* s = resolve();
      if (s == nullptr) {
        out.send(net::Response::error(503, "unavailable", "service not ready"));
        return;
      }
      fn(*s, req, std::move(out));
    });
  };
  route(Method::kPost, "/v1/leases", &R::create_lease);
  route(Method::kGet, "/v1/leases/{id}", &R::get_lease);
  route(Method::kDelete, "/v1/leases/{id}", &R::revoke_lease);
  route(Method::kPost, "/v1/leases/{id}/keepalive", &R::keepalive);

  for (Kind kind : {Kind::kLock, Kind::kSemaphore}) {
    std::string base = kind == Kind::kLock ? "/v1/locks" : "/v1/semaphores";
    auto with_kind = [&](Method m, const std::string& pattern, auto fn) {
      route(m, pattern, [kind, fn](LockService& s, net::Request& req, net::Responder out) {
        fn(s, kind, req, std::move(out));
      });
    };
    with_kind(Method::kPost, base + "/{name}/acquire", &R::acquire);
    with_kind(Method::kPost, base + "/{name}/release", &R::release);
    with_kind(Method::kGet, base + "/{name}", &R::describe);
    with_kind(Method::kGet, base, &R::list);
  }
}

}  // namespace sd::dlock
