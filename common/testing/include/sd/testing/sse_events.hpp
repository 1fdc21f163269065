#pragma once
// A client-side parser of text/event-stream bodies for tests: feed() bytes as they arrive (from a
// socket, or what EventStream::take() returns), complete events come out; comments (": ping") are
// skipped. Header-only.

#include <string>
#include <string_view>
#include <vector>

namespace sd::testing {

struct SseEvent {
  std::string event;
  std::string data;  // "data:" lines joined with '\n'
  std::string id;
};

class SseParser {
 public:
  std::vector<SseEvent> feed(std::string_view bytes) {
    buf_.append(bytes);
    std::vector<SseEvent> out;
    size_t end;
    while ((end = buf_.find("\n\n")) != std::string::npos) {
      const std::string block = buf_.substr(0, end + 1);
      buf_.erase(0, end + 2);
      SseEvent ev;
      bool any = false;
      for (size_t pos = 0; pos < block.size();) {
        const size_t nl = block.find('\n', pos);
        const std::string line = block.substr(pos, nl - pos);
        pos = nl + 1;
        if (line.rfind("event: ", 0) == 0) {
          ev.event = line.substr(7);
          any = true;
        } else if (line.rfind("id: ", 0) == 0) {
          ev.id = line.substr(4);
          any = true;
        } else if (line.rfind("data: ", 0) == 0) {
          if (!ev.data.empty()) ev.data += '\n';
          ev.data += line.substr(6);
          any = true;
        }
      }
      if (any) out.push_back(std::move(ev));
    }
    return out;
  }

 private:
  std::string buf_;
};

// All complete events in `wire`.
inline std::vector<SseEvent> parse_sse(std::string_view wire) {
  return SseParser().feed(wire);
}

}  // namespace sd::testing
