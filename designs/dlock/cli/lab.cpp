// `dlock lab`: run one safety experiment (sd::dlock::lab::run_experiment) from the command line.

#include <iostream>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "sd/dlock/lab/experiment.hpp"

namespace sd::dlock::cli {
namespace {

struct LabArgs {
  std::string backend, faults = "pause", duration = "30s", ttl = "2s", work = "50ms", wait = "0";
  std::string persistence = "off", pause_target = "holder", out;
  size_t clients = 5, crash_servers = 1;
  uint64_t seed = 42;
  bool no_fencing = false;
  std::string resource_bin, client_bin, dlockd_bin, clockshift_lib;
};

int usage(const std::string& what) {
  std::cerr << "dlock lab: " << what << "\n";
  return lab::kLabUsage;
}

int cmd_lab(const LabArgs& a, const std::string& command_line) {
  lab::ExperimentOptions o;
  auto kind = lab::parse_backend_kind(a.backend);
  if (!kind)
    return usage("--backend must be dlockd, redis, redlock or etcd (got \"" + a.backend + "\")");
  o.backend = *kind;
  auto faults = lab::parse_faults(a.faults, o.backend);
  if (!faults.is_ok()) return usage(faults.status().message());
  o.faults = *faults;
  struct {
    const std::string& text;
    const char* flag;
    int64_t* into;
    bool zero_ok;
  } durations[] = {{a.duration, "--duration", &o.duration_ms, false},
                   {a.ttl, "--ttl", &o.ttl_ms, false},
                   {a.work, "--work", &o.work_ms, true},
                   {a.wait, "--wait", &o.wait_ms, true}};
  for (const auto& d : durations) {
    auto v = parse_duration(d.text);
    if (!v || (!d.zero_ok && v->count() <= 0)) {
      return usage(std::string("bad ") + d.flag + " \"" + d.text + "\" (e.g. 500ms, 10s, 2m)");
    }
    *d.into = v->count();
  }
  if (o.backend == lab::BackendKind::kEtcd && o.ttl_ms % 1000 != 0) {
    return usage("etcd leases have whole-second TTLs: use --ttl 1s, 2s, ...");
  }
  if (a.clients == 0 || a.clients > 64) return usage("--clients must be 1..64");
  if (a.persistence != "on" && a.persistence != "off") return usage("--redis-persistence on|off");
  if (a.pause_target != "holder" && a.pause_target != "random") {
    return usage("--pause-target holder|random");
  }
  if (a.crash_servers == 0 || a.crash_servers > lab::backend_server_count(o.backend)) {
    return usage("--crash-servers must be 1.." +
                 std::to_string(lab::backend_server_count(o.backend)) + " for this backend");
  }
  o.crash_servers = a.crash_servers;
  o.clients = a.clients;
  o.seed = a.seed;
  o.fencing = !a.no_fencing;
  o.redis_persistence = a.persistence == "on";
  o.target_holder = a.pause_target == "holder";
  o.out_dir = a.out;
  o.command_line = command_line;
  o.resource_bin = a.resource_bin;
  o.client_bin = a.client_bin;
  o.dlockd_bin = a.dlockd_bin;
  o.clockshift_lib = a.clockshift_lib;
  return lab::run_experiment(o, std::cout, std::cerr);
}

}  // namespace

CLI::App* add_lab_command(CLI::App& app, std::function<int()>& action, int argc, char** argv) {
  auto args = std::make_shared<LabArgs>();
  std::string command_line;
  for (int i = 0; i < argc; ++i) command_line += (i ? " " : "") + std::string(argv[i]);
  auto* lab = app.add_subcommand(
      "lab",
      "Run a safety experiment: start the backend's servers, a fenced resource and N lab clients\n"
      "that increment a counter under the lock, inject faults on a seeded schedule, then check\n"
      "the history (mutual exclusion, fencing, lost updates, linearizability) and write\n"
      "DIR/history.jsonl, report.txt, verdicts.json and timeline.html.\n"
      "Faults per backend: dlockd pause,crash,partition; redis and redlock\n"
      "pause,crash,clock,partition; etcd pause,crash,leader,partition (restart = crash).\n"
      "Exit codes: 0 no violation, 1 violation found, 2 usage error, 69 could not start.");
  lab->add_option("--backend", args->backend,
                  "dlockd | redis | redlock (5 masters) | etcd (3 members)")
      ->required();
  lab->add_option("--faults", args->faults, "comma-separated faults, or none")
      ->capture_default_str();
  lab->add_option("--clients", args->clients, "lab client processes")->capture_default_str();
  lab->add_option("--duration", args->duration, "how long the clients run")->capture_default_str();
  lab->add_option("--seed", args->seed, "seed of the fault schedule and the clients' jitter")
      ->capture_default_str();
  lab->add_flag("--no-fencing", args->no_fencing, "the resource accepts stale tokens");
  lab->add_option("--ttl", args->ttl, "lease TTL of the clients' sessions")->capture_default_str();
  lab->add_option("--work", args->work, "time between read and write inside the lock")
      ->capture_default_str();
  lab->add_option("--wait", args->wait, "how long one acquire waits (0: the TTL)")
      ->capture_default_str();
  lab->add_option("--redis-persistence", args->persistence,
                  "on: AOF with appendfsync always (a restarted Redis keeps its keys)")
      ->capture_default_str();
  lab->add_option("--crash-servers", args->crash_servers,
                  "servers one crash kills at once (redlock: 3 = a majority restarts)")
      ->capture_default_str();
  lab->add_option("--pause-target", args->pause_target,
                  "holder: pause/partition the client inside its critical section if any; random")
      ->capture_default_str();
  lab->add_option("--out", args->out,
                  "output directory (default ./var/lab/<backend>-<seed>-<time>)");
  lab->add_option("--resource-bin", args->resource_bin,
                  "dlock-lab-resource (default: next to dlock)");
  lab->add_option("--client-bin", args->client_bin, "dlock-lab-client (default: next to dlock)");
  lab->add_option("--dlockd-bin", args->dlockd_bin, "dlockd (default: next to dlock)");
  lab->add_option("--clockshift-lib", args->clockshift_lib,
                  "LD_PRELOAD clock shim for the clock fault (default: next to dlock)");
  lab->callback([&action, args, command_line] {
    action = [args, command_line] { return cmd_lab(*args, command_line); };
  });
  return lab;
}

}  // namespace sd::dlock::cli
