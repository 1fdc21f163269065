// ticketing-book: one booking attempt by a virtual shopper per op, against ticketd
// (designs/ticketing). Shopper = connection: customer "c<connection>", one attempt at a time, so
// it never has more than one active hold (ticketd caps them per customer).
//   hold    POST /v1/events/{E}/holds {"customer":"c<conn>","seats":[S]}
//             201 -> capture hold_id, go on; 409 (seat held/sold by someone else) -> conflict
//   pay     POST /v1/holds/{hold}/pay {"customer","card":"4242424242424242"}
//             201 -> capture order_id (this is the booking); 409 -> the hold was lost (conflict);
//             anything else (402 declined, 5xx) -> error, after the hold is released
//   cancel  POST /v1/orders/{order}/cancel {"customer"} after a booking, which puts the seat back
//             on sale so a run reaches a steady state instead of selling out; after a failed pay,
//             POST /v1/holds/{hold}/cancel instead (the hold must not linger until its TTL)
// Outcomes: ok = booked (pay 201) and the seat given back; conflict = no booking because of
// contention (hold 409, pay 409); error = anything else. The hold request's own round trip is a
// timed step ("hold" in the result's steps), so its p50/p99 are reported apart from the whole op.
//
// Seats: connection 0's setup reads GET /v1/events/{E}/seats once and keeps the ids in ascending
// order (the other connections only check GET /v1/events/{E}); the pool is the first --seats N
// (0: all), and each op picks one seat uniformly among the first --hot K of the pool (0: all of
// it): K small = a flash sale on a few seats. The pick is drawn from (seed, connection, op seq),
// so runs are reproducible; --dist/--keys do not apply.
#include <algorithm>
#include <memory>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "sd/loadgen/keys.hpp"
#include "workloads.hpp"

namespace sd::loadgen::wl {

namespace {

constexpr const char* kCard = "4242424242424242";

// Filled once by connection 0's setup (before the clock starts; the engine joins its threads
// between setup and the run, so the ops read it without a lock).
struct SeatPool {
  std::mutex mu;
  std::vector<int64_t> ids;  // ascending, size = the pool
};

std::string customer(const StepContext& ctx) {
  return "c" + std::to_string(ctx.conn_index);
}

std::string customer_body(const StepContext& ctx, const std::string& extra = {}) {
  return "{\"customer\":" + json_escape(customer(ctx)) + extra + "}";
}

}  // namespace

WorkloadSpec ticketing_book(const WorkloadOptions& o) {
  WorkloadSpec w = base_spec("ticketing-book", Protocol::kHttp, 7403, o);
  const std::string event = std::to_string(o.event);
  const auto pool = std::make_shared<SeatPool>();
  const auto want = static_cast<size_t>(o.seats);
  const auto hot = static_cast<size_t>(o.hot);
  const uint64_t seed = o.seed;

  w.setup.push_back(Step{
      "seats",
      [event](StepContext& ctx) {
        return http_call(net::Method::kGet, ctx.conn_index == 0 ? "/v1/events/" + event + "/seats"
                                                                : "/v1/events/" + event);
      },
      [event, pool, want, hot](const Reply& r, StepContext& ctx) {
        if (r.status != 200) return Verdict::error(http_error("GET /v1/events/" + event, r));
        if (ctx.conn_index != 0) return Verdict::next();
        auto j = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
        if (!j.is_object() || !j.contains("seats") || !j["seats"].is_array())
          return Verdict::error("GET /v1/events/" + event + "/seats: no seats array");
        std::vector<int64_t> ids;
        for (const auto& s : j["seats"]) {
          if (s.is_object() && s.contains("id") && s["id"].is_number_integer())
            ids.push_back(s["id"].get<int64_t>());
        }
        std::sort(ids.begin(), ids.end());
        size_t n = want == 0 ? ids.size() : want;
        if (ids.empty() || n > ids.size() || hot > n)
          return Verdict::error("event " + event + " has " + std::to_string(ids.size()) +
                                " seats; asked for --seats " + std::to_string(want) + " --hot " +
                                std::to_string(hot));
        ids.resize(hot > 0 ? hot : n);
        std::lock_guard<std::mutex> lk(pool->mu);
        pool->ids = std::move(ids);
        return Verdict::next();
      }});

  w.op.push_back(
      Step{"hold",
           [event, pool, seed](StepContext& ctx) {
             const auto& ids = pool->ids;
             int64_t seat = 0;
             if (!ids.empty()) {
               uint64_t draw = stream_seed(stream_seed(seed, ctx.conn_index), ctx.op_seq);
               seat = ids[draw % ids.size()];
             }
             return http_call(net::Method::kPost, "/v1/events/" + event + "/holds",
                              customer_body(ctx, ",\"seats\":[" + std::to_string(seat) + "]"));
           },
           [](const Reply& r, StepContext& ctx) {
             if (r.status == 409) return Verdict::conflict();
             auto id = json_field(r.body, "hold_id");
             if (r.status != 201 || !id) return Verdict::error(http_error("POST holds", r));
             ctx.op.set("hold", *id);
             return Verdict::next();
           },
           /*timed=*/true});

  w.op.push_back(
      Step{"pay",
           [](StepContext& ctx) {
             return http_call(net::Method::kPost, "/v1/holds/" + ctx.op.get("hold") + "/pay",
                              customer_body(ctx, ",\"card\":\"" + std::string(kCard) + "\""));
           },
           [](const Reply& r, StepContext& ctx) {
             if (r.status == 201) {
               auto id = json_field(r.body, "order_id");
               if (!id) return Verdict::error(http_error("POST pay (no order_id)", r));
               ctx.op.set("order", *id);
             } else if (r.status == 409) {
               ctx.op.set("lost", "1");
             } else {
               ctx.op.set("pay_error", http_error("POST pay", r));
             }
             return Verdict::next();  // the cancel step gives the seat or the hold back either way
           }});

  w.op.push_back(Step{"cancel",
                      [](StepContext& ctx) {
                        const std::string* order = ctx.op.find("order");
                        return http_call(net::Method::kPost,
                                         order ? "/v1/orders/" + *order + "/cancel"
                                               : "/v1/holds/" + ctx.op.get("hold") + "/cancel",
                                         customer_body(ctx));
                      },
                      [](const Reply& r, StepContext& ctx) {
                        const bool booked = ctx.op.find("order") != nullptr;
                        if (booked) {
                          return r.status == 200
                                     ? Verdict::ok()
                                     : Verdict::error(http_error("POST order cancel", r));
                        }
                        // A lost hold may be gone already (409): that is fine, it is not on sale
                        // twice.
                        if (r.status != 200 && r.status != 409)
                          return Verdict::error(http_error("POST hold cancel", r));
                        if (const std::string* e = ctx.op.find("pay_error"))
                          return Verdict::error(*e);
                        return Verdict::conflict();
                      }});
  return w;
}

}  // namespace sd::loadgen::wl
