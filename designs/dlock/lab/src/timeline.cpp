// The lab's HTML/SVG timeline (see timeline.hpp for what is drawn).

#include "sd/dlock/lab/timeline.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "sd/dlock/lab/nemesis.hpp"

namespace sd::dlock::lab {
namespace {

constexpr double kLeft = 96;  // lane labels
constexpr double kRight = 24;
constexpr double kAxisH = 28;  // time axis at the top
constexpr double kLaneH = 30;
constexpr double kBarH = 14;

// Colours. Red (#d62728) is reserved for violations.
constexpr const char* kHold = "#4c78a8";
constexpr const char* kOpOk = "#1f3b5c";
constexpr const char* kOpFail = "#a0a0a0";
constexpr const char* kOpInfo = "#f28e2b";
constexpr const char* kAccepted = "#2ca02c";
constexpr const char* kRejected = "#9a9a9a";
constexpr const char* kFault = "#f2c14e";
constexpr const char* kRed = "#d62728";

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string secs(int64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3fs", static_cast<double>(ns) / 1e9);
  return buf;
}

// "c10" after "c9": clients by their number when they have one.
bool client_less(const std::string& a, const std::string& b) {
  auto num = [](const std::string& s) -> long {
    if (s.size() < 2 || s[0] != 'c') return -1;
    for (size_t i = 1; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
    }
    return std::stol(s.substr(1));
  };
  long na = num(a), nb = num(b);
  if (na >= 0 && nb >= 0) return na < nb;
  return a < b;
}

bool is_client(const std::string& process) {
  return process != "resource" && process != "nemesis";
}

struct Geometry {
  int64_t t0 = 0, t1 = 1;
  double pps = 100;  // pixels per second
  double x(int64_t t) const { return kLeft + static_cast<double>(t - t0) / 1e9 * pps; }
  double width() const { return x(t1) + kRight; }
};

// A fault period in the nemesis lane: start event index, end time (t1 when never ended).
struct Period {
  size_t start;
  int64_t end_ns;
  bool instant;
};

std::vector<Period> fault_periods(const std::vector<Event>& h, int64_t t1) {
  std::vector<Period> out;
  std::map<std::pair<std::string, std::string>, size_t> open;  // (end name, target) -> out index
  for (size_t i = 0; i < h.size(); ++i) {
    const Event& e = h[i];
    if (e.process != "nemesis") continue;
    if (auto end = fault_end_name(e.f)) {
      open[{std::string(*end), e.client}] = out.size();
      out.push_back({i, t1, false});
      continue;
    }
    auto it = open.find({e.f, e.client});
    if (it != open.end()) {
      out[it->second].end_ns = e.time_ns;
      open.erase(it);
    } else {
      out.push_back({i, e.time_ns, true});  // clock-jump and unmatched events: an instant
    }
  }
  return out;
}

}  // namespace

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string render_timeline_svg(const std::vector<Event>& h, const CheckReport& report,
                                const TimelineOptions& o) {
  Geometry g;
  if (!h.empty()) {
    g.t0 = h.front().time_ns;
    g.t1 = std::max(h.back().time_ns, g.t0 + 1);
  }
  const double dur_s = static_cast<double>(g.t1 - g.t0) / 1e9;
  g.pps = o.px_per_second > 0 ? o.px_per_second
                              : std::clamp(1400.0 / std::max(dur_s, 0.001), 40.0, 400.0);

  // Lanes: nemesis, clients (sorted), resource.
  std::set<std::string, decltype(&client_less)> clients(&client_less);
  for (const Event& e : h) {
    if (is_client(e.process)) clients.insert(e.process);
  }
  std::map<std::string, size_t> lane;
  std::vector<std::string> lanes = {"nemesis"};
  for (const auto& c : clients) lanes.push_back(c);
  lanes.push_back("resource");
  for (size_t i = 0; i < lanes.size(); ++i) lane[lanes[i]] = i;
  auto lane_y = [&](const std::string& p) {
    return kAxisH + static_cast<double>(lane[p]) * kLaneH;
  };
  const double height = kAxisH + static_cast<double>(lanes.size()) * kLaneH + 8;

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << fmt(g.width()) << "\" height=\""
    << fmt(height) << "\" font-family=\"sans-serif\" font-size=\"11\">\n";

  // Lane backgrounds and labels.
  for (size_t i = 0; i < lanes.size(); ++i) {
    double y = kAxisH + static_cast<double>(i) * kLaneH;
    s << "<rect x=\"0\" y=\"" << fmt(y) << "\" width=\"" << fmt(g.width()) << "\" height=\""
      << fmt(kLaneH) << "\" fill=\"" << (i % 2 ? "#f7f7f7" : "#ffffff") << "\"/>\n";
    s << "<text class=\"lane-label\" x=\"6\" y=\"" << fmt(y + kLaneH / 2 + 4) << "\">"
      << xml_escape(lanes[i]) << "</text>\n";
  }

  // Time axis: a tick every 1, 2, 5, 10... seconds, about every 80 px.
  double step = 0.1;
  for (double c : {0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0}) {
    step = c;
    if (c * g.pps >= 80) break;
  }
  for (double t = 0; t <= dur_s + 1e-9; t += step) {
    double x = kLeft + t * g.pps;
    s << "<line x1=\"" << fmt(x) << "\" y1=\"" << fmt(kAxisH - 6) << "\" x2=\"" << fmt(x)
      << "\" y2=\"" << fmt(height - 8) << "\" stroke=\"#e0e0e0\"/>\n";
    char label[32];
    std::snprintf(label, sizeof label, step < 1 ? "%.1fs" : "%.0fs", t);
    s << "<text x=\"" << fmt(x + 2) << "\" y=\"" << fmt(kAxisH - 10) << "\">" << label
      << "</text>\n";
  }

  // Fault periods: the nemesis lane, a faint band over everything, and the target's own lane.
  for (const Period& p : fault_periods(h, g.t1)) {
    const Event& e = h[p.start];
    double x0 = g.x(e.time_ns), x1 = std::max(g.x(p.end_ns), x0 + 2);
    std::string title = e.f + " " + e.client + (e.error.empty() ? "" : ": " + e.error) + " (" +
                        secs(e.time_ns - g.t0) + (p.instant ? "" : " to " + secs(p.end_ns - g.t0)) +
                        ")";
    double ny = lane_y("nemesis");
    s << "<rect class=\"fault\" x=\"" << fmt(x0) << "\" y=\"" << fmt(kAxisH) << "\" width=\""
      << fmt(x1 - x0) << "\" height=\"" << fmt(height - 8 - kAxisH) << "\" fill=\"" << kFault
      << "\" fill-opacity=\"0.12\"/>\n";
    s << "<rect x=\"" << fmt(x0) << "\" y=\"" << fmt(ny + 4) << "\" width=\"" << fmt(x1 - x0)
      << "\" height=\"" << fmt(kLaneH - 8) << "\" fill=\"" << kFault << "\"><title>"
      << xml_escape(title) << "</title></rect>\n";
    s << "<text x=\"" << fmt(x0 + 2) << "\" y=\"" << fmt(ny + kLaneH / 2 + 4) << "\">"
      << xml_escape(e.f + " " + e.client) << "</text>\n";
    if (lane.count(e.client) && e.client != "nemesis" && e.client != "resource") {
      s << "<rect x=\"" << fmt(x0) << "\" y=\"" << fmt(lane_y(e.client)) << "\" width=\""
        << fmt(x1 - x0) << "\" height=\"" << fmt(kLaneH) << "\" fill=\"" << kFault
        << "\" fill-opacity=\"0.35\"><title>" << xml_escape(title) << "</title></rect>\n";
    }
  }

  // Hold bars: acquire ok .. release invoke / session lost / next acquire / the end.
  std::map<std::string, std::pair<int64_t, std::optional<uint64_t>>> holding;
  auto close_hold = [&](const std::string& c, int64_t end, const char* why) {
    auto it = holding.find(c);
    if (it == holding.end()) return;
    double x0 = g.x(it->second.first), x1 = std::max(g.x(end), x0 + 1);
    std::string tok = it->second.second ? std::to_string(*it->second.second) : "?";
    s << "<rect class=\"hold\" x=\"" << fmt(x0) << "\" y=\""
      << fmt(lane_y(c) + (kLaneH - kBarH) / 2) << "\" width=\"" << fmt(x1 - x0) << "\" height=\""
      << fmt(kBarH) << "\" fill=\"" << kHold << "\" fill-opacity=\"0.75\"><title>" << xml_escape(c)
      << " holds token " << tok << " from " << secs(it->second.first - g.t0) << " to "
      << secs(end - g.t0) << " (" << why << ")</title></rect>\n";
    holding.erase(it);
  };
  for (const Event& e : h) {
    if (!is_client(e.process)) continue;
    if (e.f == "acquire" && e.type == EventType::kOk) {
      close_hold(e.process, e.time_ns, "acquired again");
      holding[e.process] = {e.time_ns, e.token};
    } else if (e.f == "release" && e.type == EventType::kInvoke) {
      close_hold(e.process, e.time_ns, "release");
    } else if (e.f == "lost") {
      close_hold(e.process, e.time_ns, "session lost");
    }
  }
  while (!holding.empty()) close_hold(holding.begin()->first, g.t1, "end of history");

  // Operation ticks: clients' completed reads/writes, the resource's writes.
  for (const Event& e : h) {
    if (e.type == EventType::kInvoke) continue;
    const char* colour = nullptr;
    double y = 0, tick_h = 0;
    if (e.process == "resource") {
      if (e.f != "write") continue;
      colour = e.type == EventType::kOk ? kAccepted : kRejected;
      y = lane_y("resource") + 6;
      tick_h = kLaneH - 12;
    } else if (is_client(e.process) && (e.f == "read" || e.f == "write")) {
      colour = e.type == EventType::kOk ? kOpOk : e.type == EventType::kFail ? kOpFail : kOpInfo;
      double h_ = e.f == "write" ? kLaneH - 6 : kBarH;
      y = lane_y(e.process) + (kLaneH - h_) / 2;
      tick_h = h_;
    } else {
      continue;
    }
    std::string what = e.process + " " + e.f + " " + std::string(event_type_name(e.type));
    if (!e.client.empty()) what += " client=" + e.client;
    if (e.token) what += " token=" + std::to_string(*e.token);
    if (e.value) what += " value=" + std::to_string(*e.value);
    if (!e.error.empty()) what += " (" + e.error + ")";
    s << "<rect x=\"" << fmt(g.x(e.time_ns) - 1) << "\" y=\"" << fmt(y)
      << "\" width=\"2\" height=\"" << fmt(tick_h) << "\" fill=\"" << colour << "\"><title>"
      << xml_escape(what) << " @" << secs(e.time_ns - g.t0) << "</title></rect>\n";
  }

  // Violations: one red mark per event named by any violation, on that event's lane.
  std::map<size_t, std::vector<std::string>> marked;
  for (const RuleResult& r : report.rules) {
    for (const Violation& v : r.violations) {
      for (size_t i : v.events) {
        if (i < h.size()) marked[i].push_back(v.rule + ": " + v.message);
      }
    }
  }
  for (const auto& [i, why] : marked) {
    const Event& e = h[i];
    std::string ln = lane.count(e.process) ? e.process : "nemesis";
    std::string title;
    for (const auto& w : why) title += (title.empty() ? "" : "\n") + w;
    s << "<circle class=\"violation\" data-event=\"" << i << "\" cx=\"" << fmt(g.x(e.time_ns))
      << "\" cy=\"" << fmt(lane_y(ln) + kLaneH / 2) << "\" r=\"5\" fill=\"" << kRed
      << "\" stroke=\"#ffffff\"><title>" << xml_escape(title) << "</title></circle>\n";
  }
  s << "</svg>\n";
  return s.str();
}

std::string render_timeline_html(const std::vector<Event>& h, const CheckReport& report,
                                 const TimelineOptions& o) {
  size_t violations = 0;
  for (const auto& r : report.rules) violations += r.violations.size();
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>"
    << xml_escape(o.title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:16px;color:#222}\n"
    << ".scroll{overflow-x:auto;border:1px solid #ddd}\n"
    << ".legend span{display:inline-block;margin-right:14px}\n"
    << ".sw{display:inline-block;width:12px;height:12px;vertical-align:middle;margin-right:4px}\n"
    << "pre{background:#f6f6f6;padding:8px;overflow-x:auto}\n</style>\n</head>\n<body>\n<h1>"
    << xml_escape(o.title) << "</h1>\n";
  if (!o.subtitle.empty()) s << "<p><code>" << xml_escape(o.subtitle) << "</code></p>\n";
  s << "<p>" << (report.violated() ? "<strong>violations found</strong>" : "no violation found")
    << " (" << violations << " listed). Hover over a mark for details.</p>\n";
  s << "<p class=\"legend\">"
    << "<span><i class=\"sw\" style=\"background:" << kHold << "\"></i>lock held</span>"
    << "<span><i class=\"sw\" style=\"background:" << kAccepted << "\"></i>write accepted</span>"
    << "<span><i class=\"sw\" style=\"background:" << kRejected << "\"></i>write rejected</span>"
    << "<span><i class=\"sw\" style=\"background:" << kOpInfo << "\"></i>outcome unknown</span>"
    << "<span><i class=\"sw\" style=\"background:" << kFault << "\"></i>fault</span>"
    << "<span><i class=\"sw\" style=\"background:" << kRed << "\"></i>violation</span></p>\n";
  s << "<div class=\"scroll\">\n" << render_timeline_svg(h, report, o) << "</div>\n";
  if (!o.report_text.empty()) {
    s << "<h2>Checker</h2>\n<pre>" << xml_escape(o.report_text) << "</pre>\n";
  }
  s << "</body>\n</html>\n";
  return s.str();
}

}  // namespace sd::dlock::lab
