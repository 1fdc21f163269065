// dlock-check: runs the safety lab's checker on a history file (JSONL, see history.hpp).
// Exit codes: 0 no violation (rules the search could not decide print as unknown), 1 a violation
// found, 2 usage or bad input.

#include <cstdint>
#include <iostream>

#include <CLI/CLI.hpp>

#include "sd/dlock/lab/checker.hpp"
#include "sd/dlock/lab/history.hpp"

using namespace sd::dlock::lab;

int main(int argc, char** argv) {
  CLI::App app{
      "dlock-check: check a dlock lab history for mutual exclusion, fencing, lost updates and "
      "linearizability of the lock operations",
      "dlock-check"};
  app.footer(
      "Exit codes: 0 no violation found (undecided rules print as unknown), 1 a violation "
      "found, 2 usage or bad input.");
  std::string path;
  CheckOptions options;
  bool json = false;
  app.add_option("history", path, "history file (JSONL; merged and sorted by time or not)")
      ->required();
  app.add_option("--max-states", options.max_search_states,
                 "linearizability search budget; past it the rule is unknown")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--key", options.key, "the resource key the clients increment")
      ->capture_default_str();
  app.add_flag("--json", json, "print the report as one JSON object");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  auto file = read_history(path);
  if (!file) {
    std::cerr << "dlock-check: " << file.status().message() << "\n";
    return 2;
  }
  if (file->truncated_lines > 0) {
    std::cerr << "dlock-check: skipped a truncated last line in " << path << "\n";
  }
  std::vector<Event> history = std::move(file->events);
  sort_by_time(history);
  CheckReport report = check_history(history, options);
  if (json) {
    std::cout << report_json(report, history) << "\n";
  } else {
    std::cout << history.size() << " events in " << path << "\n\n"
              << format_report(report, history);
  }
  return report.violated() ? 1 : 0;
}
