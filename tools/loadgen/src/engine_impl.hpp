#pragma once
// Internal to sd_loadgen: the engine's shared state, per-thread state, connections and the
// transports (Asio/Beast live here and in src/*.cpp only, never in include/).
//
// Threading: each engine thread owns one io_context and the connections on it; everything a
// connection touches (its transport, timers, the thread's histogram and counters) is used only from
// that thread, so the hot path takes no locks. Cross-thread state is in Shared: atomics for the
// max-ops cap and progress, a mutex only for the rare error samples.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "sd/loadgen/engine.hpp"
#include "sd/loadgen/schedule.hpp"

namespace sd::loadgen::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
// Completion token that reports errors as values: a refused connection or a socket closed by the
// timeout sweeper is routine here, and exceptions would make those paths slow and noisy.
inline constexpr auto kTok = asio::as_tuple(asio::use_awaitable);

inline constexpr SteadyTime kNever = SteadyTime::max();

// One request/reply stream over TCP. Not thread-safe: used by one coroutine at a time (the handoff
// loop sends and receives on B while A runs, but on different Transports).
class Transport {
 public:
  virtual ~Transport() = default;
  virtual asio::awaitable<Status> connect() = 0;
  virtual asio::awaitable<Status> send(const Call& call) = 0;
  virtual asio::awaitable<Result<Reply>> receive() = 0;
  virtual void close() = 0;
  virtual bool is_open() const = 0;
};

std::unique_ptr<Transport> make_transport(Protocol p, asio::io_context& ioc,
                                          const tcp::endpoint& ep, std::string host_header);

// Resolves the target and insists every address is loopback (see engine.hpp).
Result<tcp::endpoint> resolve_loopback(const Target& target);

struct Conn {
  Conn(asio::io_context& ioc, uint32_t idx, const KeyConfig& keys, uint64_t seed)
      : index(idx),
        chooser(keys, seed, idx),
        rng(stream_seed(seed, (uint64_t{1} << 32) + idx)),
        timer(ioc) {}
  uint32_t index;
  std::unique_ptr<Transport> transport;
  KeyChooser chooser;
  std::mt19937_64 rng;  // other per-connection randomness (handoff release jitter), seeded
  Vars vars;            // from the setup script (lease id)
  Vars op_vars;         // the current op's captures (handoff: the current hold's)
  // The current op's timed steps (Step::timed): (index in the op script, round trip in ns).
  std::vector<std::pair<size_t, uint64_t>> step_ns;
  uint64_t seq = 0;
  asio::steady_timer timer;  // pacing, retry and backoff sleeps
  // The sweeper closes the transport when a request passes its deadline; timed_out tells the
  // failing call why its socket went away.
  SteadyTime deadline = kNever;
  bool timed_out = false;
  bool connect_failed = false;  // the last failure was a (re)connect: back off before retrying
};

struct Counters {
  uint64_t ok = 0, conflicts = 0, errors = 0, retries = 0;
};

struct alignas(64) ThreadCtx {
  asio::io_context ioc{1};  // concurrency hint 1: one thread runs it, so Asio can skip locking
  std::vector<std::unique_ptr<Conn>> conns;
  Histogram hist;
  std::vector<Histogram> step_hists;  // per op-script step; filled only for timed steps
  Counters counters;
  SteadyTime last_measured_done{};
  size_t active = 0;       // coroutines still running on this thread
  bool hard_stop = false;  // the drain timeout passed: abandon in-flight work
  Status setup_status;     // first setup failure on this thread
  std::atomic<uint64_t> progress_ops{0};
  std::atomic<uint64_t> progress_errors{0};
};

struct Shared {
  explicit Shared(const RunConfig& c) : cfg(c) {}
  const RunConfig& cfg;
  SteadyTime start{}, warm_end{}, end{}, hard_end{};
  std::optional<OpenLoopSchedule> schedule;
  std::atomic<uint64_t> started_measured{0};
  std::atomic<bool> max_ops_reached{false};
  std::mutex samples_mu;
  std::vector<std::string> samples;  // guarded by samples_mu

  void sample_error(const std::string& message);
  // Reserves a measured op under the max-ops cap; false once the cap is reached.
  bool admit_measured();
  bool measured(SteadyTime intended) const { return intended >= warm_end && intended < end; }
  // Counts one finished op into the thread's stats if it belongs to the measured window, with the
  // timed steps' round trips of `conn`'s op when given.
  void record(ThreadCtx& th, SteadyTime intended, SteadyTime done, const Verdict& v,
              uint32_t retries, const Conn* conn = nullptr);
};

// Helpers shared by the loops (engine.cpp).
asio::awaitable<void> sleep_until(Conn& c, SteadyTime t);
// Reconnects when the transport is closed; Status says why not.
asio::awaitable<Status> ensure_connected(Shared& sh, ThreadCtx& th, Conn& c);
// One step's request and reply with the request deadline armed; transport failures close the
// transport (framing is unknown afterwards) and come back as kError verdicts.
asio::awaitable<Result<Reply>> exchange(Shared& sh, ThreadCtx& th, Conn& c, const Call& call,
                                        bool do_send, bool do_receive,
                                        std::chrono::milliseconds timeout);
// Runs a script's steps in order (see workload.hpp for the step protocol).
asio::awaitable<Verdict> run_script(Shared& sh, ThreadCtx& th, Conn& c, const Script& script,
                                    Vars& op_vars, const std::string& key);
// Closes transports past their deadline; at hard_end closes everything. Ends when th.active is 0.
asio::awaitable<void> sweeper(Shared& sh, ThreadCtx& th);

// The per-connection op loop (conn_loop.cpp) and the handoff pair loop (handoff_loop.cpp).
asio::awaitable<void> conn_loop(Shared& sh, ThreadCtx& th, Conn& c);
asio::awaitable<void> pair_loop(Shared& sh, ThreadCtx& th, Conn& a, Conn& b);
// Teardown script, best effort.
asio::awaitable<void> teardown(Shared& sh, ThreadCtx& th, Conn& c);

}  // namespace sd::loadgen::detail
