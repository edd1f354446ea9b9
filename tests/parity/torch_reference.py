#!/usr/bin/python3
"""PyTorch reference for the engine's parity tests.

Usage:
    /usr/bin/python3 tests/parity/torch_reference.py IN_DIR OUT_DIR [--dtype float64|float32]

IN_DIR (written by the C++ engine):
    config.json           model / method / optimizer / schedule settings
    weights/<name>.npy    every model tensor by Hugging Face / PEFT name (float32)
    batches.npy           int (S, B, T+1); step s: inputs [:, :-1], targets [:, 1:]
    restarts/<step>/<...lora_A.weight>.npy   (relora) A values drawn by the engine

OUT_DIR (written here; every array little-endian float32, C order, npy v1.0):
    logits.npy (B,T,V), loss.npy (1,)        batch 0, initial weights
    grads/<name>.npy                          raw (pre-clip) grads of trainable params
    losses.npy, lrs.npy, grad_norms.npy (S,)  training trace
    final/<name>.npy                          every tensor after the last step

Exit status: 0 on success, 2 on bad input, 1 on unexpected errors.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.normpath(os.path.join(HERE, "..", "..", "bench"))
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import numpy as np  # noqa: E402
import torch  # noqa: E402

import torch_llama as tl  # noqa: E402


class BadInput(Exception):
    pass


REQUIRED = ["d_model", "d_ff", "heads", "layers", "vocab", "context", "batch", "method",
            "lr", "steps"]


def _save(path: str, arr) -> None:
    if isinstance(arr, torch.Tensor):
        arr = arr.detach().cpu().numpy()
    a = np.ascontiguousarray(np.asarray(arr, dtype="<f4"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    np.save(path, a, allow_pickle=False)


def _load_npy(path: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"cannot read {path}: {e}")


def read_config(in_dir: str) -> dict:
    p = os.path.join(in_dir, "config.json")
    if not os.path.isfile(p):
        raise BadInput(f"missing {p}")
    try:
        with open(p, "r", encoding="utf-8") as f:
            cfg = json.load(f)
    except Exception as e:  # noqa: BLE001
        raise BadInput(f"cannot parse {p}: {e}")
    if not isinstance(cfg, dict):
        raise BadInput("config.json must hold an object")
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise BadInput(f"config.json lacks {missing}")
    if cfg["method"] not in ("full", "lora", "relora"):
        raise BadInput(f"unknown method {cfg['method']!r}")
    if cfg["method"] != "full":
        for k in ("targets", "rank", "scale"):
            if k not in cfg:
                raise BadInput(f"config.json lacks {k!r} (needed for {cfg['method']})")
    if float(cfg.get("dropout", 0.0)) != 0.0:
        print("warning: dropout != 0, results are not reproducible across implementations",
              file=sys.stderr)
    return cfg


def model_config(cfg: dict) -> tl.ModelConfig:
    mc = tl.ModelConfig(
        d_model=int(cfg["d_model"]), d_ff=int(cfg["d_ff"]), heads=int(cfg["heads"]),
        layers=int(cfg["layers"]), vocab=int(cfg["vocab"]), context=int(cfg["context"]),
        rope_theta=float(cfg.get("rope_theta", 10000.0)), norm_eps=float(cfg.get("norm_eps", 1e-6)))
    try:
        mc.validate()
    except ValueError as e:
        raise BadInput(str(e))
    return mc


def train_config(cfg: dict) -> tl.TrainConfig:
    tc = tl.TrainConfig(
        method=cfg["method"],
        targets=list(cfg.get("targets", [])),
        rank=int(cfg.get("rank", 0)),
        scale=float(cfg.get("scale", 1.0)),
        dropout=float(cfg.get("dropout", 0.0)),
        lr=float(cfg["lr"]),
        min_lr_ratio=float(cfg.get("min_lr_ratio", 0.1)),
        warmup=int(cfg.get("warmup", 0)),
        steps=int(cfg["steps"]),
        restart_steps=[int(r) for r in cfg.get("restart_steps", [])],
        restart_warmup=int(cfg.get("restart_warmup", 0)),
        prune=str(cfg.get("prune", "reset")),
        prune_ratio=float(cfg.get("prune_ratio", 0.0)),
        weight_decay=float(cfg.get("weight_decay", 0.0)),
        beta1=float(cfg.get("beta1", 0.9)),
        beta2=float(cfg.get("beta2", 0.999)),
        eps=float(cfg.get("eps", 1e-8)),
        clip=float(cfg.get("clip", 1.0)),
        warm_start_steps=0,
        optimizer="manual",
    )
    try:
        tc.validate()
    except ValueError as e:
        raise BadInput(str(e))
    if tc.steps < 0:
        raise BadInput("steps must be >= 0")
    return tc


def read_weights(in_dir: str) -> dict:
    wdir = os.path.join(in_dir, "weights")
    if not os.path.isdir(wdir):
        raise BadInput(f"missing folder {wdir}")
    out = {}
    for fn in sorted(os.listdir(wdir)):
        if not fn.endswith(".npy"):
            continue
        a = _load_npy(os.path.join(wdir, fn))
        if a.dtype.kind != "f":
            raise BadInput(f"weights/{fn}: expected floating point, got {a.dtype}")
        out[fn[:-4]] = a
    if not out:
        raise BadInput(f"no .npy files in {wdir}")
    return out


def read_batches(in_dir: str, steps: int, batch: int, context: int, vocab: int) -> np.ndarray:
    p = os.path.join(in_dir, "batches.npy")
    if not os.path.isfile(p):
        raise BadInput(f"missing {p}")
    b = _load_npy(p)
    if b.dtype.kind not in "iu":
        raise BadInput(f"batches.npy: expected integers, got {b.dtype}")
    if b.ndim != 3:
        raise BadInput(f"batches.npy: expected shape (S,B,T+1), got {b.shape}")
    S, B, T1 = b.shape
    if S < max(1, steps):
        raise BadInput(f"batches.npy holds {S} steps, config needs {max(1, steps)}")
    if B != batch:
        raise BadInput(f"batches.npy batch {B} != config batch {batch}")
    if T1 < 2 or T1 - 1 > context:
        raise BadInput(f"batches.npy sequence length {T1 - 1} not in [1, context={context}]")
    if b.min() < 0 or b.max() >= vocab:
        raise BadInput(f"batches.npy token ids outside [0, {vocab})")
    return b.astype(np.int64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("in_dir")
    ap.add_argument("out_dir")
    ap.add_argument("--dtype", choices=["float64", "float32"], default="float64")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = ap.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    dtype = torch.float64 if args.dtype == "float64" else torch.float32
    t0 = time.time()

    cfg = read_config(args.in_dir)
    mc = model_config(cfg)
    tc = train_config(cfg)
    weights = read_weights(args.in_dir)
    batches = read_batches(args.in_dir, tc.steps, int(cfg["batch"]), mc.context, mc.vocab)

    torch.manual_seed(0)  # only affects throw-away default inits
    model = tl.LlamaForCausalLM(mc, dtype=dtype)
    if tc.method in ("lora", "relora"):
        tl.apply_lora(model, tc.targets, tc.rank, tc.scale, tc.dropout)
    try:
        tl.load_state(model, weights, strict=True)
    except (KeyError, ValueError) as e:
        raise BadInput(str(e))

    # ---- gradients and logits of batch 0 with the initial weights --------------
    named = tl.trainable_named_params(model)
    model.train()
    x0 = torch.from_numpy(batches[0, :, :-1].copy())
    y0 = torch.from_numpy(batches[0, :, 1:].copy())
    for p in named.values():
        p.grad = None
    loss0, logits0 = model.loss(x0, y0, return_logits=True)
    loss0.backward()
    os.makedirs(args.out_dir, exist_ok=True)
    _save(os.path.join(args.out_dir, "logits.npy"), logits0)
    _save(os.path.join(args.out_dir, "loss.npy"), np.array([float(loss0)]))
    for n, p in named.items():
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        _save(os.path.join(args.out_dir, "grads", n + ".npy"), g)
    for p in named.values():
        p.grad = None

    # ---- training --------------------------------------------------------------
    restart_dir = os.path.join(args.in_dir, "restarts")

    def a_init(step, path, shape):
        fn = os.path.join(restart_dir, str(step), f"{path}.lora_A.weight.npy")
        if not os.path.isfile(fn):
            raise BadInput(f"missing restart values {fn}")
        a = _load_npy(fn)
        if tuple(a.shape) != tuple(shape):
            raise BadInput(f"{fn}: shape {a.shape}, expected {shape}")
        return torch.from_numpy(np.asarray(a, dtype=np.float64)).to(dtype)

    trainer = tl.Trainer(model, tc, a_init=a_init, lora_ready=(tc.method != "full"))
    S = tc.steps
    losses = np.zeros(S)
    lrs = np.zeros(S)
    gns = np.zeros(S)
    for s in range(S):
        x = torch.from_numpy(batches[s, :, :-1].copy())
        y = torch.from_numpy(batches[s, :, 1:].copy())
        r = trainer.step(x, y)
        losses[s], lrs[s], gns[s] = r["loss"], r["lr"], r["grad_norm"]
        if not math.isfinite(r["loss"]):
            print(f"warning: non-finite loss at step {s}", file=sys.stderr)
    _save(os.path.join(args.out_dir, "losses.npy"), losses)
    _save(os.path.join(args.out_dir, "lrs.npy"), lrs)
    _save(os.path.join(args.out_dir, "grad_norms.npy"), gns)
    for n, t in tl.export_state(model).items():
        _save(os.path.join(args.out_dir, "final", n + ".npy"), t)

    last = f"{losses[-1]:.6f}" if S else "n/a"
    print(f"torch_reference: method={tc.method} dtype={args.dtype} B={x0.shape[0]} T={x0.shape[1]} "
          f"loss0={float(loss0):.6f} steps={S} last_loss={last} grads={len(named)} "
          f"restarts={[e for e in trainer.events]} time={time.time() - t0:.2f}s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BadInput as e:
        print(f"torch_reference: bad input: {e}", file=sys.stderr)
        sys.exit(2)
