#pragma once
// Conformance properties of the optional features (shared mode, semaphores) and of the `dlock run`
// CLI on each backend. Part of dlock_conformance_test.cpp.

#include <catch2/catch.hpp>

#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "conformance_support.hpp"

#ifndef SD_DLOCK_BIN
#error "SD_DLOCK_BIN must name the dlock binary (set by tests/CMakeLists.txt)"
#endif

namespace conformance {

// Readers share; a writer waits for all of them. Unsupported: kUnimplemented "not supported".
inline void shared_mode(Fixture& f) {
  const std::string name = unique_name(f, "shared");
  auto r1 = new_session(f), r2 = new_session(f), w = new_session(f);
  sd::dlock::SharedMutex m1(r1, name), m2(r2, name), mw(w, name);
  auto t1 = m1.try_lock_shared();
  if (!f.caps.shared) {
    require_not_supported(t1.status());
    CHECK_FALSE(m1.held());
    return;
  }
  REQUIRE(status_text(t1.status()) == "ok");
  REQUIRE(status_text(m2.try_lock_shared().status()) == "ok");
  CHECK(m1.mode() == sd::dlock::Mode::kShared);
  CHECK(mw.try_lock().status().code() == sd::Code::kConflict);
  REQUIRE(m1.unlock().is_ok());
  CHECK(mw.try_lock().status().code() == sd::Code::kConflict);  // r2 still reads
  REQUIRE(m2.unlock().is_ok());
  auto tw = mw.lock(Duration{30'000});
  REQUIRE(status_text(tw.status()) == "ok");
  if (f.caps.safe_fencing) CHECK(*t1 < *tw);
  CHECK(m1.try_lock_shared().status().code() == sd::Code::kConflict);  // the writer excludes
  CHECK(mw.unlock().is_ok());
}

// At most `limit` permits in total; a released permit goes to the next one. Unsupported:
// kUnimplemented "not supported".
inline void semaphores(Fixture& f) {
  const std::string name = unique_name(f, "sem");
  auto a = new_session(f), b = new_session(f), c = new_session(f);
  sd::dlock::Semaphore sa(a, name, 2), sb(b, name, 2), sc(c, name, 2);
  auto ta = sa.try_acquire();
  if (!f.caps.semaphores) {
    require_not_supported(ta.status());
    CHECK_FALSE(sa.held());
    return;
  }
  REQUIRE(status_text(ta.status()) == "ok");
  REQUIRE(status_text(sb.try_acquire().status()) == "ok");
  CHECK(sc.try_acquire().status().code() == sd::Code::kConflict);  // limit 2 reached
  REQUIRE(sa.release().is_ok());
  CHECK(status_text(sc.acquire(Duration{30'000}).status()) == "ok");
  CHECK(sb.held());
  CHECK(sc.held());
  // Two permits at once do not fit while one is held.
  auto d = new_session(f);
  sd::dlock::Semaphore sd2(d, name, 2, 2);
  CHECK(sd2.try_acquire().status().code() == sd::Code::kConflict);
}

// Runs `dlock --uri <uri> run <name> --wait 30s -- /bin/sh -c <script>`.
inline sd::testing::Process spawn_dlock_run(const Fixture& f, const std::string& uri,
                                            const std::string& name, const std::string& script,
                                            const std::string& err_path) {
  sd::testing::ProcessOptions po;
  po.stderr_path = err_path;
  auto p = sd::testing::Process::spawn(
      {SD_DLOCK_BIN, "--uri", uri, "run", name, "--wait", "30s", "--", "/bin/sh", "-c", script},
      po);
  INFO("spawning dlock for " << f.caps.label);
  REQUIRE(p.is_ok());
  return std::move(*p);
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// `dlock run` holds the lock while CMD runs. Cross-process backends: while this process holds
// the lock, two runs wait; once it is released they run one after the other (a mkdir-based probe
// detects overlap) with new tokens. In-process engines (memory://, sqlite://) live inside the CLI
// process itself, so there the check is one run with a token in its environment.
inline void cli_run(Fixture& f) {
  const std::string name = unique_name(f, "cli");
  const std::string err = f.dir.file("dlock-run.err");
  const std::string tokens = f.dir.file(name.substr(name.rfind('/') + 1) + "-tokens");
  if (!f.caps.cross_process) {
    // sqlite: a separate file; this process's engine owns the suite's file.
    const std::string uri =
        f.caps.label == "sqlite"
            ? "sqlite://" + f.dir.file("cli-" + name.substr(name.rfind('/') + 1) + ".db")
            : f.uri;
    auto p = spawn_dlock_run(f, uri, name, "echo \"$DLOCK_TOKEN\" >> " + tokens, err);
    auto code = p.wait_for(30s);
    INFO("dlock stderr: " << sd::testing::read_file(err));
    CHECK(code == 0);
    auto got = lines_of(sd::testing::read_file(tokens));
    REQUIRE(got.size() == 1);
    CHECK(std::stoull(got[0]) > 0);
    return;
  }

  auto holder = new_session(f);
  sd::dlock::Mutex hm(holder, name);
  auto t0 = hm.try_lock();
  REQUIRE(status_text(t0.status()) == "ok");

  const std::string probe = f.dir.file(name.substr(name.rfind('/') + 1) + "-inside");
  const std::string overlaps = f.dir.file(name.substr(name.rfind('/') + 1) + "-overlaps");
  // mkdir is atomic: it fails if the other run is inside too.
  const std::string script = "mkdir " + probe + " || echo overlap >> " + overlaps +
                             "; echo \"$DLOCK_TOKEN\" >> " + tokens + "; sleep 0.3; rmdir " + probe;
  std::vector<sd::testing::Process> runs;
  for (int i = 0; i < 2; ++i) runs.push_back(spawn_dlock_run(f, f.uri, name, script, err));
  std::this_thread::sleep_for(500ms);
  for (auto& r : runs) CHECK(r.running());  // both wait for our hold
  CHECK(sd::testing::read_file(tokens).empty());
  REQUIRE(hm.unlock().is_ok());

  for (auto& r : runs) {
    auto code = r.wait_for(30s);
    INFO("dlock stderr: " << sd::testing::read_file(err));
    CHECK(code == 0);
  }
  CHECK(sd::testing::read_file(overlaps).empty());
  auto got = lines_of(sd::testing::read_file(tokens));
  REQUIRE(got.size() == 2);
  std::set<unsigned long long> distinct;
  for (const auto& line : got) {
    unsigned long long t = std::stoull(line);
    distinct.insert(t);
    if (f.caps.safe_fencing) CHECK(t > *t0);
  }
  if (f.caps.safe_fencing) CHECK(distinct.size() == 2);
}

}  // namespace conformance
