// dlock-lab-client: one lab client process. Loops acquire -> read the counter from the fenced
// resource with the fencing token -> "work" (sleep) -> write value+1 with the token -> release,
// logging every step to its own JSONL history (invoke, then ok / fail / info) as it happens, so a
// SIGKILL loses at most one line. It never checks Mutex::held() between read and write: a pause
// can always land after any check, and the lab widens that window on purpose.
//
//   dlock-lab-client --backend dlockd://127.0.0.1:7401 --resource 127.0.0.1:7500 --process c3
//                    --history var/lab/c3.jsonl [--ttl-ms 2000] [--wait-ms 2000] [--work-ms 50]
//                    [--key counter] [--lock NAME] [--duration-s 0] [--seed 1]
//
// SIGTERM/SIGINT: finishes the current step, releases the lock if held, closes the session and
// exits 0. At exit it prints one JSON summary line on stdout. Exit codes: 0 done, 1 could not
// start (history file), 2 usage error (flags, backend URI, --resource).

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "sd/dlock/backend.hpp"
#include "sd/dlock/client.hpp"
#include "sd/dlock/lab/history.hpp"
#include "sd/net/client.hpp"

namespace {

using namespace std::chrono_literals;
using sd::dlock::lab::Event;
using sd::dlock::lab::EventType;
using SteadyClock = std::chrono::steady_clock;

constexpr int kExitStart = 1;
constexpr int kExitUsage = 2;

struct Config {
  std::string backend, resource, process, history, key = "counter", lock;
  int64_t ttl_ms = 2000, wait_ms = 2000, work_ms = 50;
  double duration_s = 0;
  uint64_t seed = 1;
  std::string resource_host;
  uint16_t resource_port = 0;
};

// Set by the signal thread or the --duration deadline; sleeps wake up early when it is set.
class StopFlag {
 public:
  void set() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
  }
  bool is_set() {
    std::lock_guard lk(mu_);
    return stop_;
  }
  // Sleeps up to d; true if stopping.
  bool wait_for(std::chrono::milliseconds d) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, d, [this] { return stop_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;  // guarded by mu_
};

// The outcome of one resource call, as a history event type.
struct ResourceReply {
  EventType type = EventType::kInfo;
  std::optional<int64_t> value;  // read ok
  std::string error;
};

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

class LabClient {
 public:
  LabClient(Config cfg, sd::dlock::lab::HistoryWriter& history, StopFlag& stop)
      : cfg_(std::move(cfg)),
        history_(history),
        stop_(stop),
        http_(cfg_.resource_host, cfg_.resource_port,
              sd::net::ClientOptions{std::chrono::milliseconds(1000),
                                     std::chrono::milliseconds(5000), 1 << 20}),
        rng_(cfg_.seed ^ fnv1a(cfg_.process)) {}

  ~LabClient() { drop_session(); }

  // Runs cycles until stopped (signal or --duration-s).
  void run(std::optional<SteadyClock::time_point> end) {
    while (!stop_.is_set() && (!end || SteadyClock::now() < *end)) {
      if (!ensure_backend() || !ensure_session()) break;
      cycle();
      // Seeded jitter so the clients do not run in lockstep.
      std::uniform_int_distribution<int64_t> jitter(0, std::max<int64_t>(cfg_.work_ms, 0));
      if (stop_.wait_for(std::chrono::milliseconds(jitter(rng_)))) break;
    }
    drop_session();
  }

  nlohmann::json summary() const {
    return {{"process", cfg_.process},
            {"cycles", cycles_},
            {"acquired", acquired_},
            {"writes_ok", writes_ok_},
            {"writes_rejected", writes_rejected_},
            {"lost", lost_.load()}};
  }

 private:
  void emit(EventType type, const char* f, std::optional<uint64_t> token = std::nullopt,
            std::optional<int64_t> value = std::nullopt, std::string error = {},
            bool with_key = false) {
    Event e;
    e.type = type;
    e.process = cfg_.process;
    e.f = f;
    e.time_ns = sd::dlock::lab::monotonic_ns();
    e.token = token;
    e.value = value;
    if (with_key) e.key = cfg_.key;
    e.error = std::move(error);
    sd::Status st = history_.append(e);
    if (!st.is_ok()) std::cerr << cfg_.process << ": history append: " << st.to_string() << "\n";
  }

  // Logs one "lost" event per session (from the keepalive thread's callback or, when the local
  // deadline passed first, from the loop).
  void note_lost(const std::shared_ptr<std::atomic<bool>>& logged, const sd::Status& why) {
    if (logged->exchange(true)) return;
    ++lost_;
    emit(EventType::kInfo, "lost", std::nullopt, std::nullopt, why.to_string());
    std::cerr << cfg_.process << ": session lost: " << why.to_string() << "\n";
  }

  // open_backend connects lazily for some engines and eagerly for others: retry while it is down.
  bool ensure_backend() {
    while (!backend_) {
      auto b = sd::dlock::open_backend(cfg_.backend);
      if (b) {
        backend_ = *b;
        return true;
      }
      complain("open backend: " + b.status().to_string());
      if (stop_.wait_for(200ms)) return false;
    }
    return true;
  }

  bool ensure_session() {
    while (!stop_.is_set()) {
      if (session_ && session_->alive()) return true;
      drop_session();
      sd::dlock::SessionOptions so;
      so.ttl = sd::Duration{cfg_.ttl_ms};
      auto s = sd::dlock::Session::create(backend_, so);
      if (s) {
        session_ = *s;
        lost_logged_ = std::make_shared<std::atomic<bool>>(false);
        auto logged = lost_logged_;
        session_->on_lost([this, logged](const sd::Status& why) { note_lost(logged, why); });
        return true;
      }
      complain("create session: " + s.status().to_string());
      if (stop_.wait_for(200ms)) return false;
    }
    return false;
  }

  // Closes (revokes) the current session, logging "lost" first if it died without the callback.
  void drop_session() {
    if (!session_) return;
    if (!session_->alive()) {
      sd::Status why = session_->lost_reason();
      if (why.code() != sd::Code::kFailedPrecondition) note_lost(lost_logged_, why);
    }
    (void)session_->close();
    session_.reset();
  }

  void complain(const std::string& what) {
    auto now = SteadyClock::now();
    if (now - last_complaint_ < 2s) return;  // the backend may be down for a while
    last_complaint_ = now;
    std::cerr << cfg_.process << ": " << what << "\n";
  }

  ResourceReply call_resource(const char* target, const nlohmann::json& body) {
    ResourceReply out;
    auto r = http_.post_json(target, body);
    if (!r) {
      out.error = r.status().to_string();
      return out;
    }
    auto j = r->json();
    if (r->status == 200 && j) {
      out.type = EventType::kOk;
      if (j->contains("value") && (*j)["value"].is_number_integer()) {
        out.value = (*j)["value"].get<int64_t>();
      }
      return out;
    }
    std::string code = j && j->contains("error") && (*j)["error"].is_string()
                           ? (*j)["error"].get<std::string>()
                           : "HTTP " + std::to_string(r->status);
    // 409: the resource certainly rejected it. Anything else is unexpected: outcome unknown.
    out.type = r->status == 409 ? EventType::kFail : EventType::kInfo;
    out.error = code;
    return out;
  }

  void cycle() {
    ++cycles_;
    sd::dlock::Mutex m(session_, cfg_.lock);
    emit(EventType::kInvoke, "acquire");
    auto t = m.lock(sd::Duration{cfg_.wait_ms});
    if (!t) {
      sd::Code c = t.status().code();
      if (c == sd::Code::kConflict) {
        emit(EventType::kFail, "acquire", std::nullopt, std::nullopt, "locked");
      } else if (c == sd::Code::kFailedPrecondition || c == sd::Code::kNotFound ||
                 c == sd::Code::kInvalidArgument) {
        // The session was gone or the request invalid: certainly not granted.
        emit(EventType::kFail, "acquire", std::nullopt, std::nullopt, t.status().to_string());
      } else {
        emit(EventType::kInfo, "acquire", std::nullopt, std::nullopt, t.status().to_string());
        // We may hold the lock without knowing it: revoking the lease frees it either way.
        emit(EventType::kInvoke, "release");
        drop_session();
        emit(EventType::kInfo, "release", std::nullopt, std::nullopt,
             "session closed after an uncertain acquire");
        stop_.wait_for(100ms);
      }
      return;
    }
    ++acquired_;
    const uint64_t token = *t;
    emit(EventType::kOk, "acquire", token);
    critical_section(token);
    release(m, token);
  }

  // Read, work, write -- without re-checking that the lock is still held (see the file comment).
  void critical_section(uint64_t token) {
    if (stop_.is_set()) return;
    emit(EventType::kInvoke, "read", token, std::nullopt, {}, true);
    ResourceReply rd =
        call_resource("/v1/read", {{"key", cfg_.key}, {"client", cfg_.process}, {"token", token}});
    emit(rd.type, "read", token, rd.value, rd.error, true);
    if (rd.type != EventType::kOk || !rd.value) return;
    if (stop_.wait_for(std::chrono::milliseconds(cfg_.work_ms))) return;
    const int64_t value = *rd.value + 1;
    emit(EventType::kInvoke, "write", token, value, {}, true);
    ResourceReply wr = call_resource(
        "/v1/write",
        {{"key", cfg_.key}, {"client", cfg_.process}, {"token", token}, {"value", value}});
    emit(wr.type, "write", token, value, wr.error, true);
    if (wr.type == EventType::kOk) ++writes_ok_;
    if (wr.type == EventType::kFail) ++writes_rejected_;
  }

  void release(sd::dlock::Mutex& m, uint64_t token) {
    emit(EventType::kInvoke, "release", token);
    sd::Status s = m.unlock();
    if (s.is_ok()) {
      emit(EventType::kOk, "release", token);
      return;
    }
    sd::Code c = s.code();
    if (c == sd::Code::kConflict || c == sd::Code::kNotFound ||
        c == sd::Code::kFailedPrecondition) {
      // Not the holder any more (the lease expired meanwhile): nothing was released.
      emit(EventType::kFail, "release", token, std::nullopt, s.to_string());
      return;
    }
    emit(EventType::kInfo, "release", token, std::nullopt, s.to_string());
    drop_session();  // the lock may still be ours: the revoke frees it
  }

  Config cfg_;
  sd::dlock::lab::HistoryWriter& history_;
  StopFlag& stop_;
  sd::net::HttpClient http_;
  std::mt19937_64 rng_;
  std::shared_ptr<sd::dlock::Backend> backend_;
  std::shared_ptr<sd::dlock::Session> session_;
  std::shared_ptr<std::atomic<bool>> lost_logged_;  // of session_
  SteadyClock::time_point last_complaint_{};
  uint64_t cycles_ = 0, acquired_ = 0, writes_ok_ = 0, writes_rejected_ = 0;
  std::atomic<uint64_t> lost_{0};  // also bumped from the keepalive thread
};

sigset_t stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  return set;
}

bool parse_host_port(const std::string& s, std::string& host, uint16_t& port) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == s.size()) return false;
  host = s.substr(0, colon);
  try {
    size_t used = 0;
    int p = std::stoi(s.substr(colon + 1), &used);
    if (used != s.size() - colon - 1 || p <= 0 || p > 65535) return false;
    port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  // Signals go to the sigwait thread only (threads created later inherit the mask).
  const sigset_t signals = stop_signals();
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  CLI::App app{"dlock-lab-client: a lab client (lock, read, work, write+1, release) with history"};
  Config cfg;
  app.add_option("--backend", cfg.backend, "Backend URI (dlockd://, redis://, etcd://, ...)")
      ->required();
  app.add_option("--resource", cfg.resource, "Fenced resource HOST:PORT")->required();
  app.add_option("--process", cfg.process, "Process name in the history (c0, c1, ...)")->required();
  app.add_option("--history", cfg.history, "JSONL file this client's events are appended to")
      ->required();
  app.add_option("--ttl-ms", cfg.ttl_ms, "Session lease TTL")
      ->check(CLI::Range(int64_t{1}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--wait-ms", cfg.wait_ms, "How long one acquire waits")
      ->check(CLI::Range(int64_t{0}, int64_t{300'000}))
      ->capture_default_str();
  app.add_option("--work-ms", cfg.work_ms, "Time between read and write (the critical section)")
      ->check(CLI::Range(int64_t{0}, int64_t{3'600'000}))
      ->capture_default_str();
  app.add_option("--key", cfg.key, "Resource key of the counter")->capture_default_str();
  app.add_option("--lock", cfg.lock, "Lock name (default: lab/<key>)");
  app.add_option("--duration-s", cfg.duration_s, "Run this long (0: until SIGTERM)")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--seed", cfg.seed, "Seed of the jitter between cycles")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  if (cfg.lock.empty()) cfg.lock = "lab/" + cfg.key;
  if (cfg.key.empty() || cfg.process.empty()) {
    std::cerr << "dlock-lab-client: --key and --process must not be empty\n";
    return kExitUsage;
  }
  if (!parse_host_port(cfg.resource, cfg.resource_host, cfg.resource_port)) {
    std::cerr << "dlock-lab-client: --resource must be HOST:PORT, got \"" << cfg.resource << "\"\n";
    return kExitUsage;
  }
  if (auto uri = sd::dlock::parse_backend_uri(cfg.backend); !uri) {
    std::cerr << "dlock-lab-client: " << uri.status().to_string() << "\n";
    return kExitUsage;
  }
  auto history = sd::dlock::lab::HistoryWriter::open(cfg.history);
  if (!history) {
    std::cerr << "dlock-lab-client: " << history.status().to_string() << "\n";
    return kExitStart;
  }

  // Never destroyed: the detached signal thread may touch it until the process is gone. Held by a
  // static pointer, so it stays reachable (not a leak to LeakSanitizer).
  static auto* const stop = new StopFlag;
  std::thread([signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    stop->set();
  }).detach();  // blocked in sigwait until a signal; the process exit ends it

  std::optional<SteadyClock::time_point> end;
  if (cfg.duration_s > 0) {
    end = SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(
                                   std::chrono::duration<double>(cfg.duration_s));
  }
  nlohmann::json summary;
  {
    LabClient client(cfg, **history, *stop);
    client.run(end);
    summary = client.summary();
  }
  std::printf("%s\n", summary.dump().c_str());
  std::fflush(stdout);
  return 0;
}
