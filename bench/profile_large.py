#!/usr/bin/env python3
"""Splits large one-way unary calls into serialise, transfer and parse.

Reads `perf script` output of one or two `perf record -k CLOCK_MONOTONIC
--call-graph=dwarf` files (client and server, or one inproc process) and
classifies each sample by its stack: gRPC's GenericSerialize is the sender
serialising the message, GenericDeserialize the receiver parsing it. A call
is a run of serialise samples followed by a run of parse samples; its
transfer is the time from the last serialise sample to the first parse
sample, whatever the transport does in between (copies, wake-ups, flow
control). Only the last --calls calls count (the scenario's smaller sizes
and its warm-up come first). Prints the medians, in ms, as one markdown row.

  profile_large.py --label shm --calls 20 client.data [server.data]

Times are sampled: each figure is good to about one sampling period.
"""
import argparse
import re
import statistics
import subprocess
import sys


def samples(path):
    """(time, phase) per sample: 'S' serialise, 'P' parse, None otherwise."""
    out = subprocess.run(["perf", "script", "-i", path, "-F", "time,ip,sym"],
                         capture_output=True, text=True, check=True).stdout
    result = []
    time, frames = None, []

    def flush():
        if time is None:
            return
        stack = " ".join(frames)
        phase = None
        if "GenericSerialize" in stack:
            phase = "S"
        elif "GenericDeserialize" in stack:
            phase = "P"
        result.append((time, phase))

    for line in out.split("\n"):
        if line and not line[0].isspace():
            flush()
            m = re.match(r"\s*([\d.]+):", line)
            time, frames = (float(m.group(1)), []) if m else (None, [])
        elif line.strip():
            frames.append(line.strip())
    flush()
    return result


def calls(events):
    """[(serialise_start, serialise_end, parse_start, parse_end)] in order."""
    found = []
    s0 = s1 = p0 = p1 = None
    for t, phase in sorted(e for e in events if e[1]):
        if phase == "S":
            if p0 is not None:  # a new call begins
                found.append((s0, s1, p0, p1))
                s0 = s1 = p0 = p1 = None
            if s0 is None:
                s0 = t
            s1 = t
        elif s0 is not None:
            if p0 is None:
                p0 = t
            p1 = t
    if p0 is not None:
        found.append((s0, s1, p0, p1))
    return found


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--label", required=True)
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--period_ms", type=float, default=0.0)
    parser.add_argument("files", nargs="+")
    args = parser.parse_args()
    events = []
    for path in args.files:
        events += samples(path)
    rows = []
    for s0, s1, p0, p1 in calls(events)[-args.calls:]:
        total = (p1 - s0) * 1e3 + args.period_ms
        # Each span gains one sampling period (its last sample stands for
        # one), which the gap between them loses: the three add up to total.
        rows.append((total, (s1 - s0) * 1e3 + args.period_ms,
                     max(0.0, (p0 - s1) * 1e3 - args.period_ms), (p1 - p0) * 1e3 + args.period_ms))
    if len(rows) < 3:
        print(f"| {args.label} | too few calls sampled ({len(rows)}) | | | | |")
        return 1
    med = [statistics.median(r[i] for r in rows) for i in range(4)]
    print(f"| {args.label} | {med[0]:.1f} | {med[1]:.1f} | {med[2]:.1f} | {med[3]:.1f} | "
          f"{len(rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
