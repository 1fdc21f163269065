// The lock servers an experiment owns (see backends.hpp).

#include "backends.hpp"

#include <signal.h>

#include <filesystem>
#include <thread>

namespace sd::dlock::lab {

using namespace std::chrono_literals;

Result<std::unique_ptr<LabBackend>> LabBackend::start(const BackendSetup& setup) {
  std::unique_ptr<LabBackend> b(new LabBackend());
  b->setup_ = setup;
  std::error_code ec;
  std::filesystem::create_directories(setup.dir, ec);
  if (ec) return unavailable("cannot create " + setup.dir + ": " + ec.message());
  switch (setup.kind) {
    case BackendKind::kDlockd:
      SD_RETURN_IF_ERROR(b->start_dlockd());
      break;
    case BackendKind::kRedis:
    case BackendKind::kRedlock: {
      for (size_t i = 0; i < backend_server_count(setup.kind); ++i) {
        std::string dir =
            (std::filesystem::path(setup.dir) / ("redis" + std::to_string(i))).string();
        std::filesystem::create_directories(dir, ec);
        sd::testing::RedisOptions ro;
        ro.appendonly = setup.redis_persistence;
        if (!setup.clockshift_lib.empty()) {
          auto clock = ClockOffsetFile::create(dir + "/clock-offset");
          if (!clock.is_ok()) return clock.status();
          ro.env["LD_PRELOAD"] = setup.clockshift_lib;
          ro.env["SD_CLOCKSHIFT_FILE"] = (*clock)->path();
          b->clocks_.push_back(std::move(*clock));
        }
        auto r = sd::testing::RedisServer::start(dir, ro);
        if (!r.is_ok()) return r.status();
        b->redis_.push_back(std::move(*r));
      }
      break;
    }
    case BackendKind::kEtcd: {
      auto c = sd::testing::EtcdCluster::start((std::filesystem::path(setup.dir) / "etcd").string(),
                                               backend_server_count(setup.kind));
      if (!c.is_ok()) return c.status();
      b->etcd_ = std::move(*c);
      break;
    }
  }
  if (setup.proxies) {
    b->proxies_.resize(setup.clients);
    for (size_t c = 0; c < setup.clients; ++c) {
      for (size_t i = 0; i < b->servers(); ++i) {
        auto p = sd::net::TcpProxy::start("127.0.0.1", b->server_port(i));
        if (!p.is_ok()) return p.status();
        b->proxies_[c].push_back(std::move(*p));
      }
    }
  }
  return b;
}

LabBackend::~LabBackend() {
  proxies_.clear();  // stop forwarding before the servers go
  if (dlockd_) (void)dlockd_->stop(2s);
}

Status LabBackend::start_dlockd() {
  const std::string db = (std::filesystem::path(setup_.dir) / "dlockd.db").string();
  const std::string log = (std::filesystem::path(setup_.dir) / "dlockd.log").string();
  // The first start picks a free port; restarts reuse it (clients keep their URI), retrying while
  // the old socket lingers.
  bool first = dlockd_port_ == 0;
  Status last = unavailable("dlockd did not start");
  for (int attempt = 0; attempt < 10; ++attempt) {
    if (first) dlockd_port_ = sd::testing::free_port();
    sd::testing::ProcessOptions po;
    po.stdout_path = log;
    po.stderr_path = log;
    po.die_with_parent = true;
    auto p = sd::testing::Process::spawn(
        {setup_.dlockd_bin, "--port", std::to_string(dlockd_port_), "--store", "sqlite://" + db},
        po);
    if (!p.is_ok()) return p.status();
    dlockd_.emplace(std::move(*p));
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline && dlockd_->running()) {
      if (sd::testing::wait_for_port(dlockd_port_, 50ms)) return Status::ok();
    }
    last = unavailable("dlockd on port " + std::to_string(dlockd_port_) + " did not start; see " +
                       log);
    (void)dlockd_->signal(SIGKILL);
    dlockd_->wait();
    dlockd_.reset();
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

size_t LabBackend::servers() const {
  return backend_server_count(setup_.kind);
}

std::string LabBackend::server_name(size_t i) const {
  switch (setup_.kind) {
    case BackendKind::kDlockd:
      return "dlockd";
    case BackendKind::kRedis:
    case BackendKind::kRedlock:
      return "redis" + std::to_string(i);
    case BackendKind::kEtcd:
      return "etcd m" + std::to_string(i);
  }
  return "?";
}

uint16_t LabBackend::server_port(size_t i) const {
  switch (setup_.kind) {
    case BackendKind::kDlockd:
      return dlockd_port_;
    case BackendKind::kRedis:
    case BackendKind::kRedlock:
      return redis_.at(i)->port();
    case BackendKind::kEtcd:
      return etcd_->client_port(i);
  }
  return 0;
}

std::string LabBackend::uri_for_client(size_t client) const {
  std::string hosts;
  for (size_t i = 0; i < servers(); ++i) {
    uint16_t port = proxies_.empty() ? server_port(i) : proxies_.at(client).at(i)->port();
    hosts += (hosts.empty() ? "" : ",") + std::string("127.0.0.1:") + std::to_string(port);
  }
  return std::string(backend_kind_name(setup_.kind)) + "://" + hosts;
}

Status LabBackend::kill(size_t i) {
  if (i >= servers()) return invalid_argument("no server " + std::to_string(i));
  switch (setup_.kind) {
    case BackendKind::kDlockd:
      if (dlockd_) {
        (void)dlockd_->signal(SIGKILL);
        dlockd_->wait();
        dlockd_.reset();
      }
      return Status::ok();
    case BackendKind::kRedis:
    case BackendKind::kRedlock:
      return redis_[i]->kill();
    case BackendKind::kEtcd:
      return etcd_->kill(i);
  }
  return Status::ok();
}

Status LabBackend::restart(size_t i) {
  if (i >= servers()) return invalid_argument("no server " + std::to_string(i));
  switch (setup_.kind) {
    case BackendKind::kDlockd:
      return start_dlockd();
    case BackendKind::kRedis:
    case BackendKind::kRedlock:
      return redis_[i]->restart();
    case BackendKind::kEtcd:
      return etcd_->restart(i);
  }
  return Status::ok();
}

bool LabBackend::running(size_t i) {
  switch (setup_.kind) {
    case BackendKind::kDlockd:
      return dlockd_ && dlockd_->running();
    case BackendKind::kRedis:
    case BackendKind::kRedlock:
      return i < redis_.size() && redis_[i]->running();
    case BackendKind::kEtcd:
      return etcd_->running(i);
  }
  return false;
}

Result<size_t> LabBackend::leader() {
  if (!etcd_) return invalid_argument("only etcd has a leader");
  return etcd_->leader(5s);
}

Status LabBackend::clock_jump(size_t i, int64_t by_ns) {
  if (i >= clocks_.size()) return invalid_argument("no clock shim on server " + std::to_string(i));
  clocks_[i]->set_offset_ns(clocks_[i]->offset_ns() + by_ns);
  return Status::ok();
}

Status LabBackend::partition(size_t client, bool cut) {
  if (client >= proxies_.size()) return invalid_argument("no proxies for client");
  for (auto& p : proxies_[client]) {
    p->set_mode(cut ? sd::net::TcpProxy::Mode::kBlackhole : sd::net::TcpProxy::Mode::kPass);
  }
  return Status::ok();
}

std::string LabBackend::describe() const {
  std::string s = std::string(backend_kind_name(setup_.kind)) + ":";
  for (size_t i = 0; i < servers(); ++i) {
    s += " " + server_name(i) + "@127.0.0.1:" + std::to_string(server_port(i));
  }
  if (setup_.kind == BackendKind::kRedis || setup_.kind == BackendKind::kRedlock) {
    s += setup_.redis_persistence ? " (AOF, appendfsync always)" : " (no persistence)";
  }
  if (!proxies_.empty()) s += "; clients reach them through TCP proxies";
  return s;
}

}  // namespace sd::dlock::lab
