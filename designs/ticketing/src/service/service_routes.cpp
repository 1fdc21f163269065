// TicketingService HTTP handlers: the /v1 API, the live streams and the web UI.
#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "sd/net/json.hpp"
#include "service_internal.hpp"
#include "web_assets.hpp"

namespace sd::ticketing {

using json = nlohmann::json;
using service_detail::dump;
using service_detail::error_response;
using service_detail::event_json;
using service_detail::hold_json;
using service_detail::order_json;
using service_detail::queue_json;
using service_detail::seat_json;

namespace service_detail {

Status validate_customer(const std::string& customer) {
  if (customer.empty() || customer.size() > 128) {
    return invalid_argument("customer must be 1..128 bytes of [A-Za-z0-9._@-]");
  }
  for (char c : customer) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '@' || c == '-';
    if (!ok) return invalid_argument("customer must be 1..128 bytes of [A-Za-z0-9._@-]");
  }
  return Status::ok();
}

Result<int64_t> parse_id(const std::string& text, const char* what) {
  int64_t v = 0;
  bool ok = !text.empty() && text.size() <= 18;
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    v = v * 10 + (c - '0');
  }
  if (!ok || v <= 0) {
    return invalid_argument(std::string(what) + " must be a positive integer, got '" + text + "'");
  }
  return v;
}

}  // namespace service_detail

namespace {

using Impl = TicketingService::Impl;

// What a handler needs of a request after it returned (the Request is gone by then).
struct Call {
  std::map<std::string, std::string> params;
  std::string path;
  std::string body;
  std::optional<std::string> idempotency_key;
  std::optional<std::string> queue_ticket;
  const std::string& param(const std::string& n) const {
    static const std::string kEmpty;
    auto it = params.find(n);
    return it == params.end() ? kEmpty : it->second;
  }
  // The canonical request an idempotency key is bound to: method, path and body.
  std::string request_text() const { return "POST " + path + "\n" + body; }
};

Call capture(net::Request& req) {
  Call c;
  c.params = req.params;
  c.path = req.path;
  c.body = std::move(req.body);
  if (const std::string* k = req.header("Idempotency-Key")) c.idempotency_key = *k;
  if (const std::string* t = req.header("X-Queue-Ticket")) c.queue_ticket = *t;
  return c;
}

net::Response bad_request(const Status& st) {
  return net::Response::error(400, "invalid_argument", st.message());
}

// The JSON object body of a POST with its "customer" (required), or the 400/413 to answer.
struct Body {
  json obj;
  std::string customer;
};
std::variant<Body, net::Response> parse_body(const Impl& s, const std::string& body) {
  if (body.size() > s.options.max_body_bytes) {
    return net::Response::error(413, "payload_too_large",
                                "payload_too_large: request body exceeds " +
                                    std::to_string(s.options.max_body_bytes) + " bytes");
  }
  auto obj = net::parse_json_object(body);
  if (!obj) return bad_request(obj.status());
  auto customer = net::get_string(*obj, "customer");
  if (!customer) return bad_request(customer.status());
  if (!customer->has_value() || (*customer)->empty()) {
    return bad_request(invalid_argument("field 'customer' is required"));
  }
  return Body{std::move(*obj), std::move(**customer)};
}

json seats_doc(EventId event, const std::vector<Seat>& seats) {
  json list = json::array();
  for (const Seat& s : seats) list.push_back(seat_json(s));
  return {{"event", event}, {"seats", std::move(list)}};
}

// The seats of an event; kNotFound for an unknown event (an event has at least one seat).
Result<std::vector<Seat>> event_seats(Impl& s, EventId event) {
  auto seats = s.booking.db().seats(event, s.now_ms());
  if (!seats) return seats.status();
  if (seats->empty()) {
    auto e = s.booking.db().event(event, s.now_ms());
    if (!e) return e.status();
  }
  return seats;
}

double seconds_since(const Clock& clock, TimePoint start) {
  return std::chrono::duration<double>(clock.now() - start).count();
}

net::Response ui_page(const Impl& s, std::string_view path) {
  const web::Asset* a = s.options.ui ? web::find_asset(path) : nullptr;
  if (a == nullptr) return net::Response::error(404, "not_found", "no such page");
  net::Response r = net::Response::text(200, std::string(a->body), std::string(a->content_type));
  r.headers.emplace_back("Cache-Control", "no-cache");
  return r;
}

}  // namespace

// ---- routes ---------------------------------------------------------------------------------

void TicketingService::add_routes(net::Router& router) {
  add_routes(router, [this] { return this; });
}

void TicketingService::add_routes(net::Router& router, std::function<TicketingService*()> resolve) {
  using net::Method;
  using Fn = void (*)(Impl*, net::Request&, net::Responder);
  auto route = [&router, &resolve](Method m, const char* pattern, Fn fn) {
    router.add_async(m, pattern, [resolve, fn](net::Request& req, net::Responder out) {
      TicketingService* svc = resolve();
      if (svc == nullptr) {
        return out.send(net::Response::error(503, "unavailable", "service not ready"));
      }
      fn(svc->impl_.get(), req, std::move(out));
    });
  };

  // ---- catalog ----
  route(Method::kGet, "/v1/events", [](Impl* s, net::Request&, net::Responder out) {
    s->offload(std::move(out), [s] {
      auto events = s->booking.db().events(s->now_ms());
      if (!events) return error_response(events.status());
      json list = json::array();
      for (const Event& e : *events) list.push_back(event_json(e));
      return net::Response::json(200, {{"events", std::move(list)}});
    });
  });

  route(Method::kGet, "/v1/events/{id}", [](Impl* s, net::Request& req, net::Responder out) {
    auto id = service_detail::parse_id(req.param("id"), "event id");
    if (!id) return out.send(bad_request(id.status()));
    s->offload(std::move(out), [s, event = *id] {
      auto e = s->booking.db().event(event, s->now_ms());
      if (!e) return error_response(e.status());
      auto tiers = s->booking.db().tiers(event);
      if (!tiers) return error_response(tiers.status());
      json j = event_json(*e);
      json t = json::array();
      for (const PriceTier& tier : *tiers) {
        t.push_back({{"name", tier.name}, {"price_cents", tier.price_cents}});
      }
      j["tiers"] = std::move(t);
      j["hold_ttl_s"] = s->booking.options().hold_ttl_ms / 1000;
      j["max_seats_per_hold"] = s->booking.options().max_seats_per_hold;
      j["strategy"] = strategy_name(s->booking.strategy().kind());
      return net::Response::json(200, j);
    });
  });

  route(Method::kGet, "/v1/events/{id}/seats", [](Impl* s, net::Request& req, net::Responder out) {
    auto id = service_detail::parse_id(req.param("id"), "event id");
    if (!id) return out.send(bad_request(id.status()));
    s->offload(std::move(out), [s, event = *id] {
      auto seats = event_seats(*s, event);
      if (!seats) return error_response(seats.status());
      return net::Response::json(200, seats_doc(event, *seats));
    });
  });

  // Snapshot first: subscribe, then read, so no change after the read is missed (sse_hub.hpp).
  route(Method::kGet, "/v1/events/{id}/seats/stream",
        [](Impl* s, net::Request& req, net::Responder out) {
          auto id = service_detail::parse_id(req.param("id"), "event id");
          if (!id) return out.send(bad_request(id.status()));
          if (s->streams_full()) {
            return out.send(net::Response::error(503, "unavailable", "too many open streams"));
          }
          s->offload(std::move(out), [s, event = *id] {
            auto stream = net::EventStream::create(s->options.streams);
            auto sub = s->seat_hub->subscribe(event, stream);
            auto seats = event_seats(*s, event);
            if (!seats) {
              s->seat_hub->unsubscribe(*sub);
              stream->close();
              return error_response(seats.status());
            }
            s->seat_hub->ready(*sub, dump(seats_doc(event, *seats)), *seats);
            return net::sse_response(stream);
          });
        });

  route(Method::kGet, "/v1/strategy", [](Impl* s, net::Request&, net::Responder out) {
    const SeatStrategy& st = s->booking.strategy();
    out.send(
        net::Response::json(200, {{"strategy", strategy_name(st.kind())},
                                  {"stats", service_detail::strategy_stats_json(st.stats())}}));
  });

  // ---- holds and orders ----
  route(Method::kPost, "/v1/events/{id}/holds", [](Impl* s, net::Request& req, net::Responder out) {
    TimePoint start = s->clock.now();
    auto id = service_detail::parse_id(req.param("id"), "event id");
    if (!id) return out.send(bad_request(id.status()));
    s->offload(std::move(out), [s, event = *id, call = capture(req), start] {
      auto parsed = parse_body(*s, call.body);
      if (auto* r = std::get_if<net::Response>(&parsed)) return std::move(*r);
      Body& b = std::get<Body>(parsed);
      HoldRequest hr;
      hr.event = event;
      hr.customer = b.customer;
      auto seats = b.obj.find("seats");
      if (seats == b.obj.end() || !seats->is_array()) {
        return bad_request(invalid_argument("field 'seats' must be an array of seat ids"));
      }
      for (const json& v : *seats) {
        if (!v.is_number_integer()) {
          return bad_request(invalid_argument("field 'seats' must be an array of seat ids"));
        }
        hr.seats.push_back(v.get<SeatId>());
      }
      auto ttl = net::get_int(b.obj, "ttl_s", 1, 7 * 24 * 3600);
      if (!ttl) return bad_request(ttl.status());
      if (ttl->has_value()) hr.ttl_ms = **ttl * 1000;
      // Admission before the idempotency key: a 403 must not be stored and replayed once the
      // shopper is admitted.
      if (WaitingRoom* room = s->room_for(event)) {
        if (!call.queue_ticket || !room->is_active(*call.queue_ticket, b.customer)) {
          s->count("hold", "not_admitted");
          return net::Response::error(
              403, "not_admitted",
              "not_admitted: event " + std::to_string(event) +
                  " sells through its waiting room; join the queue and send the active "
                  "ticket in X-Queue-Ticket");
        }
      }
      const std::string* key = call.idempotency_key ? &*call.idempotency_key : nullptr;
      net::Response r = s->idempotent(key, b.customer, call.request_text(), [&] {
        // Inside: a replay of a stored answer is not an attempt (and a 429 is never stored).
        if (auto limited = s->limit_hold(event, b.customer)) {
          s->count("hold", "rate_limited");
          return std::move(*limited);
        }
        auto hold = s->booking.hold(hr);
        if (!hold) {
          s->count("hold", service_detail::http_error(hold.status()).code);
          return error_response(hold.status());
        }
        s->count("hold", "ok");
        return net::Response::json(201, hold_json(*hold, s->now_ms()));
      });
      s->hold_latency.observe(seconds_since(s->clock, start));
      return r;
    });
  });

  route(Method::kGet, "/v1/holds/{id}", [](Impl* s, net::Request& req, net::Responder out) {
    s->offload(std::move(out), [s, id = req.param("id")] {
      auto hold = s->booking.db().hold(id);
      if (!hold) return error_response(hold.status());
      return net::Response::json(200, hold_json(*hold, s->now_ms()));
    });
  });

  route(Method::kPost, "/v1/holds/{id}/pay", [](Impl* s, net::Request& req, net::Responder out) {
    TimePoint start = s->clock.now();
    s->offload(std::move(out), [s, call = capture(req), start] {
      auto parsed = parse_body(*s, call.body);
      if (auto* r = std::get_if<net::Response>(&parsed)) return std::move(*r);
      Body& b = std::get<Body>(parsed);
      auto card = net::get_string(b.obj, "card");
      if (!card) return bad_request(card.status());
      if (!card->has_value()) return bad_request(invalid_argument("field 'card' is required"));
      PayRequest pr{call.param("id"), b.customer, **card};
      const std::string* key = call.idempotency_key ? &*call.idempotency_key : nullptr;
      net::Response r = s->idempotent(key, b.customer, call.request_text(), [&] {
        auto order = s->booking.pay(pr);
        if (!order) {
          s->count("pay", service_detail::http_error(order.status()).code);
          return error_response(order.status());
        }
        s->count("pay", "ok");
        return net::Response::json(201, order_json(*order));
      });
      s->pay_latency.observe(seconds_since(s->clock, start));
      return r;
    });
  });

  route(Method::kPost, "/v1/holds/{id}/cancel", [](Impl* s, net::Request& req, net::Responder out) {
    s->offload(std::move(out), [s, call = capture(req)] {
      auto parsed = parse_body(*s, call.body);
      if (auto* r = std::get_if<net::Response>(&parsed)) return std::move(*r);
      Body& b = std::get<Body>(parsed);
      const std::string* key = call.idempotency_key ? &*call.idempotency_key : nullptr;
      return s->idempotent(key, b.customer, call.request_text(), [&] {
        const std::string& id = call.param("id");
        Status st = s->booking.cancel_hold(id, b.customer);
        s->count("cancel_hold", st ? "ok" : service_detail::http_error(st).code);
        if (!st) return error_response(st);
        auto hold = s->booking.db().hold(id);
        if (!hold) return error_response(hold.status());
        return net::Response::json(200, hold_json(*hold, s->now_ms()));
      });
    });
  });

  route(Method::kGet, "/v1/orders/{id}", [](Impl* s, net::Request& req, net::Responder out) {
    s->offload(std::move(out), [s, id = req.param("id")] {
      auto order = s->booking.db().order(id);
      if (!order) return error_response(order.status());
      return net::Response::json(200, order_json(*order));
    });
  });

  route(Method::kPost, "/v1/orders/{id}/cancel",
        [](Impl* s, net::Request& req, net::Responder out) {
          s->offload(std::move(out), [s, call = capture(req)] {
            auto parsed = parse_body(*s, call.body);
            if (auto* r = std::get_if<net::Response>(&parsed)) return std::move(*r);
            Body& b = std::get<Body>(parsed);
            const std::string* key = call.idempotency_key ? &*call.idempotency_key : nullptr;
            return s->idempotent(key, b.customer, call.request_text(), [&] {
              auto order = s->booking.cancel_order(call.param("id"), b.customer);
              if (!order) {
                s->count("cancel_order", service_detail::http_error(order.status()).code);
                return error_response(order.status());
              }
              s->count("cancel_order", "ok");
              return net::Response::json(200, order_json(*order));
            });
          });
        });

  // ---- waiting room ----
  route(Method::kPost, "/v1/events/{id}/queue", [](Impl* s, net::Request& req, net::Responder out) {
    auto id = service_detail::parse_id(req.param("id"), "event id");
    if (!id) return out.send(bad_request(id.status()));
    s->offload(std::move(out), [s, event = *id, call = capture(req)] {
      auto parsed = parse_body(*s, call.body);
      if (auto* r = std::get_if<net::Response>(&parsed)) return std::move(*r);
      Body& b = std::get<Body>(parsed);
      if (Status st = service_detail::validate_customer(b.customer); !st) {
        return bad_request(st);
      }
      WaitingRoom* room = s->room_for(event);
      if (room == nullptr) {
        auto e = s->booking.db().event(event, s->now_ms());
        if (!e) return error_response(e.status());
        return net::Response::error(
            400, "no_waiting_room",
            "event " + std::to_string(event) + " has no waiting room: hold seats directly");
      }
      auto st = room->join(b.customer);
      if (!st) {
        if (st.status().code() == Code::kResourceExhausted) {
          return net::Response::error(503, "queue_full", st.status().message());
        }
        return error_response(st.status());
      }
      return net::Response::json(200, queue_json(*st, event));
    });
  });

  route(Method::kGet, "/v1/queue/{ticket}", [](Impl* s, net::Request& req, net::Responder out) {
    auto found = s->find_ticket(req.param("ticket"));
    if (!found) return out.send(net::Response::error(404, "not_found", "no such queue ticket"));
    out.send(net::Response::json(200, queue_json(found->status, found->event)));
  });

  route(Method::kGet, "/v1/queue/{ticket}/stream",
        [](Impl* s, net::Request& req, net::Responder out) {
          if (s->streams_full()) {
            return out.send(net::Response::error(503, "unavailable", "too many open streams"));
          }
          auto found = s->find_ticket(req.param("ticket"));
          if (!found) {
            return out.send(net::Response::error(404, "not_found", "no such queue ticket"));
          }
          auto stream = net::EventStream::create(s->options.streams);
          auto watch = s->queue_hub->subscribe(found->event, found->status.ticket, stream);
          s->push_status(*watch, found->status, true);
          out.send(net::sse_response(stream));
        });

  route(Method::kPost, "/v1/queue/{ticket}/leave",
        [](Impl* s, net::Request& req, net::Responder out) {
          auto found = s->find_ticket(req.param("ticket"));
          if (!found) {
            return out.send(net::Response::error(404, "not_found", "no such queue ticket"));
          }
          if (Status st = found->room->leave(found->status.ticket); !st) {
            return out.send(error_response(st));
          }
          QueueStatus left = found->status;
          left.state = QueueState::kLeft;
          left.position = 0;
          left.eta_ms = 0;
          left.active_left_ms = 0;
          if (auto now = found->room->status(left.ticket)) left = *now;
          out.send(net::Response::json(200, queue_json(left, found->event)));
        });

  // ---- web UI ----
  route(Method::kGet, "/",
        [](Impl* s, net::Request&, net::Responder out) { out.send(ui_page(*s, "index.html")); });
  route(Method::kGet, "/events/{id}",
        [](Impl* s, net::Request&, net::Responder out) { out.send(ui_page(*s, "index.html")); });
  route(Method::kGet, "/queue/{id}",
        [](Impl* s, net::Request&, net::Responder out) { out.send(ui_page(*s, "index.html")); });
  route(Method::kGet, "/static/{file}", [](Impl* s, net::Request& req, net::Responder out) {
    out.send(ui_page(*s, req.param("file")));
  });
}

}  // namespace sd::ticketing
