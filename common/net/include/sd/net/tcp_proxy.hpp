#pragma once
// A fault-injecting TCP proxy on loopback: 127.0.0.1:port forwards every connection to an upstream
// address, and can be switched at any time into a network partition (kBlackhole) or a connection
// reset storm (kReset). For fault tests where network namespaces are not available. Runs its own
// thread and event loop; Asio stays in the .cpp.
//
//   auto proxy = sd::net::TcpProxy::start("127.0.0.1", redis_port);   // Result<unique_ptr<>>
//   connect clients to (*proxy)->port();
//   (*proxy)->set_mode(sd::net::TcpProxy::Mode::kBlackhole);  // partition ...
//   (*proxy)->set_mode(sd::net::TcpProxy::Mode::kPass);       // ... healed

#include <cstdint>
#include <memory>
#include <string>

#include "sd/base/status.hpp"

namespace sd::net {

class TcpProxy {
 public:
  enum class Mode {
    kPass,       // forward both ways
    kBlackhole,  // stop reading from both sides: data waits (in the kernel or the proxy), peers
                 // time out; new connections are accepted but not connected upstream. On kPass
                 // the streams continue where they stopped and waiting connections are connected.
    kReset,      // close every connection with a RST; accept-and-close new ones until kPass
  };

  // Resolves the upstream once and listens on 127.0.0.1:listen_port (0 = pick a free port).
  // Connecting upstream happens per connection; an unreachable upstream resets that connection.
  static Result<std::unique_ptr<TcpProxy>> start(std::string upstream_host, uint16_t upstream_port,
                                                 uint16_t listen_port = 0);
  ~TcpProxy();  // closes everything and joins the thread
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  uint16_t port() const;
  // Thread-safe; applies to existing connections before it returns.
  void set_mode(Mode m);
  Mode mode() const;

  struct Impl;

 private:
  explicit TcpProxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace sd::net
