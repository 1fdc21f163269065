#pragma once
// The lock servers an experiment owns, so that the nemesis can fault them: one dlockd on a SQLite
// file, one Redis, five independent Redis masters (Redlock), or a three-member etcd cluster. With
// partitions enabled, every client reaches every server through its own TcpProxy, so one client
// can be cut off without touching the others.
//
// All processes are spawned with PR_SET_PDEATHSIG bound to the calling thread: create, fault and
// destroy a LabBackend from one long-lived thread (the runner's main thread).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sd/base/status.hpp"
#include "sd/dlock/lab/nemesis.hpp"
#include "sd/net/tcp_proxy.hpp"
#include "sd/testing/servers.hpp"
#include "sd/testing/testing.hpp"

namespace sd::dlock::lab {

struct BackendSetup {
  BackendKind kind = BackendKind::kDlockd;
  std::string dir;  // server data and logs
  size_t clients = 1;
  bool proxies = false;  // a TcpProxy per (client, server), for partitions
  bool redis_persistence = false;
  std::string dlockd_bin;      // kDlockd
  std::string clockshift_lib;  // redis/redlock: LD_PRELOAD shim for clock jumps ("" = none)
};

class LabBackend {
 public:
  static Result<std::unique_ptr<LabBackend>> start(const BackendSetup& setup);
  ~LabBackend();
  LabBackend(const LabBackend&) = delete;
  LabBackend& operator=(const LabBackend&) = delete;

  size_t servers() const;
  std::string server_name(size_t i) const;          // "dlockd", "redis0", "etcd m1"
  std::string uri_for_client(size_t client) const;  // through the client's proxies if any

  Status kill(size_t i);
  Status restart(size_t i);
  bool running(size_t i);
  Result<size_t> leader();                     // etcd only
  Status clock_jump(size_t i, int64_t by_ns);  // redis/redlock with the shim only
  Status partition(size_t client, bool cut);   // proxies only
  std::string describe() const;                // what runs where, for the log

 private:
  LabBackend() = default;
  Status start_dlockd();
  uint16_t server_port(size_t i) const;

  BackendSetup setup_;
  // dlockd
  uint16_t dlockd_port_ = 0;
  std::optional<sd::testing::Process> dlockd_;
  // redis / redlock
  std::vector<std::unique_ptr<sd::testing::RedisServer>> redis_;
  std::vector<std::unique_ptr<ClockOffsetFile>> clocks_;
  // etcd
  std::unique_ptr<sd::testing::EtcdCluster> etcd_;
  // proxies_[client][server]
  std::vector<std::vector<std::unique_ptr<sd::net::TcpProxy>>> proxies_;
};

}  // namespace sd::dlock::lab
