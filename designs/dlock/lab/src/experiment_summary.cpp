// The experiment's counts: live progress from the processes' history files, and the per-client
// summary table from the merged history.

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "sd/dlock/lab/experiment.hpp"

namespace sd::dlock::lab {

namespace {
bool is_client(const std::string& p) {
  return p != "resource" && p != "nemesis";
}
}  // namespace

void update_progress(Progress& p, const Event& e) {
  if (e.process == "resource") {
    if (e.f == "write" && e.type == EventType::kOk) ++p.writes_accepted;
    if (e.f == "write" && e.type == EventType::kFail) ++p.writes_rejected;
    return;
  }
  if (!is_client(e.process)) return;
  if (e.f == "acquire" && e.type == EventType::kOk) {
    ++p.cycles;
    p.in_section[e.process] = true;
  } else if ((e.f == "release" && e.type == EventType::kInvoke) || e.f == "lost") {
    p.in_section[e.process] = false;
  }
}

std::map<std::string, ClientSummary> summarize(const std::vector<Event>& history) {
  std::map<std::string, ClientSummary> out;
  for (const Event& e : history) {
    if (e.process == "resource") {
      if (e.f != "write" || e.client.empty()) continue;
      if (e.type == EventType::kOk) ++out[e.client].writes_accepted;
      if (e.type == EventType::kFail) ++out[e.client].writes_rejected;
      continue;
    }
    if (!is_client(e.process)) continue;
    ClientSummary& s = out[e.process];
    if (e.f == "acquire") {
      if (e.type == EventType::kOk) ++s.acquires_ok;
      if (e.type == EventType::kFail) ++s.acquires_failed;
      if (e.type == EventType::kInfo) ++s.acquires_unknown;
    } else if (e.f == "lost") {
      ++s.lost_sessions;
    }
  }
  return out;
}

std::string format_summary(const std::map<std::string, ClientSummary>& s) {
  std::ostringstream out;
  char line[160];
  std::snprintf(line, sizeof line, "%-8s %11s %8s %8s %15s %9s %6s\n", "client", "acquires ok",
                "failed", "unknown", "writes accepted", "rejected", "lost");
  out << line;
  ClientSummary total;
  auto row = [&](const std::string& name, const ClientSummary& c) {
    std::snprintf(line, sizeof line, "%-8s %11zu %8zu %8zu %15zu %9zu %6zu\n", name.c_str(),
                  c.acquires_ok, c.acquires_failed, c.acquires_unknown, c.writes_accepted,
                  c.writes_rejected, c.lost_sessions);
    out << line;
  };
  // c2 before c10.
  std::vector<std::pair<std::string, ClientSummary>> rows(s.begin(), s.end());
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return a.first.size() != b.first.size() ? a.first.size() < b.first.size() : a.first < b.first;
  });
  for (const auto& [name, c] : rows) {
    row(name, c);
    total.acquires_ok += c.acquires_ok;
    total.acquires_failed += c.acquires_failed;
    total.acquires_unknown += c.acquires_unknown;
    total.writes_accepted += c.writes_accepted;
    total.writes_rejected += c.writes_rejected;
    total.lost_sessions += c.lost_sessions;
  }
  row("total", total);
  return out.str();
}

}  // namespace sd::dlock::lab
