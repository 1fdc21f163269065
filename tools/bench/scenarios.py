"""The benchmark scenarios (issue 3) as data: which systems, which sd-load workload and flags,
which concurrency levels, which ratios to report and which targets to judge.

Pure: no processes here, so report rendering and its tests can use the same definitions.
"""

LOCK_SYSTEMS = ["dlockd-memory", "dlockd-sqlite", "redis", "etcd", "etcd-3node"]
LOCK_WORKLOAD = {"dlockd-memory": "dlock-cycle", "dlockd-sqlite": "dlock-cycle",
                 "redis": "redis-lock-cycle", "etcd": "etcd-lock-cycle",
                 "etcd-3node": "etcd-lock-cycle"}

LABELS = {
    "sd-hello": "sd-hello",
    "nginx": "nginx",
    "dlockd-memory": "dlockd (memory)",
    "dlockd-sqlite": "dlockd (SQLite)",
    "redis": "Redis",
    "etcd": "etcd 1 node",
    "etcd-3node": "etcd 3 nodes",
    "lib-dlockd": "client → dlockd://",
    "lib-redis": "client → redis://",
    "lib-redlock": "client → redlock:// (5)",
    "lib-etcd": "client → etcd:// (3 nodes)",
    "ratelimitd-memory": "ratelimitd (memory)",
    "ratelimitd-redis": "ratelimitd (Redis store)",
    "redis-tb": "Redis Lua token bucket",
    "ticketd-dlock-sqlite": "dlock (embedded SQLite)",
    "ticketd-dlock-dlockd": "dlock (dlockd)",
    "ticketd-dlock-etcd": "dlock (etcd)",
    "ticketd-conditional": "conditional update",
    "ticketd-optimistic": "optimistic",
}

LIB_SYSTEMS = ["lib-dlockd", "lib-redis", "lib-redlock", "lib-etcd"]
LIB_RATIOS = [("lib-dlockd", "lib-redis"), ("lib-dlockd", "lib-redlock"),
              ("lib-dlockd", "lib-etcd")]

# Ratios are ours / peer for throughput (higher is better for ours).
LOCK_RATIOS = [("dlockd-memory", "redis"), ("dlockd-sqlite", "redis"),
               ("dlockd-memory", "etcd"), ("dlockd-sqlite", "etcd"),
               ("dlockd-memory", "etcd-3node"), ("dlockd-sqlite", "etcd-3node")]


def _lock_args(contended):
    def args(system):
        a = ["--dist", "hot" if contended else "distinct"]
        if contended:
            a += ["--wait-ms", "5000"] if system.startswith("dlockd") else ["--retry-ms", "50"]
        return a
    return args


SCENARIOS = [
    {
        "id": "http",
        "short": "HTTP",
        "design": "core",
        "title": "HTTP core: trivial JSON endpoint (GET → 200 {\"ok\":true})",
        "what": "sd-hello (`common/net` HttpServer, 1 I/O thread) vs nginx `return 200` "
                "(1 worker), keep-alive, closed loop.",
        "systems": ["sd-hello", "nginx"],
        "workload": {"sd-hello": "http-get", "nginx": "http-get"},
        "args": lambda system: ["--path", "/hello"],
        "concurrency": [16, 64, 256],
        "quick_concurrency": [16, 256],
        "kind": "throughput",
        "ratios": [("sd-hello", "nginx")],
    },
    {
        "id": "lock-uncontended",
        "short": "uncontended",
        "design": "dlock",
        "title": "Lock cycles, uncontended (acquire + release, a distinct name per client)",
        "what": "`--dist distinct`: client i cycles its own lock name. dlockd: POST acquire + "
                "release on a lease; Redis: SET NX PX + Lua compare-and-delete; etcd: lease, txn "
                "on create_revision == 0 + put, deleterange.",
        "systems": LOCK_SYSTEMS,
        "workload": LOCK_WORKLOAD,
        "args": _lock_args(False),
        "concurrency": [1, 16, 64],
        "quick_concurrency": [1, 16],
        "kind": "throughput",
        "ratios": LOCK_RATIOS,
    },
    {
        "id": "lock-contended",
        "short": "contended",
        "design": "dlock",
        "title": "Lock cycles, contended (every client on one hot name)",
        "what": "`--dist hot`: all clients cycle the same name. dlockd queues waiters server-side "
                "(`--wait-ms 5000`, FIFO grant on release); Redis and etcd clients retry every "
                "50 ms after a failed SET NX / txn (`--retry-ms 50`), the usual client recipe.",
        "systems": LOCK_SYSTEMS,
        "workload": LOCK_WORKLOAD,
        "args": _lock_args(True),
        "concurrency": [1, 16, 64],
        "quick_concurrency": [16],
        "kind": "throughput",
        "ratios": LOCK_RATIOS,
    },
    {
        "id": "lib-uncontended",
        "short": "client library, uncontended",
        "design": "dlock",
        "tool": "sd-load-dlock",
        "title": "Lock cycles through the dlock client library, per backend, uncontended",
        "what": "`sd-load-dlock --dist distinct`: each client is a thread with its own Session "
                "(lease + keepalive) cycling `Mutex::lock` + `unlock` on its own name, through "
                "the backend URI an application would use: dlockd:// (in-memory dlockd), "
                "redis:// (SET NX PX + Lua, per-lock token counter), redlock:// (5 independent "
                "Redis masters, quorum 3), etcd:// (3-node cluster, concurrency.Mutex "
                "algorithm via the JSON gateway).",
        "systems": LIB_SYSTEMS,
        "args": lambda system: ["--dist", "distinct"],
        "concurrency": [1, 16],
        "quick_concurrency": [16],
        "kind": "throughput",
        "ratios": LIB_RATIOS,
    },
    {
        "id": "lib-contended",
        "short": "client library, contended",
        "design": "dlock",
        "tool": "sd-load-dlock",
        "title": "Lock cycles through the dlock client library, per backend, one hot name",
        "what": "`sd-load-dlock --dist hot --wait-ms 5000`: every client waits on the same name "
                "the way its backend waits — dlockd: server-side FIFO queue (long-poll); "
                "redis://: pub/sub wake-up on release with a bounded fallback poll; redlock://: "
                "random retry delay; etcd://: watch on the key just before yours.",
        "systems": LIB_SYSTEMS,
        "args": lambda system: ["--dist", "hot", "--wait-ms", "5000"],
        "concurrency": [16],
        "quick_concurrency": [16],
        "kind": "throughput",
        "ratios": LIB_RATIOS,
    },
    {
        "id": "handoff",
        "short": "handoff",
        "design": "dlock",
        "title": "Handoff latency: release → next waiter's grant",
        "what": "One pair of clients per key (`-c 2`): A holds, B waits, A releases; latency is "
                "from A's release sent to B's grant received. dlockd: B long-polls acquire; Redis: "
                "B polls SET NX every 50 ms (`--retry-ms 50`).",
        "systems": ["dlockd-memory", "dlockd-sqlite", "redis"],
        "workload": {"dlockd-memory": "dlock-handoff", "dlockd-sqlite": "dlock-handoff",
                     "redis": "redis-handoff"},
        "args": lambda system: ["--retry-ms", "50"] if system == "redis" else [],
        "concurrency": [2],
        "quick_concurrency": [2],
        "duration_factor": 2.0,  # few samples per second for the polling client
        "kind": "latency",
        "ratios": [("dlockd-memory", "redis"), ("dlockd-sqlite", "redis")],
    },
]

RATELIMIT_SYSTEMS = ["ratelimitd-memory", "ratelimitd-redis", "redis-tb"]
SCENARIOS.append({
    "id": "rl-decisions",
    "short": "rate-limit decisions",
    "design": "rate-limiter",
    "title": "Rate-limit decisions: ratelimitd vs a Redis Lua token bucket called directly",
    "what": "One decision per op, keys uniform over sd-load's key space. ratelimitd: `POST "
            "/v1/check` (JSON descriptor, rule match, token bucket, IETF RateLimit headers) with "
            "the in-memory store or the Redis store (one EVALSHA per decision, the decisions "
            "queued meanwhile pipelined together off the HTTP thread; server CPU includes "
            "Redis's). Peer: the usual production recipe — the application sends "
            "EVALSHA of a token-bucket Lua script (hash per key, Redis TIME, PEXPIRE) straight to "
            "Redis. All buckets are large enough that every decision allows.",
    "systems": RATELIMIT_SYSTEMS,
    "workload": {"ratelimitd-memory": "ratelimit-check", "ratelimitd-redis": "ratelimit-check",
                 "redis-tb": "redis-token-bucket"},
    "args": lambda system: ["--dist", "uniform"],
    "concurrency": [1, 16, 64],
    "quick_concurrency": [16],
    "kind": "throughput",
    "ratios": [("ratelimitd-memory", "redis-tb"), ("ratelimitd-redis", "redis-tb")],
})

# Ticketing: one ticketd per double-booking strategy, the same sd-load workload for all. Ratios are
# against the DB conditional update, the simplest correct strategy.
TICKETING_SYSTEMS = ["ticketd-dlock-sqlite", "ticketd-dlock-dlockd", "ticketd-dlock-etcd",
                     "ticketd-conditional", "ticketd-optimistic"]
TICKETING_PEER = "ticketd-conditional"
TICKETING_RATIOS = [(s, TICKETING_PEER) for s in TICKETING_SYSTEMS if s != TICKETING_PEER]
TICKETING_HOT_SEATS = 32
# The bench venue (ticketd --bench-venue): enough seats that uniform picks by 64 shoppers rarely
# collide; a run never sells out anyway (each booking is cancelled again).
TICKETING_BENCH_SEATS = 20000
_TICKETING_WHAT = (
    "One op = one booking attempt by a virtual shopper (sd-load `ticketing-book`, customer "
    "`c<client>`): `POST /v1/events/{E}/holds` for one seat, `POST /v1/holds/{id}/pay`, then "
    "`POST /v1/orders/{id}/cancel`, which puts the seat back on sale so the run reaches a steady "
    "state instead of selling out (a hold that could not be paid is cancelled instead). "
    "**bookings/s** counts the ops whose pay returned 201 (and whose cancel succeeded); a 409 "
    "(seat held or sold by another shopper) is a conflict, not an error. **hold p50/p99** is the "
    "hold request's own round trip (every attempt, granted or not); *op p99* covers all three "
    "requests. ticketd: default threads and workers, instant simulated payments "
    f"(`--payment-latency-ms 0`: the booking path only), one bench venue of "
    f"{TICKETING_BENCH_SEATS:,} seats; dlock "
    "takes per-seat locks (fencing tokens checked by the seat row) on its embedded SQLite backend, "
    "on a dlockd (SQLite store, shared with the lock scenarios) or on a 1-node etcd; server CPU "
    "includes the lock server's. ")
SCENARIOS += [
    {
        "id": "tk-low",
        "short": "bookings, low contention",
        "design": "ticketing",
        "title": f"Ticketing: bookings per strategy, low contention (seats uniform over "
                 f"{TICKETING_BENCH_SEATS:,})",
        "what": _TICKETING_WHAT + f"Here every attempt picks a seat uniformly among all "
                f"{TICKETING_BENCH_SEATS:,}, so shoppers almost never want the same seat: the "
                "cost of each strategy's guard when it is not needed.",
        "systems": TICKETING_SYSTEMS,
        "workload": {s: "ticketing-book" for s in TICKETING_SYSTEMS},
        "args": lambda system: [],
        "concurrency": [16, 64],
        "quick_concurrency": [16],
        "kind": "booking",
        "ratios": TICKETING_RATIOS,
    },
    {
        "id": "tk-flash",
        "short": "bookings, flash sale",
        "design": "ticketing",
        "title": f"Ticketing: bookings per strategy, flash sale (every shopper on the same "
                 f"{TICKETING_HOT_SEATS} seats)",
        "what": _TICKETING_WHAT + f"Here every attempt picks among the first "
                f"{TICKETING_HOT_SEATS} seats (`--hot {TICKETING_HOT_SEATS}`): most attempts "
                "find their seat held by another shopper, so conflicts dominate and the "
                "guard's behaviour under contention (lock waits, version races) decides.",
        "systems": TICKETING_SYSTEMS,
        "workload": {s: "ticketing-book" for s in TICKETING_SYSTEMS},
        "args": lambda system: ["--hot", str(TICKETING_HOT_SEATS)],
        "concurrency": [16, 64],
        "quick_concurrency": [16],
        "kind": "booking",
        "ratios": TICKETING_RATIOS,
    },
]

# Targets from issue 3. kind "ratio": ours/peer throughput at `concurrency` must be >= value;
# kind "p99": p99 latency in µs must be <= value.
TARGETS = [
    {"text": "dlockd lock cycles ≥ 1.0× Redis at 16 clients", "kind": "ratio",
     "pairs": [("dlockd-memory", "redis"), ("dlockd-sqlite", "redis")], "value": 1.0,
     "scenarios": ["lock-uncontended", "lock-contended"], "concurrency": 16},
    {"text": "dlockd lock cycles ≥ 10× etcd at 16 clients", "kind": "ratio",
     "pairs": [("dlockd-memory", "etcd"), ("dlockd-sqlite", "etcd"),
               ("dlockd-memory", "etcd-3node"), ("dlockd-sqlite", "etcd-3node")], "value": 10.0,
     "scenarios": ["lock-uncontended", "lock-contended"], "concurrency": 16},
    {"text": "HTTP core ≥ 0.9× nginx", "kind": "ratio", "pairs": [("sd-hello", "nginx")],
     "value": 0.9, "scenarios": ["http"], "concurrency": None},
    {"text": "handoff p99 ≤ 1 ms", "kind": "p99", "systems": ["dlockd-memory", "dlockd-sqlite"],
     "value": 1000.0, "scenarios": ["handoff"]},
]

# What bounds a system where a target is missed: what the profiles showed (perf -e cpu-clock -g on
# the server during a 16-client uncontended run, strace -c for syscalls per request). The report
# puts the run's own measured server CPU per operation next to each note.
BOUNDS = {
    "dlockd-memory": (
        "Server CPU, not the wire: strace -c shows one recvfrom and one sendmsg per request (no "
        "syscall left to save); perf: ~52% kernel TCP, ~34% dlockd user code (HTTP/1.1 parse and "
        "serialize, JSON bodies, malloc/free ~6%, nlohmann::json ~5%), ~12% libc. A cycle is two "
        "HTTP requests with JSON bodies where Redis parses two RESP commands, so dlockd spends more "
        "CPU per cycle (left), and both share the 2 cores with sd-load, which is itself near one "
        "full core (⚠ above). Fixed from the profile: no per-connection strand with one I/O "
        "thread (+4%). Regression: after group commit every route answers through a Responder "
        "and the reply passes through the service's outbox; an A/B before/after (16 clients, 3 "
        "alternating rounds) measured 41.3 k vs 38.3 k cycles/s (−7%), with no single new hot "
        "spot in the profile."),
    "dlockd-sqlite": (
        "Durability: acquire and release are each written to SQLite (WAL) before the reply. perf "
        "before group commit: ~61% kernel (WAL pwrite, fcntl byte-range locks, TCP), ~16% SQLite, "
        "~15% dlockd. Fixed from the profile: group commit — the requests that arrive together "
        "share one transaction (a SAVEPOINT each; replies after the COMMIT): 16 clients, distinct "
        "names, 8.2–9.6 k → 14.3–15.6 k cycles/s (A/B, 3 alternating rounds, quiet machine). A hot "
        "name is a serial handoff chain, which grouping cannot shorten. Tried and not kept: "
        "locking_mode=EXCLUSIVE (within noise). Against etcd, note that etcd fsyncs its WAL on "
        "every write (power-loss durable), while dlockd's SQLite commits are crash-durable "
        "(synchronous=NORMAL) and only its token reservations are fsync'd."),
}


def select(designs):
    """Scenarios for the given designs (empty: all)."""
    return [s for s in SCENARIOS if not designs or s["design"] in designs]


def scenario(sid):
    for s in SCENARIOS:
        if s["id"] == sid:
            return s
    raise KeyError(sid)
