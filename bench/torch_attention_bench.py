#!/usr/bin/env python3
"""Times PyTorch's causal attention (F.scaled_dot_product_attention, bf16,
the kernel torch.compile's model calls) at a preset's shape, forward and
forward + backward, so the engine's flash kernels can be held against it op
for op (the engine's side: RELORA_CUDA_PROFILE=1 relora bench ...).

  python3 bench/torch_attention_bench.py --batch 32 --heads 8 --context 512 --head-dim 64
"""
import argparse

import torch
import torch.nn.functional as F


def timed(fn, steps):
    for _ in range(3):
        fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize()
    start.record()
    for _ in range(steps):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) * 1000.0 / steps  # us a call


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--context", type=int, default=512)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--steps", type=int, default=50)
    a = ap.parse_args()
    shape = (a.batch, a.heads, a.context, a.head_dim)
    q, k, v = (torch.randn(shape, device="cuda", dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    dout = torch.randn(shape, device="cuda", dtype=torch.bfloat16)

    def forward():
        with torch.no_grad():
            F.scaled_dot_product_attention(q, k, v, is_causal=True)

    def forward_backward():
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.autograd.backward(out, dout, inputs=[q, k, v])

    fwd = timed(forward, a.steps)
    both = timed(forward_backward, a.steps)
    print(f"{torch.cuda.get_device_name()}  B={a.batch} H={a.heads} T={a.context} D={a.head_dim} causal bf16")
    print(f"sdpa forward            {fwd:8.1f} us")
    print(f"sdpa forward + backward {both:8.1f} us  (backward about {both - fwd:.1f} us)")


if __name__ == "__main__":
    main()
