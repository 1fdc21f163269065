#pragma once
// The lab's timeline: one self-contained HTML page with an inline SVG, like Jepsen's
// timeline.html. Time runs left to right (seconds since the first event). Lanes, top to bottom:
//   nemesis    fault periods shaded (pause..resume, kill..restart, partition..heal), instants
//              (clock-jump) as lines; each with a <title> naming target and parameters
//   c0..cN     one per client: a bar from each acquire ok to its release invoke (or the session
//              lost, or the end); ticks for its reads and writes (ok dark, rejected grey, unknown
//              orange); the lane is tinted while that client is paused or partitioned
//   resource   the resource's writes: accepted green, rejected (stale token) grey
// Every event a checker violation names gets one red mark (class "violation", data-event = its
// index in the history) with a <title> listing the violations; nothing else is red.

#include <string>
#include <vector>

#include "sd/dlock/lab/checker.hpp"
#include "sd/dlock/lab/history.hpp"

namespace sd::dlock::lab {

struct TimelineOptions {
  std::string title = "dlock lab timeline";
  std::string subtitle;      // e.g. the command line
  double px_per_second = 0;  // 0 = fit about 1400 px (between 40 and 400 px per second)
  std::string report_text;   // shown under the picture (e.g. format_report), "" = none
};

// history: sorted by time (the one the report's event indices refer to).
std::string render_timeline_svg(const std::vector<Event>& history, const CheckReport& report,
                                const TimelineOptions& options = {});
std::string render_timeline_html(const std::vector<Event>& history, const CheckReport& report,
                                 const TimelineOptions& options = {});

// &, <, >, " and ' as XML entities.
std::string xml_escape(std::string_view s);

}  // namespace sd::dlock::lab
