// dlock: distributed locks from the shell. See cli.hpp for the exit codes.

#include <csignal>
#include <functional>
#include <iostream>

#include <CLI/CLI.hpp>

#include "cli.hpp"
#include "sd/dlock/lab/experiment.hpp"

using namespace sd::dlock::cli;

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);  // `run` restores the default for CMD

  CLI::App app{"dlock: take, inspect and release distributed locks (dlockd, or in-process engines)",
               "dlock"};
  app.footer(kExitCodesHelp);
  app.require_subcommand(1);
  app.fallthrough();  // --uri may also follow the subcommand
  std::string uri = "dlockd://127.0.0.1:7401";
  app.add_option("--uri", uri,
                 "lock backend: dlockd://host:port, memory://, sqlite:///path/file.db")
      ->envname("DLOCK_URI")
      ->capture_default_str();

  std::function<int()> action;

  AcquireArgs acq;
  auto* acquire = app.add_subcommand(
      "acquire",
      "Take a lock and print {\"name\",\"token\",\"lease_id\",\"ttl_ms\"} as JSON. The lease is "
      "NOT kept alive after dlock exits: the lock is freed when --ttl runs out (or by `dlock "
      "release`). Use `dlock run` to hold a lock while a command runs.");
  acquire->add_option("name", acq.name, "lock name")->required();
  acquire->add_option("--ttl", acq.ttl, "lease TTL: 500ms, 10s, 2m or plain milliseconds")
      ->capture_default_str();
  acquire->add_option("--wait", acq.wait, "how long to wait for the lock (0: try once)")
      ->capture_default_str();
  acquire->add_flag("--shared", acq.shared, "take it in shared (reader) mode");
  acquire->callback([&] { action = [&] { return cmd_acquire(uri, acq); }; });

  ReleaseArgs rel;
  auto* release = app.add_subcommand("release", "Release a lock taken with `dlock acquire`.");
  release->add_option("name", rel.name, "lock name")->required();
  release->add_option("--lease", rel.lease, "lease id printed by acquire")->required();
  release->add_option("--token", rel.token, "fencing token printed by acquire")->required();
  release->callback([&] { action = [&] { return cmd_release(uri, rel); }; });

  std::string status_name;
  auto* status = app.add_subcommand("status", "Print a lock's holders and waiters as JSON.");
  status->add_option("name", status_name, "lock name")->required();
  status->callback([&] { action = [&] { return cmd_status(uri, status_name); }; });

  std::string prefix;
  auto* list = app.add_subcommand("list", "List locks (with holders, waiters or a last token).");
  list->add_option("--prefix", prefix, "only names starting with this");
  list->callback([&] { action = [&] { return cmd_list(uri, prefix); }; });

  RunArgs run_args;
  auto* run = app.add_subcommand(
      "run",
      "Hold a lock while CMD runs: dlock run NAME [flags] -- CMD ARGS...\n"
      "The lease is kept alive in the background. CMD gets DLOCK_NAME, DLOCK_TOKEN (the fencing\n"
      "token) and DLOCK_LEASE_ID in its environment and runs in its own process group. If the\n"
      "lock is lost, CMD's group gets SIGTERM, then SIGKILL after --grace, and dlock exits 76.\n"
      "SIGINT/SIGTERM sent to dlock are forwarded to CMD. The lock is released when CMD exits.");
  run->add_option("name", run_args.name, "lock name")->required();
  run->add_option("--ttl", run_args.ttl, "lease TTL (renewed every ttl/3)")->capture_default_str();
  run->add_option("--wait", run_args.wait, "how long to wait for the lock (0: try once)")
      ->capture_default_str();
  run->add_option("--grace", run_args.grace, "SIGTERM -> SIGKILL delay when the lock is lost")
      ->capture_default_str();
  run->add_flag("--shared", run_args.shared, "take it in shared (reader) mode");
  run->add_option("command", run_args.command, "CMD and its arguments (after --)")->required();
  run->callback([&] { action = [&] { return cmd_run(uri, run_args); }; });

  for (auto* sub : {acquire, release, status, list, run}) sub->footer(kExitCodesHelp);

  auto* lab = add_lab_command(app, action, argc, argv);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);  // prints help (rc 0) or the error
    if (rc != 0 && lab->parsed()) return sd::dlock::lab::kLabUsage;  // lab's own exit codes
    return rc == 0 ? kExitOk : kExitUsage;
  }
  if (!action) return kExitUsage;
  return action();
}
