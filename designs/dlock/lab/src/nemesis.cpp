// The nemesis: fault kinds per backend, the seeded schedule, nemesis events, the clock-offset file.

#include "sd/dlock/lab/nemesis.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace sd::dlock::lab {

std::string_view backend_kind_name(BackendKind b) {
  switch (b) {
    case BackendKind::kDlockd:
      return "dlockd";
    case BackendKind::kRedis:
      return "redis";
    case BackendKind::kRedlock:
      return "redlock";
    case BackendKind::kEtcd:
      return "etcd";
  }
  return "?";
}

std::optional<BackendKind> parse_backend_kind(std::string_view s) {
  for (BackendKind b :
       {BackendKind::kDlockd, BackendKind::kRedis, BackendKind::kRedlock, BackendKind::kEtcd}) {
    if (s == backend_kind_name(b)) return b;
  }
  return std::nullopt;
}

size_t backend_server_count(BackendKind b) {
  switch (b) {
    case BackendKind::kRedlock:
      return 5;
    case BackendKind::kEtcd:
      return 3;
    default:
      return 1;
  }
}

std::string_view fault_kind_name(FaultKind f) {
  switch (f) {
    case FaultKind::kPause:
      return "pause";
    case FaultKind::kCrash:
      return "crash";
    case FaultKind::kLeader:
      return "leader";
    case FaultKind::kClock:
      return "clock";
    case FaultKind::kPartition:
      return "partition";
  }
  return "?";
}

std::vector<FaultKind> applicable_faults(BackendKind b) {
  using F = FaultKind;
  switch (b) {
    case BackendKind::kDlockd:
      return {F::kPause, F::kCrash, F::kPartition};
    case BackendKind::kRedis:
    case BackendKind::kRedlock:
      return {F::kPause, F::kCrash, F::kClock, F::kPartition};
    case BackendKind::kEtcd:
      return {F::kPause, F::kCrash, F::kLeader, F::kPartition};
  }
  return {};
}

Result<std::vector<FaultKind>> parse_faults(std::string_view list, BackendKind backend) {
  const auto ok = applicable_faults(backend);
  auto names = [&] {
    std::string s;
    for (FaultKind f : ok) s += (s.empty() ? "" : ",") + std::string(fault_kind_name(f));
    return s;
  };
  std::vector<FaultKind> out;
  if (list.empty() || list == "none") return out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t end = std::min(list.find(',', start), list.size());
    std::string_view name = list.substr(start, end - start);
    if (name == "restart") name = "crash";
    std::optional<FaultKind> kind;
    for (FaultKind f : ok) {
      if (name == fault_kind_name(f)) kind = f;
    }
    if (!kind) {
      return invalid_argument("fault \"" + std::string(name) + "\" does not apply to backend " +
                              std::string(backend_kind_name(backend)) + " (it takes: " + names() +
                              ")");
    }
    if (std::find(out.begin(), out.end(), *kind) == out.end()) out.push_back(*kind);
    start = end + 1;
  }
  return out;
}

uint64_t Rng::next() {
  uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double Rng::uniform() {
  return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0);  // 53 bits
}

int64_t Rng::between(int64_t lo, int64_t hi) {
  if (hi <= lo) return lo;
  return lo + static_cast<int64_t>(next() % static_cast<uint64_t>(hi - lo + 1));
}

std::vector<PlannedFault> plan_faults(const NemesisOptions& o) {
  std::vector<PlannedFault> out;
  if (o.faults.empty() || o.clients == 0 || o.servers == 0) return out;
  Rng rng(o.seed * 0x2545f4914f6cdd1dULL + 1);
  const int64_t ttl = std::max<int64_t>(o.ttl_ms, 1);
  auto scaled = [&](double lo, double hi) {
    return rng.between(static_cast<int64_t>(lo * static_cast<double>(ttl)),
                       static_cast<int64_t>(hi * static_cast<double>(ttl)));
  };
  // A restarted server takes a while to serve again (etcd rejoins, Redis loads its AOF): keep the
  // next server fault clear of that.
  constexpr int64_t kRestartSlackMs = 1'000;
  std::vector<int64_t> client_busy_until(o.clients, 0);
  int64_t server_down_until = 0;
  for (int64_t t = o.first_fault_ms; t < o.duration_ms;
       t += rng.between(o.min_gap_ms, o.max_gap_ms)) {
    PlannedFault f;
    f.at_ms = t;
    f.kind = o.faults[rng.index(o.faults.size())];
    switch (f.kind) {
      case FaultKind::kPause:
      case FaultKind::kPartition: {
        std::vector<size_t> free;
        for (size_t c = 0; c < o.clients; ++c) {
          if (client_busy_until[c] <= t) free.push_back(c);
        }
        if (free.empty()) continue;
        f.target = free[rng.index(free.size())];
        f.duration_ms = scaled(1.5, 3.0);
        client_busy_until[f.target] = t + f.duration_ms;
        break;
      }
      case FaultKind::kCrash:
      case FaultKind::kLeader:
        if (server_down_until > t) continue;
        f.target = f.kind == FaultKind::kCrash ? rng.index(o.servers) : 0;
        if (f.kind == FaultKind::kCrash)
          f.count = std::clamp<size_t>(o.crash_servers, 1, o.servers);
        f.duration_ms = f.kind == FaultKind::kCrash ? scaled(0.25, 0.75) : scaled(0.5, 1.5);
        server_down_until = t + f.duration_ms + kRestartSlackMs;
        break;
      case FaultKind::kClock:
        f.target = rng.index(o.servers);
        f.duration_ms = scaled(1.5, 3.0);
        break;
    }
    out.push_back(f);
  }
  return out;
}

Event nemesis_event(std::string f, std::string target, std::optional<int64_t> value_ms,
                    std::string detail, int64_t time_ns) {
  Event e;
  e.type = EventType::kInfo;
  e.process = "nemesis";
  e.f = std::move(f);
  e.client = std::move(target);
  e.value = value_ms;
  e.error = std::move(detail);
  e.time_ns = time_ns;
  return e;
}

std::optional<std::string_view> fault_end_name(std::string_view f) {
  if (f == "pause") return "resume";
  if (f == "kill") return "restart";
  if (f == "partition") return "heal";
  return std::nullopt;
}

Result<std::unique_ptr<ClockOffsetFile>> ClockOffsetFile::create(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return unavailable("cannot create " + path + ": " + std::strerror(errno));
  int64_t zero = 0;
  bool ok = ::pwrite(fd, &zero, sizeof zero, 0) == static_cast<ssize_t>(sizeof zero);
  void* m =
      ok ? ::mmap(nullptr, sizeof zero, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) : MAP_FAILED;
  ::close(fd);
  if (m == MAP_FAILED) return unavailable("cannot map " + path + ": " + std::strerror(errno));
  return std::unique_ptr<ClockOffsetFile>(new ClockOffsetFile(path, static_cast<int64_t*>(m)));
}

ClockOffsetFile::~ClockOffsetFile() {
  ::munmap(map_, sizeof(int64_t));
}

void ClockOffsetFile::set_offset_ns(int64_t ns) {
  __atomic_store_n(map_, ns, __ATOMIC_RELAXED);
}

int64_t ClockOffsetFile::offset_ns() const {
  return __atomic_load_n(map_, __ATOMIC_RELAXED);
}

}  // namespace sd::dlock::lab
