#!/usr/bin/python3
"""The engine's CPU backend against Debian's PyTorch, side by side.

Usage (from the repository root, after building into ./build):
    /usr/bin/python3 bench/compare_cpu.py [--relora build/app/relora] [--preset tiny]
        [--batch 8] [--context 256] [--steps 20] [--threads 2] [--rank 32] [--rounds 3]

Both train the same model (same preset, rank r on all seven matrices, alpha 32,
float32, the given number of threads) on random tokens. Each round runs the
engine and PyTorch one after the other for every method, so a machine whose
speed drifts affects both alike; the table shows the median over rounds and the
ratio engine / PyTorch in tokens per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
METHODS = ["full", "lora", "relora"]


def run_json(cmd: list[str]) -> dict[str, dict]:
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return {r["method"]: r for r in rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relora", default=os.path.join(HERE, "..", "build", "app", "relora"))
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    if not os.access(a.relora, os.X_OK):
        print(f"compare_cpu: no relora binary at {a.relora}: build first or pass --relora", file=sys.stderr)
        return 2

    common = ["--preset", a.preset, "--batch", str(a.batch), "--context", str(a.context),
              "--steps", str(a.steps), "--threads", str(a.threads), "--rank", str(a.rank), "--json"]
    engine = [a.relora, "bench", "--backend", "cpu", "--method", "all", *common]
    # Both merge every 10 steps, so ReLoRA pays for its restarts in the timing.
    torch = [sys.executable, os.path.join(HERE, "torch_cpu_bench.py"), "--method", "all",
             "--merge-every", "10", *common]
    samples = {(impl, m): [] for impl in ("engine", "pytorch") for m in METHODS}
    for r in range(a.rounds):
        for impl, cmd in (("engine", engine), ("pytorch", torch)):
            for m, row in run_json(cmd).items():
                samples[(impl, m)].append(row["tokens_per_s"])
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    print(f"{a.preset}, batch {a.batch} x {a.context}, {a.threads} threads, r = {a.rank}, "
          f"median of {a.rounds} rounds (tokens/s)")
    print(f"{'method':8} {'engine':>10} {'pytorch':>10} {'ratio':>7}")
    for m in METHODS:
        e = statistics.median(samples[("engine", m)])
        t = statistics.median(samples[("pytorch", m)])
        print(f"{m:8} {e:10.0f} {t:10.0f} {e / t:6.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
