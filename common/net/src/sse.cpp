// EventStream: the producer/transport hand-off of a server-sent events response. No Asio here; the
// connection side is in connection.cpp.
#include "sd/net/sse.hpp"

#include <utility>

#include "sd/base/log.hpp"

namespace sd::net {

namespace {

bool has_crlf(std::string_view s) {
  return s.find_first_of("\r\n") != std::string_view::npos;
}

// Appends `prefix + line + "\n"` for every line of text; CRLF, CR and LF all end a line (as the
// event-stream parser sees them). Empty text gives one empty line.
void append_lines(std::string& out, std::string_view prefix, std::string_view text) {
  for (;;) {
    size_t eol = text.find_first_of("\r\n");
    out += prefix;
    out += text.substr(0, eol);
    out += '\n';
    if (eol == std::string_view::npos) return;
    size_t next = eol + 1;
    if (text[eol] == '\r' && next < text.size() && text[next] == '\n') ++next;
    text.remove_prefix(next);
  }
}

void run_guarded(const std::function<void()>& fn, const char* what) {
  try {
    fn();
  } catch (const std::exception& e) {
    SD_LOG(kError) << "sd::net: EventStream " << what << " handler threw: " << e.what();
  } catch (...) {
    SD_LOG(kError) << "sd::net: EventStream " << what << " handler threw";
  }
}

}  // namespace

std::shared_ptr<EventStream> EventStream::create(EventStreamOptions options) {
  return std::shared_ptr<EventStream>(new EventStream(options));
}

EventStream::EventStream(EventStreamOptions options) : options_(options) {}

EventStream::~EventStream() = default;

bool EventStream::send(std::string_view event, std::string_view data, std::string_view id) {
  if (has_crlf(event) || has_crlf(id)) return false;
  std::string wire;
  wire.reserve(event.size() + id.size() + data.size() + 24);
  if (!event.empty()) {
    wire += "event: ";
    wire += event;
    wire += '\n';
  }
  if (!id.empty()) {
    wire += "id: ";
    wire += id;
    wire += '\n';
  }
  append_lines(wire, "data: ", data);
  wire += '\n';
  return enqueue(std::move(wire));
}

bool EventStream::send_comment(std::string_view text) {
  std::string wire;
  wire.reserve(text.size() + 4);
  append_lines(wire, ": ", text);
  wire += '\n';
  return enqueue(std::move(wire));
}

bool EventStream::enqueue(std::string wire) {
  std::shared_ptr<const std::function<void()>> notify;
  std::vector<std::function<void()>> handlers;
  bool queued = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return false;
    if (buf_.size() + wire.size() > options_.max_buffered_bytes) {
      // A slow consumer: drop it. What is queued would only make it later.
      closed_ = true;
      dropped_ = true;
      std::string().swap(buf_);
      if (attached_) {
        notify = notify_;
      } else {
        ended_ = true;
        handlers.swap(on_closed_);
      }
    } else {
      // Only the empty -> non-empty edge needs a signal; see the header.
      if (buf_.empty()) notify = notify_;
      if (buf_.empty()) {
        buf_ = std::move(wire);  // take() leaves buf_ without capacity: no copy
      } else {
        buf_ += wire;
      }
      queued = true;
    }
  }
  if (notify && *notify) run_guarded(*notify, "notify");
  run_closed_handlers(std::move(handlers));
  return queued;
}

void EventStream::close() {
  std::shared_ptr<const std::function<void()>> notify;
  std::vector<std::function<void()>> handlers;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (closed_) return;
    closed_ = true;
    if (attached_) {
      notify = notify_;
    } else {
      ended_ = true;
      handlers.swap(on_closed_);
    }
  }
  if (notify && *notify) run_guarded(*notify, "notify");
  run_closed_handlers(std::move(handlers));
}

bool EventStream::closed() const {
  std::lock_guard<std::mutex> lk(mu_);
  return closed_;
}

void EventStream::on_closed(std::function<void()> fn) {
  if (!fn) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (!ended_) {
      on_closed_.push_back(std::move(fn));
      return;
    }
  }
  run_guarded(fn, "on_closed");
}

std::string EventStream::take() {
  std::string out;
  std::lock_guard<std::mutex> lk(mu_);
  out.swap(buf_);
  return out;
}

void EventStream::set_notify(std::function<void()> fn) {
  auto next = std::make_shared<const std::function<void()>>(std::move(fn));
  std::lock_guard<std::mutex> lk(mu_);
  if (ended_) return;  // `next` (and its captures) is released after the unlock
  attached_ = true;
  notify_.swap(next);
}

void EventStream::detach() {
  std::shared_ptr<const std::function<void()>> notify;  // released outside mu_
  std::vector<std::function<void()>> handlers;
  std::string dropped;
  {
    std::lock_guard<std::mutex> lk(mu_);
    closed_ = true;
    if (ended_) return;
    ended_ = true;
    notify.swap(notify_);
    dropped.swap(buf_);
    handlers.swap(on_closed_);
  }
  run_closed_handlers(std::move(handlers));
}

void EventStream::run_closed_handlers(std::vector<std::function<void()>> fns) {
  for (const auto& fn : fns) run_guarded(fn, "on_closed");
}

Response sse_response(std::shared_ptr<EventStream> stream) {
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream";
  r.headers = {{"Cache-Control", "no-cache"}, {"X-Accel-Buffering", "no"}};
  r.stream = std::move(stream);
  return r;
}

}  // namespace sd::net
