#pragma once
// Server-sent events (text/event-stream). A handler answers sse_response(stream) and keeps the
// shared EventStream to push events later from any thread; the connection writes them as they come
// and ends the response when the stream is closed, the client goes away, or the server stops.
//
//   auto stream = EventStream::create();
//   stream->on_closed([hub, id] { hub->unsubscribe(id); });  // must not block
//   hub->subscribe(id, stream);                              // producers call stream->send(...)
//   return sse_response(stream);
//
// Wire format of one event: "event: <event>\n" (if non-empty), "id: <id>\n" (if non-empty), one
// "data: <line>\n" per line of data (CRLF, CR and LF all split lines; empty data still gives one
// "data: \n" line so the browser dispatches it), then "\n".
//
// Lifetime: the response is written with "Connection: close" and no Content-Length, so its body
// ends when the connection closes. While it is open, the server holds the stream; producers hold it
// as long as they like (it owns no Asio object and may outlive the server). A stream serves one
// response. If the client goes away or the response is never written (e.g. a HEAD request, or
// the connection closed before an async handler answered), the server detaches the stream: once a
// response carrying it reached the server, on_closed always runs.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "sd/net/http.hpp"

namespace sd::net {

namespace detail {
struct EventStreamAccess;  // the server's connection: reads private state
}

struct EventStreamOptions {
  // A consumer this far behind is dropped (closed). Counts what is queued and not yet taken; the
  // transport may hold up to one more such batch while writing it.
  size_t max_buffered_bytes = 1 << 20;
  std::chrono::milliseconds heartbeat{15'000};  // idle streams get a ": ping" comment this often
                                                // (<= 0: never)
};

class EventStream {
 public:
  static std::shared_ptr<EventStream> create(EventStreamOptions options = {});
  EventStream(const EventStream&) = delete;
  EventStream& operator=(const EventStream&) = delete;
  ~EventStream();

  // Queues one event; data with newlines becomes several "data:" lines; event/id must not contain
  // CR/LF (then false, nothing queued). false once the stream is closed (client gone, server
  // stopping, close(), or the buffer limit exceeded — which also closes it, dropping what was
  // queued: the consumer is too far behind to catch up).
  bool send(std::string_view event, std::string_view data, std::string_view id = {});
  bool send_comment(std::string_view text);  // ": text\n\n" (one ": " line per line of text)
  void close();  // ends the response after what is queued has been written
  bool closed() const;
  // fn runs once when the stream ends for any reason (immediately, on the calling thread, if it
  // already ended); must not block. "Ends": for a stream a transport is attached to (set_notify),
  // when the transport detaches — the response is over (after close(), once the queue is written)
  // — on a server I/O thread; for a stream nobody attached to, at close() or the overflow, on the
  // thread that closed it. Several handlers may be registered; each runs once.
  void on_closed(std::function<void()> fn);

  // Transport side (the server connection; tests use it too): take everything queued so far
  // (wire format), and a callback run (from the sending thread, outside locks) whenever data is
  // queued or the stream is closed. To spare wake-ups, queuing only signals when the queue was
  // empty: data added to a queue not yet taken needs no second signal, because a transport always
  // take()s after a signal. A transport that waits must therefore take() (and check closed(),
  // before the take()) after every signal, and once before it first waits.
  std::string take();
  void set_notify(std::function<void()> fn);
  // The transport reports that the client went away / the response ended: closes, runs on_closed.
  // Anything still queued is dropped. Idempotent.
  void detach();

 private:
  friend struct detail::EventStreamAccess;
  explicit EventStream(EventStreamOptions options);
  // Appends wire text unless closed or over the limit; returns false if not queued. Runs the
  // notify/closed callbacks outside mu_.
  bool enqueue(std::string wire);
  void run_closed_handlers(std::vector<std::function<void()>> fns);

  const EventStreamOptions options_;
  mutable std::mutex mu_;
  std::string buf_;                                      // guarded by mu_
  bool closed_ = false;                                  // guarded by mu_: no more sends
  bool dropped_ = false;                                 // guarded by mu_: closed by the overflow
  bool attached_ = false;                                // guarded by mu_: set_notify was called
  bool ended_ = false;                                   // guarded by mu_: on_closed handlers ran
  std::shared_ptr<const std::function<void()>> notify_;  // guarded by mu_
  std::vector<std::function<void()>> on_closed_;         // guarded by mu_
};

// 200, Content-Type text/event-stream, Cache-Control: no-cache, X-Accel-Buffering: no; the body is
// the stream.
Response sse_response(std::shared_ptr<EventStream> stream);

}  // namespace sd::net
