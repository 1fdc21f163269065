"""Child processes for the bench runner: free loopback ports, start/readiness/stop, CPU accounting.

Every server is started in its own session (so a terminal Ctrl-C reaches the runner, which then
stops them in order), registered in a module-level list and stopped by stop_all(), which the
runner calls from try/finally, atexit and its SIGINT/SIGTERM handlers. Only loopback addresses.
"""

import os
import signal
import socket
import subprocess
import time
import urllib.request

LOOPBACK = "127.0.0.1"
_started = []  # Server objects, in start order


class StartError(RuntimeError):
    pass


def free_port():
    """A port that was free on 127.0.0.1 a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def free_ports(n):
    socks, ports = [], []
    try:
        for _ in range(n):  # hold all at once so the kernel hands out distinct ports
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


class Server:
    """One child process (a peer or a project server) with a log file."""

    def __init__(self, name, argv, log_path, cwd=None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.cwd = cwd
        self.proc = None
        self._log = None

    def start(self):
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=self.cwd,
                                     start_new_session=True)
        _started.append(self)
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n=15):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError:
            return ""

    def stop(self, grace=5.0):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
            except ProcessLookupError:
                pass
        if self._log:
            self._log.close()
            self._log = None


def stop_all():
    """Stops every server started so far, newest first. Idempotent."""
    while _started:
        s = _started.pop()
        try:
            s.stop()
        except Exception as e:  # keep stopping the others
            print(f"[bench] warning: stopping {s.name}: {e}", flush=True)


def wait_until(check, what, server=None, timeout=20.0, interval=0.05):
    """Polls check() until it returns truthy; raises StartError with the server's log on timeout
    or when the server exits early."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if server is not None and not server.alive():
            raise StartError(f"{what}: process exited (rc {server.proc.returncode})\n"
                             f"{server.log_tail()}")
        try:
            if check():
                return
        except Exception as e:  # not up yet
            last = e
        time.sleep(interval)
    tail = server.log_tail() if server else ""
    raise StartError(f"{what}: not ready after {timeout:.0f} s ({last})\n{tail}")


def http_get(port, path, timeout=1.0):
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def http_post(port, path, body, timeout=2.0):
    req = urllib.request.Request(f"http://{LOOPBACK}:{port}{path}", data=body.encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, r.read().decode("utf-8", "replace")


def resp_ping(port, timeout=1.0):
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n")
        return s.recv(64).startswith(b"+PONG")


# --- CPU accounting --------------------------------------------------------------------------

_CLK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        data = f.read().decode()
    rest = data[data.rindex(")") + 2:].split()
    # fields after "pid (comm) ": state ppid ... utime(14th overall -> index 11) stime(12)
    return int(rest[1]), (int(rest[11]) + int(rest[12])) / _CLK


def _tree(pids):
    """pids and all their live descendants."""
    parents = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parents[int(d)] = _stat(int(d))[0]
            except (OSError, ValueError, IndexError):
                pass
    out, todo = set(), list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.add(p)
        todo.extend(c for c, pp in parents.items() if pp == p)
    return out


def cpu_seconds(pids):
    """User+system CPU seconds used so far by the given processes and their descendants."""
    total = 0.0
    for p in _tree(pids):
        try:
            total += _stat(p)[1]
        except (OSError, ValueError, IndexError):
            pass
    return total


def children_cpu_seconds():
    """User+system CPU of waited-for children (the sd-load runs): RUSAGE_CHILDREN."""
    import resource
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime
