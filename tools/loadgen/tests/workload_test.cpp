// Workloads are data: their requests and reply judgements are checked here without a server.
#include <catch2/catch.hpp>

#include <set>

#include <nlohmann/json.hpp>

#include "sd/loadgen/engine.hpp"
#include "sd/loadgen/workload.hpp"

using namespace sd::loadgen;
using nlohmann::json;

namespace {
struct Harness {
  Vars conn, op;
  std::string key = "sdload-7";
  StepContext ctx() { return StepContext{conn, op, key, 3, 9}; }
};
Reply http(int status, std::string body) {
  Reply r;
  r.status = status;
  r.body = std::move(body);
  return r;
}
Reply resp(RespValue v) {
  Reply r;
  r.resp = std::move(v);
  return r;
}
RespValue simple(std::string s) {
  RespValue v;
  v.type = RespValue::Type::kSimple;
  v.str = std::move(s);
  return v;
}
RespValue integer(int64_t i) {
  RespValue v;
  v.type = RespValue::Type::kInteger;
  v.integer = i;
  return v;
}
WorkloadSpec make(const char* name, WorkloadOptions o = {}) {
  auto w = make_workload(name, o);
  REQUIRE(w.is_ok());
  return *w;
}
}  // namespace

TEST_CASE("workload registry", "[unit]") {
  REQUIRE(make_workload("nope", {}).status().code() == sd::Code::kInvalidArgument);
  WorkloadOptions bad;
  bad.path = "healthz";
  REQUIRE(!make_workload("http-get", bad).is_ok());
  std::string help = workload_help();
  WorkloadOptions with_event;
  with_event.event = 1;  // ticketing-book needs one
  for (const auto& n : workload_names()) {
    REQUIRE(help.find(n) != std::string::npos);
    REQUIRE(make_workload(n, with_event).is_ok());
  }
  REQUIRE(workload_names().size() == 10);
  REQUIRE(!make_workload("ticketing-book", {}).is_ok());  // no --event
  WorkloadOptions zero_rate;
  zero_rate.rl_rate = 0;
  REQUIRE(!make_workload("redis-token-bucket", zero_rate).is_ok());
}

TEST_CASE("http-get judges status codes", "[unit]") {
  WorkloadOptions o;
  o.path = "/";
  auto w = make("http-get", o);
  Harness h;
  auto ctx = h.ctx();
  Call c = w.op.at(0).make(ctx);
  REQUIRE(c.method == sd::net::Method::kGet);
  REQUIRE(c.target == "/");
  REQUIRE(w.op[0].check(http(204, ""), ctx).outcome == Outcome::kOk);
  auto v = w.op[0].check(http(503, "busy"), ctx);
  REQUIRE(v.outcome == Outcome::kError);
  REQUIRE(v.message.find("503") != std::string::npos);
}

TEST_CASE("dlock-cycle: lease, acquire with token capture, release", "[unit]") {
  WorkloadOptions o;
  o.wait_ms = 250;
  o.lease_ttl_ms = 90'000;
  auto w = make("dlock-cycle", o);
  REQUIRE(!w.retry_on_conflict);
  Harness h;

  Vars none;
  auto sctx = StepContext{none, h.conn, h.key, 3, 0};
  Call lease = w.setup.at(0).make(sctx);
  REQUIRE(lease.method == sd::net::Method::kPost);
  REQUIRE(lease.target == "/v1/leases");
  REQUIRE(json::parse(lease.body)["ttl_ms"] == 90'000);
  REQUIRE(w.setup[0].check(http(201, R"({"lease_id":"abc","ttl_ms":90000})"), sctx).outcome ==
          Outcome::kNext);
  REQUIRE(h.conn.get("lease_id") == "abc");
  REQUIRE(w.setup[0].check(http(400, "{}"), sctx).outcome == Outcome::kError);

  auto ctx = h.ctx();
  Call acq = w.op.at(0).make(ctx);
  REQUIRE(acq.target == "/v1/locks/sdload-7/acquire");
  REQUIRE(json::parse(acq.body) == json{{"lease_id", "abc"}, {"wait_ms", 250}});
  REQUIRE(w.op[0].check(http(409, R"({"error":"locked"})"), ctx).outcome == Outcome::kConflict);
  REQUIRE(w.op[0].check(http(500, "{}"), ctx).outcome == Outcome::kError);
  // Tokens are uint64: the largest one must survive the round trip digit for digit.
  REQUIRE(w.op[0]
              .check(http(200, R"({"name":"sdload-7","token":18446744073709551615})"), ctx)
              .outcome == Outcome::kNext);
  Call rel = w.op.at(1).make(ctx);
  REQUIRE(rel.target == "/v1/locks/sdload-7/release");
  REQUIRE(rel.body == R"({"lease_id":"abc","token":18446744073709551615})");
  REQUIRE(w.op[1].check(http(200, "{}"), ctx).outcome == Outcome::kOk);
  REQUIRE(w.op[1].check(http(409, R"({"error":"not_holder"})"), ctx).outcome == Outcome::kError);

  Call del = w.teardown.at(0).make(ctx);
  REQUIRE(del.method == sd::net::Method::kDelete);
  REQUIRE(del.target == "/v1/leases/abc");
}

TEST_CASE("dlock-handoff waits long on the server", "[unit]") {
  auto w = make("dlock-handoff");
  REQUIRE(w.handoff);
  REQUIRE(!w.handoff->poll);
  Harness h;
  h.conn.set("lease_id", "L");
  auto ctx = h.ctx();
  REQUIRE(json::parse(w.handoff->wait.make(ctx).body)["wait_ms"].get<int>() >= 30'000);
  REQUIRE(json::parse(w.handoff->acquire.make(ctx).body)["wait_ms"] == 0);
  REQUIRE(w.handoff->wait.check(http(200, R"({"token":5})"), ctx).outcome == Outcome::kOk);
  REQUIRE(w.handoff->release.make(ctx).body == R"({"lease_id":"L","token":5})");
}

TEST_CASE("redis-lock-cycle: SET NX PX then compare-and-delete", "[unit]") {
  WorkloadOptions o;
  o.ttl_ms = 3000;
  o.retry_ms = 20;
  auto w = make("redis-lock-cycle", o);
  REQUIRE(w.protocol == Protocol::kResp);
  REQUIRE(w.retry_on_conflict);
  REQUIRE(w.retry_interval == std::chrono::milliseconds(20));
  Harness h;
  auto ctx = h.ctx();
  Call set = w.op.at(0).make(ctx);
  REQUIRE(set.args ==
          std::vector<std::string>{"SET", "sdload-7", "sdload-3-9", "NX", "PX", "3000"});
  REQUIRE(w.op[0].check(resp(simple("OK")), ctx).outcome == Outcome::kNext);
  REQUIRE(w.op[0].check(resp(RespValue{}), ctx).outcome == Outcome::kConflict);  // nil: held
  Call again = w.op[0].make(ctx);  // a retry keeps the token
  REQUIRE(again.args[2] == "sdload-3-9");
  Call eval = w.op.at(1).make(ctx);
  REQUIRE(eval.args.size() == 5);
  REQUIRE(eval.args[0] == "EVAL");
  REQUIRE(eval.args[1].find("redis.call(\"get\",KEYS[1]) == ARGV[1]") != std::string::npos);
  REQUIRE(eval.args[2] == "1");
  REQUIRE(eval.args[3] == "sdload-7");
  REQUIRE(eval.args[4] == "sdload-3-9");
  REQUIRE(w.op[1].check(resp(integer(1)), ctx).outcome == Outcome::kOk);
  REQUIRE(w.op[1].check(resp(integer(0)), ctx).outcome == Outcome::kError);

  o.retry_ms = 0;
  REQUIRE(!make("redis-lock-cycle", o).retry_on_conflict);
  auto ping = make("redis-ping");
  REQUIRE(ping.op.at(0).check(resp(simple("PONG")), ctx).outcome == Outcome::kOk);
  REQUIRE(make("redis-handoff").handoff->poll);
}

TEST_CASE("etcd-lock-cycle: lease, txn on create_revision, deleterange", "[unit]") {
  WorkloadOptions o;
  o.lease_ttl_ms = 60'500;
  auto w = make("etcd-lock-cycle", o);
  REQUIRE(w.retry_on_conflict);
  Harness h;
  Vars none;
  auto sctx = StepContext{none, h.conn, h.key, 3, 0};
  Call grant = w.setup.at(0).make(sctx);
  REQUIRE(grant.target == "/v3/lease/grant");
  REQUIRE(json::parse(grant.body) == json{{"TTL", 61}});
  REQUIRE(w.setup[0].check(http(200, R"({"ID":"7587869497434515978","TTL":"61"})"), sctx).outcome ==
          Outcome::kNext);
  REQUIRE(h.conn.get("lease") == "7587869497434515978");

  auto ctx = h.ctx();
  Call txn = w.op.at(0).make(ctx);
  REQUIRE(txn.target == "/v3/kv/txn");
  json t = json::parse(txn.body);
  REQUIRE(t["compare"][0]["key"] == base64_encode("sdload-7"));
  REQUIRE(t["compare"][0]["target"] == "CREATE");
  REQUIRE(t["compare"][0]["createRevision"] == "0");
  REQUIRE(t["success"][0]["requestPut"]["key"] == base64_encode("sdload-7"));
  REQUIRE(t["success"][0]["requestPut"]["lease"] == "7587869497434515978");
  REQUIRE(w.op[0].check(http(200, R"({"header":{},"succeeded":true})"), ctx).outcome ==
          Outcome::kNext);
  // The gateway omits false booleans: no "succeeded" means the compare failed.
  REQUIRE(w.op[0].check(http(200, R"({"header":{}})"), ctx).outcome == Outcome::kConflict);
  REQUIRE(w.op[0].check(http(400, "{}"), ctx).outcome == Outcome::kError);
  Call del = w.op.at(1).make(ctx);
  REQUIRE(del.target == "/v3/kv/deleterange");
  REQUIRE(json::parse(del.body)["key"] == base64_encode("sdload-7"));
  REQUIRE(w.op[1].check(http(200, R"({"deleted":"1"})"), ctx).outcome == Outcome::kOk);
  REQUIRE(json::parse(w.teardown.at(0).make(ctx).body)["ID"] == "7587869497434515978");
}

TEST_CASE("helpers: base64, json fields, targets, loopback guard", "[unit]") {
  // RFC 4648 test vectors.
  REQUIRE(base64_encode("") == "");
  REQUIRE(base64_encode("f") == "Zg==");
  REQUIRE(base64_encode("fo") == "Zm8=");
  REQUIRE(base64_encode("foo") == "Zm9v");
  REQUIRE(base64_encode("foob") == "Zm9vYg==");
  REQUIRE(base64_encode("fooba") == "Zm9vYmE=");
  REQUIRE(base64_encode("foobar") == "Zm9vYmFy");
  REQUIRE(base64_encode(std::string("\xff\x00", 2)) == "/wA=");

  REQUIRE(json_field(R"({"a":"x","n":12345678901234567890})", "n") == "12345678901234567890");
  REQUIRE(json_field(R"({"a":"x"})", "a") == "x");
  REQUIRE(!json_field("not json", "a"));
  REQUIRE(!json_field("[1]", "a"));
  REQUIRE(json_escape("a\"b") == R"("a\"b")");

  auto t = parse_target("127.0.0.1:7401", 80);
  REQUIRE(t.is_ok());
  REQUIRE((t->host == "127.0.0.1" && t->port == 7401));
  t = parse_target("redis://localhost:6380/0", 6379);
  REQUIRE((t.is_ok() && t->host == "localhost" && t->port == 6380));
  t = parse_target("[::1]:2379", 80);
  REQUIRE((t.is_ok() && t->host == "::1" && t->port == 2379));
  REQUIRE(t->to_string() == "[::1]:2379");
  t = parse_target("127.0.0.2", 6379);
  REQUIRE((t.is_ok() && t->port == 6379));
  REQUIRE(!parse_target("127.0.0.1:0", 80).is_ok());
  REQUIRE(!parse_target("127.0.0.1:99999", 80).is_ok());
  REQUIRE(!parse_target(":80", 80).is_ok());

  REQUIRE(is_loopback_literal("127.0.0.1"));
  REQUIRE(is_loopback_literal("127.255.0.9"));
  REQUIRE(is_loopback_literal("::1"));
  REQUIRE(is_loopback_literal("::ffff:127.0.0.1"));
  REQUIRE(!is_loopback_literal("10.0.0.1"));
  REQUIRE(!is_loopback_literal("::"));
  REQUIRE(!is_loopback_literal("::ffff:8.8.8.8"));
  REQUIRE(!is_loopback_literal("localhost"));  // a name, not a literal
}

TEST_CASE("ratelimit-check: one POST /v1/check per op, 429 is a denial", "[unit]") {
  auto w = make("ratelimit-check");
  REQUIRE(w.protocol == Protocol::kHttp);
  REQUIRE(w.default_port == 7402);
  Harness h;
  h.key = "k\"1";
  auto ctx = h.ctx();
  Call c = w.op.at(0).make(ctx);
  REQUIRE(c.method == sd::net::Method::kPost);
  REQUIRE(c.target == "/v1/check");
  json body = json::parse(c.body);
  REQUIRE(body["domain"] == "bench");
  REQUIRE(body["descriptors"][0]["entries"][0]["key"] == "client");
  REQUIRE(body["descriptors"][0]["entries"][0]["value"] == "k\"1");
  REQUIRE(body["cost"] == 1);
  REQUIRE(w.op[0].check(http(200, "{}"), ctx).outcome == Outcome::kOk);
  REQUIRE(w.op[0].check(http(429, "{}"), ctx).outcome == Outcome::kConflict);
  REQUIRE(w.op[0].check(http(400, "{}"), ctx).outcome == Outcome::kError);
}

TEST_CASE("redis-token-bucket: SCRIPT LOAD once, EVALSHA per decision", "[unit]") {
  WorkloadOptions o;
  o.rl_rate = 5;
  o.rl_burst = 7;
  auto w = make("redis-token-bucket", o);
  REQUIRE(w.protocol == Protocol::kResp);
  Harness h;
  auto ctx = h.ctx();
  Call load = w.setup.at(0).make(ctx);
  REQUIRE(load.args.size() == 3);
  REQUIRE(load.args[0] == "SCRIPT");
  REQUIRE(load.args[2].find("redis.call('TIME')") != std::string::npos);
  RespValue sha;
  sha.type = RespValue::Type::kBulk;
  sha.str = "abc123";
  REQUIRE(w.setup[0].check(resp(sha), ctx).outcome == Outcome::kNext);
  REQUIRE(h.op.get("sha") == "abc123");
  h.conn.set("sha", "abc123");
  Call ev = w.op.at(0).make(ctx);
  REQUIRE(ev.args ==
          std::vector<std::string>{"EVALSHA", "abc123", "1", "tb:sdload-7", "5", "7", "1"});
  RespValue reply;
  reply.type = RespValue::Type::kArray;
  reply.elements = {integer(1), integer(6)};
  REQUIRE(w.op[0].check(resp(reply), ctx).outcome == Outcome::kOk);
  reply.elements[0] = integer(0);
  REQUIRE(w.op[0].check(resp(reply), ctx).outcome == Outcome::kConflict);
  REQUIRE(w.op[0].check(resp(simple("OK")), ctx).outcome == Outcome::kError);
}

TEST_CASE("ticketing-book: hold, pay, cancel, seats from the event, hold timed", "[unit]") {
  WorkloadOptions o;
  o.event = 4;
  o.seats = 6;
  o.hot = 3;
  auto w = make("ticketing-book", o);
  REQUIRE(w.default_port == 7403);
  REQUIRE(!w.retry_on_conflict);
  REQUIRE(w.op.size() == 3);
  REQUIRE(w.op[0].name == "hold");
  REQUIRE(w.op[0].timed);
  REQUIRE((!w.op[1].timed && !w.op[2].timed));

  // Setup: connection 0 reads the seat list (unordered ids, as a server may send them); the others
  // only check the event.
  Vars none, conn;
  std::string key;
  StepContext other{none, conn, key, 1, 0};
  REQUIRE(w.setup.at(0).make(other).target == "/v1/events/4");
  REQUIRE(w.setup[0].check(http(200, R"({"id":4})"), other).outcome == Outcome::kNext);
  REQUIRE(w.setup[0].check(http(404, R"({"error":"not_found"})"), other).outcome ==
          Outcome::kError);
  StepContext first{none, conn, key, 0, 0};
  Call seats = w.setup[0].make(first);
  REQUIRE(seats.method == sd::net::Method::kGet);
  REQUIRE(seats.target == "/v1/events/4/seats");
  REQUIRE(w.setup[0].check(http(200, R"({"event":4,"seats":[{"id":1}]})"), first).outcome ==
          Outcome::kError);  // fewer seats than --seats
  json list = {{"event", 4}, {"seats", json::array()}};
  for (int id : {107, 103, 105, 101, 102, 104, 106, 108}) list["seats"].push_back({{"id", id}});
  REQUIRE(w.setup[0].check(http(200, list.dump()), first).outcome == Outcome::kNext);

  // Ops: the customer is the connection; the seat is one of the 3 lowest ids, every one of them
  // drawn over a few ops, reproducibly.
  Harness h;
  std::set<int64_t> drawn;
  for (uint64_t seq = 1; seq <= 64; ++seq) {
    StepContext ctx{h.conn, h.op, h.key, 3, seq};
    Call hold = w.op[0].make(ctx);
    REQUIRE(hold.method == sd::net::Method::kPost);
    REQUIRE(hold.target == "/v1/events/4/holds");
    json b = json::parse(hold.body);
    REQUIRE(b["customer"] == "c3");
    REQUIRE(b["seats"].size() == 1);
    drawn.insert(b["seats"][0].get<int64_t>());
    REQUIRE(w.op[0].make(ctx).body == hold.body);
  }
  REQUIRE(drawn == std::set<int64_t>{101, 102, 103});

  // Booked: hold 201 -> pay 201 -> order cancel 200 = ok.
  auto ctx = h.ctx();
  REQUIRE(w.op[0].check(http(409, R"({"error":"seat_unavailable"})"), ctx).outcome ==
          Outcome::kConflict);
  REQUIRE(w.op[0].check(http(429, R"({"error":"too_many_holds"})"), ctx).outcome ==
          Outcome::kError);
  REQUIRE(w.op[0].check(http(201, R"({"hold_id":"h_1","status":"active"})"), ctx).outcome ==
          Outcome::kNext);
  Call pay = w.op[1].make(ctx);
  REQUIRE(pay.target == "/v1/holds/h_1/pay");
  REQUIRE(json::parse(pay.body) == json{{"customer", "c3"}, {"card", "4242424242424242"}});
  REQUIRE(w.op[1].check(http(201, R"({"order_id":"o_9","status":"confirmed"})"), ctx).outcome ==
          Outcome::kNext);
  Call cancel = w.op[2].make(ctx);
  REQUIRE(cancel.target == "/v1/orders/o_9/cancel");
  REQUIRE(json::parse(cancel.body) == json{{"customer", "c3"}});
  REQUIRE(w.op[2].check(http(200, R"({"status":"cancelled"})"), ctx).outcome == Outcome::kOk);
  REQUIRE(w.op[2].check(http(409, "{}"), ctx).outcome == Outcome::kError);

  // Hold lost before paying (409): the hold is cancelled, the op is a conflict.
  h.op.clear();
  REQUIRE(w.op[0].check(http(201, R"({"hold_id":"h_2"})"), ctx).outcome == Outcome::kNext);
  REQUIRE(w.op[1].check(http(409, R"({"error":"hold_expired"})"), ctx).outcome == Outcome::kNext);
  REQUIRE(w.op[2].make(ctx).target == "/v1/holds/h_2/cancel");
  REQUIRE(w.op[2].check(http(409, R"({"error":"hold_not_active"})"), ctx).outcome ==
          Outcome::kConflict);

  // Declined (402): the hold is cancelled too, and the op is an error carrying the pay reply.
  h.op.clear();
  REQUIRE(w.op[0].check(http(201, R"({"hold_id":"h_3"})"), ctx).outcome == Outcome::kNext);
  REQUIRE(w.op[1].check(http(402, R"({"error":"card_declined"})"), ctx).outcome == Outcome::kNext);
  REQUIRE(w.op[2].make(ctx).target == "/v1/holds/h_3/cancel");
  auto v = w.op[2].check(http(200, R"({"status":"cancelled"})"), ctx);
  REQUIRE(v.outcome == Outcome::kError);
  REQUIRE(v.message.find("402") != std::string::npos);

  WorkloadOptions bad = o;
  bad.hot = 7;  // more than --seats
  REQUIRE(!make_workload("ticketing-book", bad).is_ok());
}
