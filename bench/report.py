#!/usr/bin/env python3
"""Turns the RESULT lines of bench/run.sh into CSV, JSON, Markdown and a PNG.

Usage: report.py OUT_DIR   (reads OUT_DIR/raw.txt and OUT_DIR/machine.txt)
Figures repeated over several runs are reduced to their median; the CSV and
JSON also give the best of the runs, labelled as such. Failed measurements
(FAILED lines) and failed runs (RUNFAILED lines) are listed at the top of the
report, and a figure that has fewer values than runs that should have
produced it says so next to its median instead of passing for a full one.
Only the Python standard library; the chart needs gnuplot (Debian gnuplot-nox).
"""
import collections
import csv
import json
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

TRANSPORTS = ["shm", "tcp", "uds", "inproc"]


# The --scenarios name that runs each scenario of the RESULT lines.
SCENARIO_FLAG = {"stream_sync": "stream", "stream_async_x4": "stream", "large_unary": "large",
                 "cpu_cost": "cpu", "idle_after_traffic": "idle"}
# shm at other spin budgets than the main shm runs (bench/run.sh).
SPIN_VARIANTS = [("shm_spin0", "off"), ("shm", "default"), ("shm_spin200", "200 us")]

VALUES = {}    # key -> every run's value
EXPECTED = {}  # key -> how many runs should have produced it
FAILURES = []  # lines describing failed measurements and runs


def load(out):
    values = collections.defaultdict(list)
    runs = []  # (transport, scenarios) of each RUN line written by run.sh
    for line in (out / "raw.txt").read_text().splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0] == "RESULT":
            _, transport, scenario, param, metric, value = parts
            values[(transport, scenario, param, metric)].append(float(value))
        elif len(parts) >= 3 and parts[0] == "RUN":
            runs.append((parts[1], parts[2]))
        elif len(parts) >= 5 and parts[0] == "FAILED":
            _, transport, scenario, param, calls, *what = parts
            FAILURES.append(f"{transport} {scenario} {param}: {calls} failed call(s): "
                            + " ".join(what))
        elif len(parts) >= 2 and parts[0] == "RUNFAILED":
            FAILURES.append(f"run of {parts[1]} failed: " + " ".join(parts[2:]))
    for k, v in values.items():
        flag = SCENARIO_FLAG.get(k[1], k[1])
        VALUES[k] = v
        EXPECTED[k] = sum(1 for t, sc in runs
                          if t == k[0] and (sc == "all" or flag in sc.split(",")))
    return {k: statistics.median(v) for k, v in values.items()}


def best(key):
    """Best of the runs for latency and throughput figures, else None."""
    v = VALUES.get(key)
    if not v:
        return None
    if key[3].endswith("per_s"):
        return max(v)
    if key[3].endswith("_us"):
        return min(v)
    return None


def short(key):
    """' (2 of 3 runs)' when runs that should have given this figure did not."""
    n, want = len(VALUES.get(key, ())), EXPECTED.get(key, 0)
    return f" ({n} of {want} runs)" if key in VALUES and n < want else ""


def fmt(v):
    if v is None:
        return "n/a"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def ratio(a, b):
    return None if a is None or not b else a / b


def table(res, rows, transports):
    """rows: list of (label, scenario, param, metric)."""
    head = "| figure | " + " | ".join(transports)
    has_shm = "shm" in transports
    if has_shm:
        head += " | shm/tcp | shm/uds | shm/inproc"
    lines = [head + " |", "|" + "---|" * (len(transports) + 1 + (3 if has_shm else 0))]
    for label, scenario, param, metric in rows:
        vals = {t: res.get((t, scenario, param, metric)) for t in transports}
        line = f"| {label} | " + " | ".join(
            fmt(vals[t]) + short((t, scenario, param, metric)) for t in transports)
        if has_shm:
            line += " | " + " | ".join(
                fmt(ratio(vals["shm"], vals.get(o))) + ("x" if ratio(vals["shm"], vals.get(o)) else "")
                for o in ("tcp", "uds", "inproc"))
        lines.append(line + " |")
    return "\n".join(lines)


def targets(res):
    g = lambda t, s, p, m: res.get((t, s, p, m))
    checks = []

    def check(name, value, ok):
        checks.append((name, "n/a" if value is None else fmt(value) + "x",
                       "n/a" if value is None else ("PASS" if ok(value) else "MISS")))

    p50 = lambda t: g(t, "unary_latency", "32B", "p50_us")
    p99 = lambda t: g(t, "unary_latency", "32B", "p99_us")
    check("unary 32 B p50 <= 0.5x TCP", ratio(p50("shm"), p50("tcp")), lambda r: r <= 0.5)
    check("unary 32 B p50 <= 0.7x UDS", ratio(p50("shm"), p50("uds")), lambda r: r <= 0.7)
    check("unary 32 B p99 <= 0.5x TCP", ratio(p99("shm"), p99("tcp")), lambda r: r <= 0.5)
    st = lambda t: g(t, "stream_sync", "32B", "msgs_per_s")
    check("streaming 32 B msgs/s >= 2x TCP", ratio(st("shm"), st("tcp")), lambda r: r >= 2)
    big = lambda t: g(t, "large_unary", "16MiB", "MB_per_s")
    check("16 MiB unary MB/s >= 2x TCP", ratio(big("shm"), big("tcp")), lambda r: r >= 2)
    check("unary 32 B p50 <= 1.5x inproc", ratio(p50("shm"), p50("inproc")), lambda r: r <= 1.5)
    conns = [k[2] for k in res if k[0] == "shm" and k[1] == "scale"]
    if conns:
        c = conns[0]
        err = max(VALUES.get(("shm", "scale", c, "errors"), [None]))  # worst run, not median
        checks.append((f"{c}: errors == 0 in every run", fmt(err),
                       "PASS" if err == 0 else "MISS"))
        per = g("shm", "scale", c, "rss_per_idle_conn_kib")
        ring = g("shm", "scale", c, "ring_pss_per_idle_conn_kib")
        mapped = g("shm", "scale", c, "ring_mapped_per_conn_kib")
        # The rings' pages are inside RSS; their PSS (split with the client)
        # and their mapped size (what they can come to commit) are shown next to it.
        checks.append((f"{c}: server RSS per idle connection <= 64 KiB (of which ring PSS; "
                       "ring mapped)", f"{fmt(per)} KiB ({fmt(ring)} KiB; {fmt(mapped)} KiB)",
                       "PASS" if per is not None and per <= 64 else "MISS"))
        th = g("shm", "scale", c, "threads_after_calls")
        n = int("".join(ch for ch in c if ch.isdigit()))
        checks.append((f"{c}: server threads not proportional to connections", fmt(th),
                       "PASS" if th is not None and th < n / 10 else "MISS"))
    return checks


def issue12_targets(res):
    """The targets of issue 12, from this run: (target, measured, PASS/MISS)."""
    g = lambda t, s, p, m: res.get((t, s, p, m))
    checks = []

    def check(name, value, ok, unit="x"):
        checks.append((name, "n/a" if value is None else fmt(value) + unit,
                       "n/a" if value is None else ("PASS" if ok(value) else "MISS")))

    p50 = lambda t: g(t, "unary_latency", "32B", "p50_us")
    p99 = lambda t: g(t, "unary_latency", "32B", "p99_us")
    check("spin off: unary 32 B p50 <= 0.95x UDS", ratio(p50("shm_spin0"), p50("uds")),
          lambda r: r <= 0.95)
    check("spin off: unary 32 B p99 <= 1.0x UDS", ratio(p99("shm_spin0"), p99("uds")),
          lambda r: r <= 1.0)
    check("default options: unary 32 B p50 <= 0.8x UDS", ratio(p50("shm"), p50("uds")),
          lambda r: r <= 0.8)
    check("default options: unary 32 B p50 <= 0.7x TCP", ratio(p50("shm"), p50("tcp")),
          lambda r: r <= 0.7)
    spun = [(p50(t), label) for t, label in SPIN_VARIANTS if p50(t) is not None]
    if spun:
        bestv, label = min(spun)
        check(f"best spin setting ({label}): unary 32 B p50 <= 0.5x UDS",
              ratio(bestv, p50("uds")), lambda r: r <= 0.5)
        check(f"best spin setting ({label}): unary 32 B p50 <= 0.8x inproc",
              ratio(bestv, p50("inproc")), lambda r: r <= 0.8)
    for size in ("16MiB", "64MiB"):
        mb = lambda t: g(t, "large_unary", size, "MB_per_s")
        check(f"{size} unary MB/s >= 3x TCP", ratio(mb("shm"), mb("tcp")), lambda r: r >= 3)
        check(f"{size} unary MB/s >= 0.5x inproc", ratio(mb("shm"), mb("inproc")),
              lambda r: r >= 0.5)
    sizes = sorted({k[2] for k in res if k[1] == "sweep"}, key=size_bytes)
    if sizes:
        worst = None
        for size in sizes:
            for other in ("tcp", "uds"):
                r = ratio(g("shm", "sweep", size, "MB_per_s"), g(other, "sweep", size, "MB_per_s"))
                if r is not None and (worst is None or r < worst[0]):
                    worst = (r, size, other)
        if worst:
            checks.append((f"sweep {sizes[0]}-{sizes[-1]}: shm never slower than TCP or UDS "
                           f"(worst: {worst[1]} vs {worst[2]})", fmt(worst[0]) + "x",
                           "PASS" if worst[0] >= 1 else "MISS"))
    idle = [k[2] for k in res if k[0] == "shm" and k[1] == "idle_after_traffic"]
    if idle:
        c = idle[0]
        mem = lambda t: g(t, "idle_after_traffic", c, "pss_per_conn_kib")
        checks.append((f"{c} after a 1 MiB call each, idle 1 s: memory per connection "
                       "(PSS, server + client) <= TCP's",
                       f"{fmt(mem('shm'))} KiB vs {fmt(mem('tcp'))} KiB",
                       "n/a" if mem("shm") is None or mem("tcp") is None else
                       ("PASS" if mem("shm") <= mem("tcp") else "MISS")))
        fds = g("shm", "idle_after_traffic", c, "server_fds_per_conn")
        check(f"{c}: server descriptors per connection <= 2", fds, lambda v: v <= 2, unit="")
    return checks


def size_bytes(name):
    for suffix, scale in (("MiB", 1 << 20), ("KiB", 1 << 10), ("B", 1)):
        if name.endswith(suffix):
            return int(name[:-len(suffix)]) * scale
    return 0


def spin_table(res):
    """Unary 32 B latency and CPU per call at each spin setting, next to UDS and TCP."""
    g = lambda t, m: res.get((t, "unary_latency", "32B", m))
    cpu = lambda t, m: res.get((t, "cpu_cost", "2000rps", m))
    rows = [(f"shm, spin {label}", t) for t, label in SPIN_VARIANTS] + [
        ("UDS", "uds"), ("TCP", "tcp"), ("inproc", "inproc")]
    if not any(g(t, "p50_us") is not None for _, t in rows[:3]):
        return None
    lines = ["| setting | p50 (us) | p99 (us) | p50 / UDS | p50 / TCP | CPU us/call at 2000 calls/s "
             "(client + server) |", "|" + "---|" * 6]
    for label, t in rows:
        r_uds, r_tcp = ratio(g(t, "p50_us"), g("uds", "p50_us")), ratio(g(t, "p50_us"),
                                                                         g("tcp", "p50_us"))
        lines.append(f"| {label} | {fmt(g(t, 'p50_us'))}{short((t, 'unary_latency', '32B', 'p50_us'))} "
                     f"| {fmt(g(t, 'p99_us'))} | {fmt(r_uds)}x | {fmt(r_tcp)}x "
                     f"| {fmt(cpu(t, 'cpu_us_per_call'))} |")
    return "\n".join(lines)


def fairness(res):
    """The fairness scenario (shm only): an honest client's unary 32 B latency
    alone and while raw connections flood the server with cheap frames."""
    g = lambda p, m: res.get(("shm", "fairness", p, m))
    if g("alone", "p99_us") is None:
        return None
    lines = ["| condition | p50 (us) | p99 (us) | p50 / alone | p99 / alone | flood frames/s "
             "| server CPU (% of a core) | flooding connections lost |", "|" + "---|" * 8]
    for label, p in (("alone", "alone"), ("1 flooding connection", "1flooder"),
                     ("4 flooding connections", "4flooders")):
        x = lambda m: "" if g(p, m) is None else fmt(g(p, m)) + "x"
        lines.append(f"| {label} | {fmt(g(p, 'p50_us'))} | {fmt(g(p, 'p99_us'))} | {x('p50_x')} "
                     f"| {x('p99_x')} | {'' if p == 'alone' else fmt(g(p, 'flood_frames_per_s'))} "
                     f"| {fmt(g(p, 'server_cpu_pct'))} "
                     f"| {'' if p == 'alone' else fmt(g(p, 'flood_conns_lost')).removesuffix('.00')} |")
    return "\n".join(lines)


def chart(out, res, transports):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return False
    lat = out / "latency.dat"
    with lat.open("w") as f:
        f.write("pct " + " ".join(transports) + "\n")
        for m, label in (("p50_us", "p50"), ("p90_us", "p90"), ("p99_us", "p99"), ("p999_us", "p99.9")):
            f.write(label + " " + " ".join(
                str(res.get((t, "unary_latency", "32B", m), 0)) for t in transports) + "\n")
    thr = out / "throughput.dat"
    with thr.open("w") as f:
        f.write("figure " + " ".join(transports) + "\n")
        for label, key in (("stream-32B-kmsg/s", ("stream_sync", "32B", "msgs_per_s", 1e-3)),
                           ("stream-1KiB-kmsg/s", ("stream_sync", "1KiB", "msgs_per_s", 1e-3)),
                           ("16MiB-unary-MB/s", ("large_unary", "16MiB", "MB_per_s", 1)),
                           ("64ch-kcalls/s", ("concurrency", "64ch", "calls_per_s", 1e-3))):
            s, p, m, scale = key
            f.write(label + " " + " ".join(
                str(res.get((t, s, p, m), 0) * scale) for t in transports) + "\n")
    n = len(transports)
    script = f"""
set terminal png size 1200,500 font ",10"
set output '{out}/results.png'
set multiplot layout 1,2 title "grpc-shm vs gRPC's own transports (medians)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top left
set grid ytics
set title "unary 32 B latency (us, lower is better)"
set logscale y
plot for [i=2:{n + 1}] '{lat}' using i:xtic(1) title columnheader(i)
unset logscale y
set title "throughput (higher is better)"
set xtics rotate by -20
set logscale y
plot for [i=2:{n + 1}] '{thr}' using i:xtic(1) title columnheader(i)
unset multiplot
"""
    subprocess.run([gnuplot], input=script, text=True, check=True)
    return True


def main():
    out = Path(sys.argv[1])
    res = load(out)
    transports = [t for t in TRANSPORTS if any(k[0] == t for k in res)]
    with (out / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        # best_of_runs: the best of `runs` values (lowest latency, highest
        # rate), for latency and throughput figures only; never a median.
        w.writerow(["transport", "scenario", "param", "metric", "median", "runs",
                    "expected_runs", "best_of_runs"])
        for k in sorted(res):
            b = best(k)
            w.writerow([*k, res[k], len(VALUES[k]), EXPECTED[k], "" if b is None else b])
    (out / "results.json").write_text(json.dumps(
        [dict(zip(("transport", "scenario", "param", "metric"), k), median=v, runs=len(VALUES[k]),
              expected_runs=EXPECTED[k], best_of_runs=best(k))
         for k, v in sorted(res.items())], indent=1))
    (out / "failures.txt").write_text("".join(f + "\n" for f in FAILURES))

    lat_rows = [(f"unary {p} {m.split('_')[0]} (us)", "unary_latency", p, m)
                for p in ("32B", "4KiB", "64KiB", "1MiB")
                for m in ("p50_us", "p90_us", "p99_us", "p999_us")]
    thr_rows = [("stream 32 B sync (msg/s)", "stream_sync", "32B", "msgs_per_s"),
                ("stream 1 KiB sync (msg/s)", "stream_sync", "1KiB", "msgs_per_s"),
                ("stream 32 B async x4 (msg/s)", "stream_async_x4", "32B", "msgs_per_s")]
    thr_rows += [(f"unary {p} (MB/s)", "large_unary", p, "MB_per_s")
                 for p in ("1MiB", "16MiB", "64MiB")]
    # Fresh pages (minor faults) per large call: for inproc, its one process
    # is counted as the client.
    thr_rows += [(f"unary {p} {who} page faults per call", "large_unary", p, f"{who}_faults_per_call")
                 for p in ("16MiB", "64MiB") for who in ("client", "server")]
    conc_rows = [(f"{c} channels {lab}", "concurrency", f"{c}ch", m)
                 for c in (1, 8, 64) for lab, m in (("calls/s", "calls_per_s"), ("p99 us", "p99_us"),
                                                    ("errors", "errors"))]
    scale_params = sorted({k[2] for k in res if k[1] == "scale"})
    scale_rows = [(f"{p} {m}", "scale", p, m) for p in scale_params for m in (
        "rss_before_kib", "rss_idle_kib", "rss_after_calls_kib", "rss_per_idle_conn_kib",
        "ring_pss_per_idle_conn_kib", "ring_mapped_per_conn_kib",
        "threads_before", "threads_idle", "threads_after_calls", "errors")]
    sweep_rows = [(f"unary {p} one way (MB/s)", "sweep", p, "MB_per_s")
                  for p in sorted({k[2] for k in res if k[1] == "sweep"}, key=size_bytes)]
    idle_params = sorted({k[2] for k in res if k[1] == "idle_after_traffic"})
    idle_rows = [(f"{p} {m}", "idle_after_traffic", p, m) for p in idle_params for m in (
        "pss_per_conn_kib", "server_pss_per_conn_kib", "client_pss_per_conn_kib",
        "server_fds_per_conn")]
    cpu_rows = [(f"CPU us/call at 2000 calls/s ({who})", "cpu_cost", "2000rps", m)
                for who, m in (("total", "cpu_us_per_call"), ("client", "client_cpu_us_per_call"),
                               ("server", "server_cpu_us_per_call"))]
    machine = (out / "machine.txt").read_text() if (out / "machine.txt").exists() else ""
    md = ["# grpc-shm benchmark", "", "```", machine.strip(), "```", ""]
    if FAILURES:
        md += ["## FAILED: calls or runs failed; their figures are missing or marked "
               "(k of N runs)", ""] + [f"- {f}" for f in FAILURES] + [""]
    md += ["Figures are medians over the runs (the CSV and JSON also give the best of them, "
           "as best_of_runs, with the number of runs).", ""]
    if "shm" in transports:
        md += ["## Issue 12 targets (ratios from this run)", "", "| target | measured | |",
               "|---|---|---|"]
        md += [f"| {n} | {v} | {s} |" for n, v, s in issue12_targets(res)]
        md += ["", "## Earlier targets (ratios from this run)", "", "| target | measured | |",
               "|---|---|---|"]
        md += [f"| {n} | {v} | {s} |" for n, v, s in targets(res)]
        md.append("")
        spins = spin_table(res)
        if spins:
            md += ["## Spin settings (unary 32 B, sync API; CPU at a fixed 2000 calls/s)", "",
                   spins, ""]
    for title, rows in (("Unary latency (sync API, one call outstanding)", lat_rows),
                        ("Throughput", thr_rows), ("Concurrency (one connection per channel)", conc_rows),
                        ("Size sweep (one-way unary, empty reply)", sweep_rows),
                        ("Scale and memory (server process)", scale_rows),
                        ("Idle after traffic (per connection: PSS of server and client, server "
                         "descriptors)", idle_rows), ("CPU cost", cpu_rows)):
        md += [f"## {title}", "", table(res, rows, transports), ""]
    if any(k[0] == "shm_mixed" for k in res):
        mixed_rows = [(f"unary {p} {m.split('_')[0]} (us)", "unary_latency", p, m)
                      for p in ("32B", "4KiB", "64KiB", "1MiB") for m in ("p50_us", "p99_us")]
        md += ["## Unary latency, one server listening on shm, UDS and TCP at once "
               "(the layout users deploy; client over shm), next to a shm-only server", ""]
        lines = ["| figure | shm only | shm, server also on UDS and TCP | mixed / shm only |",
                 "|---|---|---|---|"]
        for label, s_, p, m in mixed_rows:
            a, b = res.get(("shm", s_, p, m)), res.get(("shm_mixed", s_, p, m))
            r = ratio(b, a)
            lines.append(f"| {label} | {fmt(a)}{short(('shm', s_, p, m))} | {fmt(b)}"
                         f"{short(('shm_mixed', s_, p, m))} | {fmt(r) + 'x' if r else 'n/a'} |")
        md += lines + [""]
    fair = fairness(res)
    if fair:
        md += ["## Fairness (shm: one client's unary 32 B calls while other connections flood "
               "the server with window updates it must read; ratios from the same run)", "",
               fair, ""]
    if chart(out, res, transports):
        md += ["![chart](results.png)", ""]
    (out / "results.md").write_text("\n".join(md))


if __name__ == "__main__":
    main()
