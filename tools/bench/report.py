"""Turns the runner's raw results into docs/benchmarks.md and SVG charts. Pure: the input is the
results JSON (meta + runs), the output is text; tools/bench/test_report.py tests it on fixed data.

Rounds of the same (scenario, system, connections) are combined by the median (with two rounds:
their mean); each table also lists every round's throughput so drift stays visible."""

import shlex
import statistics

import svg
from scenarios import BOUNDS, LABELS, SCENARIOS, TARGETS, scenario

GEN_BUSY = 0.9  # sd-load cores at or above which the generator may be what limits a run
PCTS = [("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("p999", "p99.9")]


def aggregate(runs):
    """{(scenario, system, connections): summary} over the successful rounds."""
    groups = {}
    for r in runs:
        key = (r["scenario"], r["system"], r["connections"])
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.get("result")]
        s = {"rounds": [r["result"]["throughput_ops_s"] for r in ok],
             "failed": [r.get("failed", "") for r in rs if not r.get("result")]}
        if ok:
            med = lambda f: statistics.median(f(r) for r in ok)  # noqa: E731
            s["throughput"] = med(lambda r: r["result"]["throughput_ops_s"])
            for p, _ in PCTS:
                s[p] = med(lambda r, p=p: r["result"]["latency_us"][p])
            s["max"] = max(r["result"]["latency_us"]["max"] for r in ok)
            for f in ("ops", "ok", "errors", "conflicts", "retries"):
                s[f] = sum(r["result"].get(f, 0) for r in ok)
            s["gen_cores"] = med(lambda r: r["gen_cpu_s"] / r["wall_s"] if r["wall_s"] else 0)
            s["server_cores"] = med(
                lambda r: r["server_cpu_s"] / r["wall_s"] if r["wall_s"] else 0)
            s["errors_sample"] = next((r["result"]["error_samples"][0] for r in ok
                                       if r["result"].get("error_samples")), "")
            _booking_summary(s, ok)
        out[key] = s
    return out


def bookings_per_s(result):
    """Bookings (ok ops: paid) per second of one sd-load result, or None."""
    d = result.get("duration_s")
    return result.get("ok", 0) / d if d else None


def hold_latency(result, p):
    """The hold step's percentile (µs) of one ticketing-book result, or None."""
    return result.get("steps", {}).get("hold", {}).get("latency_us", {}).get(p)


def _booking_summary(s, ok):
    """Ticketing rounds: bookings/s, the hold request's p50/p99 (medians over rounds) and the
    share of attempts that conflicted."""
    results = [r["result"] for r in ok]
    if not all("hold" in r.get("steps", {}) for r in results):
        return
    s["bookings"] = statistics.median(bookings_per_s(r) or 0 for r in results)
    s["booking_rounds"] = [bookings_per_s(r) or 0 for r in results]
    for p in ("p50", "p99"):
        s[f"hold_{p}"] = statistics.median(hold_latency(r, p) for r in results)
    s["conflict_rate"] = s["conflicts"] / s["ops"] if s["ops"] else 0.0


def ratio(agg, sid, ours, peer, conns, metric="throughput"):
    a, b = agg.get((sid, ours, conns), {}), agg.get((sid, peer, conns), {})
    if metric not in a or metric not in b or not b[metric]:
        return None
    return a[metric] / b[metric]


def fmt_ops(v):
    if v is None:
        return "–"
    if v >= 1e6:
        return f"{v / 1e6:.2f} M"
    if v >= 1e4:
        return f"{v / 1e3:.1f} k"
    if v >= 1e3:
        return f"{v / 1e3:.2f} k"
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def fmt_us(v):
    if v is None:
        return "–"
    if v < 1000:
        return f"{v:.0f} µs"
    if v < 1e6:
        return f"{v / 1000:.2f} ms"
    return f"{v / 1e6:.2f} s"


def fmt_ratio(v):
    if v is None:
        return "–"
    return f"{v:.2f}×" if v < 10 else f"{v:.1f}×"


def concurrencies(agg, sid):
    return sorted({c for (s, _, c) in agg if s == sid})


def _cpu_cells(s):
    flag = " ⚠" if s["gen_cores"] >= GEN_BUSY else ""
    return f"{s['gen_cores']:.2f} cores{flag} | {s['server_cores']:.2f} cores"


def booking_table(agg, sc):
    """Ticketing scenarios: bookings/s next to attempts/s, the conflict share and hold latency."""
    sid = sc["id"]
    head = ("| clients | strategy | bookings/s | attempts/s | conflicts | hold p50 | hold p99 | "
            "op p99 | errors | rounds (bookings/s) | sd-load CPU | server CPU |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in concurrencies(agg, sid):
        for system in sc["systems"]:
            s = agg.get((sid, system, c))
            if s is None:
                continue
            name = LABELS.get(system, system)
            if "bookings" not in s:
                why = s["failed"][0][:60] if s["failed"] else "no hold latency in the result"
                lines.append(f"| {c} | {name} | failed: {why} |")
                continue
            rounds = " / ".join(fmt_ops(v) for v in s["booking_rounds"])
            lines.append(f"| {c} | {name} | {fmt_ops(s['bookings'])} | "
                         f"{fmt_ops(s['throughput'])} | {100 * s['conflict_rate']:.1f}% | "
                         f"{fmt_us(s['hold_p50'])} | {fmt_us(s['hold_p99'])} | "
                         f"{fmt_us(s['p99'])} | {s['errors']} | {rounds} | {_cpu_cells(s)} |")
    return "\n".join(lines)


def scenario_table(agg, sc):
    if sc["kind"] == "booking":
        return booking_table(agg, sc)
    sid = sc["id"]
    if sc["kind"] == "latency":
        head = ("| system | clients | handoffs/s | p50 | p90 | p99 | p99.9 | max | errors | "
                "rounds (ops/s) | sd-load CPU | server CPU |")
    else:
        head = ("| clients | system | ops/s | p50 | p99 | p99.9 | errors | conflicts / retries | "
                "rounds (ops/s) | sd-load CPU | server CPU |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for c in concurrencies(agg, sid):
        for system in sc["systems"]:
            s = agg.get((sid, system, c))
            if s is None:
                continue
            name = LABELS.get(system, system)
            if "throughput" not in s:
                lines.append(f"| {c} | {name} | failed: {s['failed'][0][:60]} |" if
                             sc["kind"] != "latency" else f"| {name} | {c} | failed |")
                continue
            rounds = " / ".join(fmt_ops(v) for v in s["rounds"])
            flag = " ⚠" if s["gen_cores"] >= GEN_BUSY else ""
            cpu = f"{s['gen_cores']:.2f} cores{flag} | {s['server_cores']:.2f} cores"
            if sc["kind"] == "latency":
                lines.append(f"| {name} | {c} | {fmt_ops(s['throughput'])} | {fmt_us(s['p50'])} "
                             f"| {fmt_us(s['p90'])} | {fmt_us(s['p99'])} | {fmt_us(s['p999'])} "
                             f"| {fmt_us(s['max'])} | {s['errors']} | {rounds} | {cpu} |")
            else:
                lines.append(f"| {c} | {name} | {fmt_ops(s['throughput'])} | {fmt_us(s['p50'])} "
                             f"| {fmt_us(s['p99'])} | {fmt_us(s['p999'])} | {s['errors']} "
                             f"| {s['conflicts']} / {s['retries']} | {rounds} | {cpu} |")
    return "\n".join(lines)


def ratio_table(agg, sc):
    sid = sc["id"]
    pairs = [(a, b) for a, b in sc["ratios"]
             if any((sid, a, c) in agg and (sid, b, c) in agg for c in concurrencies(agg, sid))]
    if not pairs:
        return ""
    if sc["kind"] == "booking":  # one row per strategy: many strategies, one peer
        concs = concurrencies(agg, sid)
        peer = LABELS[pairs[0][1]]
        head = f"| strategy / {peer} | " + " | ".join(
            f"{m}, {c} clients" for c in concs for m in ("bookings/s", "hold p99")) + " |"
        rows = [f"| {LABELS[a]} | " + " | ".join(
            fmt_ratio(ratio(agg, sid, a, b, c, m)) for c in concs
            for m in ("bookings", "hold_p99")) + " |" for a, b in pairs]
        note = (f"Ratios are strategy / {peer}: bookings/s above 1× books faster; hold p99 "
                "below 1× answers holds faster.")
    elif sc["kind"] == "latency":
        head = "| clients | " + " | ".join(
            f"{LABELS[b]} p{p} / {LABELS[a]} p{p}" for a, b in pairs for p in ("50", "99")) + " |"
        rows = []
        for c in concurrencies(agg, sid):
            cells = [fmt_ratio(ratio(agg, sid, b, a, c, m)) for a, b in pairs
                     for m in ("p50", "p99")]
            rows.append(f"| {c} | " + " | ".join(cells) + " |")
        note = "Latency ratios are peer / ours: above 1× means dlockd hands off faster."
    else:
        head = "| clients | " + " | ".join(f"{LABELS[a]} / {LABELS[b]}" for a, b in pairs) + " |"
        rows = [f"| {c} | " + " | ".join(fmt_ratio(ratio(agg, sid, a, b, c)) for a, b in pairs)
                + " |" for c in concurrencies(agg, sid)]
        note = "Throughput ratios are ours / peer: above 1× means ours is faster."
    return "\n".join([head, "|" + "---|" * (head.count("|") - 1)] + rows) + "\n\n" + note


def evaluate_targets(agg):
    """One row per target and measured pair/system/scenario/concurrency:
    [(target text, scope, measured, met)]; a target with nothing measured gives met None."""
    out = []
    for t in TARGETS:
        rows = []
        for sid in t["scenarios"]:
            sc = scenario(sid)
            if t["kind"] == "ratio":
                concs = [t["concurrency"]] if t["concurrency"] else concurrencies(agg, sid)
                for a, b in t["pairs"]:
                    for c in concs:
                        r = ratio(agg, sid, a, b, c)
                        if r is not None:
                            rows.append((t["text"], f"{sc['short']}, {c} clients: "
                                         f"{LABELS[a]} / {LABELS[b]}", fmt_ratio(r),
                                         r >= t["value"]))
            else:
                for system in t["systems"]:
                    for c in concurrencies(agg, sid):
                        v = agg.get((sid, system, c), {}).get("p99")
                        if v is not None:
                            rows.append((t["text"], f"{sc['short']}: {LABELS[system]}",
                                         f"p99 {fmt_us(v)}", v <= t["value"]))
        out += rows or [(t["text"], "–", "not measured", None)]
    return out


def cpu_per_op_us(agg, sid, system, conns):
    """Server CPU per operation in µs (server cores / ops per s), or None."""
    s = agg.get((sid, system, conns), {})
    if not s.get("throughput"):
        return None
    return s["server_cores"] / s["throughput"] * 1e6


def bounds_table(agg):
    """For each missed ratio target: ours vs the peer in server CPU per op, and what bounds ours."""
    rows = []
    for t in TARGETS:
        if t["kind"] != "ratio":
            continue
        for sid in t["scenarios"]:
            concs = [t["concurrency"]] if t["concurrency"] else concurrencies(agg, sid)
            for a, b in t["pairs"]:
                for c in concs:
                    r = ratio(agg, sid, a, b, c)
                    if r is None or r >= t["value"]:
                        continue
                    ours, peer = cpu_per_op_us(agg, sid, a, c), cpu_per_op_us(agg, sid, b, c)
                    cell = lambda v: "–" if v is None else f"{v:.1f} µs"  # noqa: E731
                    rows.append(f"| {scenario(sid)['short']}, {c} clients: {LABELS[a]} / "
                                f"{LABELS[b]} | {fmt_ratio(r)} | {cell(ours)} | {cell(peer)} |")
    if not rows:
        return ""
    lines = ["| missed | ratio | server CPU per op, ours | server CPU per op, peer |",
             "|---|---|---|---|"] + rows + [""]
    missed = {row.split(": ")[1].split(" / ")[0] for row in rows}
    for system, note in BOUNDS.items():
        if LABELS[system] in missed:
            lines.append(f"- **{LABELS[system]}**: {note}")
    return "\n".join(lines)


def targets_table(agg):
    lines = ["| target | where | measured | verdict |", "|---|---|---|---|"]
    for text, scope, measured, met in evaluate_targets(agg):
        verdict = "not measured" if met is None else ("**met**" if met else "**missed**")
        lines.append(f"| {text} | {scope} | {measured} | {verdict} |")
    return "\n".join(lines)


def svgs(agg):
    """{file name: svg text} for the scenarios present."""
    out = {}
    for sc in SCENARIOS:
        sid = sc["id"]
        concs = concurrencies(agg, sid)
        if not concs:
            continue
        systems = [s for s in sc["systems"] if any((sid, s, c) in agg for c in concs)]
        if sc["kind"] == "latency":
            series = [(LABELS[s], [agg.get((sid, s, concs[0]), {}).get(p) for p, _ in PCTS])
                      for s in systems]
            out[f"bench-{sid}.svg"] = svg.bar_chart(
                "Handoff latency (release sent → grant received), log scale",
                [label for _, label in PCTS], series, "latency", log_y=True, unit_fmt=svg.fmt_us,
                ref=(1000.0, "target: p99 ≤ 1 ms"))
        elif sc["kind"] == "booking":
            series = [(LABELS[s], [agg.get((sid, s, c), {}).get("bookings") for c in concs])
                      for s in systems]
            out[f"bench-{sid}.svg"] = svg.line_chart(
                sc["title"].split(" (")[0], concs, series, "concurrent shoppers (connections)",
                "bookings/s")
        else:
            series = [(LABELS[s], [agg.get((sid, s, c), {}).get("throughput") for c in concs])
                      for s in systems]
            log = sid.startswith(("lock", "lib"))
            out[f"bench-{sid}.svg"] = svg.line_chart(
                sc["title"].split(" (")[0] + (" (log scale)" if log else ""), concs, series,
                "concurrent clients (connections)", "throughput (ops/s)", log_y=log)
    return out


def _machine(meta):
    m, v = meta.get("machine", {}), meta.get("versions", {})
    lines = [f"- CPU: {m.get('cpu', '?')}, {m.get('cores', '?')} cores; memory "
             f"{m.get('memory', '?')}; kernel {m.get('kernel', '?')}; Debian "
             f"{m.get('debian', '?')}",
             "- " + "; ".join(f"{k}: {val}" for k, val in v.items())]
    la0, la1 = meta.get("load_avg_start"), meta.get("load_avg_end")
    if la0:
        lines.append(f"- load average (1/5/15 min) at start {la0[0]:.2f} / {la0[1]:.2f} / "
                     f"{la0[2]:.2f}" + (f", at end {la1[0]:.2f} / {la1[1]:.2f} / {la1[2]:.2f}"
                                        if la1 else ""))
        if la0[0] > 1.5:
            lines.append("- **The machine was shared**: load average above 1.5 at the start "
                         "(other builds were running), so every system got less than its "
                         "cores; absolute numbers are lower bounds and ratios are noisier.")
    return "\n".join(lines)


ALGORITHMS = ["token_bucket", "leaky_bucket", "leaky_queue", "fixed_window", "sliding_log",
              "sliding_window", "gcra"]


def _ns(v):
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def micro_rate_limiter(m):
    """Markdown for the rate limiter's in-process numbers (Google Benchmark + accuracy tool)."""
    out = ["## Rate limiter: the algorithms in-process", ""]
    bench = {b["name"]: b for b in m.get("gbench", [])}
    if bench:
        out += ["Google Benchmark (`" + shlex.join(m["gbench_cmd"]) + "`), CPU time per "
                "decision in one thread: one hot key (at twice its limit, so about half the "
                "decisions deny), and keys round-robin over 100 k / 1 M keys (cache misses "
                "dominate). Bytes/key: the limiter's own accounting of its hash map (node, key "
                "string, state) after filling 1 M keys; the sliding log also with 100 entries "
                "per key.", "",
                "| Algorithm | hot key (ns) | 100 k keys (ns) | 1 M keys (ns) | bytes/key | "
                "bytes/key at 100 entries |", "|---|---:|---:|---:|---:|---:|"]
        for a in ALGORITHMS:
            def get(name, field="cpu_time"):
                return bench.get(name, {}).get(field)
            cells = [get(f"HotKey/{a}"), get(f"ManyKeys/{a}/100000"),
                     get(f"ManyKeys/{a}/1000000"),
                     get(f"ManyKeys/{a}/1000000", "bytes_per_key"),
                     get(f"BytesPerKey/{a}/100/iterations:1", "bytes_per_key")]
            out.append(f"| {a} | " + " | ".join("–" if c is None else _ns(c) for c in cells)
                       + " |")
        out.append("")
    elif m.get("gbench_failed"):
        out += [f"Google Benchmark failed: `{m['gbench_failed']}`", ""]
    acc = m.get("accuracy")
    if acc:
        out += ["### Sliding-window counter vs the exact sliding log", "",
                f"`{shlex.join(m['accuracy_cmd'])}`: the same seeded traces "
                f"({acc['shapes'][0]['requests']:,} requests each, limit {acc['limit']} per "
                f"{acc['period_us'] / 1e6:g} s) through both algorithms. *Differ*: decisions where "
                "the counter's answer is not the log's; *over* / *under*: the counter admits what "
                "the log denies / denies what it admits; *max in a trailing period*: the most "
                "admissions inside any sliding window of one period (the log's is the limit by "
                "definition).", "",
                "| Traffic | differ | over | under | max in a trailing period: counter | log |",
                "|---|---:|---:|---:|---:|---:|"]
        for sh in acc["shapes"]:
            out.append(f"| {sh['shape']} | {sh['differ_pct']:.1f}% | "
                       f"{sh['over_admitted_pct']:.1f}% | {sh['under_admitted_pct']:.1f}% | "
                       f"{sh['max_in_trailing_period_counter']} | "
                       f"{sh['max_in_trailing_period_log']} |")
        out.append("")
    return "\n".join(out)


def render_markdown(results, svg_names):
    meta, runs = results["meta"], results["runs"]
    agg = aggregate(runs)
    mode = meta.get("mode", "full")
    out = ["# Benchmarks", "",
           "Generated by `./sd bench` (tools/bench/run_bench.py) — do not edit by hand; rerun "
           "instead. Every system runs on this machine on loopback, started by the runner on "
           "free ports with its data in a temporary directory, and stopped afterwards. The load "
           "generator is the project's `sd-load` (tools/loadgen), one engine thread, closed loop.",
           "",
           f"Run: **{mode}** (`{meta.get('command', './sd bench')}`), {meta.get('started', '?')}, "
           f"{meta.get('elapsed_s', 0):.0f} s in total; {meta.get('duration_s')} s measured after "
           f"{meta.get('warmup_s')} s warm-up per run, {meta.get('rounds')} round(s), systems "
           "alternated within each round (A B C … A B C …) so drift hits all of them; tables "
           "show the median over rounds (two rounds: the mean) and every round's throughput.",
           "", "## Machine", "", _machine(meta), "",
           "`sd-load CPU` / `server CPU` are the cores each side used during its runs "
           "(getrusage(RUSAGE_CHILDREN) deltas for sd-load, /proc CPU time for the server's "
           "processes, over the run's wall time, warm-up included). Both share the same 2 cores: "
           "when the two add up to about 2, the machine, not one side, is the limit. ⚠ marks "
           f"runs where sd-load (one engine thread) used ≥ {GEN_BUSY} of a core: there the "
           "generator may be what bounds the throughput, for both systems alike.", "",
           "## Targets (issue 3)", "",
           "Judged as measured, one row per store, peer and scenario; nothing was tuned to them.",
           "", targets_table(agg), ""]
    bounds = bounds_table(agg)
    if bounds:
        out += ["### What bounds the missed ones", "",
                "Server CPU per op = the server's CPU time / operations, from the same runs.", "",
                bounds, ""]
    for sc in SCENARIOS:
        if not concurrencies(agg, sc["id"]):
            continue
        out += [f"## {sc['title']}", "", sc["what"], ""]
        name = f"bench-{sc['id']}.svg"
        if name in svg_names:
            out += [f"![{sc['id']}]({name})", ""]
        out += [scenario_table(agg, sc), ""]
        rt = ratio_table(agg, sc)
        if rt:
            out += [rt, ""]
        samples = [(LABELS[s], agg[(sc["id"], s, c)]["errors_sample"])
                   for (sid, s, c) in agg if sid == sc["id"] and agg[(sid, s, c)].get("errors")]
        for label, sample in samples[:4]:
            out.append(f"- errors from {label}: `{sample[:160]}`")
        if samples:
            out.append("")
    micro = meta.get("micro", {})
    if micro.get("rate-limiter"):
        out += [micro_rate_limiter(micro["rate-limiter"]), ""]
    notes = meta.get("notes", {})
    if any(notes.values()):
        out += ["## Notes on the systems", ""]
        out += [f"- {LABELS.get(k, k)}: {n}" for k, ns in notes.items() for n in ns]
        out.append("")
    out += ["## Exact commands", "", "Servers (ports picked free at start; `TMP` is the run's "
            "temporary directory):", "", "```sh"]
    out += [shlex.join(argv) for argvs in meta.get("servers", {}).values() for argv in argvs]
    out += ["```", "", "Load (round 1 of each scenario; later rounds are identical):", "",
            "```sh"]
    out += [shlex.join(r["cmd"]) for r in runs if r["round"] == 1]
    out += ["```", "", f"Raw results: [bench-results/{mode}.json](bench-results/{mode}.json).",
            ""]
    return "\n".join(out)


__all__ = ["aggregate", "ratio", "scenario_table", "booking_table", "ratio_table",
           "evaluate_targets", "svgs", "render_markdown", "targets_table", "bookings_per_s",
           "hold_latency"]
