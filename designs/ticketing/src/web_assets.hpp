#pragma once
// The web UI's files, compiled into the binary (generated from designs/ticketing/web/ by
// web/embed.cmake).

#include <string_view>

namespace sd::ticketing::web {

struct Asset {
  std::string_view path;          // "index.html", "app.js", ...
  std::string_view content_type;  // "text/html; charset=utf-8", ...
  std::string_view body;
};

// The asset called `path` (relative to web/), or nullptr.
const Asset* find_asset(std::string_view path);

}  // namespace sd::ticketing::web
