#!/usr/bin/python3
"""CPU training-throughput benchmark of the PyTorch reference (float32).

Usage:
    /usr/bin/python3 bench/torch_cpu_bench.py [--preset tiny|60m|130m] [--method full|lora|relora|all]
        [--batch 8] [--context 256] [--steps 20] [--warmup-steps 3] [--threads 2]
        [--rank 32] [--alpha 32] [--vocab 256] [--merge-every 100] [--json]

Per method: fresh model (N(0,0.02) init), random tokens, torch.optim.AdamW(foreach=True)
with global-norm clipping 1.0 and a cosine schedule, `--warmup-steps` untimed steps,
then `--steps` timed steps. LoRA/ReLoRA put rank r on all seven matrices, alpha 32
(s = alpha/r). ReLoRA = LoRA steps plus a merge/re-init/prune every --merge-every
steps; merges falling inside the timed window are included in the timing, and the
cost of one merge is measured separately (merge_ms) so it can be amortised.

--json prints one JSON object per line:
    {"impl":"pytorch","method":..,"tokens_per_s":..,"step_ms":..,"threads":.., ...}
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402

import torch_llama as tl  # noqa: E402


def count(model):
    total = sum(p.numel() for p in model.parameters())
    train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, train


def bench_method(method, args):
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    mc = tl.ModelConfig.preset(args.preset, vocab=args.vocab, context=args.context)
    model = tl.LlamaForCausalLM(mc, dtype=torch.float32, generator=gen)
    total_steps = args.warmup_steps + args.steps
    restarts = []
    if method == "relora" and args.merge_every > 0:
        restarts = list(range(args.merge_every, total_steps, args.merge_every))
    tc = tl.TrainConfig(
        method=method, targets=list(tl.ALL_TARGETS), rank=args.rank,
        scale=tl.lora_scale(args.alpha, args.rank), dropout=0.0, lr=args.lr, min_lr_ratio=0.1,
        warmup=0, steps=total_steps, restart_steps=restarts, restart_warmup=min(10, args.merge_every),
        prune="magnitude", prune_ratio=0.9, weight_decay=0.0, clip=1.0, optimizer="torch")
    trainer = tl.Trainer(model, tc, generator=gen)
    B, T = args.batch, args.context
    data = torch.randint(0, args.vocab, (total_steps, B, T + 1), generator=gen)

    times, losses = [], []
    for s in range(total_steps):
        x, y = data[s, :, :-1], data[s, :, 1:]
        t0 = time.perf_counter()
        r = trainer.step(x, y)
        dt = time.perf_counter() - t0
        losses.append(r["loss"])
        if s >= args.warmup_steps:
            times.append(dt)

    merge_ms = None
    if method == "relora":
        # one merge + re-init + prune (as done at every reset), timed on its own
        reps = 3
        t0 = time.perf_counter()
        for i in range(reps):
            trainer.restart(trainer.t)
        merge_ms = (time.perf_counter() - t0) / reps * 1e3

    total, trainable = count(model)
    elapsed = sum(times)
    res = {
        "impl": "pytorch",
        "method": method,
        "tokens_per_s": B * T * len(times) / elapsed if elapsed > 0 else 0.0,
        "step_ms": elapsed / max(1, len(times)) * 1e3,
        "median_step_ms": statistics.median(times) * 1e3 if times else 0.0,
        "threads": torch.get_num_threads(),
        "preset": args.preset, "batch": B, "context": T, "vocab": args.vocab,
        "steps": len(times), "warmup_steps": args.warmup_steps,
        "params": total, "trainable": trainable,
        "first_loss": losses[0], "last_loss": losses[-1],
        "torch": torch.__version__,
    }
    if method != "full":
        res["rank"] = args.rank
        res["alpha"] = args.alpha
    if method == "relora":
        res["merge_ms"] = merge_ms
        res["merge_every"] = args.merge_every
        res["merges_in_timed_steps"] = sum(1 for r in restarts if r >= args.warmup_steps)
        if args.merge_every > 0:
            amort = res["step_ms"] + merge_ms / args.merge_every
            res["amortised_step_ms"] = amort
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(tl.PRESETS), default="tiny")
    ap.add_argument("--method", choices=["full", "lora", "relora", "all"], default="all")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rank", type=int, default=32)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--vocab", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--merge-every", type=int, default=100, help="ReLoRA reset interval (steps)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    for k in ("batch", "context", "steps", "threads", "rank", "vocab"):
        if getattr(args, k) <= 0:
            ap.error(f"--{k} must be positive")
    torch.set_num_threads(args.threads)
    methods = ["full", "lora", "relora"] if args.method == "all" else [args.method]
    results = []
    for m in methods:
        r = bench_method(m, args)
        results.append(r)
        if args.json:
            print(json.dumps(r), flush=True)
        else:
            extra = ""
            if m == "relora":
                extra = (f", merge {r['merge_ms']:.1f} ms every {args.merge_every} steps "
                         f"(amortised {r.get('amortised_step_ms', r['step_ms']):.1f} ms/step)")
            print(f"pytorch {args.preset:5s} {m:6s}: {r['tokens_per_s']:9.1f} tokens/s  "
                  f"{r['step_ms']:8.1f} ms/step (median {r['median_step_ms']:.1f})  "
                  f"[{args.batch}x{args.context}, {r['threads']} threads, "
                  f"trainable {r['trainable']:,}/{r['params']:,}]{extra}", flush=True)
    if not args.json and len(results) > 1:
        base = results[0]["tokens_per_s"]
        print("relative to full-rank: " + ", ".join(
            f"{r['method']} {r['tokens_per_s'] / base:.2f}x" for r in results[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
