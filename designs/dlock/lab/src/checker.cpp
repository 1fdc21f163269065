// The checker's entry points: runs the four rules, formats reports (text and JSON).

#include "sd/dlock/lab/checker.hpp"

#include <algorithm>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "checker_internal.hpp"

namespace sd::dlock::lab {

namespace detail {

HistoryView::HistoryView(const std::vector<Event>& h) : events(h), order(h.size()) {
  for (size_t i = 0; i < h.size(); ++i) order[i] = i;
  // The caller sorts, but a stable re-sort of indices is cheap and keeps the rules honest on
  // a hand-merged file.
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return h[a].time_ns < h[b].time_ns; });
  if (!order.empty()) t0 = h[order.front()].time_ns;
}

namespace {
std::string ms_since(int64_t t0, int64_t time_ns) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3fms", static_cast<double>(time_ns - t0) / 1e6);
  return buf;
}

std::string describe(const std::vector<Event>& h, int64_t t0, size_t i) {
  const Event& e = h[i];
  std::string s = "#" + std::to_string(i) + " " + e.process + " " + e.f + " " +
                  std::string(event_type_name(e.type));
  if (!e.client.empty()) s += " client=" + e.client;
  if (!e.key.empty() && e.process == "resource") s += " key=" + e.key;
  if (e.token) s += " token=" + std::to_string(*e.token);
  if (e.value) s += " value=" + std::to_string(*e.value);
  if (!e.error.empty()) s += " error=\"" + e.error + "\"";
  s += " @" + ms_since(t0, e.time_ns);
  return s;
}

int64_t first_time(const std::vector<Event>& h) {
  int64_t t0 = h.empty() ? 0 : h.front().time_ns;
  for (const Event& e : h) t0 = std::min(t0, e.time_ns);
  return t0;
}
}  // namespace

std::string HistoryView::ms(int64_t time_ns) const {
  return ms_since(t0, time_ns);
}

void add_violation(RuleResult& r, Violation v, size_t* dropped) {
  if (r.violations.size() >= kMaxViolationsPerRule) {
    ++*dropped;
    return;
  }
  v.rule = r.rule;
  r.violations.push_back(std::move(v));
}

void append_note(RuleResult& r, const std::string& text) {
  if (!r.note.empty()) r.note += "; ";
  r.note += text;
}

void finish_rule(RuleResult& r, size_t dropped) {
  if (!r.violations.empty()) r.verdict = Verdict::kViolated;
  if (dropped > 0) append_note(r, std::to_string(dropped) + " more violations not listed");
}

}  // namespace detail

std::string_view verdict_name(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kViolated:
      return "violated";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

bool CheckReport::violated() const {
  return std::any_of(rules.begin(), rules.end(),
                     [](const RuleResult& r) { return r.verdict == Verdict::kViolated; });
}

CheckReport check_history(const std::vector<Event>& history, const CheckOptions& options) {
  detail::HistoryView view(history);
  CheckReport report;
  report.rules.push_back(detail::check_mutual_exclusion(view, options));
  report.rules.push_back(detail::check_fencing(view, options));
  report.rules.push_back(detail::check_lost_update(view, options));
  report.rules.push_back(detail::check_linearizable(view, options));
  return report;
}

std::string describe_event(const std::vector<Event>& history, size_t index) {
  if (index >= history.size()) return "#" + std::to_string(index) + " (out of range)";
  return detail::describe(history, detail::first_time(history), index);
}

std::string format_report(const CheckReport& report, const std::vector<Event>& history) {
  const int64_t t0 = detail::first_time(history);
  std::string out;
  std::vector<std::string> violated, unknown;
  for (const RuleResult& r : report.rules) {
    char head[96];
    std::string verdict(verdict_name(r.verdict));
    std::transform(verdict.begin(), verdict.end(), verdict.begin(), ::toupper);
    std::snprintf(head, sizeof head, "%-17s %-9s", r.rule.c_str(), verdict.c_str());
    out += head;
    if (!r.violations.empty()) {
      out += " " + std::to_string(r.violations.size()) +
             (r.violations.size() == 1 ? " violation" : " violations");
    }
    if (!r.note.empty()) out += " (" + r.note + ")";
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
    if (r.verdict == Verdict::kViolated) violated.push_back(r.rule);
    if (r.verdict == Verdict::kUnknown) unknown.push_back(r.rule);
  }
  for (const RuleResult& r : report.rules) {
    for (const Violation& v : r.violations) {
      out += "\n[" + r.rule + "] " + v.message + "\n";
      for (size_t i : v.events) {
        out += "    " +
               (i < history.size() ? detail::describe(history, t0, i)
                                   : "#" + std::to_string(i) + " (out of range)") +
               "\n";
      }
    }
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  out += "\n";
  out +=
      violated.empty() ? "result: no violation found" : "result: VIOLATED (" + join(violated) + ")";
  if (!unknown.empty()) out += "; unknown: " + join(unknown);
  out += "\n";
  return out;
}

std::string report_json(const CheckReport& report, const std::vector<Event>& history) {
  const int64_t t0 = detail::first_time(history);
  nlohmann::json rules = nlohmann::json::array();
  for (const RuleResult& r : report.rules) {
    nlohmann::json vs = nlohmann::json::array();
    for (const Violation& v : r.violations) {
      nlohmann::json ops = nlohmann::json::array();
      for (size_t i : v.events) {
        if (i >= history.size()) continue;
        const Event& e = history[i];
        nlohmann::json op = {{"index", i},
                             {"process", e.process},
                             {"f", e.f},
                             {"type", event_type_name(e.type)},
                             {"time_ms", static_cast<double>(e.time_ns - t0) / 1e6}};
        if (e.token) op["token"] = *e.token;
        if (e.value) op["value"] = *e.value;
        if (!e.client.empty()) op["client"] = e.client;
        if (!e.error.empty()) op["error"] = e.error;
        ops.push_back(std::move(op));
      }
      vs.push_back({{"message", v.message}, {"events", v.events}, {"operations", ops}});
    }
    rules.push_back({{"rule", r.rule},
                     {"verdict", verdict_name(r.verdict)},
                     {"note", r.note},
                     {"violations", vs}});
  }
  nlohmann::json j = {{"violated", report.violated()}, {"rules", rules}};
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sd::dlock::lab
