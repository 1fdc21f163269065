#!/usr/bin/env python3
"""Bench runner: starts the project's servers and their peers on loopback, drives each scenario
with sd-load for every system in alternation, always stops everything, and writes the report.

  python3 tools/bench/run_bench.py [core] [dlock] [rate-limiter] [ticketing] [--quick] [--out DIR]
                                   [--build-dir DIR]

`./sd bench` installs the packages, builds Release and runs this. Full runs write
docs/benchmarks.md, docs/bench-*.svg and docs/bench-results/full.json; --quick runs (a check
that everything works, ~2 minutes) write the same files under build/bench-quick/ unless --out is
given. Stdlib only.
"""

import argparse
import atexit
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import procs  # noqa: E402
import report  # noqa: E402
import scenarios  # noqa: E402
from systems import make_systems, version_of  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
BUILD_DIR = "build/release"  # --build-dir: where every binary comes from (relative to ROOT)
SD_LOAD = os.path.join(ROOT, BUILD_DIR, "tools/loadgen/sd-load")
SD_LOAD_DLOCK = os.path.join(ROOT, BUILD_DIR, "tools/loadgen/sd-load-dlock")
DESIGNS = ("core", "dlock", "rate-limiter", "ticketing")

# In-process benchmarks per design (Google Benchmark JSON, and the accuracy tool's JSON), run
# before the services so they see a quiet machine.
MICRO = {
    "rate-limiter": {
        "gbench": "designs/rate-limiter/ratelimit_algorithms_bench",
        "accuracy": "designs/rate-limiter/ratelimit-accuracy",
    },
}


def run_micro(design, quick):
    m = MICRO[design]
    out = {}
    gb = os.path.join(ROOT, BUILD_DIR, m["gbench"])
    cmd = [gb, "--benchmark_format=json", f"--benchmark_min_time={0.05 if quick else 0.5}"]
    log(f"{design}: {os.path.relpath(gb, ROOT)}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    out["gbench_cmd"] = [os.path.relpath(gb, ROOT)] + cmd[1:]
    if p.returncode == 0:
        out["gbench"] = json.loads(p.stdout).get("benchmarks", [])
    else:
        out["gbench_failed"] = p.stderr.strip()[:300]
    acc = os.path.join(ROOT, BUILD_DIR, m["accuracy"])
    p = subprocess.run([acc, "--seed", "1"], capture_output=True, text=True, timeout=600)
    out["accuracy_cmd"] = [os.path.relpath(acc, ROOT), "--seed", "1"]
    if p.returncode == 0:
        out["accuracy"] = json.loads(p.stdout)
    else:
        out["accuracy_failed"] = p.stderr.strip()[:300]
    return out


def log(msg):
    print(f"[bench] {msg}", flush=True)


def machine_info():
    def cmd(argv):
        try:
            return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cmd(["lscpu"]).splitlines()
                if ln.startswith("Model name")), platform.processor() or "?")
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(ln for ln in f if ln.startswith("MemTotal")).split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    try:
        with open("/etc/debian_version") as f:
            debian = f.read().strip()
    except OSError:
        debian = "?"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": mem, "kernel": platform.release(),
            "debian": debian}


def versions():
    def etcd():
        v = version_of(["etcd", "--version"])
        return v.replace("etcd Version: ", "")
    return {"redis": version_of(["redis-server", "--version"]).split(" sha=")[0],
            "etcd": etcd(), "nginx": version_of(["nginx", "-v"]).replace("nginx version: ", ""),
            "gcc": version_of(["gcc", "--version"]), "python": platform.python_version()}


def trim(result):
    result = dict(result)
    result["error_samples"] = result.get("error_samples", [])[:3]
    return result


def run_one(sc, system, conns, rnd, dur, warmup):
    d = dur * sc.get("duration_factor", 1.0)
    if sc.get("tool") == "sd-load-dlock":
        cmd = [SD_LOAD_DLOCK, "-b", system.target, "-c", str(conns)]
    else:
        cmd = [SD_LOAD, "-w", sc["workload"][system.name], "-t", system.target, "-c", str(conns),
               "-T", "1"]
    cmd += ["-d", f"{d:g}", "--warmup", f"{warmup:g}", "--seed", "1", "-q"]
    cmd += sc["args"](system.name) + system.load_args
    c0, s0, t0 = procs.children_cpu_seconds(), procs.cpu_seconds(system.pids), time.monotonic()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=d + warmup + 90)
    wall = time.monotonic() - t0
    rec = {"scenario": sc["id"], "system": system.name, "connections": conns, "round": rnd,
           "cmd": [os.path.relpath(cmd[0], ROOT)] + cmd[1:], "wall_s": round(wall, 3),
           "gen_cpu_s": round(procs.children_cpu_seconds() - c0, 3),
           "server_cpu_s": round(procs.cpu_seconds(system.pids) - s0, 3)}
    if p.returncode == 0:
        try:
            rec["result"] = trim(json.loads(p.stdout))
        except json.JSONDecodeError:
            rec["failed"] = "unparsable output: " + p.stdout[:200]
    else:
        rec["failed"] = f"{os.path.basename(cmd[0])} exit {p.returncode}: {p.stderr.strip()[:300]}"
    return rec


def progress_line(i, n, rec, rounds):
    head = (f"[{i:>3}/{n}] {rec['scenario']:<16} c={rec['connections']:<3} "
            f"round {rec['round']}/{rounds} {rec['system']:<20}")
    if "result" not in rec:
        return f"{head} FAILED {rec['failed']}"
    r = rec["result"]
    if report.hold_latency(r, "p99") is not None:  # ticketing: bookings and the hold's latency
        return (f"{head} {report.fmt_ops(report.bookings_per_s(r)):>9} bookings/s "
                f"({report.fmt_ops(r['throughput_ops_s'])} attempts/s, "
                f"{r['conflicts']} conflicts)  hold p99 "
                f"{report.fmt_us(report.hold_latency(r, 'p99'))}  errors {r['errors']}  "
                f"(sd-load {rec['gen_cpu_s'] / rec['wall_s']:.2f} cores, server "
                f"{rec['server_cpu_s'] / rec['wall_s']:.2f})")
    return (f"{head} {report.fmt_ops(r['throughput_ops_s']):>9} ops/s  p99 "
            f"{report.fmt_us(r['latency_us']['p99']):>9}  errors {r['errors']}  "
            f"(sd-load {rec['gen_cpu_s'] / rec['wall_s']:.2f} cores, server "
            f"{rec['server_cpu_s'] / rec['wall_s']:.2f})")


def write_outputs(out_dir, mode, results):
    os.makedirs(os.path.join(out_dir, "bench-results"), exist_ok=True)
    path = os.path.join(out_dir, "bench-results", f"{mode}.json")
    old = None
    if os.path.exists(path):  # a partial run (one design) keeps the other designs' results
        try:
            with open(path) as f:
                old = json.load(f)
        except (OSError, json.JSONDecodeError):
            old = None
    if old:
        ran = {r["scenario"] for r in results["runs"]}
        results["runs"] = [r for r in old.get("runs", []) if r["scenario"] not in ran] + \
            results["runs"]
        for k in ("servers", "notes", "micro"):
            results["meta"][k] = {**old["meta"].get(k, {}), **results["meta"][k]}
    with open(path, "w") as f:
        json.dump(results, f, indent=1, sort_keys=True)
    return render(out_dir, results)


def render(out_dir, results):
    agg = report.aggregate(results["runs"])
    charts = report.svgs(agg)
    for name, text in charts.items():
        with open(os.path.join(out_dir, name), "w") as f:
            f.write(text)
    with open(os.path.join(out_dir, "benchmarks.md"), "w") as f:
        f.write(report.render_markdown(results, set(charts)))
    return os.path.join(out_dir, "benchmarks.md")


def _on_signal(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None):
    global BUILD_DIR, SD_LOAD, SD_LOAD_DLOCK
    ap = argparse.ArgumentParser(description="Run the benchmark scenarios and write the report.")
    ap.add_argument("designs", nargs="*", metavar="design",
                    help="core (HTTP), dlock, rate-limiter, ticketing; default: all")
    ap.add_argument("--quick", action="store_true", help="short runs, 1 round (< 3 minutes)")
    ap.add_argument("--duration", type=float, help="measured seconds per run (5; quick 2)")
    ap.add_argument("--warmup", type=float, help="warm-up seconds per run (1; quick 0.5)")
    ap.add_argument("--rounds", type=int, help="rounds per scenario (2; quick 1)")
    ap.add_argument("--out", help="output directory (default docs/, quick: build/bench-quick/)")
    ap.add_argument("--build-dir", default=BUILD_DIR,
                    help="the build tree to take every binary from, relative to the repository "
                         "(default build/release, what ./sd bench builds)")
    ap.add_argument("--render-only", action="store_true",
                    help="run nothing: re-render the report from OUT/bench-results/MODE.json")
    a = ap.parse_args(argv)
    for d in a.designs:
        if d not in DESIGNS:
            ap.error(f"unknown design '{d}' (available: {', '.join(DESIGNS)})")
    mode = "quick" if a.quick else "full"
    dur = a.duration or (2.0 if a.quick else 5.0)
    warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 1.0)
    rounds = a.rounds or (1 if a.quick else 2)
    out_dir = os.path.abspath(a.out or os.path.join(ROOT, "build/bench-quick" if a.quick
                                                     else "docs"))
    selected = scenarios.select(a.designs)
    if a.render_only:
        with open(os.path.join(out_dir, "bench-results", f"{mode}.json")) as f:
            log("wrote " + render(out_dir, json.load(f)))
        return 0
    BUILD_DIR = a.build_dir
    SD_LOAD = os.path.join(ROOT, BUILD_DIR, "tools/loadgen/sd-load")
    SD_LOAD_DLOCK = os.path.join(ROOT, BUILD_DIR, "tools/loadgen/sd-load-dlock")
    if not os.access(SD_LOAD, os.X_OK):
        sys.exit(f"[bench] {SD_LOAD} is missing: build Release first (./sd build release)")

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGHUP, _on_signal)
    atexit.register(procs.stop_all)
    tmp = tempfile.mkdtemp(prefix="sd-bench-")
    t_start = time.monotonic()
    meta = {"mode": mode, "command": "./sd bench " + " ".join(
        (a.designs or []) + (["--quick"] if a.quick else [])),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "duration_s": dur,
        "warmup_s": warmup, "rounds": rounds, "machine": machine_info(),
        "versions": versions(), "load_avg_start": list(os.getloadavg()), "servers": {},
        "notes": {}, "micro": {}}
    meta["command"] = meta["command"].replace("bench  ", "bench ").strip()
    log(f"{mode} run: {len(selected)} scenario(s), {dur:g} s + {warmup:g} s warm-up per run, "
        f"{rounds} round(s); load average {meta['load_avg_start'][0]:.2f}; tmp {tmp}")
    runs = []
    try:
        for design in MICRO:
            if not a.designs or design in a.designs:
                meta["micro"][design] = run_micro(design, a.quick)
        systems = make_systems(ROOT, BUILD_DIR)
        needed = [n for n in systems if any(n in sc["systems"] for sc in selected)]
        for name in needed:
            t0 = time.monotonic()
            systems[name].start(tmp)
            meta["servers"][name] = [
                [x.replace(tmp, "TMP").replace(ROOT + "/", "") for x in s.argv]
                for s in systems[name].servers]
            meta["notes"][name] = systems[name].notes
            log(f"started {name} on {systems[name].target} ({time.monotonic() - t0:.1f} s)")
        plan = [(sc, c, r, systems[s]) for sc in selected
                for c in (sc["quick_concurrency"] if a.quick else sc["concurrency"])
                for r in range(1, rounds + 1) for s in sc["systems"]]
        for i, (sc, c, r, system) in enumerate(plan, 1):
            if not system.alive_all():
                raise procs.StartError(f"{system.name} died during the run")
            rec = run_one(sc, system, c, r, dur, warmup)
            runs.append(rec)
            print(progress_line(i, len(plan), rec, rounds), flush=True)
    except KeyboardInterrupt:
        log("interrupted: stopping every server")
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        return 130
    except procs.StartError as e:
        log(f"error: {e}")
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
        return 1
    finally:
        procs.stop_all()
    shutil.rmtree(tmp, ignore_errors=True)
    meta["load_avg_end"] = list(os.getloadavg())
    meta["elapsed_s"] = round(time.monotonic() - t_start, 1)
    path = write_outputs(out_dir, mode, {"meta": meta, "runs": runs})
    failed = [r for r in runs if "result" not in r]
    log(f"done in {meta['elapsed_s']:.0f} s: {len(runs)} runs, {len(failed)} failed; "
        f"report {os.path.relpath(path, os.getcwd())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
