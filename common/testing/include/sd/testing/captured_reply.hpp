#pragma once
// For sans-io service tests that dispatch through net::Router: a Responder whose answer lands in a
// CapturedReply the test reads (status, JSON body, headers), and which can play a client that goes
// away (abandon()), as the server's connection sink does. Header-only, Catch2 assertions; users
// link sd::net.

#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "sd/net/http.hpp"
#include "sd/net/router.hpp"

namespace sd::testing {

struct CapturedReply {
  std::mutex mu;
  bool done = false;
  net::Response response;
  bool abandoned = false;
  std::function<void()> on_abandon;  // registered through Responder::on_abandoned

  // The client goes away: runs the abandon handler unless answered already; later responses are
  // dropped. Returns false if already answered or abandoned.
  bool abandon() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu);
      if (done || abandoned) return false;
      abandoned = true;
      fn.swap(on_abandon);
    }
    if (fn) fn();
    return true;
  }
  bool has_abandon_handler() {
    std::lock_guard lock(mu);
    return static_cast<bool>(on_abandon);
  }
  bool ready() {
    std::lock_guard lock(mu);
    return done;
  }
  int status() {
    std::lock_guard lock(mu);
    REQUIRE(done);
    return response.status;
  }
  nlohmann::json body() {
    std::lock_guard lock(mu);
    REQUIRE(done);
    nlohmann::json j = nlohmann::json::parse(response.body, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    return j;
  }
  // The header's value, "" if absent (has_header tells them apart).
  std::string header(const std::string& name) {
    std::lock_guard lock(mu);
    REQUIRE(done);
    const std::string* v = net::find_header(response.headers, name);
    return v ? *v : "";
  }
  bool has_header(const std::string& name) {
    std::lock_guard lock(mu);
    REQUIRE(done);
    return net::find_header(response.headers, name) != nullptr;
  }
};

class CaptureSink final : public net::Responder::Sink {
 public:
  explicit CaptureSink(std::shared_ptr<CapturedReply> r) : reply_(std::move(r)) {}
  void deliver(net::Response r) override {
    std::function<void()> dropped;  // destroyed after the lock is released
    std::lock_guard lock(reply_->mu);
    if (reply_->abandoned) return;  // like the server: a no-op once the client is gone
    REQUIRE_FALSE(reply_->done);
    reply_->response = std::move(r);
    reply_->done = true;
    dropped.swap(reply_->on_abandon);
  }
  void set_abandon_handler(std::function<void()> fn) override {
    std::lock_guard lock(reply_->mu);
    if (!reply_->done && !reply_->abandoned) reply_->on_abandon.swap(fn);
  }

 private:
  std::shared_ptr<CapturedReply> reply_;
};

}  // namespace sd::testing
