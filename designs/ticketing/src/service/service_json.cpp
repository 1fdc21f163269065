// JSON shapes of the ticketing API and the Status -> HTTP error mapping.
#include "service_json.hpp"

#include <algorithm>
#include <array>
#include <utility>

namespace sd::ticketing::service_detail {

json event_json(const Event& e) {
  return {{"id", e.id},
          {"venue_id", e.venue_id},
          {"name", e.name},
          {"venue", e.venue_name},
          {"starts_at_ms", e.starts_at_ms},
          {"waiting_room", e.waiting_room},
          {"seat_count", e.seat_count},
          {"available", e.available}};
}

json seat_json(const Seat& s) {
  return {{"id", s.id},
          {"label", s.label},
          {"section", s.section},
          {"row", s.row},
          {"number", s.number},
          {"x", s.x},
          {"y", s.y},
          {"tier", s.tier},
          {"price_cents", s.price_cents},
          {"state", seat_state_name(s.state)},
          {"version", s.version}};
}

json seat_change_json(const SeatChange& c) {
  return {{"seat", c.seat}, {"state", seat_state_name(c.state)}, {"version", c.version}};
}

json hold_json(const Hold& h, int64_t now_ms) {
  const bool live = h.status == HoldStatus::kActive && h.expires_ms > now_ms;
  json j = {{"hold_id", h.id},
            {"event", h.event},
            {"customer", h.customer},
            {"seats", h.seats},
            {"amount_cents", h.amount_cents},
            {"created_at_ms", h.created_ms},
            {"expires_at_ms", h.expires_ms},
            {"ttl_ms", live ? h.expires_ms - now_ms : 0},
            // An active hold past its expiry is expired for the client already; the sweeper
            // writes that down within a sweep interval.
            {"status", h.status == HoldStatus::kActive && !live ? std::string_view("expired")
                                                                : hold_status_name(h.status)}};
  if (!h.order_id.empty()) j["order_id"] = h.order_id;
  return j;
}

json order_json(const Order& o) {
  return {{"order_id", o.id},
          {"hold_id", o.hold_id},
          {"event", o.event},
          {"customer", o.customer},
          {"seats", o.seats},
          {"amount_cents", o.amount_cents},
          {"status", order_status_name(o.status)},
          {"payment_id", o.payment_id},
          {"created_at_ms", o.created_ms}};
}

json queue_json(const QueueStatus& q, EventId event) {
  return {{"ticket", q.ticket},
          {"event", event},
          {"customer", q.customer},
          {"state", queue_state_name(q.state)},
          {"position", q.position},
          {"eta_ms", q.eta_ms},
          {"active_left_ms", q.active_left_ms}};
}

json strategy_stats_json(const StrategyStats& s) {
  return {{"claims", s.claims},
          {"claim_conflicts", s.claim_conflicts},
          {"optimistic_retries", s.optimistic_retries},
          {"fence_rejections", s.fence_rejections},
          {"lock_failures", s.lock_failures}};
}

std::string_view message_code(std::string_view message) {
  std::string_view code = message.substr(0, message.find(": "));
  if (code.empty() || code.size() > 64) return {};
  const bool ident = std::all_of(code.begin(), code.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
  return ident && code.front() >= 'a' && code.front() <= 'z' ? code : std::string_view{};
}

namespace {

struct KnownCode {
  std::string_view code;
  int status;
};
constexpr std::array kKnownCodes{
    KnownCode{"invalid_argument", 400},
    KnownCode{"bad_request", 400},
    KnownCode{"not_found", 404},
    KnownCode{"seat_unavailable", 409},
    KnownCode{"hold_not_active", 409},
    KnownCode{"hold_expired", 409},
    KnownCode{"not_your_hold", 403},
    KnownCode{"card_declined", 402},
    KnownCode{"not_admitted", 403},
    KnownCode{"too_many_holds", 429},
    KnownCode{"queue_full", 503},
    KnownCode{"idempotency_key_reused", 422},
    KnownCode{"idempotency_key_in_use", 409},
    KnownCode{"payment_unavailable", 503},
    KnownCode{"unavailable", 503},
    KnownCode{"payload_too_large", 413},
};

HttpError by_status_code(Code c) {
  switch (c) {
    case Code::kInvalidArgument:
      return {400, "invalid_argument"};
    case Code::kNotFound:
      return {404, "not_found"};
    case Code::kAlreadyExists:
    case Code::kConflict:
      return {409, "conflict"};
    case Code::kResourceExhausted:
      return {429, "resource_exhausted"};
    case Code::kDeadlineExceeded:
      return {504, "deadline_exceeded"};
    case Code::kUnavailable:
      return {503, "unavailable"};
    case Code::kFailedPrecondition:
      return {400, "failed_precondition"};
    case Code::kUnimplemented:
      return {501, "unimplemented"};
    case Code::kOk:
    case Code::kInternal:
      break;
  }
  return {500, "internal"};
}

}  // namespace

HttpError http_error(const Status& st) {
  std::string_view code = message_code(st.message());
  for (const KnownCode& k : kKnownCodes) {
    // A known code keeps its status, except that a caller error stays a 400 whatever it says.
    if (k.code == code) {
      return {st.code() == Code::kInvalidArgument ? 400 : k.status, std::string(code)};
    }
  }
  HttpError e = by_status_code(st.code());
  // Caller errors keep a specific code ("unknown_seat: ..."); a bare word ("customer: ...") is
  // the field the text names, not a code.
  if (st.code() == Code::kInvalidArgument && code.find('_') != std::string_view::npos) {
    e.code = std::string(code);
  }
  return e;
}

net::Response error_response(const Status& st) {
  HttpError e = http_error(st);
  return net::Response::error(e.status, e.code, st.message());
}

}  // namespace sd::ticketing::service_detail
