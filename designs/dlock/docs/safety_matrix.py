#!/usr/bin/env python3
"""Runs the safety lab's results matrix for docs/safety.md: every backend x applicable fault,
fencing off and on, N seeds, and prints the markdown table (counts summed over the seeds).

  python3 designs/dlock/docs/safety_matrix.py --dlock build/release/designs/dlock/dlock \
      --out var/lab/matrix --seeds 3 --duration 15s --jobs 2

Each run is one `dlock lab` command (printed in the table's command column); its verdicts come
from DIR/verdicts.json, its write counts from DIR/history.jsonl.
"""
import argparse
import concurrent.futures
import json
import os
import subprocess
import sys

CELLS = [  # (backend, fault, extra flags, label)
    ("dlockd", "pause", [], "pause"),
    ("dlockd", "crash", [], "crash"),
    ("dlockd", "partition", [], "partition"),
    ("redis", "pause", [], "pause"),
    ("redis", "crash", [], "crash (no persistence)"),
    ("redis", "crash", ["--redis-persistence", "on"], "crash (AOF fsync always)"),
    ("redis", "clock", [], "clock"),
    ("redis", "partition", [], "partition"),
    ("redlock", "pause", [], "pause"),
    ("redlock", "crash", [], "crash (no persistence)"),
    ("redlock", "crash", ["--redis-persistence", "on"], "crash (AOF fsync always)"),
    ("redlock", "crash", ["--crash-servers", "3"], "crash 3 of 5 at once (no persistence)"),
    ("redlock", "crash", ["--crash-servers", "3", "--redis-persistence", "on"],
     "crash 3 of 5 at once (AOF fsync always)"),
    ("redlock", "clock", [], "clock"),
    ("redlock", "partition", [], "partition"),
    ("etcd", "pause", [], "pause"),
    ("etcd", "crash", [], "crash (a member)"),
    ("etcd", "leader", [], "leader"),
    ("etcd", "partition", [], "partition"),
]


def command(dlock, backend, fault, extra, seed, fenced, args, out):
    cmd = [dlock, "lab", "--backend", backend, "--faults", fault, "--clients", str(args.clients),
           "--duration", args.duration, "--ttl", args.ttl, "--work", args.work,
           "--seed", str(seed)] + extra
    if not fenced:
        cmd.append("--no-fencing")
    if backend == "dlockd" and args.dlockd_bin:
        cmd += ["--dlockd-bin", args.dlockd_bin]
    return cmd + ["--out", out]


def run_one(job):
    cmd, out = job
    with open(out + ".log", "w") as log:
        rc = subprocess.call(cmd, stdout=log, stderr=subprocess.STDOUT)
    res = {"rc": rc, "rules": {}, "accepted": 0, "rejected": 0, "faults": 0}
    try:
        v = json.load(open(os.path.join(out, "verdicts.json")))
        for r in v["rules"]:
            res["rules"][r["rule"]] = (r["verdict"], len(r.get("violations", [])))
        for line in open(os.path.join(out, "history.jsonl")):
            e = json.loads(line)
            if e["process"] == "resource" and e["f"] == "write":
                res["accepted" if e["type"] == "ok" else "rejected"] += e["type"] in ("ok", "fail")
            if e["process"] == "nemesis" and e["f"] in ("pause", "kill", "clock-jump", "partition"):
                res["faults"] += 1
    except (OSError, ValueError, KeyError) as err:
        res["error"] = str(err)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dlock", required=True)
    ap.add_argument("--out", default="var/lab/matrix")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--duration", default="15s")
    ap.add_argument("--ttl", default="1s")
    ap.add_argument("--work", default="400ms")
    ap.add_argument("--clients", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--dlockd-bin", default="", help="dlockd to use (default: next to dlock)")
    ap.add_argument("--backends", default="dlockd,redis,redlock,etcd")
    ap.add_argument("--only", default="", help="only cells whose 'backend label' contains this")
    args = ap.parse_args()
    backends = args.backends.split(",")

    def wanted(backend, label):
        return backend in backends and args.only in backend + " " + label

    os.makedirs(args.out, exist_ok=True)
    jobs, keys = [], []
    for (backend, fault, extra, label) in CELLS:
        if not wanted(backend, label):
            continue
        for fenced in (False, True):
            for seed in range(1, args.seeds + 1):
                tag = "%s-%s%s-%s-s%d" % (backend, fault, "".join(x.strip("-")[:5] for x in extra),
                                          "fenced" if fenced else "unfenced", seed)
                out = os.path.join(args.out, tag)
                jobs.append((command(args.dlock, backend, fault, extra, seed, fenced, args, out), out))
                keys.append((backend, label, fenced, seed))
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        results = list(ex.map(run_one, jobs))
    table = {}
    for key, res, job in zip(keys, results, jobs):
        table.setdefault(key[:3], []).append((key[3], res, job[0]))
    json.dump({"|".join(map(str, k)): [(s, r) for s, r, _ in v] for k, v in table.items()},
              open(os.path.join(args.out, "matrix.json"), "w"), indent=1)

    def cell(runs):
        me = sum(r["rules"].get("mutual-exclusion", ("", 0))[1] for _, r, _ in runs)
        me_runs = sum(r["rules"].get("mutual-exclusion", ("",))[0] == "violated" for _, r, _ in runs)
        fen = sum(r["rules"].get("fencing", ("", 0))[1] for _, r, _ in runs)
        lu = sum(r["rules"].get("lost-update", ("", 0))[1] for _, r, _ in runs)
        lin = sum(r["rules"].get("linearizable", ("",))[0] == "violated" for _, r, _ in runs)
        acc = sum(r["accepted"] for _, r, _ in runs)
        rej = sum(r["rejected"] for _, r, _ in runs)
        faults = sum(r["faults"] for _, r, _ in runs)
        errs = sum("error" in r for _, r, _ in runs)
        return me, me_runs, fen, lu, lin, acc, rej, faults, errs

    n = args.seeds
    print("| backend | fault | fencing | runs with an overlap | overlaps | stale writes accepted "
          "| lost updates | runs not linearizable | writes accepted / rejected | faults |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for (backend, fault, extra, label) in CELLS:
        if not wanted(backend, label):
            continue
        for fenced in (False, True):
            runs = table[(backend, label, fenced)]
            me, me_runs, fen, lu, lin, acc, rej, faults, errs = cell(runs)
            print("| %s | %s | %s | %d/%d | %d | %d | %d | %d/%d | %d / %d | %d |%s" % (
                backend, label, "on" if fenced else "off", me_runs, n, me, fen, lu, lin, n, acc,
                rej, faults, " (%d runs without verdicts)" % errs if errs else ""))
    print()
    print("Commands (seed S = 1..%d):" % n)
    for (backend, fault, extra, label) in CELLS:
        if not wanted(backend, label):
            continue
        cmd = command("dlock", backend, fault, extra, "S", False, args, "DIR")
        print("    " + " ".join(cmd[:-2]).replace(" --no-fencing", " [--no-fencing]"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
