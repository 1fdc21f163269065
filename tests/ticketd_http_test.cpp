// ticketd as a process: the booking flow over real HTTP (catalog, hold, pay, idempotent replay,
// the waiting-room gate, the web UI), the live seat map as a real event stream, and a clean exit
// on SIGTERM with streams still open.

#include <signal.h>

#include <atomic>
#include <mutex>
#include <thread>

#include "ticketd_test_support.hpp"

using namespace ticketd_test;  // NOLINT(google-build-using-namespace)

TEST_CASE("ticketd: booking flow, live seat map and SIGTERM over real HTTP", "[integration]") {
  sd::testing::TempDir dir("ticketd-http");
  auto d = Ticketd::start(dir, dir.file("state"), {"--strategy", "dlock", "--workers", "4"});
  auto c = d.client();

  REQUIRE(get(c, "/healthz").status == 200);
  Reply events = get(c, "/v1/events");
  REQUIRE(events.status == 200);
  REQUIRE(events.body["events"].size() >= 2);  // the demo seed: a plain event and a flash sale
  int64_t plain = 0, flash = 0;
  for (const json& e : events.body["events"]) {
    (e["waiting_room"].get<bool>() ? flash : plain) = e["id"].get<int64_t>();
  }
  REQUIRE(plain > 0);
  REQUIRE(flash > 0);
  const std::string ev = "/v1/events/" + std::to_string(plain);
  Reply detail = get(c, ev);
  REQUIRE(detail.status == 200);
  CHECK(detail.body["strategy"] == "dlock");
  CHECK(detail.body["hold_ttl_s"] == 600);
  Reply seats = get(c, ev + "/seats");
  REQUIRE(seats.status == 200);
  REQUIRE(seats.body["seats"].size() > 10);
  const int64_t s1 = seats.body["seats"][0]["id"];
  const int64_t s2 = seats.body["seats"][1]["id"];

  // The live seat map: a reader thread collects events until it has seen both seats sold.
  std::mutex mu;
  std::vector<SseEvent> seen;  // guarded by mu
  std::atomic<bool> snapshot{false}, stream_done{false};
  std::thread reader([&] {
    sd::net::HttpClient sc("127.0.0.1", d.port);
    SseParser parser;
    int sold = 0;
    auto r = sc.stream(
        sd::net::Method::kGet, ev + "/seats/stream", "",
        [&](std::string_view data) {
          for (SseEvent& e : parser.feed(data)) {
            if (e.event == "snapshot") snapshot = true;
            if (e.event == "seat" && json::parse(e.data)["state"] == "sold") ++sold;
            std::lock_guard lock(mu);
            seen.push_back(std::move(e));
          }
          return sold < 2;
        },
        20s);
    CHECK(r.is_ok());
    if (r.is_ok()) CHECK(*r->header("Content-Type") == "text/event-stream");
    stream_done = true;
  });
  REQUIRE(sd::testing::eventually([&] { return snapshot.load(); }, 10s));

  const json hold_body = {{"customer", "alice"}, {"seats", {s1, s2}}};
  Reply hold = post(c, ev + "/holds", hold_body, {{"Idempotency-Key", "hold-1"}});
  INFO(hold.raw);
  REQUIRE(hold.status == 201);
  CHECK(hold.body["status"] == "active");
  CHECK(hold.body["amount_cents"].get<int64_t>() > 0);
  const std::string hold_id = hold.body["hold_id"];
  // A retry with the same key replays the same answer.
  Reply replay = post(c, ev + "/holds", hold_body, {{"Idempotency-Key", "hold-1"}});
  REQUIRE(replay.status == 201);
  REQUIRE(replay.header("Idempotent-Replayed") != nullptr);
  CHECK(*replay.header("Idempotent-Replayed") == "true");
  CHECK(replay.raw == hold.raw);
  Reply taken = post(c, ev + "/holds", {{"customer", "bob"}, {"seats", {s2}}});
  CHECK(taken.status == 409);
  CHECK(taken.body["error"] == "seat_unavailable");

  Reply order = post(c, "/v1/holds/" + hold_id + "/pay",
                     {{"customer", "alice"}, {"card", "4242424242424242"}});
  INFO(order.raw);
  REQUIRE(order.status == 201);
  CHECK(order.body["status"] == "confirmed");
  const std::string order_id = order.body["order_id"];
  Reply fetched = get(c, "/v1/orders/" + order_id);
  REQUIRE(fetched.status == 200);
  CHECK(fetched.body["status"] == "confirmed");
  CHECK(fetched.body["hold_id"] == hold_id);

  reader.join();
  REQUIRE(stream_done);
  {
    std::lock_guard lock(mu);
    REQUIRE(seen.size() >= 5);  // snapshot, 2 x held, 2 x sold
    CHECK(seen[0].event == "snapshot");
    int held = 0;
    for (const SseEvent& e : seen) {
      if (e.event != "seat") continue;
      json j = json::parse(e.data);
      CHECK((j["seat"] == s1 || j["seat"] == s2));
      if (j["state"] == "held") ++held;
    }
    CHECK(held == 2);
  }

  // The flash sale needs an admitted queue ticket.
  const std::string fe = "/v1/events/" + std::to_string(flash);
  Reply gate = post(c, fe + "/holds", {{"customer", "carol"}, {"seats", {s1}}});
  CHECK(gate.status == 403);
  CHECK(gate.body["error"] == "not_admitted");
  Reply joined = post(c, fe + "/queue", {{"customer", "carol"}});
  REQUIRE(joined.status == 200);
  const std::string ticket = joined.body["ticket"];
  REQUIRE(sd::testing::eventually(
      [&] { return get(c, "/v1/queue/" + ticket).body["state"] == "active"; }, 10s));
  Reply admitted = post(c, fe + "/holds", {{"customer", "carol"}, {"seats", {s1}}},
                        {{"X-Queue-Ticket", ticket}});
  INFO(admitted.raw);
  CHECK(admitted.status == 201);

  // The web UI.
  auto page = c.get("/");
  REQUIRE(page.is_ok());
  CHECK(page->status == 200);
  CHECK(page->header("Content-Type")->rfind("text/html", 0) == 0);
  auto js = c.get("/static/app.js");
  REQUIRE(js.is_ok());
  CHECK(js->status == 200);
  CHECK(js->header("Content-Type")->rfind("text/javascript", 0) == 0);

  // SIGTERM with a stream open: the stream ends and the process exits 0.
  std::atomic<bool> open_stream_ended{false};
  std::atomic<bool> open_stream_started{false};
  std::thread idle([&] {
    sd::net::HttpClient sc("127.0.0.1", d.port);
    auto r = sc.stream(
        sd::net::Method::kGet, ev + "/seats/stream", "",
        [&](std::string_view) {
          open_stream_started = true;
          return true;
        },
        30s);
    (void)r;
    open_stream_ended = true;
  });
  REQUIRE(sd::testing::eventually([&] { return open_stream_started.load(); }, 10s));
  REQUIRE(d.proc->signal(SIGTERM).is_ok());
  auto code = d.proc->wait_for(15s);
  idle.join();
  REQUIRE(code.has_value());
  CHECK(*code == 0);
  CHECK(open_stream_ended);
  CHECK(sd::testing::read_file(d.log_path).find("ticketd stopped") != std::string::npos);
}

TEST_CASE("ticketd: bad flags exit 2, --help exits 0", "[integration]") {
  sd::testing::TempDir dir("ticketd-flags");
  auto run = [&](std::vector<std::string> argv) {
    argv.insert(argv.begin(), SD_TICKETD_BIN);
    sd::testing::ProcessOptions opts;
    opts.stdout_path = dir.file("out.log");
    opts.stderr_path = dir.file("out.log");
    auto p = sd::testing::Process::spawn(argv, opts);
    REQUIRE(p.is_ok());
    auto code = p->wait_for(10s);
    REQUIRE(code.has_value());
    return *code;
  };
  CHECK(run({"--help"}) == 0);
  CHECK(run({"--strategy", "nope"}) == 2);
  CHECK(run({"--payment-latency-ms", "5,1"}) == 2);
  CHECK(run({"--port", "70000"}) == 2);
}
