// JSONL history: events to and from one-line JSON objects, files, and the append-only writer.

#include "sd/dlock/lab/history.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

#include <nlohmann/json.hpp>

namespace sd::dlock::lab {

std::string_view event_type_name(EventType t) {
  switch (t) {
    case EventType::kInvoke:
      return "invoke";
    case EventType::kOk:
      return "ok";
    case EventType::kFail:
      return "fail";
    case EventType::kInfo:
      return "info";
  }
  return "?";
}

std::optional<EventType> parse_event_type(std::string_view s) {
  for (EventType t : {EventType::kInvoke, EventType::kOk, EventType::kFail, EventType::kInfo}) {
    if (s == event_type_name(t)) return t;
  }
  return std::nullopt;
}

int64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string to_json_line(const Event& e) {
  nlohmann::json j = {{"type", event_type_name(e.type)},
                      {"process", e.process},
                      {"f", e.f},
                      {"time_ns", e.time_ns}};
  if (e.token) j["token"] = *e.token;
  if (e.value) j["value"] = *e.value;
  if (!e.key.empty()) j["key"] = e.key;
  if (!e.client.empty()) j["client"] = e.client;
  if (!e.error.empty()) j["error"] = e.error;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

namespace {

Status bad(const std::string& what) {
  return invalid_argument("history event: " + what);
}

Result<std::string> string_field(const nlohmann::json& j, const char* name, bool required) {
  auto it = j.find(name);
  if (it == j.end()) {
    if (required) return bad(std::string("missing \"") + name + "\"");
    return std::string();
  }
  if (!it->is_string()) return bad(std::string("\"") + name + "\" must be a string");
  return it->get<std::string>();
}

}  // namespace

Result<Event> parse_event(std::string_view line) {
  auto j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return bad("not valid JSON");
  if (!j.is_object()) return bad("not a JSON object");
  Event e;
  auto type = string_field(j, "type", true);
  if (!type) return type.status();
  auto t = parse_event_type(*type);
  if (!t) return bad("unknown \"type\" \"" + *type + "\" (invoke, ok, fail, info)");
  e.type = *t;
  auto process = string_field(j, "process", true);
  if (!process) return process.status();
  if (process->empty()) return bad("empty \"process\"");
  e.process = std::move(*process);
  auto f = string_field(j, "f", true);
  if (!f) return f.status();
  if (f->empty()) return bad("empty \"f\"");
  e.f = std::move(*f);
  auto tn = j.find("time_ns");
  if (tn == j.end() || !tn->is_number_integer()) return bad("\"time_ns\" must be an integer");
  e.time_ns = tn->get<int64_t>();
  if (auto it = j.find("token"); it != j.end()) {
    if (!it->is_number_unsigned()) return bad("\"token\" must be a non-negative integer");
    e.token = it->get<uint64_t>();
  }
  if (auto it = j.find("value"); it != j.end()) {
    if (!it->is_number_integer()) return bad("\"value\" must be an integer");
    e.value = it->get<int64_t>();
  }
  for (auto [name, field] :
       {std::pair{"key", &e.key}, std::pair{"client", &e.client}, std::pair{"error", &e.error}}) {
    auto s = string_field(j, name, false);
    if (!s) return s.status();
    *field = std::move(*s);
  }
  return e;
}

Result<HistoryFile> read_history(const std::string& path) {
  std::ifstream in(path);
  if (!in) return not_found("cannot open history " + path);
  HistoryFile out;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    auto e = parse_event(line);
    if (e) {
      out.events.push_back(std::move(*e));
      continue;
    }
    // Only a last line without its newline may be cut short (its writer was killed mid-line);
    // getline sets eof exactly when it hit the end before a '\n'.
    if (in.eof()) {
      ++out.truncated_lines;
      continue;
    }
    return invalid_argument(path + ":" + std::to_string(lineno) + ": " + e.status().message());
  }
  return out;
}

Status write_history(const std::string& path, const std::vector<Event>& events) {
  std::ofstream out(path, std::ios::trunc);
  if (!out) return unavailable("cannot write " + path);
  for (const Event& e : events) out << to_json_line(e) << '\n';
  out.flush();
  if (!out) return unavailable("write to " + path + " failed");
  return Status::ok();
}

void sort_by_time(std::vector<Event>& events) {
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.time_ns < b.time_ns; });
}

Result<std::unique_ptr<HistoryWriter>> HistoryWriter::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return unavailable("cannot open " + path + ": " + std::strerror(errno));
  return std::unique_ptr<HistoryWriter>(new HistoryWriter(fd));
}

HistoryWriter::~HistoryWriter() {
  ::close(fd_);
}

Status HistoryWriter::append(const Event& e) {
  std::string line = to_json_line(e);
  line += '\n';
  ssize_t n = ::write(fd_, line.data(), line.size());  // one O_APPEND write: never interleaved
  if (n != static_cast<ssize_t>(line.size())) {
    return unavailable(std::string("history write failed: ") +
                       (n < 0 ? std::strerror(errno) : "short write"));
  }
  return Status::ok();
}

}  // namespace sd::dlock::lab
