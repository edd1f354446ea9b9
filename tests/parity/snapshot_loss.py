#!/usr/bin/env python3
"""Load a snapshot into the independent PyTorch Llama and print its loss.

Usage: snapshot_loss.py SNAPSHOT.h5 INPUTS.npy TARGETS.npy [--dtype float64|float32]

Only the base names are loaded (no lora_A / lora_B / base_layer): a
snapshot's <module>.weight holds the effective weight, so a plain
LlamaForCausalLM (bench/torch_llama.py, Hugging Face names) must load it with
strict name and shape checking. The model sizes come from the root
attributes. INPUTS/TARGETS are int32 arrays (batch, context).

Prints "loss <mean cross-entropy>" and "tensors <count loaded>".
"""
import argparse
import os
import sys

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import torch_llama as tl  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("snapshot")
    ap.add_argument("inputs")
    ap.add_argument("targets")
    ap.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    args = ap.parse_args()
    dtype = getattr(torch, args.dtype)
    with h5py.File(args.snapshot, "r") as f:
        a = f.attrs
        cfg = tl.ModelConfig(d_model=int(a["d_model"]), d_ff=int(a["d_ff"]), heads=int(a["heads"]),
                             layers=int(a["layers"]), vocab=int(a["vocab"]), context=int(a["context"]),
                             rope_theta=float(a["rope_theta"]), norm_eps=float(a["norm_eps"]))
        state = {n: f[n][()] for n in f.keys() if ".lora_" not in n and ".base_layer." not in n}
    torch.manual_seed(0)
    model = tl.LlamaForCausalLM(cfg, dtype=dtype)
    loaded = tl.load_state(model, state, strict=True)
    model.eval()
    inputs = torch.from_numpy(np.load(args.inputs).astype(np.int64))
    targets = torch.from_numpy(np.load(args.targets).astype(np.int64))
    with torch.no_grad():
        loss = model.loss(inputs, targets)
    print(f"loss {float(loss):.12g}")
    print(f"tensors {len(loaded)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
