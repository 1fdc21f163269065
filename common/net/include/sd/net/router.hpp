#pragma once
// Routes "METHOD /path/{param}/..." to handlers. Unknown path -> 404, known path with another
// method -> 405 with an Allow header; both JSON errors.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sd/net/http.hpp"

namespace sd::net {

// A one-shot handle for answering a request later, from any thread (long-poll). If it is destroyed
// without send(), the client gets 500. Sending after the connection closed is a no-op.
class Responder {
 public:
  class Sink {
   public:
    virtual ~Sink() = default;
    virtual void deliver(Response r) = 0;  // thread-safe, called at most once
    // Stores the handler for Responder::on_abandoned (replacing an earlier one). Default: the
    // sink never reports abandonment and drops fn.
    virtual void set_abandon_handler(std::function<void()> fn) { (void)fn; }
  };
  Responder() = default;
  explicit Responder(std::shared_ptr<Sink> sink) : sink_(std::move(sink)) {}
  Responder(Responder&&) noexcept = default;
  Responder& operator=(Responder&&) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  void send(Response r);  // at most once
  bool pending() const { return sink_ != nullptr; }

  // fn is called at most once, on a server I/O thread, if the client disconnects (or the server
  // force-closes the connection) before a response was sent; never once send() has delivered (a
  // send() racing with the disconnect either wins, and fn never runs, or is dropped). fn must not
  // block. After it, send() is a harmless no-op. Register from the handler, before it returns: on
  // a connection that is already gone, or after send(), registering does nothing.
  void on_abandoned(std::function<void()> fn) {
    if (sink_) sink_->set_abandon_handler(std::move(fn));
  }

 private:
  std::shared_ptr<Sink> sink_;
};

using Handler = std::function<Response(Request&)>;
// Async handler: answers through the Responder, now or later, without blocking a thread.
using AsyncHandler = std::function<void(Request&, Responder)>;

class Router {
 public:
  // pattern: "/v1/locks/{name}/acquire". A {param} matches one non-empty path segment, matched
  // against the raw (still percent-encoded) target and decoded afterwards, so "a%2Fb" is one
  // segment.
  void add(Method m, std::string pattern, Handler h);
  void add_async(Method m, std::string pattern, AsyncHandler h);

  // Dispatches req: derives req.path and req.query from req.target (if target is empty, req.path is
  // taken as the raw target), fills req.params, runs the handler. Always answers through `out`
  // exactly once: malformed target or percent-escape -> 400, handler exception -> 500. A HEAD
  // request without a HEAD route runs the GET route (the server drops the body). `req` is only
  // valid during the handler call; an async handler must copy what it needs before returning.
  void dispatch(Request& req, Responder out) const;

  // True if exactly this method+pattern was added (used by the server for built-in routes).
  bool has_route(Method m, std::string_view pattern) const;

 private:
  struct Route {
    Method method;
    std::vector<std::string> segments;  // "{name}" marks a parameter
    AsyncHandler handler;
  };
  std::vector<Route> routes_;
};

}  // namespace sd::net
