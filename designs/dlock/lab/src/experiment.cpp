// `dlock lab`: one experiment from start to verdict (see experiment.hpp).

#include "sd/dlock/lab/experiment.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream>
#include <thread>

#include "backends.hpp"
#include "experiment_internal.hpp"
#include "sd/dlock/lab/checker.hpp"
#include "sd/dlock/lab/timeline.hpp"

namespace sd::dlock::lab {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Set by SIGINT/SIGTERM: the run ends early but still stops, checks and reports.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_interrupt(int) {
  g_interrupted = 1;
}

std::string exe_dir() {
  std::error_code ec;
  fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

std::string ms_text(int64_t ms) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(ms) / 1000.0);
  return buf;
}

// Waits for "listening on http://127.0.0.1:PORT" in the resource's stdout file.
std::optional<uint16_t> wait_for_listening(sd::testing::Process& p, const std::string& out_file) {
  const std::string marker = "listening on http://127.0.0.1:";
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline && p.running()) {
    std::string s = sd::testing::read_file(out_file);
    auto at = s.find(marker);
    if (at != std::string::npos && s.find('\n', at) != std::string::npos) {
      return static_cast<uint16_t>(std::stoul(s.substr(at + marker.size())));
    }
    std::this_thread::sleep_for(10ms);
  }
  return std::nullopt;
}

}  // namespace

int run_experiment(const ExperimentOptions& o, std::ostream& out, std::ostream& err) {
  if (o.clients == 0 || o.duration_ms <= 0 || o.ttl_ms <= 0 || o.work_ms < 0) {
    err << "dlock lab: --clients, --duration and --ttl must be positive\n";
    return kLabUsage;
  }
  const std::string dir_of_exe = exe_dir();
  auto bin = [&](const std::string& given, const std::string& name) {
    return given.empty() ? (fs::path(dir_of_exe) / name).string() : given;
  };
  Paths paths;
  paths.dir = o.out_dir.empty()
                  ? "var/lab/" + std::string(backend_kind_name(o.backend)) + "-" +
                        std::to_string(o.seed) + "-" + std::to_string(std::time(nullptr))
                  : o.out_dir;
  std::error_code ec;
  for (const char* sub : {"raw", "logs", "servers"}) {
    fs::create_directories(fs::path(paths.dir) / sub, ec);
    if (ec) {
      err << "dlock lab: cannot create " << paths.dir << ": " << ec.message() << "\n";
      return kLabCannotStart;
    }
  }
  const bool has_clock =
      std::find(o.faults.begin(), o.faults.end(), FaultKind::kClock) != o.faults.end();
  const bool has_partition =
      std::find(o.faults.begin(), o.faults.end(), FaultKind::kPartition) != o.faults.end();
  RunnerBinaries bins{bin(o.resource_bin, "dlock-lab-resource"),
                      bin(o.client_bin, "dlock-lab-client"), bin(o.dlockd_bin, "dlockd"),
                      bin(o.clockshift_lib, "libsd_clockshift.so")};
  for (const std::string* b : {&bins.resource, &bins.client}) {
    if (::access(b->c_str(), X_OK) != 0) {
      err << "dlock lab: " << *b << " not found or not executable (build it, or pass its path)\n";
      return kLabCannotStart;
    }
  }
  if (o.backend == BackendKind::kDlockd && ::access(bins.dlockd.c_str(), X_OK) != 0) {
    err << "dlock lab: " << bins.dlockd << " not found (build dlockd, or pass --dlockd-bin)\n";
    return kLabCannotStart;
  }
  if (has_clock && ::access(bins.clockshift.c_str(), R_OK) != 0) {
    err << "dlock lab: the clock fault needs " << bins.clockshift << " (built with dlock)\n";
    return kLabCannotStart;
  }

  auto prev_int = std::signal(SIGINT, on_interrupt);
  auto prev_term = std::signal(SIGTERM, on_interrupt);
  g_interrupted = 0;
  Runner runner(o, paths, bins, out, err);
  int rc = runner.start(has_clock, has_partition);
  if (rc == kLabOk) rc = runner.run([] { return g_interrupted != 0; });
  runner.stop();
  std::signal(SIGINT, prev_int);
  std::signal(SIGTERM, prev_term);
  if (rc != kLabOk) return rc;
  return runner.report();
}

// ---------------------------------------------------------------------------------------------
// Runner

Runner::Runner(const ExperimentOptions& o, Paths paths, RunnerBinaries bins, std::ostream& out,
               std::ostream& err)
    : o_(o),
      paths_(std::move(paths)),
      bins_(std::move(bins)),
      out_(out),
      err_(err),
      rng_(o.seed ^ 0x5eedULL) {}

Runner::~Runner() {
  stop();
}

std::string Runner::raw(const std::string& name) const {
  return (fs::path(paths_.dir) / "raw" / (name + ".jsonl")).string();
}

std::string Runner::log(const std::string& name) const {
  return (fs::path(paths_.dir) / "logs" / (name + ".log")).string();
}

int Runner::start(bool has_clock, bool has_partition) {
  out_ << "dlock lab: " << backend_kind_name(o_.backend) << ", faults ";
  for (size_t i = 0; i < o_.faults.size(); ++i)
    out_ << (i ? "," : "") << fault_kind_name(o_.faults[i]);
  if (o_.faults.empty()) out_ << "none";
  out_ << ", " << o_.clients << " clients, " << ms_text(o_.duration_ms) << ", seed " << o_.seed
       << ", fencing " << (o_.fencing ? "on" : "off") << ", ttl " << o_.ttl_ms << " ms, work "
       << o_.work_ms << " ms\n";
  out_ << "output: " << paths_.dir << "\n";

  auto nem = HistoryWriter::open(raw("nemesis"));
  if (!nem.is_ok()) {
    err_ << "dlock lab: " << nem.status().to_string() << "\n";
    return kLabCannotStart;
  }
  nemesis_ = std::move(*nem);

  // The resource (never faulted).
  sd::testing::ProcessOptions po;
  po.stdout_path = log("resource");
  po.stderr_path = log("resource");
  po.die_with_parent = true;
  auto res = sd::testing::Process::spawn({bins_.resource, "--port", "0", "--fencing",
                                          o_.fencing ? "on" : "off", "--history", raw("resource")},
                                         po);
  if (!res.is_ok()) {
    err_ << "dlock lab: cannot start " << bins_.resource << ": " << res.status().to_string()
         << "\n";
    return kLabCannotStart;
  }
  resource_.emplace(std::move(*res));
  auto port = wait_for_listening(*resource_, log("resource"));
  if (!port) {
    err_ << "dlock lab: the resource did not start; see " << log("resource") << "\n";
    return kLabCannotStart;
  }
  resource_port_ = *port;

  // The backend's servers.
  BackendSetup bs;
  bs.kind = o_.backend;
  bs.dir = (fs::path(paths_.dir) / "servers").string();
  bs.clients = o_.clients;
  bs.proxies = has_partition;
  bs.redis_persistence = o_.redis_persistence;
  bs.dlockd_bin = bins_.dlockd;
  if (has_clock) bs.clockshift_lib = fs::absolute(bins_.clockshift).string();
  auto backend = LabBackend::start(bs);
  if (!backend.is_ok()) {
    err_ << "dlock lab: cannot start the " << backend_kind_name(o_.backend)
         << " servers: " << backend.status().to_string() << "\n";
    return kLabCannotStart;
  }
  backend_ = std::move(*backend);
  out_ << "servers: " << backend_->describe() << "\n";
  out_ << "resource: 127.0.0.1:" << resource_port_ << " (fencing " << (o_.fencing ? "on" : "off")
       << ")\n";

  // The clients.
  const int64_t wait_ms = o_.wait_ms > 0 ? o_.wait_ms : o_.ttl_ms;
  for (size_t c = 0; c < o_.clients; ++c) {
    const std::string name = "c" + std::to_string(c);
    sd::testing::ProcessOptions cpo;
    cpo.stdout_path = log(name);
    cpo.stderr_path = log(name);
    cpo.die_with_parent = true;
    auto p = sd::testing::Process::spawn(
        {bins_.client, "--backend", backend_->uri_for_client(c), "--resource",
         "127.0.0.1:" + std::to_string(resource_port_), "--process", name, "--history", raw(name),
         "--ttl-ms", std::to_string(o_.ttl_ms), "--wait-ms", std::to_string(wait_ms), "--work-ms",
         std::to_string(o_.work_ms), "--seed", std::to_string(o_.seed * 1000 + c)},
        cpo);
    if (!p.is_ok()) {
      err_ << "dlock lab: cannot start " << bins_.client << ": " << p.status().to_string() << "\n";
      return kLabCannotStart;
    }
    clients_.push_back(std::move(*p));
    tails_.emplace_back(raw(name));
  }
  tails_.emplace_back(raw("resource"));
  busy_until_ns_.assign(o_.clients, 0);
  return kLabOk;
}

}  // namespace sd::dlock::lab
