// libsd_clockshift.so: an LD_PRELOAD shim that shifts a process's wall clock (CLOCK_REALTIME,
// gettimeofday, time) by an offset the lab changes while the process runs -- the "clock jump" fault
// on a Redis instance. Monotonic clocks are left alone: an NTP step moves only the wall clock.
//
// Why not libfaketime (the Debian package does the same thing): Debian's redis-server is linked
// with jemalloc, and libfaketime 0.9.10 deadlocks in its initialisation under jemalloc (jemalloc's
// init calls clock_gettime, which re-enters libfaketime's init; upstream wolfcw/libfaketime#130,
// unfixed). This shim never allocates and never calls dlsym: it reads the real clocks with raw
// syscalls and the offset from a file it maps once, so it cannot re-enter the allocator.
//
// The offset file (SD_CLOCKSHIFT_FILE) holds one little-endian int64: the offset in nanoseconds.
// The lab maps the same file and stores a new value atomically; every clock read here sees it at
// once (MAP_SHARED), which is what FAKETIME_NO_CACHE=1 does for libfaketime.

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>

namespace {

// nullptr until mapped; a failed map leaves the clocks unshifted (reported by the lab, which checks
// the effect on the server instead of trusting this file).
const int64_t* g_offset = nullptr;
int g_state = 0;  // 0 = not tried, 1 = trying, 2 = done (atomics via builtins: no libstdc++ needed)

const int64_t* offset_ptr() {
  int s = __atomic_load_n(&g_state, __ATOMIC_ACQUIRE);
  if (s == 2) return g_offset;
  int expected = 0;
  if (!__atomic_compare_exchange_n(&g_state, &expected, 1, false, __ATOMIC_ACQ_REL,
                                   __ATOMIC_ACQUIRE)) {
    return __atomic_load_n(&g_state, __ATOMIC_ACQUIRE) == 2 ? g_offset : nullptr;
  }
  const char* path = std::getenv("SD_CLOCKSHIFT_FILE");
  const int64_t* p = nullptr;
  if (path != nullptr) {
    int fd = static_cast<int>(::syscall(SYS_open, path, O_RDONLY | O_CLOEXEC));
    if (fd >= 0) {
      void* m = ::mmap(nullptr, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
      ::syscall(SYS_close, fd);
      if (m != MAP_FAILED) p = static_cast<const int64_t*>(m);
    }
  }
  g_offset = p;
  __atomic_store_n(&g_state, 2, __ATOMIC_RELEASE);
  return p;
}

int64_t offset_ns() {
  const int64_t* p = offset_ptr();
  return p == nullptr ? 0 : __atomic_load_n(p, __ATOMIC_RELAXED);
}

void shift(timespec* ts, int64_t off) {
  int64_t ns = static_cast<int64_t>(ts->tv_sec) * 1'000'000'000 + ts->tv_nsec + off;
  ts->tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  ts->tv_nsec = static_cast<long>(ns % 1'000'000'000);
}

bool is_wall_clock(clockid_t id) {
  return id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE;
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int clock_gettime(clockid_t id, timespec* ts) {
  long rc = ::syscall(SYS_clock_gettime, id, ts);
  if (rc == 0 && is_wall_clock(id)) shift(ts, offset_ns());
  return static_cast<int>(rc);
}

__attribute__((visibility("default"))) int gettimeofday(timeval* tv, void* /*tz*/) {
  timespec ts{};
  long rc = ::syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  if (rc != 0) return static_cast<int>(rc);
  shift(&ts, offset_ns());
  tv->tv_sec = ts.tv_sec;
  tv->tv_usec = static_cast<suseconds_t>(ts.tv_nsec / 1000);
  return 0;
}

__attribute__((visibility("default"))) time_t time(time_t* out) {
  timespec ts{};
  ::syscall(SYS_clock_gettime, CLOCK_REALTIME, &ts);
  shift(&ts, offset_ns());
  if (out != nullptr) *out = ts.tv_sec;
  return ts.tv_sec;
}

}  // extern "C"
