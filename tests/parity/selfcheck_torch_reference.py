#!/usr/bin/python3
"""Self-check of tests/parity/torch_reference.py (and bench/torch_llama.py).

Builds IN_DIRs the way the engine would (config.json, weights/*.npy float32,
batches.npy int32, restarts/<step>/*.lora_A.weight.npy), runs the reference
script as a subprocess and checks:

 1. forward: logits equal an independent loop-based numpy float64 forward;
 2. gradients: central finite differences in float64 for a few entries of every
    parameter kind (full run and a LoRA run with some non-target projections);
 3. LoRA with B = 0 gives exactly the base model's logits;
 4. a merge (W += s B A, B = 0) leaves the logits unchanged;
 5. a 10-step ReLoRA run with restarts at 3 and 6 (reset and magnitude pruning)
    runs, losses are finite and decrease on a repeated batch, the LR is 0 at
    the restarts, and the engine's restart A values are the ones used;
 6. hand-written AdamW == torch.optim.AdamW (float64, full-rank, 5 steps);
 7. schedule and pruning helpers; bad input exits non-zero.

Usage: /usr/bin/python3 tests/parity/selfcheck_torch_reference.py [--keep]
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
REF = os.path.join(HERE, "torch_reference.py")
sys.path.insert(0, os.path.normpath(os.path.join(HERE, "..", "..", "bench")))
import torch_llama as tl  # noqa: E402

PY = sys.executable
FAILS = []


def check(cond, what):
    print(("  ok   " if cond else "  FAIL ") + what)
    if not cond:
        FAILS.append(what)


# ----------------------------------------------------------------------------
# Building inputs as the engine would
# ----------------------------------------------------------------------------

BASE_CFG = dict(d_model=16, d_ff=24, heads=2, layers=2, vocab=11, context=6, batch=2,
                rope_theta=10000.0, norm_eps=1e-6, method="full", targets=[], rank=3,
                scale=2.0, dropout=0.0, lr=3e-3, min_lr_ratio=0.1, warmup=2, steps=4,
                restart_steps=[], restart_warmup=2, prune="reset", prune_ratio=0.0,
                weight_decay=0.01, beta1=0.9, beta2=0.999, eps=1e-8, clip=1.0)


def base_names(cfg):
    n = ["model.embed_tokens.weight"]
    for i in range(cfg["layers"]):
        p = f"model.layers.{i}."
        n += [p + "input_layernorm.weight"]
        n += [p + f"self_attn.{x}_proj.weight" for x in "qkvo"]
        n += [p + "post_attention_layernorm.weight"]
        n += [p + f"mlp.{x}_proj.weight" for x in ("gate", "up", "down")]
    return n + ["model.norm.weight", "lm_head.weight"]


def random_weights(cfg, rng, b_nonzero=True):
    C, Fd, V = cfg["d_model"], cfg["d_ff"], cfg["vocab"]
    shapes = {}
    for n in base_names(cfg):
        if n.endswith("layernorm.weight") or n == "model.norm.weight":
            shapes[n] = (C,)
        elif n == "model.embed_tokens.weight" or n == "lm_head.weight":
            shapes[n] = (V, C)
        elif "gate_proj" in n or "up_proj" in n:
            shapes[n] = (Fd, C)
        elif "down_proj" in n:
            shapes[n] = (C, Fd)
        else:
            shapes[n] = (C, C)
    w = {}
    for n, s in shapes.items():
        if len(s) == 1:
            w[n] = (1.0 + 0.1 * rng.standard_normal(s)).astype(np.float32)
        else:
            # larger than 0.02 so gradients and nonlinearity are not trivial
            w[n] = (0.2 * rng.standard_normal(s)).astype(np.float32)
    if cfg["method"] != "full":
        r = cfg["rank"]
        for mod in tl.target_module_names(tl.ModelConfig(layers=cfg["layers"]), cfg["targets"]):
            W = w[mod + ".weight"]
            out_f, in_f = W.shape
            b = 1 / math.sqrt(in_f)
            w[mod + ".lora_A.weight"] = rng.uniform(-b, b, (r, in_f)).astype(np.float32)
            w[mod + ".lora_B.weight"] = ((0.1 * rng.standard_normal((out_f, r))) if b_nonzero
                                         else np.zeros((out_f, r))).astype(np.float32)
    return w


def write_in_dir(d, cfg, weights, batches, restarts=None):
    os.makedirs(os.path.join(d, "weights"), exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f)
    for n, a in weights.items():
        np.save(os.path.join(d, "weights", n + ".npy"), a)
    np.save(os.path.join(d, "batches.npy"), batches.astype(np.int32))
    for step, vals in (restarts or {}).items():
        rd = os.path.join(d, "restarts", str(step))
        os.makedirs(rd, exist_ok=True)
        for n, a in vals.items():
            np.save(os.path.join(rd, n + ".npy"), a)


def run_ref(in_dir, out_dir, expect_ok=True, extra=()):
    p = subprocess.run([PY, REF, in_dir, out_dir, *extra], capture_output=True, text=True)
    if expect_ok and p.returncode != 0:
        print(p.stdout, p.stderr)
    elif p.stdout.strip():
        print("    " + p.stdout.strip())
    return p


def load_dir(d):
    out = {}
    for fn in os.listdir(d):
        out[fn[:-4]] = np.load(os.path.join(d, fn))
    return out


# ----------------------------------------------------------------------------
# Independent numpy forward (loops, pairwise rotation) for the forward check
# ----------------------------------------------------------------------------


def numpy_forward(cfg, w, tokens):
    C, H, V = cfg["d_model"], cfg["heads"], cfg["vocab"]
    D = C // H
    eps, theta = cfg["norm_eps"], cfg["rope_theta"]
    w = {k: v.astype(np.float64) for k, v in w.items()}
    s = cfg["scale"]

    def lin(x, mod):
        W = w[mod + ".weight"]
        y = x @ W.T
        if mod + ".lora_A.weight" in w:
            y = y + s * (x @ w[mod + ".lora_A.weight"].T) @ w[mod + ".lora_B.weight"].T
        return y

    def rms(x, g):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g

    def rope(v, pos):  # v (D,), rotate pairs (i, i + D/2)
        out = np.empty_like(v)
        for i in range(D // 2):
            a = pos * theta ** (-2.0 * i / D)
            c, sn = math.cos(a), math.sin(a)
            x1, x2 = v[i], v[i + D // 2]
            out[i] = x1 * c - x2 * sn
            out[i + D // 2] = x2 * c + x1 * sn
        return out

    B, T = tokens.shape
    logits = np.zeros((B, T, V))
    for b in range(B):
        x = w["model.embed_tokens.weight"][tokens[b]]
        for l in range(cfg["layers"]):
            p = f"model.layers.{l}."
            h = rms(x, w[p + "input_layernorm.weight"])
            q = lin(h, p + "self_attn.q_proj")
            k = lin(h, p + "self_attn.k_proj")
            v = lin(h, p + "self_attn.v_proj")
            o = np.zeros((T, C))
            for hd in range(H):
                sl = slice(hd * D, (hd + 1) * D)
                for i in range(T):
                    qi = rope(q[i, sl], i)
                    sc = np.array([qi @ rope(k[j, sl], j) / math.sqrt(D) for j in range(i + 1)])
                    pr = np.exp(sc - sc.max())
                    pr /= pr.sum()
                    o[i, sl] = sum(pr[j] * v[j, sl] for j in range(i + 1))
            x = x + lin(o, p + "self_attn.o_proj")
            h = rms(x, w[p + "post_attention_layernorm.weight"])
            g = lin(h, p + "mlp.gate_proj")
            u = lin(h, p + "mlp.up_proj")
            x = x + lin(g / (1 + np.exp(-g)) * u, p + "mlp.down_proj")
        x = rms(x, w["model.norm.weight"])
        logits[b] = x @ w["lm_head.weight"].T
    return logits


# ----------------------------------------------------------------------------
# Finite differences with torch_llama in float64
# ----------------------------------------------------------------------------


def build_model(cfg, weights, dtype=torch.float64):
    mc = tl.ModelConfig(d_model=cfg["d_model"], d_ff=cfg["d_ff"], heads=cfg["heads"],
                        layers=cfg["layers"], vocab=cfg["vocab"], context=cfg["context"],
                        rope_theta=cfg["rope_theta"], norm_eps=cfg["norm_eps"])
    m = tl.LlamaForCausalLM(mc, dtype=dtype)
    if cfg["method"] != "full":
        tl.apply_lora(m, cfg["targets"], cfg["rank"], cfg["scale"], 0.0)
    tl.load_state(m, weights)
    return m


def kind_of(name):
    parts = name.split(".")
    if name.startswith("model.layers."):
        return ".".join(parts[3:])       # e.g. self_attn.q_proj.lora_A.weight
    return name


def fd_check(cfg, weights, batches, grads, rng, per_kind=3, h=1e-5):
    m = build_model(cfg, weights)
    x = torch.from_numpy(batches[0, :, :-1].astype(np.int64))
    y = torch.from_numpy(batches[0, :, 1:].astype(np.int64))
    named = dict(m.named_parameters())
    kinds = {}
    for n in grads:
        kinds.setdefault(kind_of(n), []).append(n)
    worst = 0.0
    n_checked = 0
    for kind, names in sorted(kinds.items()):
        kind_worst = 0.0
        for _ in range(per_kind):
            n = names[rng.integers(len(names))]
            p = named[n]
            idx = tuple(int(rng.integers(s)) for s in p.shape)
            if n == "model.embed_tokens.weight":  # pick a row that is used
                idx = (int(x[0, rng.integers(x.shape[1])]), idx[1])
            with torch.no_grad():
                orig = p[idx].item()
                p[idx] = orig + h
                lp = float(m.loss(x, y))
                p[idx] = orig - h
                lm = float(m.loss(x, y))
                p[idx] = orig
            fd = (lp - lm) / (2 * h)
            g = float(grads[n][idx])
            err = abs(fd - g) / (1e-6 + abs(fd))
            err_abs = abs(fd - g)
            e = min(err, err_abs / 1e-7)     # relative, or tiny absolute
            kind_worst = max(kind_worst, e)
            n_checked += 1
        worst = max(worst, kind_worst)
        check(kind_worst < 1e-4, f"FD grad {kind:45s} worst rel err {kind_worst:.2e}")
    return n_checked, worst


# ----------------------------------------------------------------------------


def main():
    keep = "--keep" in sys.argv
    tmp = tempfile.mkdtemp(prefix="torchref_selfcheck_")
    rng = np.random.default_rng(1234)
    torch.manual_seed(0)
    try:
        B, T = BASE_CFG["batch"], BASE_CFG["context"]

        # ---------- 1+2: full-rank ----------
        print("[full-rank: forward vs numpy loops, finite differences]")
        cfg = dict(BASE_CFG)
        wf = random_weights(cfg, rng)
        batches = rng.integers(0, cfg["vocab"], (cfg["steps"], B, T + 1))
        write_in_dir(os.path.join(tmp, "full_in"), cfg, wf, batches)
        p = run_ref(os.path.join(tmp, "full_in"), os.path.join(tmp, "full_out"))
        check(p.returncode == 0, "torch_reference full exits 0")
        out = os.path.join(tmp, "full_out")
        logits = np.load(os.path.join(out, "logits.npy"))
        ref = numpy_forward(cfg, wf, batches[0, :, :-1])
        err = np.abs(logits - ref).max() / np.abs(ref).max()
        check(logits.shape == (B, T, cfg["vocab"]) and logits.dtype == np.float32,
              f"logits shape {logits.shape} float32")
        check(err < 1e-6, f"logits == numpy loop forward (rel err {err:.1e})")
        # loss from the numpy logits
        lse = np.log(np.exp(ref - ref.max(-1, keepdims=True)).sum(-1)) + ref.max(-1)
        tgt = batches[0, :, 1:]
        nl = np.mean(lse - np.take_along_axis(ref, tgt[..., None], -1)[..., 0])
        l0 = float(np.load(os.path.join(out, "loss.npy"))[0])
        check(abs(nl - l0) < 1e-5, f"loss {l0:.6f} == numpy CE {nl:.6f}")
        grads = load_dir(os.path.join(out, "grads"))
        check(sorted(grads) == sorted(base_names(cfg)), f"full: grads for all {len(grads)} base tensors")
        fd_check(cfg, wf, batches, grads, rng)
        for k in ("losses", "lrs", "grad_norms"):
            a = np.load(os.path.join(out, k + ".npy"))
            check(a.shape == (cfg["steps"],) and a.dtype == np.float32 and np.all(np.isfinite(a)),
                  f"{k}.npy shape (S,) finite float32")
        lrs = np.load(os.path.join(out, "lrs.npy"))
        exp = [tl.lr_at(t, cfg["lr"], cfg["warmup"], cfg["steps"], cfg["min_lr_ratio"]) for t in range(cfg["steps"])]
        check(np.allclose(lrs, exp, rtol=1e-6, atol=0), f"lrs {np.round(lrs, 6).tolist()}")
        check(abs(np.load(os.path.join(out, "losses.npy"))[0] - l0) < 1e-6, "losses[0] == loss.npy")
        fin = load_dir(os.path.join(out, "final"))
        check(sorted(fin) == sorted(wf), "final/ holds every tensor")

        # ---------- 2: LoRA gradients (targets subset) ----------
        print("[lora: finite differences incl. non-target projections]")
        cfg = dict(BASE_CFG, method="lora", targets=["wq", "wv", "down", "up"])
        wl = random_weights(cfg, rng, b_nonzero=True)
        write_in_dir(os.path.join(tmp, "lora_in"), cfg, wl, batches)
        p = run_ref(os.path.join(tmp, "lora_in"), os.path.join(tmp, "lora_out"))
        check(p.returncode == 0, "torch_reference lora exits 0")
        grads = load_dir(os.path.join(tmp, "lora_out", "grads"))
        tgt_w = {m + ".weight" for m in tl.target_module_names(tl.ModelConfig(layers=cfg["layers"]), cfg["targets"])}
        expect = sorted([n for n in wl if n not in tgt_w])
        check(sorted(grads) == expect, f"lora: grads for {len(grads)} trainable tensors (targets' W excluded)")
        logits_lora = np.load(os.path.join(tmp, "lora_out", "logits.npy"))
        ref = numpy_forward(cfg, wl, batches[0, :, :-1])
        check(np.abs(logits_lora - ref).max() / np.abs(ref).max() < 1e-6, "lora logits == numpy loop forward")
        fd_check(cfg, wl, batches, grads, rng)
        fin = load_dir(os.path.join(tmp, "lora_out", "final"))
        check(all(np.array_equal(fin[n], wl[n]) for n in tgt_w), "lora: frozen target W unchanged after training")

        # ---------- 3: B = 0 -> exactly the base model ----------
        print("[lora with B = 0 == base model]")
        cfg0 = dict(cfg)
        wz = dict(wf)
        for n, a in random_weights(cfg0, rng, b_nonzero=False).items():
            if ".lora_" in n:
                wz[n] = a
        write_in_dir(os.path.join(tmp, "b0_in"), cfg0, wz, batches)
        run_ref(os.path.join(tmp, "b0_in"), os.path.join(tmp, "b0_out"))
        lb0 = np.load(os.path.join(tmp, "b0_out", "logits.npy"))
        lfull = np.load(os.path.join(tmp, "full_out", "logits.npy"))
        check(np.array_equal(lb0, lfull), "logits bit-identical to full-rank model (float64 and cast)")

        # ---------- 4: merge keeps logits ----------
        print("[merge W += sBA, B = 0 keeps logits]")
        wm = {k: v.copy() for k, v in wl.items()}
        for mod in (n[:-len(".weight")] for n in tgt_w):
            A = wm[mod + ".lora_A.weight"].astype(np.float64)
            Bm = wm[mod + ".lora_B.weight"].astype(np.float64)
            wm[mod + ".weight"] = (wm[mod + ".weight"].astype(np.float64) + cfg["scale"] * Bm @ A).astype(np.float32)
            wm[mod + ".lora_B.weight"] = np.zeros_like(wm[mod + ".lora_B.weight"])
        write_in_dir(os.path.join(tmp, "merge_in"), cfg, wm, batches)
        run_ref(os.path.join(tmp, "merge_in"), os.path.join(tmp, "merge_out"))
        lm = np.load(os.path.join(tmp, "merge_out", "logits.npy"))
        err = np.abs(lm - logits_lora).max() / np.abs(logits_lora).max()
        # float32 storage of the merged W is the only rounding
        check(err < 1e-5, f"merged logits == unmerged (rel err {err:.1e}, float32 weight storage)")
        # same, purely in float64 inside torch_llama (no storage rounding)
        m = build_model(cfg, wl)
        xx = torch.from_numpy(batches[0, :, :-1].astype(np.int64))
        with torch.no_grad():
            before = m(xx)
            tl.merge_lora(m)
            after = m(xx)
        err = float((after - before).abs().max() / before.abs().max())
        check(err < 1e-13, f"in-model float64 merge keeps logits (rel err {err:.1e})")

        # ---------- 5: ReLoRA run with restarts ----------
        for prune, ratio in (("reset", 0.0), ("magnitude", 0.9)):
            print(f"[relora 10 steps, restarts at 3 and 6, prune={prune}]")
            S = 10
            cfg = dict(BASE_CFG, method="relora", targets=list(tl.ALL_TARGETS), steps=S,
                       restart_steps=[3, 6], restart_warmup=2, prune=prune, prune_ratio=ratio,
                       warmup=1, lr=1e-2, rank=4, scale=1.0)
            wr = random_weights(cfg, rng, b_nonzero=True)
            one = rng.integers(0, cfg["vocab"], (1, B, T + 1))
            rep = np.repeat(one, S, axis=0)
            restarts = {}
            for st in cfg["restart_steps"]:
                restarts[st] = {n: rng.uniform(-0.25, 0.25, a.shape).astype(np.float32)
                                for n, a in wr.items() if n.endswith("lora_A.weight")}
            d_in = os.path.join(tmp, f"relora_{prune}_in")
            write_in_dir(d_in, cfg, wr, rep, restarts)
            p = run_ref(d_in, os.path.join(tmp, f"relora_{prune}_out"))
            check(p.returncode == 0, "torch_reference relora exits 0")
            out = os.path.join(tmp, f"relora_{prune}_out")
            losses = np.load(os.path.join(out, "losses.npy"))
            lrs = np.load(os.path.join(out, "lrs.npy"))
            print(f"    losses {np.round(losses, 4).tolist()}")
            print(f"    lrs    {np.round(lrs, 5).tolist()}")
            check(np.all(np.isfinite(losses)), "losses finite")
            check(losses[-1] < losses[0] - 0.05, f"loss decreased {losses[0]:.4f} -> {losses[-1]:.4f}")
            if prune == "reset":
                check(np.all(np.diff(losses) <= 1e-5), "losses non-increasing on the repeated batch")
            else:
                # magnitude pruning keeps the largest 10% of the *old* factors' moments,
                # which can push the fresh factors uphill for a step (ReLoRA semantics)
                bumps = int(np.sum(np.diff(losses) > 1e-5))
                print(f"    (magnitude pruning: {bumps} step(s) with a loss increase; not an error)")
            check(lrs[0] == 0 and lrs[3] == 0 and lrs[6] == 0 and lrs[4] > 0 and lrs[7] > 0,
                  "jagged schedule: lr 0 at warmup start and at each restart")
            exp = [tl.lr_at(t, cfg["lr"], cfg["warmup"], S, cfg["min_lr_ratio"], [3, 6], 2) for t in range(S)]
            check(np.allclose(lrs, exp, rtol=1e-6), "lrs follow the jagged cosine")
            # restart at step 6 has lr 0 -> the 7-step run ends with exactly the engine's A, B = 0
            cfg7 = dict(cfg, steps=7)
            d7 = os.path.join(tmp, f"relora7_{prune}_in")
            write_in_dir(d7, cfg7, wr, rep[:7], restarts)
            run_ref(d7, os.path.join(tmp, f"relora7_{prune}_out"))
            fin = load_dir(os.path.join(tmp, f"relora7_{prune}_out", "final"))
            okA = all(np.array_equal(fin[n], a) for n, a in restarts[6].items())
            okB = all(not fin[n].any() for n in fin if n.endswith("lora_B.weight"))
            check(okA and okB, "after restart (lr 0 step): A == engine's restart values, B == 0")
            # merges moved the frozen base weights
            moved = all(not np.array_equal(fin[n[:-len('.lora_A.weight')] + ".weight"],
                                           wr[n[:-len('.lora_A.weight')] + ".weight"]) for n in restarts[6])
            check(moved, "merged base weights differ from the initial ones")

        # ---------- 6: manual AdamW == torch.optim.AdamW ----------
        print("[hand-written AdamW vs torch.optim.AdamW, float64]")
        cfg = dict(BASE_CFG, steps=5, warmup=1)
        finals = []
        for opt in ("manual", "torch"):
            m = build_model(cfg, wf)
            tc = tl.TrainConfig(method="full", lr=cfg["lr"], warmup=1, steps=5, weight_decay=0.1,
                                clip=0.5, optimizer=opt)
            tr = tl.Trainer(m, tc)
            for s in range(5):
                tr.step(torch.from_numpy(batches[s % len(batches), :, :-1].astype(np.int64)),
                        torch.from_numpy(batches[s % len(batches), :, 1:].astype(np.int64)))
            finals.append(tl.export_state(m))
        err = max(float((finals[0][n] - finals[1][n]).abs().max()) for n in finals[0])
        check(err < 1e-12, f"final weights agree (max abs diff {err:.1e})")

        # ---------- 6b: full-rank warm start -> ReLoRA (general use / bench) ----------
        print("[warm start: 2 full-rank steps, then ReLoRA with a restart at 4]")
        for opt in ("manual", "torch"):
            m = build_model(dict(BASE_CFG), wf)
            tc = tl.TrainConfig(method="relora", targets=["wq", "gate"], rank=2, scale=1.0, lr=1e-2,
                                warmup=1, steps=7, restart_steps=[4], restart_warmup=2,
                                prune="magnitude", prune_ratio=0.5, warm_start_steps=2, optimizer=opt)
            tr = tl.Trainer(m, tc)
            had_lora, lrs, ls = [], [], []
            for s_ in range(7):
                r = tr.step(torch.from_numpy(batches[0, :, :-1].astype(np.int64)),
                            torch.from_numpy(batches[0, :, 1:].astype(np.int64)))
                had_lora.append(bool(tl.lora_modules(m)))
                lrs.append(r["lr"])
                ls.append(r["loss"])
            ok = (had_lora == [False, False] + [True] * 5 and lrs[2] == 0 and lrs[4] == 0
                  and lrs[3] > 0 and tr.events == ["warmstart->relora@2", "restart@4"]
                  and all(math.isfinite(v) for v in ls) and ls[-1] < ls[0])
            check(ok, f"{opt}: switch at 2, restart at 4, lr 0 at both, loss {ls[0]:.3f}->{ls[-1]:.3f}")

        # ---------- 7: helpers ----------
        print("[helpers]")
        x = torch.tensor([0.1, -0.5, 0.3, -0.05, 0.9, 0.0, 0.2, -0.7, 0.4, 0.6], dtype=torch.float64)
        y = x.clone()
        tl.prune_state_tensor(y, "magnitude", 0.5)
        q = np.quantile(np.abs(x.numpy()), 0.5)
        check(torch.equal(y, torch.where(x.abs() <= q, torch.zeros_like(x), x)),
              f"magnitude prune zeroes |x| <= quantile ({q:.3f}), kept {int((y != 0).sum())}/10")
        y = torch.randn(100000, dtype=torch.float64)
        tl.prune_state_tensor(y, "random", 0.3, torch.Generator().manual_seed(0))
        frac = float((y == 0).double().mean())
        check(abs(frac - 0.3) < 0.01, f"random prune zeroes ~30% ({frac:.3f})")
        y = torch.randn(5, 7)
        tl.prune_state_tensor(y, "reset")
        check(not y.any(), "reset prune zeroes all")
        check(tl.lr_at(5, 1.0, 10, 100, 0.1) == 0.5 and abs(tl.lr_at(100, 1.0, 10, 100, 0.1) - 0.1) < 1e-15
              and tl.lr_at(10, 1.0, 10, 100, 0.1) == 1.0, "cosine: warmup ramp, peak, floor at min_ratio")
        # torch.quantile size limit -> numpy path
        big = torch.rand(1 << 24)
        qb = tl._quantile_abs(big, 0.9)
        check(abs(qb - 0.9) < 1e-3, f"quantile of 2^24 elements via numpy ({qb:.4f})")

        # bad input
        bad = os.path.join(tmp, "bad_in")
        write_in_dir(bad, dict(BASE_CFG), {k: v for k, v in wf.items() if k != "lm_head.weight"}, batches)
        p = run_ref(bad, os.path.join(tmp, "bad_out"), expect_ok=False)
        check(p.returncode == 2 and "lm_head" in p.stderr, f"missing tensor -> exit {p.returncode}: {p.stderr.strip()[:90]}")
        p = run_ref(os.path.join(tmp, "nope"), os.path.join(tmp, "bad_out"), expect_ok=False)
        check(p.returncode == 2, f"missing IN_DIR -> exit {p.returncode}")
    finally:
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"\nselfcheck: {'FAILED ' + str(len(FAILS)) if FAILS else 'all checks passed'}")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
