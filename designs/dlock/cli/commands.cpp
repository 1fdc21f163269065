// dlock subcommands other than `run`: acquire, release, status, list.

#include <charconv>
#include <iostream>

#include "cli.hpp"

namespace sd::dlock::cli {

const char* const kExitCodesHelp =
    "\nExit codes:\n"
    "  run:    CMD's own exit code when it ran (128+N if it died by signal N)\n"
    "  0       ok\n"
    "  1       conflict or not found (lock held elsewhere, not the holder, unknown name)\n"
    "  64      usage error (bad flags, duration, URI or name)\n"
    "  69      backend unreachable or backend error\n"
    "  75      run: lock not acquired within --wait\n"
    "  76      run: lock lost while CMD ran (CMD was terminated)\n"
    "  127     run: CMD could not be executed\n"
    "  128+N   run: dlock got signal N while waiting for the lock\n"
    "Durations: 500ms, 10s, 2m, 1h, or a plain number of milliseconds.\n";

std::optional<Duration> parse_duration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  long long n = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
  if (ec != std::errc() || n < 0) return std::nullopt;
  std::string_view unit(end, static_cast<size_t>(s.data() + s.size() - end));
  long long mult = 0;
  if (unit.empty() || unit == "ms") {
    mult = 1;
  } else if (unit == "s") {
    mult = 1'000;
  } else if (unit == "m") {
    mult = 60'000;
  } else if (unit == "h") {
    mult = 3'600'000;
  } else {
    return std::nullopt;
  }
  if (n > (1LL << 40) / mult) return std::nullopt;
  return Duration{n * mult};
}

int fail(const Status& s) {
  std::cerr << "dlock: " << s.to_string() << "\n";
  switch (s.code()) {
    case Code::kConflict:
    case Code::kNotFound:
    case Code::kAlreadyExists:
      return kExitConflict;
    case Code::kInvalidArgument:
      return kExitUsage;
    default:
      return kExitUnavailable;
  }
}

nlohmann::json lock_info_json(const LockInfo& info) {
  nlohmann::json holders = nlohmann::json::array();
  for (const auto& h : info.holders) {
    nlohmann::json j{{"lease_id", h.lease_id},
                     {"mode", mode_name(h.mode)},
                     {"token", h.token},
                     {"ttl_ms_left", h.ttl_ms_left}};
    if (info.kind == Kind::kSemaphore) j["permits"] = h.permits;
    holders.push_back(std::move(j));
  }
  nlohmann::json waiters = nlohmann::json::array();
  for (const auto& w : info.waiters) {
    nlohmann::json j{
        {"lease_id", w.lease_id}, {"mode", mode_name(w.mode)}, {"wait_ms_left", w.wait_ms_left}};
    if (info.kind == Kind::kSemaphore) j["permits"] = w.permits;
    waiters.push_back(std::move(j));
  }
  nlohmann::json out{{"name", info.name},
                     {"kind", kind_name(info.kind)},
                     {"holders", std::move(holders)},
                     {"waiters", std::move(waiters)},
                     {"last_token", info.last_token},
                     {"lock_delay_ms_left", info.lock_delay_ms_left}};
  if (info.kind == Kind::kSemaphore) out["limit"] = info.limit;
  return out;
}

namespace {

Result<std::shared_ptr<Backend>> backend_for(const std::string& uri) {
  return open_backend(uri);
}

Status usage(const std::string& what) {
  return invalid_argument(what);
}

}  // namespace

int cmd_acquire(const std::string& uri, const AcquireArgs& a) {
  auto ttl = parse_duration(a.ttl);
  if (!ttl || ttl->count() == 0) return fail(usage("bad --ttl \"" + a.ttl + "\""));
  auto wait = parse_duration(a.wait);
  if (!wait) return fail(usage("bad --wait \"" + a.wait + "\""));
  auto backend = backend_for(uri);
  if (!backend) return fail(backend.status());
  auto lease = (*backend)->grant_lease(*ttl);
  if (!lease) return fail(lease.status());
  AcquireRequest req;
  req.kind = Kind::kLock;
  req.name = a.name;
  req.lease_id = lease->id;
  req.mode = a.shared ? Mode::kShared : Mode::kExclusive;
  req.wait = *wait;
  auto grant = (*backend)->acquire(req);
  if (!grant) {
    (void)(*backend)->revoke(lease->id);
    return fail(grant.status());
  }
  nlohmann::json out{{"name", grant->name},
                     {"token", grant->token},
                     {"lease_id", lease->id},
                     {"ttl_ms", lease->ttl.count()},
                     {"mode", mode_name(grant->mode)}};
  std::cout << out.dump() << "\n";
  return kExitOk;
}

int cmd_release(const std::string& uri, const ReleaseArgs& a) {
  auto backend = backend_for(uri);
  if (!backend) return fail(backend.status());
  Status s = (*backend)->release(Kind::kLock, a.name, a.lease, a.token);
  if (!s.is_ok()) return fail(s);
  std::cout << nlohmann::json{{"name", a.name}, {"released", true}}.dump() << "\n";
  return kExitOk;
}

int cmd_status(const std::string& uri, const std::string& name) {
  auto backend = backend_for(uri);
  if (!backend) return fail(backend.status());
  auto info = (*backend)->describe(Kind::kLock, name);
  if (!info) return fail(info.status());
  std::cout << lock_info_json(*info).dump() << "\n";
  return kExitOk;
}

int cmd_list(const std::string& uri, const std::string& prefix) {
  auto backend = backend_for(uri);
  if (!backend) return fail(backend.status());
  auto infos = (*backend)->list(Kind::kLock, prefix);
  if (!infos) return fail(infos.status());
  nlohmann::json locks = nlohmann::json::array();
  for (const auto& i : *infos) locks.push_back(lock_info_json(i));
  std::cout << nlohmann::json{{"locks", std::move(locks)}}.dump() << "\n";
  return kExitOk;
}

}  // namespace sd::dlock::cli
