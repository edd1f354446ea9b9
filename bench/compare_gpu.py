#!/usr/bin/env python3
"""Engine (CUDA backend) against the PyTorch reference on the same GPU, in one call.

Usage:
    python3 bench/compare_gpu.py --relora build/app/relora [--preset 60m 130m]
        [--compile both|yes|no] [--steps 10] [--out results.jsonl]

Per preset it runs
    relora bench --backend cuda --json --costs --preset P --batch 32 --context 512
                 --set model.vocab=32000 --steps S
    python3 bench/torch_gpu_bench.py --json --preset P --batch 32 --context 512
                 --vocab 32000 --steps S --compile ...
and prints tokens/s, ms/step and peak GPU memory per (implementation, method),
then the issue's ratios:
    full:         engine / torch.compile          (target >= 1.3)
    lora, relora: engine / engine full             (target >= 1.2)
                  engine / torch.compile same method (target >= 2)
    peak memory:  engine / torch (same method)     (target <= 1)
and what the workbench's measurements cost in the engine: one evaluation
(validation loss + singular values of every ΔW) against the training
between two evaluations, and one ReLoRA merge with pruning per layer.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run_lines(cmd, env=None):
    print("$ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stderr[-4000:])
        raise SystemExit(f"command failed ({p.returncode}): {' '.join(cmd)}")
    if p.stderr.strip():
        sys.stderr.write(p.stderr[-6000:])
    out = []
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--relora", required=True, help="path of the relora executable (CUDA build)")
    ap.add_argument("--preset", nargs="+", default=["60m", "130m"])
    ap.add_argument("--method", default="all")
    ap.add_argument("--compile", choices=["yes", "no", "both"], default="both")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--skip-torch", action="store_true")
    ap.add_argument("--out", help="also write every JSON record here")
    args = ap.parse_args(argv)

    records = []

    def save():
        if args.out:
            with open(args.out, "w") as f:
                for r in records:
                    f.write(json.dumps(r) + "\n")

    for preset in args.preset:
        common = ["--preset", preset, "--batch", str(args.batch), "--context", str(args.context),
                  "--steps", str(args.steps)]
        records += run_lines([args.relora, "bench", "--backend", "cuda", "--json", "--costs", "--method", args.method,
                              "--set", f"model.vocab={args.vocab}"] + common)
        save()
        if not args.skip_torch:
            records += run_lines([sys.executable, os.path.join(HERE, "torch_gpu_bench.py"), "--json",
                                  "--method", args.method, "--vocab", str(args.vocab),
                                  "--compile", args.compile] + common)
            save()

    device = next((r.get("device") for r in records if r.get("device")), "?")
    print(f"\nGPU: {device}; batch {args.batch} x {args.context}, vocabulary {args.vocab}, "
          f"{args.steps} timed steps")
    print(f"{'preset':6s} {'method':7s} {'implementation':16s} {'tokens/s':>11s} {'ms/step':>9s} {'peak MiB':>9s}")
    key = {}
    for r in records:
        impl = r["impl"] if r["impl"] != "relora" else "engine"
        key[(r["preset"], r["method"], impl)] = r
        print(f"{r['preset']:6s} {r['method']:7s} {impl:16s} {r['tokens_per_s']:11,.0f} "
              f"{r['step_ms']:9.2f} {r.get('peak_mib', float('nan')):9.0f}")

    print("\nratios (tokens/s; memory engine/torch)")
    for preset in args.preset:
        def tps(method, impl):
            r = key.get((preset, method, impl))
            return r["tokens_per_s"] if r else None

        def ratio(a, b):
            return f"{a / b:.2f}" if a and b else "n/a"

        ef = tps("full", "engine")
        for m in ("full", "lora", "relora"):
            e = tps(m, "engine")
            if e is None:
                continue
            parts = [f"vs compile {ratio(e, tps(m, 'pytorch-compile'))}",
                     f"vs eager {ratio(e, tps(m, 'pytorch-eager'))}"]
            if m != "full":
                parts.append(f"vs engine full {ratio(e, ef)}")
            er = key.get((preset, m, "engine"))
            tr = key.get((preset, m, "pytorch-compile")) or key.get((preset, m, "pytorch-eager"))
            if er and tr and er.get("peak_mib") and tr.get("peak_mib"):
                parts.append(f"peak memory {er['peak_mib'] / tr['peak_mib']:.2f}")
            print(f"{preset:6s} {m:7s} " + ", ".join(parts))

    print("\nmeasurement costs (engine): one evaluation = validation loss + spectra of every ΔW (waited for); "
          "overhead = what one evaluation adds to the steps until the next, spectra in the background "
          "(targets: <= 3 %; merge < 1 ms per layer)")
    for r in records:
        if r["impl"] == "relora" and "evaluation_ms" in r:
            merge = f"{r['merge_ms_per_layer']:.3f} ms" if r["merge_ms_per_layer"] >= 0 else "-"
            print(f"{r['preset']:6s} {r['method']:7s} validation {r['validation_ms']:8.1f} ms, evaluation "
                  f"{r['evaluation_ms']:8.1f} ms, overhead every {r['eval_interval']} steps {r['eval_overhead_pct']:5.2f} %, "
                  f"merge per layer {merge}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
