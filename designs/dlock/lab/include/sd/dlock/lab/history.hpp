#pragma once
// The safety lab's history: every operation of every lab process as Jepsen-style events
// (invoke, then ok / fail / info), one JSON object per line (JSONL). Each process appends to its
// own file; the lab merges them by time. Timestamps are CLOCK_MONOTONIC nanoseconds, which Linux
// keeps system-wide, so events of different processes on one machine are comparable.
//
// Processes and their operations ("f"):
//   clients "c0".."cN": acquire (ok: token) | read (ok: value) | write (ok: accepted; fail:
//     rejected as stale) | release
//   "resource": read | write, as the fenced resource saw them (client = who, token, value;
//     write ok = accepted, fail = rejected)
//   "nemesis": pause | resume | kill | restart | clock-jump | partition | heal ... (target = what)

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sd/base/status.hpp"

namespace sd::dlock::lab {

// kInvoke starts an operation; kOk / kFail complete it (fail = it certainly did not happen);
// kInfo = outcome unknown (timeout, crash) -- it may or may not have taken effect.
enum class EventType { kInvoke, kOk, kFail, kInfo };

std::string_view event_type_name(EventType t);  // "invoke" | "ok" | "fail" | "info"
std::optional<EventType> parse_event_type(std::string_view s);

struct Event {
  EventType type = EventType::kInvoke;
  std::string process;  // "c0".., "resource", "nemesis"
  std::string f;        // operation name (see above)
  int64_t time_ns = 0;  // CLOCK_MONOTONIC
  std::optional<uint64_t> token;
  std::optional<int64_t> value;
  std::string key;     // resource key ("" = not applicable)
  std::string client;  // resource events: whose request; nemesis: the target
  std::string error;   // fail / info: why
};

// CLOCK_MONOTONIC now, in nanoseconds.
int64_t monotonic_ns();

// One JSON object, no newline: {"type","process","f","time_ns"[,"token"][,"value"][,"key"]
// [,"client"][,"error"]} (absent optionals and empty strings are omitted).
std::string to_json_line(const Event& e);
// Parses one line; kInvalidArgument naming the field on bad input.
Result<Event> parse_event(std::string_view line);

// Reads a JSONL file. A truncated last line (a process killed mid-write) is skipped and counted;
// any other bad line is kInvalidArgument "FILE:LINE: ...".
struct HistoryFile {
  std::vector<Event> events;
  size_t truncated_lines = 0;
};
Result<HistoryFile> read_history(const std::string& path);
// Writes events as JSONL (overwrites).
Status write_history(const std::string& path, const std::vector<Event>& events);
// Stable sort by time_ns (ties keep file order): the merged view of several processes' files.
void sort_by_time(std::vector<Event>& events);

// Appends events to a file, one write(2) per line with O_APPEND, so a SIGKILL loses at most the
// line being written and lines from threads never interleave. Thread-safe.
class HistoryWriter {
 public:
  static Result<std::unique_ptr<HistoryWriter>> open(const std::string& path);
  ~HistoryWriter();
  HistoryWriter(const HistoryWriter&) = delete;
  HistoryWriter& operator=(const HistoryWriter&) = delete;
  Status append(const Event& e);

 private:
  explicit HistoryWriter(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace sd::dlock::lab
