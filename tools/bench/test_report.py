"""Unit tests for the bench runner's pure parts: aggregation, ratios, targets, tables, SVG.
Run: python3 -m unittest discover -s tools/bench -p 'test_*.py'  (CTest: bench_report_py)."""

import os
import sys
import unittest
import xml.dom.minidom

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import report  # noqa: E402
import svg  # noqa: E402
from scenarios import scenario  # noqa: E402


def run(sid, system, conns, rnd, ops, p50=100.0, p99=500.0, errors=0, gen=1.0, srv=2.0):
    return {"scenario": sid, "system": system, "connections": conns, "round": rnd,
            "cmd": ["build/release/tools/loadgen/sd-load", "-w", "x", "-c", str(conns)],
            "wall_s": 4.0, "gen_cpu_s": gen, "server_cpu_s": srv,
            "result": {"throughput_ops_s": ops, "ops": int(ops), "ok": int(ops) - errors,
                       "errors": errors, "conflicts": 0, "retries": 3,
                       "error_samples": ["boom"] if errors else [],
                       "latency_us": {"p50": p50, "p90": p50 * 2, "p99": p99, "p999": p99 * 2,
                                      "max": p99 * 4, "mean": p50}}}


def fixture():
    runs = [
        run("http", "sd-hello", 16, 1, 90000), run("http", "nginx", 16, 1, 100000),
        run("http", "sd-hello", 16, 2, 94000), run("http", "nginx", 16, 2, 100000),
        run("lock-uncontended", "dlockd-memory", 16, 1, 30000),
        run("lock-uncontended", "redis", 16, 1, 20000),
        run("lock-uncontended", "etcd", 16, 1, 1500, errors=2),
        run("handoff", "dlockd-memory", 2, 1, 190, p50=120, p99=800),
        run("handoff", "dlockd-sqlite", 2, 1, 180, p50=200, p99=1500),
        run("handoff", "redis", 2, 1, 18, p50=25000, p99=49000),
    ]
    meta = {"mode": "full", "command": "./sd bench", "started": "2024-01-01 00:00:00 UTC",
            "elapsed_s": 600, "duration_s": 5, "warmup_s": 1, "rounds": 2,
            "machine": {"cpu": "Test CPU", "cores": 2, "memory": "24 GiB", "kernel": "6.1",
                        "debian": "12.5"},
            "versions": {"redis": "7.0.15"}, "load_avg_start": [2.0, 1.0, 1.0],
            "load_avg_end": [1.0, 1.0, 1.0],
            "servers": {"redis": [["redis-server", "--port", "1234", "--save", ""]]},
            "notes": {"nginx": ["keepalive_requests raised"]}}
    return {"meta": meta, "runs": runs}


class AggregateTest(unittest.TestCase):
    def test_median_over_rounds_and_sums(self):
        agg = report.aggregate(fixture()["runs"])
        s = agg[("http", "sd-hello", 16)]
        self.assertEqual(s["throughput"], 92000)  # median of two rounds = their mean
        self.assertEqual(s["rounds"], [90000, 94000])
        self.assertEqual(s["retries"], 6)
        self.assertAlmostEqual(s["gen_cores"], 0.25)
        self.assertAlmostEqual(s["server_cores"], 0.5)

    def test_failed_round_is_kept_apart(self):
        runs = [run("http", "nginx", 16, 1, 100.0),
                {"scenario": "http", "system": "nginx", "connections": 16, "round": 2,
                 "cmd": [], "wall_s": 1, "gen_cpu_s": 0, "server_cpu_s": 0, "failed": "x"}]
        s = report.aggregate(runs)[("http", "nginx", 16)]
        self.assertEqual(s["throughput"], 100.0)
        self.assertEqual(s["failed"], ["x"])


class RatioTest(unittest.TestCase):
    def test_ratios(self):
        agg = report.aggregate(fixture()["runs"])
        self.assertAlmostEqual(report.ratio(agg, "http", "sd-hello", "nginx", 16), 0.92)
        self.assertAlmostEqual(report.ratio(agg, "lock-uncontended", "dlockd-memory", "etcd",
                                            16), 20.0)
        self.assertIsNone(report.ratio(agg, "lock-uncontended", "dlockd-sqlite", "redis", 16))
        self.assertAlmostEqual(report.ratio(agg, "handoff", "redis", "dlockd-memory", 2, "p99"),
                               49000 / 800)

    def test_formatting(self):
        self.assertEqual(report.fmt_ops(92000), "92.0 k")
        self.assertEqual(report.fmt_ops(1500), "1.50 k")
        self.assertEqual(report.fmt_ops(18), "18")
        self.assertEqual(report.fmt_us(800), "800 µs")
        self.assertEqual(report.fmt_us(49000), "49.00 ms")
        self.assertEqual(report.fmt_us(2.5e6), "2.50 s")
        self.assertEqual(report.fmt_ratio(0.92), "0.92×")
        self.assertEqual(report.fmt_ratio(20.0), "20.0×")
        self.assertEqual(report.fmt_ratio(None), "–")


class TargetsTest(unittest.TestCase):
    def test_verdicts(self):
        rows = report.evaluate_targets(report.aggregate(fixture()["runs"]))
        got = {(text, scope): met for text, scope, _, met in rows}
        self.assertTrue(got[("dlockd lock cycles ≥ 1.0× Redis at 16 clients",
                             "uncontended, 16 clients: dlockd (memory) / Redis")])
        self.assertTrue(got[("dlockd lock cycles ≥ 10× etcd at 16 clients",
                             "uncontended, 16 clients: dlockd (memory) / etcd 1 node")])
        self.assertTrue(got[("HTTP core ≥ 0.9× nginx", "HTTP, 16 clients: sd-hello / nginx")])
        self.assertTrue(got[("handoff p99 ≤ 1 ms", "handoff: dlockd (memory)")])
        self.assertFalse(got[("handoff p99 ≤ 1 ms", "handoff: dlockd (SQLite)")])

    def test_missed_ratio_and_unmeasured(self):
        runs = [run("http", "sd-hello", 64, 1, 80.0), run("http", "nginx", 64, 1, 100.0)]
        rows = report.evaluate_targets(report.aggregate(runs))
        http = [r for r in rows if r[0].startswith("HTTP")]
        self.assertEqual(http, [("HTTP core ≥ 0.9× nginx", "HTTP, 64 clients: sd-hello / nginx",
                                 "0.80×", False)])
        handoff = [r for r in rows if r[0].startswith("handoff")]
        self.assertEqual(handoff[0][3], None)


class TableTest(unittest.TestCase):
    def test_bounds_of_missed_targets(self):
        runs = [run("lock-uncontended", "dlockd-memory", 16, 1, 20000, srv=2.0),
                run("lock-uncontended", "redis", 16, 1, 40000, srv=2.0),
                run("lock-contended", "dlockd-memory", 16, 1, 50000),
                run("lock-contended", "redis", 16, 1, 40000)]
        text = report.bounds_table(report.aggregate(runs))
        # Only the missed pair is listed, with CPU per op = (2 s / 4 s wall) / ops/s.
        self.assertIn("| uncontended, 16 clients: dlockd (memory) / Redis | 0.50× | 25.0 µs "
                      "| 12.5 µs |", text)
        self.assertNotIn("contended, 16 clients", text.replace("uncontended, 16", ""))
        self.assertIn("**dlockd (memory)**", text)
        self.assertNotIn("**dlockd (SQLite)**", text)
        met = [run("lock-uncontended", "dlockd-memory", 16, 1, 50000),
               run("lock-uncontended", "redis", 16, 1, 40000)]
        self.assertEqual(report.bounds_table(report.aggregate(met)), "")

    def test_scenario_and_ratio_tables(self):
        agg = report.aggregate(fixture()["runs"])
        t = report.scenario_table(agg, scenario("http")).splitlines()
        self.assertTrue(t[0].startswith("| clients | system | ops/s |"))
        self.assertIn("| 16 | sd-hello | 92.0 k | 100 µs | 500 µs | 1.00 ms | 0 | 0 / 6 | "
                      "90.0 k / 94.0 k | 0.25 cores | 0.50 cores |", t)
        self.assertEqual(len({len(line.split("|")) for line in t}), 1)  # columns line up
        r = report.ratio_table(agg, scenario("http"))
        self.assertIn("| 16 | 0.92× |", r)
        h = report.ratio_table(agg, scenario("handoff"))
        self.assertIn("Redis p99 / dlockd (memory) p99", h)
        self.assertIn("61.2×", h)

    def test_generator_saturation_is_flagged(self):
        agg = report.aggregate([run("http", "nginx", 16, 1, 100.0, gen=3.8)])
        self.assertIn("0.95 cores ⚠", report.scenario_table(agg, scenario("http")))

    def test_markdown(self):
        res = fixture()
        charts = report.svgs(report.aggregate(res["runs"]))
        md = report.render_markdown(res, set(charts))
        self.assertIn("CPU: Test CPU, 2 cores", md)
        self.assertIn("**The machine was shared**", md)
        self.assertIn("![http](bench-http.svg)", md)
        self.assertIn("| **met** |", md)
        self.assertIn("| **missed** |", md)
        self.assertIn("redis-server --port 1234 --save ''", md)
        self.assertIn("errors from etcd 1 node: `boom`", md)
        self.assertNotIn("## Lock cycles, contended", md)  # not measured: no section
        self.assertNotIn("## Rate limiter: the algorithms", md)  # no micro results: no section

    def test_rate_limiter_micro_section(self):
        res = fixture()
        res["meta"]["micro"] = {"rate-limiter": {
            "gbench_cmd": ["build/release/x_bench", "--benchmark_format=json"],
            "gbench": [{"name": "HotKey/gcra", "cpu_time": 19.4},
                       {"name": "ManyKeys/gcra/100000", "cpu_time": 48.0},
                       {"name": "ManyKeys/gcra/1000000", "cpu_time": 364.7,
                        "bytes_per_key": 75.6}],
            "accuracy_cmd": ["build/release/acc", "--seed", "1"],
            "accuracy": {"limit": 100, "period_us": 1000000, "shapes": [
                {"shape": "steady_2x", "requests": 200000, "differ_pct": 49.457,
                 "over_admitted_pct": 24.48, "under_admitted_pct": 24.97,
                 "max_in_trailing_period_counter": 112, "max_in_trailing_period_log": 100}]}}}
        md = report.render_markdown(res, set())
        self.assertIn("| gcra | 19.4 | 48.0 | 365 | 75.6 | – |", md)
        self.assertIn("| token_bucket | – | – | – | – | – |", md)  # not measured
        self.assertIn("| steady_2x | 49.5% | 24.5% | 25.0% | 112 | 100 |", md)
        self.assertIn("200,000 requests each, limit 100 per 1 s", md)


def booking_run(sid, system, conns, rnd, ok, conflicts, hold_p99, duration=2.0, errors=0):
    r = run(sid, system, conns, rnd, (ok + conflicts + errors) / duration, p99=hold_p99 * 3,
            errors=errors)
    r["result"].update({"ok": ok, "conflicts": conflicts, "ops": ok + conflicts + errors,
                        "duration_s": duration,
                        "steps": {"hold": {"count": ok + conflicts + errors, "latency_us": {
                            "p50": hold_p99 / 4, "p90": hold_p99 / 2, "p99": hold_p99,
                            "p999": hold_p99 * 2, "max": hold_p99 * 4, "mean": hold_p99 / 4}}}})
    return r


class BookingTest(unittest.TestCase):
    def runs(self):
        return [booking_run("tk-flash", "ticketd-conditional", 16, 1, 2000, 6000, 800.0),
                booking_run("tk-flash", "ticketd-conditional", 16, 2, 2400, 5600, 1000.0),
                booking_run("tk-flash", "ticketd-dlock-etcd", 16, 1, 500, 1500, 4000.0,
                            errors=1),
                booking_run("tk-low", "ticketd-optimistic", 16, 1, 3000, 2, 700.0)]

    def test_aggregate_bookings_and_hold_latency(self):
        agg = report.aggregate(self.runs())
        s = agg[("tk-flash", "ticketd-conditional", 16)]
        self.assertEqual(s["bookings"], 1100.0)  # (1000 + 1200) / 2 per second
        self.assertEqual(s["booking_rounds"], [1000.0, 1200.0])
        self.assertEqual(s["hold_p99"], 900.0)
        self.assertEqual(s["hold_p50"], 225.0)
        self.assertAlmostEqual(s["conflict_rate"], 11600 / 16000)
        self.assertAlmostEqual(report.ratio(agg, "tk-flash", "ticketd-dlock-etcd",
                                            "ticketd-conditional", 16, "bookings"), 250 / 1100)
        # Results without a hold step (other workloads) get no booking summary.
        self.assertNotIn("bookings", report.aggregate(fixture()["runs"])[("http", "nginx", 16)])

    def test_booking_tables(self):
        agg = report.aggregate(self.runs())
        t = report.scenario_table(agg, scenario("tk-flash")).splitlines()
        self.assertTrue(t[0].startswith("| clients | strategy | bookings/s | attempts/s |"))
        self.assertIn("| 16 | conditional update | 1.10 k | 4.00 k | 72.5% | 225 µs | 900 µs | "
                      "2.70 ms | 0 | 1.00 k / 1.20 k | 0.25 cores | 0.50 cores |", t)
        self.assertIn("| 16 | dlock (etcd) | 250 | 1.00 k | 75.0% | 1.00 ms | 4.00 ms | "
                      "12.00 ms | 1 | 250 | 0.25 cores | 0.50 cores |", t)
        self.assertEqual(len({len(line.split("|")) for line in t}), 1)  # columns line up
        r = report.ratio_table(agg, scenario("tk-flash"))
        self.assertTrue(r.startswith("| strategy / conditional update | bookings/s, 16 clients "
                                     "| hold p99, 16 clients |"))
        self.assertIn("| dlock (etcd) | 0.23× | 4.44× |", r)
        self.assertNotIn("optimistic", r)  # not measured in this scenario: no row
        self.assertEqual(report.ratio_table(agg, scenario("tk-low")), "")  # no peer measured

    def test_markdown_and_chart(self):
        res = fixture()
        res["runs"] += self.runs()
        agg = report.aggregate(res["runs"])
        charts = report.svgs(agg)
        self.assertIn("bench-tk-flash.svg", charts)
        self.assertIn("bookings/s", charts["bench-tk-flash.svg"])
        xml.dom.minidom.parseString(charts["bench-tk-flash.svg"].encode())
        md = report.render_markdown(res, set(charts))
        self.assertIn("## Ticketing: bookings per strategy, flash sale", md)
        self.assertIn("![tk-flash](bench-tk-flash.svg)", md)
        self.assertIn("errors from dlock (etcd): `boom`", md)


class SvgTest(unittest.TestCase):
    def test_charts_are_well_formed(self):
        charts = report.svgs(report.aggregate(fixture()["runs"]))
        self.assertEqual(set(charts), {"bench-http.svg", "bench-lock-uncontended.svg",
                                       "bench-handoff.svg"})
        for text in charts.values():
            doc = xml.dom.minidom.parseString(text.encode())
            self.assertEqual(doc.documentElement.tagName, "svg")
        self.assertEqual(charts["bench-http.svg"].count("<circle"), 2)
        self.assertEqual(charts["bench-lock-uncontended.svg"].count("<circle"), 3)
        self.assertIn("polyline", svg.line_chart("t", [1, 16], [("a", [1.0, 5.0])], "x", "y"))
        self.assertEqual(charts["bench-handoff.svg"].count("<rect") - 1 - 3, 12)  # 3×4 bars
        self.assertIn("target: p99 ≤ 1 ms", charts["bench-handoff.svg"])

    def test_scales(self):
        self.assertEqual(svg.nice_ticks(0, 95), [0, 20, 40, 60, 80, 100])
        self.assertEqual(svg.log_ticks(150, 40000), [100, 1000, 10000, 100000])
        self.assertEqual(svg.fmt_us(1000), "1 ms")
        self.assertEqual(svg._num(25000), "25k")
        self.assertEqual(svg._num(1500), "1.5k")
        line = svg.line_chart("t", [1, 16], [("a", [None, 5.0])], "x", "y")
        self.assertNotIn("polyline", line)  # a single point: no line
        self.assertEqual(line.count("<circle"), 1)


if __name__ == "__main__":
    unittest.main()
