#pragma once
// The JSON shapes of the ticketing API (model values -> JSON) and the mapping of core Status
// errors ("<code>: <text>") to HTTP statuses and {"error","message"} bodies.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "sd/base/status.hpp"
#include "sd/net/http.hpp"
#include "sd/ticketing/model.hpp"
#include "sd/ticketing/strategy.hpp"
#include "sd/ticketing/waiting_room.hpp"

namespace sd::ticketing::service_detail {

using json = nlohmann::json;

// {"id","venue_id","name","venue","starts_at_ms","waiting_room","seat_count","available"}
json event_json(const Event& e);
// {"id","label","section","row","number","x","y","tier","price_cents","state","version"}
json seat_json(const Seat& s);
// {"seat","state","version"}: one live update of the seat map.
json seat_change_json(const SeatChange& c);
// {"hold_id","event","customer","seats","amount_cents","created_at_ms","expires_at_ms","ttl_ms",
//  "status"} (+ "order_id" once paid). ttl_ms: time left at now_ms (0 once past).
json hold_json(const Hold& h, int64_t now_ms);
// {"order_id","hold_id","event","customer","seats","amount_cents","status","payment_id",
//  "created_at_ms"}
json order_json(const Order& o);
// {"ticket","event","customer","state","position","eta_ms","active_left_ms"}
json queue_json(const QueueStatus& q, EventId event);
json strategy_stats_json(const StrategyStats& s);

// An API error: the HTTP status and the machine code of the JSON body.
struct HttpError {
  int status = 500;
  std::string code;
};

// The code of a core message: the text before the first ": " (or the whole message) when it is a
// snake_case identifier; "" otherwise.
std::string_view message_code(std::string_view message);
// Maps a non-ok Status to its HTTP status and code (context: the table in service.hpp's header).
// Known codes map by name (seat_unavailable 409, not_your_hold 403, card_declined 402, ...); an
// unknown or missing code maps by the Status code (kInvalidArgument 400 — keeping a snake_case
// code with an underscore as the error, kNotFound 404, kConflict/kAlreadyExists 409,
// kResourceExhausted 429, kUnavailable 503, kDeadlineExceeded 504, kFailedPrecondition 400,
// anything else 500).
HttpError http_error(const Status& st);
// {"error": code, "message": st.message()} with the mapped status.
net::Response error_response(const Status& st);

}  // namespace sd::ticketing::service_detail
