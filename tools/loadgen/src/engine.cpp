// run(): validate, resolve (loopback only), connect and set up every connection before the clock
// starts (so connection setup never pollutes latency, and a dead target fails fast with exit 1),
// then run the loops on T threads, report progress, and merge the per-thread results.
#include <algorithm>
#include <thread>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "engine_impl.hpp"

namespace sd::loadgen {

using namespace detail;

namespace {

Status validate(const RunConfig& c) {
  if (c.connections == 0) return invalid_argument("connections must be >= 1");
  if (c.threads == 0) return invalid_argument("threads must be >= 1");
  if (c.rate < 0) return invalid_argument("rate must be >= 0 (0 = closed loop)");
  if (c.duration.count() <= 0) return invalid_argument("duration must be > 0");
  if (c.warmup.count() < 0 || c.drain_timeout.count() < 0)
    return invalid_argument("warmup and drain timeout must be >= 0");
  if (c.request_timeout.count() <= 0) return invalid_argument("request timeout must be > 0");
  if (c.keys.keyspace == 0) return invalid_argument("keyspace must be >= 1");
  if (c.keys.dist == KeyDist::kZipf && !(c.keys.zipf_s > 0))
    return invalid_argument("zipf s must be > 0");
  if (c.workload.op.empty() && !c.workload.handoff) return invalid_argument("empty workload");
  if (c.workload.handoff) {
    if (c.connections % 2 != 0)
      return invalid_argument(c.workload.name + " needs an even number of connections (pairs)");
    if (c.rate > 0) return invalid_argument(c.workload.name + " runs closed loop only (no rate)");
  }
  return Status::ok();
}

// Runs every thread's io_context to completion on its own std::thread.
void run_threads(std::vector<std::unique_ptr<ThreadCtx>>& threads,
                 const std::function<void()>& while_running = {}) {
  std::atomic<size_t> done{0};
  std::vector<std::thread> pool;
  for (auto& th : threads) {
    pool.emplace_back([&th, &done] {
      th->ioc.run();
      done.fetch_add(1);
    });
  }
  while (while_running && done.load() < threads.size()) {
    while_running();
  }
  for (auto& t : pool) t.join();
}

// co_spawn completion: the coroutine finished (or threw, which is a bug worth reporting).
auto finisher(Shared& sh, ThreadCtx& th) {
  return [&sh, &th](std::exception_ptr e) {
    --th.active;
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      sh.sample_error(std::string("internal: ") + ex.what());
    }
  };
}

asio::awaitable<void> setup_conn(Shared& sh, ThreadCtx& th, Conn& c) {
  Status st = co_await ensure_connected(sh, th, c);
  if (st.is_ok() && !sh.cfg.workload.setup.empty()) {
    Vars captured;
    std::string key;
    Verdict v = co_await run_script(sh, th, c, sh.cfg.workload.setup, captured, key);
    if (v.outcome == Outcome::kError || v.outcome == Outcome::kConflict)
      st = unavailable("setup: " + (v.message.empty() ? std::string("conflict") : v.message));
    c.vars = std::move(captured);
  }
  if (!st.is_ok() && th.setup_status.is_ok()) th.setup_status = st;
}

}  // namespace

Result<RunResult> run(const RunConfig& cfg) {
  SD_RETURN_IF_ERROR(validate(cfg));
  auto ep = resolve_loopback(cfg.target);
  if (!ep.is_ok()) return ep.status();

  Shared sh(cfg);
  const uint32_t nthreads = std::min(cfg.threads, cfg.connections);
  std::vector<std::unique_ptr<ThreadCtx>> threads;
  const bool any_timed = std::any_of(cfg.workload.op.begin(), cfg.workload.op.end(),
                                     [](const Step& s) { return s.timed; });
  for (uint32_t t = 0; t < nthreads; ++t) {
    threads.push_back(std::make_unique<ThreadCtx>());
    if (any_timed) threads.back()->step_hists.resize(cfg.workload.op.size());
  }
  for (uint32_t i = 0; i < cfg.connections; ++i) {
    // A handoff pair must share a thread (its two sides run in one coroutine).
    uint32_t slot = cfg.workload.handoff ? (i / 2) % nthreads : i % nthreads;
    ThreadCtx& th = *threads[slot];
    auto c = std::make_unique<Conn>(th.ioc, i, cfg.keys, cfg.seed);
    c->transport = make_transport(cfg.workload.protocol, th.ioc, *ep, cfg.target.to_string());
    th.conns.push_back(std::move(c));
  }

  // Phase 1: connect + setup, bounded by the request timeout through the sweeper.
  sh.hard_end = Clock::now() + cfg.request_timeout * 2;
  sh.end = sh.warm_end = sh.start = Clock::now();
  for (auto& th : threads) {
    th->active = th->conns.size();
    for (auto& c : th->conns) asio::co_spawn(th->ioc, setup_conn(sh, *th, *c), finisher(sh, *th));
    asio::co_spawn(th->ioc, sweeper(sh, *th), asio::detached);
  }
  run_threads(threads);
  for (auto& th : threads) {
    if (!th->setup_status.is_ok()) return th->setup_status;
    th->ioc.restart();
    th->hard_stop = false;
  }

  // Phase 2: the measured run. A short lead time lets every thread reach its first op together.
  sh.start = Clock::now() + std::chrono::milliseconds(20);
  sh.warm_end = sh.start + cfg.warmup;
  sh.end = sh.warm_end + cfg.duration;
  sh.hard_end = sh.end + cfg.drain_timeout;
  if (cfg.rate > 0) sh.schedule.emplace(cfg.rate, cfg.connections, sh.start);
  for (auto& th : threads) {
    auto& conns = th->conns;
    if (cfg.workload.handoff) {
      th->active = conns.size() / 2;
      for (size_t i = 0; i + 1 < conns.size(); i += 2)
        asio::co_spawn(th->ioc, pair_loop(sh, *th, *conns[i], *conns[i + 1]), finisher(sh, *th));
    } else {
      th->active = conns.size();
      for (auto& c : conns) asio::co_spawn(th->ioc, conn_loop(sh, *th, *c), finisher(sh, *th));
    }
    asio::co_spawn(th->ioc, sweeper(sh, *th), asio::detached);
  }

  auto next_report = sh.start + std::chrono::seconds(1);
  run_threads(threads, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    auto now = Clock::now();
    if (now < next_report || !cfg.on_progress) return;
    next_report += std::chrono::seconds(1);
    Progress p;
    p.elapsed_s = std::chrono::duration<double>(now - sh.start).count();
    p.warming_up = now < sh.warm_end;
    for (auto& th : threads) {
      p.ops += th->progress_ops.load(std::memory_order_relaxed);
      p.errors += th->progress_errors.load(std::memory_order_relaxed);
    }
    double measured_s = std::chrono::duration<double>(std::min(now, sh.end) - sh.warm_end).count();
    p.ops_per_s = measured_s > 0 ? static_cast<double>(p.ops) / measured_s : 0;
    cfg.on_progress(p);
  });

  RunResult r;
  r.workload = cfg.workload.name;
  r.target = cfg.target.to_string();
  r.mode = cfg.rate > 0 ? "open" : "closed";
  r.connections = cfg.connections;
  r.threads = nthreads;
  r.rate = cfg.rate;
  r.keys = cfg.keys;
  r.seed = cfg.seed;
  for (size_t i = 0; i < cfg.workload.op.size(); ++i) {
    if (!cfg.workload.op[i].timed) continue;
    RunResult::StepLatency step{cfg.workload.op[i].name, {}};
    for (auto& th : threads) step.latency.merge(th->step_hists[i]);
    r.steps.push_back(std::move(step));
  }
  SteadyTime last_done{};
  for (auto& th : threads) {
    r.latency.merge(th->hist);
    r.ok += th->counters.ok;
    r.conflicts += th->counters.conflicts;
    r.errors += th->counters.errors;
    r.retries += th->counters.retries;
    last_done = std::max(last_done, th->last_measured_done);
  }
  r.ops = r.ok + r.conflicts + r.errors;
  // The measured window is the configured one, unless max-ops ended the run early.
  SteadyTime window_end = sh.max_ops_reached.load() ? std::min(last_done, sh.end) : sh.end;
  r.duration_s = std::max(0.0, std::chrono::duration<double>(window_end - sh.warm_end).count());
  r.throughput_ops_s = r.duration_s > 0 ? static_cast<double>(r.ops) / r.duration_s : 0;
  {
    std::lock_guard<std::mutex> lk(sh.samples_mu);
    r.error_samples = sh.samples;
  }
  return r;
}

}  // namespace sd::loadgen
