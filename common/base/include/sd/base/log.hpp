#pragma once
// Minimal leveled logging to stderr; level from SD_LOG_LEVEL (debug|info|warn|error), default info.

#include <sstream>
#include <string_view>

namespace sd::log {

enum class Level { kDebug = 0, kInfo, kWarn, kError, kOff };

void set_level(Level l);
Level level();
bool enabled(Level l);
void write(Level l, std::string_view msg);  // one line, timestamped, thread-safe

// Streams a line: SD_LOG(kInfo) << "listening on " << port;
class Line {
 public:
  explicit Line(Level l) : level_(l) {}
  ~Line() { write(level_, os_.str()); }
  template <class T>
  Line& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  Level level_;
  std::ostringstream os_;
};

}  // namespace sd::log

// A for-loop rather than if/else so the macro is safe inside an unbraced if (no dangling else).
#define SD_LOG(lvl)                                                             \
  for (bool sd_log_on_ = ::sd::log::enabled(::sd::log::Level::lvl); sd_log_on_; \
       sd_log_on_ = false)                                                      \
  ::sd::log::Line(::sd::log::Level::lvl)
