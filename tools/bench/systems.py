"""The systems under test: the project's servers and their peers, each started on free loopback
ports with its data in a temporary directory, and waited for until it answers.

A System knows how to start itself (start(tmp) -> sets .port and .servers) and which sd-load
target to use. Nothing here touches the system-wide services of the installed packages.
"""

import json
import os
import shutil
import subprocess

from procs import (LOOPBACK, Server, StartError, free_port, free_ports, http_get, http_post,
                   resp_ping, wait_until)
from scenarios import TICKETING_BENCH_SEATS


class System:
    name = ""
    label = ""

    def __init__(self, root):
        self.root = root  # repository root
        self.build = os.path.join(root, "build/release")  # the binaries (make_systems' build_dir)
        self.port = None
        self.servers = []
        self.notes = []

    @property
    def target(self):
        return f"{LOOPBACK}:{self.port}"

    @property
    def load_args(self):
        """sd-load flags that depend on the running system (appended to the scenario's)."""
        return []

    @property
    def pids(self):
        return [s.pid for s in self.servers if s.pid]

    def alive_all(self):
        return all(s.alive() for s in self.servers)

    def start(self, tmp):
        raise NotImplementedError

    def _spawn(self, name, argv, tmp):
        s = Server(name, argv, os.path.join(tmp, f"{name}.log")).start()
        self.servers.append(s)
        return s


class Dlockd(System):
    def __init__(self, root, store):
        super().__init__(root)
        self.store = store
        self.name = f"dlockd-{store}"
        self.label = f"dlockd ({'in-memory' if store == 'memory' else 'SQLite WAL'})"

    def start(self, tmp):
        self.port = free_port()
        uri = "memory://" if self.store == "memory" else f"sqlite://{tmp}/{self.name}.db"
        exe = os.path.join(self.build, "designs/dlock/dlockd")
        s = self._spawn(self.name, [exe, "--port", str(self.port), "--store", uri,
                                    "--threads", "1"], tmp)
        wait_until(lambda: http_get(self.port, "/healthz")[0] == 200, self.name, s)


# The bench rules: one descriptor `client` in domain `bench`, a token bucket so generous that every
# decision allows (the peer's bucket is configured the same) — the runs measure the decision path.
RATELIMIT_BENCH_RULES = """domain: bench
descriptors:
  - key: client
    rate_limit: {unit: second, requests_per_unit: 1000000, algorithm: token_bucket}
"""


class Ratelimitd(System):
    """ratelimitd with the in-memory store, or with redis:// on the shared single Redis."""

    def __init__(self, root, store, redis=None):
        super().__init__(root)
        self.store, self.redis = store, redis
        self.name = f"ratelimitd-{store}"
        self.label = f"ratelimitd ({'in-memory' if store == 'memory' else 'Redis store'})"

    def start(self, tmp):
        uri = "memory://"
        if self.redis is not None:
            if self.redis.port is None:
                self.redis.start(tmp)
            uri = f"redis://{LOOPBACK}:{self.redis.port}"
        rules = os.path.join(tmp, "ratelimit-bench.yaml")
        with open(rules, "w") as f:
            f.write(RATELIMIT_BENCH_RULES)
        self.port = free_port()
        exe = os.path.join(self.build, "designs/rate-limiter/ratelimitd")
        s = self._spawn(self.name, [exe, "--port", str(self.port), "--rules", rules, "--store", uri,
                                    "--threads", "1", "--reload-poll-ms", "0"], tmp)
        wait_until(lambda: http_get(self.port, "/healthz")[0] == 200, self.name, s)

    @property
    def pids(self):  # with the Redis store, Redis's CPU is part of a decision's cost
        return [s.pid for s in self.servers if s.pid] + (self.redis.pids if self.redis else [])


class Ticketd(System):
    """ticketd with one double-booking strategy. dlock: its per-seat locks on the embedded SQLite
    backend (ticketd's default sqlite://<state-dir>/locks.db), or on a dlockd / etcd server it
    shares with the lock scenarios (`base`, started here if nobody has yet; its CPU counts).
    Payments are instant (--payment-latency-ms 0): the runs measure the booking path. One bench
    venue of TICKETING_BENCH_SEATS seats (--bench-venue); its event id is looked up by name."""

    def __init__(self, root, strategy, lock=None, base=None, uri_of=None):
        super().__init__(root)
        self.strategy, self.lock, self.base, self.uri_of = strategy, lock, base, uri_of
        self.name = f"ticketd-{strategy}" + (f"-{lock}" if lock else "")
        where = {"sqlite": "embedded SQLite", "dlockd": "dlockd", "etcd": "etcd"}.get(lock)
        self.label = f"ticketd ({strategy}" + (f", locks: {where}" if where else "") + ")"
        self.event = None

    @property
    def load_args(self):  # sd-load flags only known once the server is up
        return ["--event", str(self.event)]

    def start(self, tmp):
        argv = []
        if self.base is not None:
            if self.base.port is None:
                self.base.start(tmp)
            self.servers = list(self.base.servers)
            argv = ["--lock-uri", self.uri_of(self.base)]
        self.port = free_port()
        exe = os.path.join(self.build, "designs/ticketing/ticketd")
        state = os.path.join(tmp, self.name)
        s = self._spawn(self.name, [
            exe, "--port", str(self.port), "--state-dir", state, "--strategy", self.strategy,
            *argv, "--payment-latency-ms", "0", "--no-seed",
            "--bench-venue", str(TICKETING_BENCH_SEATS)], tmp)
        wait_until(lambda: http_get(self.port, "/healthz")[0] == 200, self.name, s)
        name = f"Bench {TICKETING_BENCH_SEATS} seats"
        events = json.loads(http_get(self.port, "/v1/events", timeout=10)[1])["events"]
        ids = [e["id"] for e in events if e.get("name") == name]
        if not ids:
            raise StartError(f"{self.name}: no event named '{name}' in GET /v1/events")
        self.event = ids[0]
        seats = next(e for e in events if e["id"] == self.event).get("seat_count")
        if seats != TICKETING_BENCH_SEATS:
            raise StartError(f"{self.name}: bench event {self.event} has {seats} seats, "
                             f"expected {TICKETING_BENCH_SEATS}")


class Hello(System):
    name = "sd-hello"
    label = "sd-hello (common/net, 1 thread)"

    def start(self, tmp):
        self.port = free_port()
        exe = os.path.join(self.build, "tools/loadgen/sd-hello")
        s = self._spawn(self.name, [exe, "--port", str(self.port), "--threads", "1"], tmp)
        wait_until(lambda: http_get(self.port, "/hello")[0] == 200, self.name, s)


NGINX_CONF = """\
# Generated by tools/bench: one worker, everything under {tmp}, no access log.
worker_processes 1;
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 65s;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{{"ok":true}}';
        }}
    }}
}}
"""


class Nginx(System):
    name = "nginx"
    label = "nginx (1 worker, return 200)"

    def start(self, tmp):
        self.port = free_port()
        d = os.path.join(tmp, "nginx")
        os.makedirs(d, exist_ok=True)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=d, port=self.port))
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        s = self._spawn(self.name, [exe, "-p", d + "/", "-c", conf], tmp)
        wait_until(lambda: http_get(self.port, "/hello")[0] == 200, self.name, s)
        self.notes.append("keepalive_requests raised to 1000000 (default 1000 closes the "
                          "connection every 1000 requests; sd-hello has no such limit)")


class RedisSet(System):
    """N independent Redis masters (N = 1: the single-instance peer; 5: Redlock's), no
    persistence."""

    def __init__(self, root, n):
        super().__init__(root)
        self.n = n
        self.name = "redis" if n == 1 else f"redis-x{n}"
        self.label = "Redis (single instance)" if n == 1 else f"Redis x{n} (independent)"
        self.ports = []

    def start(self, tmp):
        self.ports = free_ports(self.n)
        exe = shutil.which("redis-server") or "/usr/bin/redis-server"
        for i, port in enumerate(self.ports):
            d = os.path.join(tmp, f"{self.name}-{i}")
            os.makedirs(d, exist_ok=True)
            self._spawn(f"{self.name}-{i}", [
                exe, "--port", str(port), "--bind", LOOPBACK, "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", d], tmp)
        for s, port in zip(self.servers, self.ports):
            wait_until(lambda port=port: resp_ping(port), s.name, s)
        self.port = self.ports[0]


class ClientBackend(System):
    """The dlock client library (sd-load-dlock) on a backend URI over another system's servers,
    which it starts if nobody has yet. Server CPU is that system's."""

    def __init__(self, root, name, label, base, uri_of):
        super().__init__(root)
        self.name, self.label, self.base, self.uri_of = name, label, base, uri_of

    def start(self, tmp):
        if self.base.port is None:  # not in any selected scenario itself: its commands go here
            self.base.start(tmp)
            self.servers = self.base.servers
        self.port = self.base.port

    @property
    def pids(self):
        return self.base.pids

    def alive_all(self):
        return self.base.alive_all()

    @property
    def target(self):
        return self.uri_of(self.base)


def _etcd_healthy(port):
    code, body = http_get(port, "/health")
    return code == 200 and json.loads(body).get("health") == "true"


class Etcd(System):
    """Single node (members=1) or a cluster of `members` on loopback; the load goes to member 0
    (a client talks to one member; a follower forwards writes to the leader)."""

    def __init__(self, root, members):
        super().__init__(root)
        self.members = members
        self.name = "etcd" if members == 1 else f"etcd-{members}node"
        self.label = "etcd (1 node)" if members == 1 else f"etcd ({members}-node cluster)"

    def start(self, tmp):
        ports = free_ports(2 * self.members)
        clients, peers = ports[:self.members], ports[self.members:]
        names = [f"n{i}" for i in range(self.members)]
        cluster = ",".join(f"{n}=http://{LOOPBACK}:{p}" for n, p in zip(names, peers))
        exe = shutil.which("etcd") or "/usr/bin/etcd"
        token = f"sd-bench-{os.getpid()}-{clients[0]}"
        for n, c, p in zip(names, clients, peers):
            d = os.path.join(tmp, f"{self.name}-{n}")
            self._spawn(f"{self.name}-{n}", [
                exe, "--name", n, "--data-dir", d,
                "--listen-client-urls", f"http://{LOOPBACK}:{c}",
                "--advertise-client-urls", f"http://{LOOPBACK}:{c}",
                "--listen-peer-urls", f"http://{LOOPBACK}:{p}",
                "--initial-advertise-peer-urls", f"http://{LOOPBACK}:{p}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new",
                "--initial-cluster-token", token, "--log-level", "warn"], tmp)
        for s, c in zip(self.servers, clients):
            wait_until(lambda c=c: _etcd_healthy(c), s.name, s, timeout=30)
        self.port = clients[0]
        self.client_ports = clients
        if self.members > 1:
            try:
                _, body = http_post(self.port, "/v3/maintenance/status", "{}")
                st = json.loads(body)
                leader = st.get("leader") == st.get("header", {}).get("member_id")
                self.notes.append("load sent to member n0, which is "
                                  + ("the leader" if leader else "a follower (forwards writes)"))
            except Exception:
                pass


def version_of(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0].strip() if text else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def make_systems(root, build_dir="build/release"):
    """{name: System}; binaries come from build_dir (relative to root unless absolute)."""
    systems = _make_systems(root)
    for s in systems.values():
        s.build = os.path.join(root, build_dir)
    return systems


def _make_systems(root):
    dlockd, redis, etcd3 = Dlockd(root, "memory"), RedisSet(root, 1), Etcd(root, 3)
    redis5 = RedisSet(root, 5)
    hosts = lambda ports: ",".join(f"{LOOPBACK}:{p}" for p in ports)  # noqa: E731
    clients = [
        ClientBackend(root, "lib-dlockd", "client → dlockd://", dlockd,
                      lambda b: f"dlockd://{LOOPBACK}:{b.port}"),
        ClientBackend(root, "lib-redis", "client → redis://", redis,
                      lambda b: f"redis://{LOOPBACK}:{b.port}"),
        ClientBackend(root, "lib-redlock", "client → redlock:// (5)", redis5,
                      lambda b: "redlock://" + hosts(b.ports)),
        ClientBackend(root, "lib-etcd", "client → etcd:// (3 nodes)", etcd3,
                      lambda b: "etcd://" + hosts(b.client_ports)),
    ]
    ratelimit = [
        Ratelimitd(root, "memory"), Ratelimitd(root, "redis", redis),
        ClientBackend(root, "redis-tb", "Redis Lua token bucket (direct)", redis,
                      lambda b: f"{LOOPBACK}:{b.port}"),
    ]
    dlockd_sqlite, etcd1 = Dlockd(root, "sqlite"), Etcd(root, 1)
    ticketing = [
        Ticketd(root, "dlock", "sqlite"),
        Ticketd(root, "dlock", "dlockd", dlockd_sqlite,
                lambda b: f"dlockd://{LOOPBACK}:{b.port}"),
        Ticketd(root, "dlock", "etcd", etcd1, lambda b: f"etcd://{LOOPBACK}:{b.port}"),
        Ticketd(root, "conditional"), Ticketd(root, "optimistic"),
    ]
    return {s.name: s for s in [
        Hello(root), Nginx(root), dlockd, dlockd_sqlite, redis, etcd1, etcd3,
        redis5] + clients + ratelimit + ticketing}
