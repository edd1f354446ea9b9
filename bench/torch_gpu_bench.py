#!/usr/bin/env python3
"""GPU training-throughput benchmark of the PyTorch reference (DESIGN.md section 9).

Same architecture as the engine (bench/torch_llama.py: pre-norm RMSNorm, rotary
"rotate half", causal attention through SDPA on CUDA, SwiGLU, untied head),
bf16 autocast with fp32 master weights, torch.optim.AdamW(fused=True) with
global-norm clipping 1.0, optionally torch.compile on the loss (forward +
cross entropy). Synthetic uniform tokens.

Methods: full (every weight trains), lora (r on all seven matrices, W frozen,
alpha 32), relora (lora plus, every --merge-every steps, W += s·B·A, A
re-initialised Kaiming-uniform, B = 0, Adam moments of A and B pruned by
magnitude 0.9 with m zeroed where v is; merges fall inside the timed steps,
as in `relora bench`).

Usage:
    python3 bench/torch_gpu_bench.py --preset 60m --method all --compile both --json
    python3 bench/torch_gpu_bench.py --preset 130m --method full --profile   # + GPU kernel time a step

--json prints one object per line:
    {"impl":"pytorch-compile"|"pytorch-eager","method":..,"tokens_per_s":..,"step_ms":..,
     "peak_mib":..,"device":..,...}
peak_mib is torch.cuda.max_memory_allocated() over the run (model, optimizer
state, activations), reset before the model is built.
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
import torch.nn.functional as F  # noqa: E402

import torch_llama as tl  # noqa: E402


@torch.no_grad()
def relora_restart(model, opt, gen, prune_ratio=0.9):
    for m in tl.lora_modules(model).values():
        m.merge()
        m.reset_lora(generator=gen)
        for p in (m.lora_A.weight, m.lora_B.weight):
            st = opt.state.get(p, {})
            if "exp_avg_sq" not in st:
                continue
            v, mom = st["exp_avg_sq"], st["exp_avg"]
            av = v.abs()
            q = torch.quantile(av.reshape(-1).float(), prune_ratio)
            v.masked_fill_(av <= q, 0.0)
            mom.masked_fill_(v == 0, 0.0)


def bench(method, compiled, args):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    mc = tl.ModelConfig.preset(args.preset, vocab=args.vocab, context=args.context)
    model = tl.LlamaForCausalLM(mc, dtype=torch.float32, generator=gen).to(dev)
    if method in ("lora", "relora"):
        tl.apply_lora(model, tl.ALL_TARGETS, args.rank, tl.lora_scale(args.alpha, args.rank), 0.0, gen)
        model.to(dev)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() == 2]
    no_decay = [p for p in params if p.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.0},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.999), eps=1e-8, fused=True)

    def loss_fn(x, y):
        with torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(x)
            return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

    step_loss = torch.compile(loss_fn) if compiled else loss_fn

    B, T = args.batch, args.context
    total = args.warmup_steps + args.steps
    data = torch.randint(0, args.vocab, (total, B, T + 1), generator=gen).to(dev)
    merge_every = args.merge_every if method == "relora" else 0
    times, losses = [], []
    # --profile: the timed steps under torch.profiler, for the GPU's own
    # kernel time a step (the wall-clock step also holds the host's share).
    prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CUDA]) if args.profile else None
    t_start = time.perf_counter()
    for s in range(total):
        if prof is not None and s == args.warmup_steps:
            prof.start()
        x, y = data[s, :, :-1], data[s, :, 1:]
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        if merge_every and s > 0 and s % merge_every == 0:
            relora_restart(model, opt, gen)
        for p in params:
            p.grad = None
        loss = step_loss(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0, foreach=True)
        opt.step()
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
        losses.append(float(loss.detach()))
        if s >= args.warmup_steps:
            times.append(dt)
    wall = time.perf_counter() - t_start
    gpu_ms = None
    if prof is not None:
        prof.stop()
        table = prof.key_averages()
        print(table.table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70), file=sys.stderr)
        self_us = [getattr(e, "self_device_time_total", None) for e in table]
        if None in self_us:  # PyTorch before 2.4
            self_us = [e.self_cuda_time_total for e in table]
        gpu_ms = sum(self_us) / 1e3 / len(times)
    mean = sum(times) / len(times)
    res = {
        "impl": "pytorch-compile" if compiled else "pytorch-eager",
        "method": method, "preset": args.preset,
        "tokens_per_s": B * T / mean, "step_ms": mean * 1e3,
        "median_step_ms": statistics.median(times) * 1e3,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
        "batch": B, "context": T, "vocab": args.vocab,
        "steps": len(times), "warmup_steps": args.warmup_steps, "wall_s": wall,
        "first_loss": losses[0], "last_loss": losses[-1],
        "device": torch.cuda.get_device_name(), "torch": torch.__version__,
    }
    if gpu_ms is not None:
        res["gpu_kernel_ms_per_step"] = gpu_ms
    if method != "full":
        res["rank"] = args.rank
    if merge_every:
        res["merge_every"] = merge_every
    del model, opt, data
    if compiled:
        torch._dynamo.reset()
    torch.cuda.empty_cache()
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(tl.PRESETS), default="60m")
    ap.add_argument("--method", choices=["full", "lora", "relora", "all"], default="all")
    ap.add_argument("--compile", choices=["yes", "no", "both"], default="yes")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup-steps", type=int, default=3)
    ap.add_argument("--rank", type=int, default=128)
    ap.add_argument("--alpha", type=float, default=32.0)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--merge-every", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="kernel table on stderr; gpu_kernel_ms_per_step: the GPU's kernel time a timed step "
                         "(the profiler slows the host, so tokens/s are then not comparable)")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("torch_gpu_bench: no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    methods = ["full", "lora", "relora"] if args.method == "all" else [args.method]
    modes = {"yes": [True], "no": [False], "both": [False, True]}[args.compile]
    for compiled in modes:
        for m in methods:
            r = bench(m, compiled, args)
            if args.json:
                print(json.dumps(r), flush=True)
            else:
                gpu = f"  GPU kernels {r['gpu_kernel_ms_per_step']:.2f} ms/step" if args.profile else ""
                print(f"{r['impl']:16s} {args.preset:5s} {m:6s}: {r['tokens_per_s']:10.0f} tok/s "
                      f"{r['step_ms']:8.2f} ms/step  peak {r['peak_mib']:8.0f} MiB{gpu}  ({r['device']})",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
