// The SVG timeline on a hand-made history: well-formed XML, a lane per client, fault periods
// shaded, and red marks exactly for the events the checker's violations name.

#include <catch2/catch.hpp>

#include <set>
#include <string>
#include <vector>

#include "sd/dlock/lab/nemesis.hpp"
#include "sd/dlock/lab/timeline.hpp"

using namespace sd::dlock::lab;

namespace {

Event ev(EventType type, std::string process, std::string f, int64_t ms,
         std::optional<uint64_t> token = {}, std::optional<int64_t> value = {},
         std::string client = "") {
  Event e;
  e.type = type;
  e.process = std::move(process);
  e.f = std::move(f);
  e.time_ns = ms * 1'000'000;
  e.token = token;
  e.value = value;
  e.client = std::move(client);
  if (e.process == "resource") e.key = "counter";
  return e;
}

size_t count(const std::string& s, const std::string& what) {
  size_t n = 0;
  for (size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + 1)) ++n;
  return n;
}

// A small XML well-formedness check: balanced tags, quoted attributes, known entities only.
// Returns "" when well-formed, else what is wrong.
std::string xml_problem(const std::string& x) {
  std::vector<std::string> stack;
  size_t i = 0;
  while (i < x.size()) {
    if (x[i] == '&') {
      size_t semi = x.find(';', i);
      if (semi == std::string::npos) return "bare &";
      std::string ent = x.substr(i, semi - i + 1);
      static const std::set<std::string> ok = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
      if (!ok.count(ent)) return "unknown entity " + ent;
      i = semi + 1;
      continue;
    }
    if (x[i] == '>') return "stray > at " + std::to_string(i);
    if (x[i] != '<') {
      ++i;
      continue;
    }
    size_t end = i + 1;
    char quote = 0;
    for (; end < x.size(); ++end) {
      if (quote) {
        if (x[end] == quote)
          quote = 0;
        else if (x[end] == '<')
          return "< inside an attribute";
      } else if (x[end] == '"' || x[end] == '\'') {
        quote = x[end];
      } else if (x[end] == '>') {
        break;
      } else if (x[end] == '<') {
        return "< inside a tag at " + std::to_string(end);
      }
    }
    if (end >= x.size()) return "unterminated tag";
    std::string tag = x.substr(i + 1, end - i - 1);
    i = end + 1;
    if (tag.empty()) return "empty tag";
    if (tag[0] == '/') {
      std::string name = tag.substr(1);
      if (stack.empty() || stack.back() != name) return "mismatched </" + name + ">";
      stack.pop_back();
      continue;
    }
    bool self_closing = tag.back() == '/';
    std::string name = tag.substr(0, tag.find_first_of(" \n/"));
    if (!self_closing) stack.push_back(name);
  }
  return stack.empty() ? "" : "unclosed <" + stack.back() + ">";
}

}  // namespace

TEST_CASE("timeline svg is well formed with a lane per client and red marks for violations",
          "[unit]") {
  using T = EventType;
  std::vector<Event> h = {
      ev(T::kInvoke, "c0", "acquire", 0),                                        // 0
      ev(T::kOk, "c0", "acquire", 5, 1),                                         // 1
      ev(T::kInvoke, "c0", "read", 6, 1),                                        // 2
      ev(T::kOk, "resource", "read", 7, 1, 0, "c0"),                             // 3
      ev(T::kOk, "c0", "read", 8, 1, 0),                                         // 4
      nemesis_event("pause", "c0", 3000, "SIGSTOP <3 TTL> & more", 10'000'000),  // 5
      ev(T::kInvoke, "c1", "acquire", 100),                                      // 6
      ev(T::kOk, "c1", "acquire", 2100, 2),                                      // 7
      ev(T::kOk, "resource", "read", 2110, 2, 0, "c1"),                          // 8
      ev(T::kOk, "resource", "write", 2200, 2, 1, "c1"),                         // 9
      ev(T::kOk, "c1", "write", 2201, 2, 1),                                     // 10
      ev(T::kInvoke, "c1", "release", 2210, 2),                                  // 11
      ev(T::kOk, "c1", "release", 2215, 2),                                      // 12
      nemesis_event("resume", "c0", {}, "SIGCONT", 3'010'000'000),               // 13
      ev(T::kOk, "resource", "write", 3020, 1, 1, "c0"),                         // 14
      ev(T::kOk, "c0", "write", 3021, 1, 1),                                     // 15
      ev(T::kFail, "resource", "write", 3030, 1, 2, "c0"),  // 16 (a rejected one, for grey)
      nemesis_event("clock-jump", "redis2", 2500, "+2500 ms", 3'500'000'000),  // 17
      ev(T::kInfo, "c2", "lost", 3600),                                        // 18
  };
  CheckReport report;
  RuleResult me{"mutual-exclusion", Verdict::kViolated, {}, ""};
  me.violations.push_back({"mutual-exclusion", "c0 <and> c1 overlap", {3, 14, 8, 9}});
  RuleResult lu{"lost-update", Verdict::kViolated, {}, ""};
  lu.violations.push_back({"lost-update", "value 1 written twice", {9, 14}});  // 14 named twice
  report.rules = {me, RuleResult{"fencing", Verdict::kOk, {}, ""}, lu,
                  RuleResult{"linearizable", Verdict::kUnknown, {}, "budget"}};

  std::string svg = render_timeline_svg(h, report);
  INFO(svg);
  CHECK(xml_problem(svg).empty());
  CHECK(svg.rfind("<svg", 0) == 0);
  // Lanes: nemesis, c0, c1, c2, resource.
  CHECK(count(svg, "class=\"lane-label\"") == 5);
  for (const char* lane : {">c0<", ">c1<", ">c2<", ">nemesis<", ">resource<"}) {
    CHECK(count(svg, lane) == 1);
  }
  // Exactly one red mark per distinct violation event: 3, 8, 9, 14.
  CHECK(count(svg, "class=\"violation\"") == 4);
  CHECK(count(svg, "#d62728") == 4);
  for (const char* idx :
       {"data-event=\"3\"", "data-event=\"8\"", "data-event=\"9\"", "data-event=\"14\""}) {
    CHECK(count(svg, idx) == 1);
  }
  CHECK(svg.find("mutual-exclusion: c0 &lt;and&gt; c1 overlap") != std::string::npos);
  // Hold bars: c0 (to the end, never released) and c1 (to its release invoke).
  CHECK(count(svg, "class=\"hold\"") == 2);
  // Fault periods: the pause (shaded band) and the clock jump (an instant).
  CHECK(count(svg, "class=\"fault\"") == 2);
  CHECK(svg.find("SIGSTOP &lt;3 TTL&gt; &amp; more") != std::string::npos);
  // Resource writes: two accepted (green), one rejected (grey).
  CHECK(count(svg, "fill=\"#2ca02c\"") == 2);
  CHECK(count(svg, "fill=\"#9a9a9a\"") == 1);

  TimelineOptions o;
  o.title = "lab <test>";
  o.report_text = "mutual-exclusion: violated & more";
  std::string html = render_timeline_html(h, report, o);
  CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(xml_problem(html.substr(html.find("<html"))).empty());
  CHECK(html.find("lab &lt;test&gt;") != std::string::npos);
  CHECK(html.find("violated &amp; more") != std::string::npos);
}

TEST_CASE("timeline without violations has no red marks", "[unit]") {
  std::vector<Event> h = {ev(EventType::kOk, "c0", "acquire", 0, 1),
                          ev(EventType::kInvoke, "c0", "release", 10, 1)};
  CheckReport report;
  report.rules = {RuleResult{"mutual-exclusion", Verdict::kOk, {}, ""}};
  std::string svg = render_timeline_svg(h, report);
  CHECK(xml_problem(svg).empty());
  CHECK(count(svg, "class=\"violation\"") == 0);
  CHECK(count(svg, "#d62728") == 0);
  CHECK(count(svg, "class=\"lane-label\"") == 3);
  CHECK(render_timeline_svg({}, report).find("</svg>") != std::string::npos);
}
