"""Independent PyTorch reference of the ReLoRA Workbench model and training step.

Written from the design spec (DESIGN.md sections 4, 5), not from the C++ engine.
Used by tests/parity/torch_reference.py (numerical parity, float64) and by
bench/torch_cpu_bench.py (CPU throughput, float32).

Works with torch 1.13 (Debian's /usr/bin/python3); no scaled_dot_product_attention
there, so attention is written out explicitly with a causal mask. On a CUDA
device with a torch that has F.scaled_dot_product_attention (2.x), attention
goes through SDPA (flash / memory-efficient kernels) instead: the GPU benchmark
(bench/torch_gpu_bench.py) uses that path; CPU tensors always take the explicit
path, so CPU numerics do not depend on the torch version.

Contents
--------
ModelConfig, LlamaForCausalLM           model with Hugging Face parameter names
LoRALinear, apply_lora, merge_lora      LoRA wrapper (PEFT factor names)
export_state, load_state                name -> tensor helpers
ManualAdamW                             AdamW written out by hand
clip_grad_norm_                         global-norm clipping
lr_at                                   cosine / jagged-cosine schedule
prune_state_tensor                      reset / random / magnitude pruning
Trainer                                 full / lora / relora (+ warm start) loop
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

PRESETS = {
    # name: (d_model, d_ff, heads, layers)
    "tiny": (256, 688, 4, 4),
    "60m": (512, 1376, 8, 8),
    "130m": (768, 2048, 12, 12),
}

# Engine target names -> module path inside a decoder layer.
TARGET_PATHS = {
    "wq": "self_attn.q_proj",
    "wk": "self_attn.k_proj",
    "wv": "self_attn.v_proj",
    "wo": "self_attn.o_proj",
    "gate": "mlp.gate_proj",
    "up": "mlp.up_proj",
    "down": "mlp.down_proj",
}
ALL_TARGETS = ["wq", "wk", "wv", "wo", "gate", "up", "down"]
# Accept Hugging Face short names too.
_TARGET_ALIASES = {
    "q_proj": "wq", "k_proj": "wk", "v_proj": "wv", "o_proj": "wo",
    "gate_proj": "gate", "up_proj": "up", "down_proj": "down",
}


def canonical_target(name: str) -> str:
    n = _TARGET_ALIASES.get(name, name)
    if n not in TARGET_PATHS:
        raise ValueError(f"unknown LoRA target {name!r} (expected one of {ALL_TARGETS})")
    return n


@dataclass
class ModelConfig:
    d_model: int = 256
    d_ff: int = 688
    heads: int = 4
    layers: int = 4
    vocab: int = 256
    context: int = 256
    rope_theta: float = 10000.0
    norm_eps: float = 1e-6

    @property
    def head_dim(self) -> int:
        return self.d_model // self.heads

    def validate(self) -> None:
        for k in ("d_model", "d_ff", "heads", "layers", "vocab", "context"):
            if int(getattr(self, k)) <= 0:
                raise ValueError(f"{k} must be positive")
        if self.d_model % self.heads != 0:
            raise ValueError("d_model must be divisible by heads")
        if self.head_dim % 2 != 0:
            raise ValueError("head dim must be even for rotary embeddings")

    @staticmethod
    def preset(name: str, vocab: int = 256, context: int = 256) -> "ModelConfig":
        c, f, h, l = PRESETS[name]
        return ModelConfig(d_model=c, d_ff=f, heads=h, layers=l, vocab=vocab, context=context)


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # y = x * rsqrt(mean(x^2) + eps) * w
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rope_cos_sin(T: int, D: int, theta: float, dtype, device=None):
    """cos, sin of shape (T, D), 'rotate half' layout (frequencies duplicated)."""
    # Computed in float64, then cast: the reference precision for both dtypes.
    inv_freq = theta ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)
    pos = torch.arange(T, dtype=torch.float64)
    ang = pos[:, None] * inv_freq[None, :]          # (T, D/2)
    emb = torch.cat((ang, ang), dim=-1)             # (T, D)
    return emb.cos().to(dtype=dtype, device=device), emb.sin().to(dtype=dtype, device=device)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    # x (B, H, T, D); cos/sin (T, D)
    return x * cos + rotate_half(x) * sin


class LoRALinear(nn.Module):
    """y = x W^T + s * (dropout(x) A^T) B^T ; W frozen.

    Parameter names: weight (W, out x in), lora_A.weight (r x in),
    lora_B.weight (out x r).
    """

    def __init__(self, weight: nn.Parameter, rank: int, scale: float, dropout: float = 0.0):
        super().__init__()
        out_f, in_f = weight.shape
        weight.requires_grad_(False)
        self.weight = weight
        self.in_features, self.out_features = in_f, out_f
        self.rank = rank
        self.scale = float(scale)
        self.dropout = float(dropout)
        dt, dev = weight.dtype, weight.device
        self.lora_A = nn.Linear(in_f, rank, bias=False).to(dtype=dt, device=dev)
        self.lora_B = nn.Linear(rank, out_f, bias=False).to(dtype=dt, device=dev)
        self.reset_lora()

    @torch.no_grad()
    def reset_lora(self, A: Optional[torch.Tensor] = None, generator=None) -> None:
        """A <- Kaiming-uniform (bound 1/sqrt(in)) or the given values; B <- 0."""
        if A is None:
            bound = 1.0 / math.sqrt(self.in_features)
            a = torch.empty(self.lora_A.weight.shape, dtype=torch.float32)
            a.uniform_(-bound, bound, generator=generator)
            self.lora_A.weight.copy_(a)
        else:
            if tuple(A.shape) != tuple(self.lora_A.weight.shape):
                raise ValueError(f"lora_A shape {tuple(A.shape)} != {tuple(self.lora_A.weight.shape)}")
            self.lora_A.weight.copy_(A)
        self.lora_B.weight.zero_()

    @torch.no_grad()
    def merge(self) -> None:
        """W += s * B @ A (B is not touched; callers reset it)."""
        self.weight.add_(self.scale * (self.lora_B.weight @ self.lora_A.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.linear(x, self.weight)
        xa = x
        if self.dropout > 0.0 and self.training:
            xa = F.dropout(x, p=self.dropout, training=True)
        return y + self.scale * self.lora_B(self.lora_A(xa))


_HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        C = cfg.d_model
        self.heads = cfg.heads
        self.head_dim = cfg.head_dim
        self.q_proj = nn.Linear(C, C, bias=False)
        self.k_proj = nn.Linear(C, C, bias=False)
        self.v_proj = nn.Linear(C, C, bias=False)
        self.o_proj = nn.Linear(C, C, bias=False)

    def forward(self, x, cos, sin, mask):
        B, T, C = x.shape
        H, D = self.heads, self.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, H, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, H, D).transpose(1, 2)
        q = apply_rope(q, cos, sin)
        k = apply_rope(k, cos, sin)
        if _HAS_SDPA and x.is_cuda:
            # Same function (causal softmax(q k^T / sqrt(D)) v), fused kernels.
            o = F.scaled_dot_product_attention(q, k, v, is_causal=True)
            return self.o_proj(o.transpose(1, 2).reshape(B, T, C))
        scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(D))   # (B,H,T,T)
        scores = scores.masked_fill(mask, float("-inf"))
        p = torch.softmax(scores, dim=-1)
        o = (p @ v).transpose(1, 2).reshape(B, T, C)
        return self.o_proj(o)


class MLP(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.up_proj = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.down_proj = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.d_model, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x


class LlamaModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab, cfg.d_model)
        self.layers = nn.ModuleList([DecoderLayer(cfg) for _ in range(cfg.layers)])
        self.norm = RMSNorm(cfg.d_model, cfg.norm_eps)


class LlamaForCausalLM(nn.Module):
    """Parameter names equal Hugging Face LlamaForCausalLM's."""

    def __init__(self, cfg: ModelConfig, dtype=torch.float32, init_std: float = 0.02,
                 generator: Optional[torch.Generator] = None):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.model = LlamaModel(cfg)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab, bias=False)
        self.to(dtype)
        self._rope_cache = {}
        self._mask_cache = {}
        self.init_weights(init_std, generator)

    @torch.no_grad()
    def init_weights(self, std: float = 0.02, generator=None) -> None:
        """N(0, std) for embedding and every matrix, ones for norms."""
        for name, p in self.named_parameters():
            if ".lora_" in name:
                continue
            if p.dim() == 1:
                p.fill_(1.0)
            else:
                t = torch.empty(p.shape, dtype=torch.float32)
                t.normal_(0.0, std, generator=generator)
                p.copy_(t)

    def _rope(self, T, dtype, device):
        key = (T, dtype, str(device))
        if key not in self._rope_cache:
            self._rope_cache[key] = rope_cos_sin(T, self.cfg.head_dim, self.cfg.rope_theta, dtype, device)
        return self._rope_cache[key]

    def _mask(self, T, device):
        key = (T, str(device))
        if key not in self._mask_cache:
            self._mask_cache[key] = torch.triu(torch.ones(T, T, dtype=torch.bool, device=device), diagonal=1)
        return self._mask_cache[key]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (B, T) int64 -> logits (B, T, V)."""
        B, T = idx.shape
        x = self.model.embed_tokens(idx)
        cos, sin = self._rope(T, x.dtype, x.device)
        mask = self._mask(T, x.device)
        for layer in self.model.layers:
            x = layer(x, cos, sin, mask)
        x = self.model.norm(x)
        return self.lm_head(x)

    def loss(self, idx: torch.Tensor, targets: torch.Tensor, return_logits: bool = False):
        logits = self(idx)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long())
        return (loss, logits) if return_logits else loss


# --------------------------------------------------------------------------
# LoRA helpers
# --------------------------------------------------------------------------


def target_module_names(cfg: ModelConfig, targets: Iterable[str]) -> List[str]:
    """Full module paths (e.g. model.layers.0.self_attn.q_proj) of all targets."""
    ts = [canonical_target(t) for t in targets]
    out = []
    for i in range(cfg.layers):
        for t in ALL_TARGETS:        # fixed order, whatever order given
            if t in ts:
                out.append(f"model.layers.{i}.{TARGET_PATHS[t]}")
    return out


def _get_parent(root: nn.Module, path: str):
    parts = path.split(".")
    m = root
    for p in parts[:-1]:
        m = getattr(m, p) if not p.isdigit() else m[int(p)]
    return m, parts[-1]


def apply_lora(model: LlamaForCausalLM, targets: Iterable[str], rank: int, scale: float,
               dropout: float = 0.0, generator=None) -> Dict[str, LoRALinear]:
    """Wrap every target projection in a LoRALinear (W frozen, A Kaiming, B 0)."""
    mods = {}
    for path in target_module_names(model.cfg, targets):
        parent, leaf = _get_parent(model, path)
        lin = getattr(parent, leaf)
        if isinstance(lin, LoRALinear):
            raise ValueError(f"{path} already has LoRA")
        lora = LoRALinear(lin.weight, rank, scale, dropout)
        lora.reset_lora(generator=generator)
        setattr(parent, leaf, lora)
        mods[path] = lora
    return mods


def lora_modules(model: nn.Module) -> Dict[str, LoRALinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, LoRALinear)}


def lora_scale(alpha: float, rank: int, rank_stabilised: bool = False) -> float:
    return alpha / math.sqrt(rank) if rank_stabilised else alpha / rank


@torch.no_grad()
def merge_lora(model: nn.Module, reset: bool = True) -> None:
    """W += s B A for every LoRA module; if reset, B <- 0 (A untouched)."""
    for m in lora_modules(model).values():
        m.merge()
        if reset:
            m.lora_B.weight.zero_()


# --------------------------------------------------------------------------
# State dict helpers (name -> tensor, HF / PEFT names)
# --------------------------------------------------------------------------


def export_state(model: nn.Module) -> Dict[str, torch.Tensor]:
    """All parameters (frozen ones included) by HF/PEFT name, detached clones."""
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@torch.no_grad()
def load_state(model: nn.Module, state: Dict[str, object], strict: bool = True) -> List[str]:
    """Copy tensors/arrays into the model's parameters by name.

    strict: every model parameter must be given and every given name must exist.
    Returns the list of names loaded.
    """
    params = dict(model.named_parameters())
    missing = [n for n in params if n not in state]
    unknown = [n for n in state if n not in params]
    if strict and (missing or unknown):
        raise KeyError(f"load_state: missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                       f"unknown {unknown[:5]}{'...' if len(unknown) > 5 else ''}")
    loaded = []
    for n, p in params.items():
        if n not in state:
            continue
        v = state[n]
        t = torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
        if tuple(t.shape) != tuple(p.shape):
            raise ValueError(f"load_state: {n} has shape {tuple(t.shape)}, expected {tuple(p.shape)}")
        p.copy_(t.to(dtype=p.dtype))
        loaded.append(n)
    return loaded


def trainable_named_params(model: nn.Module) -> Dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


# --------------------------------------------------------------------------
# Optimizer, clipping, schedule, pruning
# --------------------------------------------------------------------------


@torch.no_grad()
def global_grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor:
    sq = None
    for p in params:
        if p.grad is None:
            continue
        s = p.grad.pow(2).sum()
        sq = s if sq is None else sq + s
    if sq is None:
        return torch.tensor(0.0, dtype=torch.float64)
    return sq.sqrt()


@torch.no_grad()
def clip_grad_norm_(params: Sequence[torch.Tensor], clip: float) -> float:
    """total = sqrt(sum g^2); if clip > 0: g *= min(1, clip/(total+1e-6)). Returns total (pre-clip)."""
    params = [p for p in params if p.grad is not None]
    total = float(global_grad_norm(params))
    if clip > 0:
        coef = min(1.0, clip / (total + 1e-6))
        if coef < 1.0:
            for p in params:
                p.grad.mul_(coef)
    return total


class ManualAdamW:
    """AdamW written out by hand; state keyed by parameter name.

    For each trainable p with (clipped) grad g, t = global step count from 1:
        p -= lr*wd*p              (only for 2-D params: decoupled weight decay)
        m  = b1*m + (1-b1)*g
        v  = b2*v + (1-b2)*g^2
        p -= lr * (m/(1-b1^t)) / (sqrt(v/(1-b2^t)) + eps)
    """

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0):
        self.b1, self.b2, self.eps, self.wd = float(beta1), float(beta2), float(eps), float(weight_decay)
        self.state: Dict[str, Dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def step(self, named_params: Dict[str, torch.Tensor], lr: float, t: int) -> None:
        b1, b2 = self.b1, self.b2
        bc1 = 1.0 - b1 ** t
        bc2 = 1.0 - b2 ** t
        for name, p in named_params.items():
            g = p.grad
            if g is None:
                continue
            st = self.state.get(name)
            if st is None:
                st = {"m": torch.zeros_like(p), "v": torch.zeros_like(p)}
                self.state[name] = st
            m, v = st["m"], st["v"]
            if self.wd != 0.0 and p.dim() == 2:
                p.sub_(lr * self.wd * p)
            m.mul_(b1).add_(g, alpha=1.0 - b1)
            v.mul_(b2).addcmul_(g, g, value=1.0 - b2)
            denom = (v / bc2).sqrt_().add_(self.eps)
            p.sub_(lr * (m / bc1) / denom)

    def moments(self, name: str) -> List[torch.Tensor]:
        st = self.state.get(name)
        return [] if st is None else [st["m"], st["v"]]


def lr_at(t: int, lr_max: float, warmup: int, total: int, min_ratio: float,
          restarts: Optional[Sequence[int]] = None, restart_warmup: int = 0) -> float:
    """Cosine with linear warmup; jagged (ReLoRA) when restarts are given.

    lr(t) = lr_max * (t/W0 if t < W0 else min_ratio + (1-min_ratio)*0.5*(1+cos(pi*progress)))
    progress = clamp((t-W0)/(S-W0), 0, 1)
    jagged: R = largest restart <= t; if t-R < Wr: lr *= (t-R)/Wr
    """
    if warmup > 0 and t < warmup:
        lr = lr_max * t / warmup
    else:
        span = total - warmup
        progress = (t - warmup) / span if span > 0 else 1.0
        progress = min(1.0, max(0.0, progress))
        lr = lr_max * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))
    if restarts and restart_warmup > 0:
        past = [r for r in restarts if r <= t]
        if past:
            R = max(past)
            if t - R < restart_warmup:
                lr *= (t - R) / restart_warmup
    return lr


def _quantile_abs(a: torch.Tensor, p: float) -> float:
    flat = a.reshape(-1)
    # torch.quantile is limited to 2^24 elements; fall back to numpy (linear interp).
    if flat.numel() <= (1 << 24) - 1:
        return float(torch.quantile(flat, p))
    return float(np.quantile(flat.cpu().numpy(), p))


@torch.no_grad()
def prune_state_tensor(x: torch.Tensor, mode: str, ratio: float = 0.0, generator=None) -> None:
    """In-place pruning of one optimizer-state tensor.

    reset: zero all; random p: zero where U[0,1) < p; magnitude p: zero where |x| <= quantile(|x|, p).
    """
    if mode == "reset":
        x.zero_()
    elif mode == "random":
        u = torch.rand(x.shape, generator=generator, dtype=torch.float32)
        x.masked_fill_(u.to(x.device) < ratio, 0.0)
    elif mode == "magnitude":
        ax = x.abs()
        q = _quantile_abs(ax, ratio)
        x.masked_fill_(ax <= q, 0.0)
    else:
        raise ValueError(f"unknown prune mode {mode!r}")


# --------------------------------------------------------------------------
# Training loop
# --------------------------------------------------------------------------


@dataclass
class TrainConfig:
    method: str = "full"                 # full | lora | relora
    targets: List[str] = field(default_factory=lambda: list(ALL_TARGETS))
    rank: int = 8
    scale: float = 1.0                   # s (alpha/r or alpha/sqrt(r)), already computed
    dropout: float = 0.0
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup: int = 0
    steps: int = 1
    restart_steps: List[int] = field(default_factory=list)
    restart_warmup: int = 0
    prune: str = "reset"                 # reset | random | magnitude
    prune_ratio: float = 0.0
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    clip: float = 1.0
    warm_start_steps: int = 0            # full-rank steps before switching to ReLoRA
    optimizer: str = "manual"            # manual | torch (torch.optim.AdamW foreach, bench)

    def validate(self) -> None:
        if self.method not in ("full", "lora", "relora"):
            raise ValueError(f"method must be full|lora|relora, got {self.method!r}")
        if self.method != "full":
            if self.rank <= 0:
                raise ValueError("rank must be positive")
            if not self.targets:
                raise ValueError("LoRA/ReLoRA needs at least one target")
            for t in self.targets:
                canonical_target(t)
        if self.prune not in ("reset", "random", "magnitude"):
            raise ValueError(f"prune must be reset|random|magnitude, got {self.prune!r}")
        if self.prune != "reset" and not (0.0 <= self.prune_ratio <= 1.0):
            raise ValueError("prune_ratio must be in [0, 1]")
        if any(int(r) <= 0 for r in self.restart_steps):
            raise ValueError("restart steps must be > 0")
        if self.warm_start_steps < 0:
            raise ValueError("warm_start_steps must be >= 0")
        if self.warm_start_steps > 0 and self.method != "relora":
            raise ValueError("warm start only applies to relora")
        if self.optimizer not in ("manual", "torch"):
            raise ValueError("optimizer must be manual|torch")


class Trainer:
    """Runs full / LoRA / ReLoRA training step by step.

    a_init(step, module_path, shape) -> tensor or None: supplies the new A values
    at a ReLoRA restart (the parity harness reads them from the engine's files);
    None means draw Kaiming-uniform in Python.
    """

    def __init__(self, model: LlamaForCausalLM, cfg: TrainConfig,
                 a_init: Optional[Callable[[int, str, tuple], Optional[torch.Tensor]]] = None,
                 generator: Optional[torch.Generator] = None, lora_ready: bool = False):
        cfg.validate()
        self.model = model
        self.cfg = cfg
        self.a_init = a_init
        self.gen = generator
        self.t = 0                       # updates done (Adam step count = t+1 during step t)
        # Restart points of the jagged schedule (the warm-start switch counts as one).
        rs = sorted(set(int(r) for r in cfg.restart_steps)) if cfg.method == "relora" else []
        if cfg.method == "relora" and cfg.warm_start_steps > 0:
            rs = sorted(set(rs) | {cfg.warm_start_steps})
        self.schedule_restarts = rs
        # Merges happen at the configured restarts while LoRA is live (the switch
        # step itself creates fresh factors instead of merging).
        self.merge_steps = set(int(r) for r in cfg.restart_steps) if cfg.method == "relora" else set()
        self.lora_active = False
        if cfg.method in ("lora", "relora") and cfg.warm_start_steps == 0:
            if not lora_ready:
                apply_lora(model, cfg.targets, cfg.rank, cfg.scale, cfg.dropout, generator)
            self.lora_active = True
        elif lora_ready:
            raise ValueError("lora_ready with warm start / full method")
        self._build_optimizer()
        self.events: List[str] = []

    # -- optimizer ---------------------------------------------------------
    def _build_optimizer(self) -> None:
        self.named = trainable_named_params(self.model)
        c = self.cfg
        if c.optimizer == "manual":
            if not hasattr(self, "opt") or not isinstance(getattr(self, "opt", None), ManualAdamW):
                self.opt = ManualAdamW(c.beta1, c.beta2, c.eps, c.weight_decay)
        else:
            decay = [p for p in self.named.values() if p.dim() == 2]
            no_decay = [p for p in self.named.values() if p.dim() != 2]
            groups = [{"params": decay, "weight_decay": c.weight_decay}]
            if no_decay:
                groups.append({"params": no_decay, "weight_decay": 0.0})
            self.opt = torch.optim.AdamW(groups, lr=c.lr, betas=(c.beta1, c.beta2), eps=c.eps,
                                         foreach=True)

    def _moments(self, name: str, p: torch.Tensor) -> List[torch.Tensor]:
        if isinstance(self.opt, ManualAdamW):
            return self.opt.moments(name)
        st = self.opt.state.get(p, {})
        return [st[k] for k in ("exp_avg", "exp_avg_sq") if k in st]

    # -- schedule ----------------------------------------------------------
    def lr(self, t: int) -> float:
        c = self.cfg
        return lr_at(t, c.lr, c.warmup, c.steps, c.min_lr_ratio,
                     self.schedule_restarts if c.method == "relora" else None, c.restart_warmup)

    # -- restarts ----------------------------------------------------------
    @torch.no_grad()
    def restart(self, step: int) -> None:
        """Merge W += sBA, re-init A (given or Kaiming), B = 0, prune Adam moments of A and B."""
        c = self.cfg
        for path, m in lora_modules(self.model).items():
            m.merge()
            A = None
            if self.a_init is not None:
                A = self.a_init(step, path, tuple(m.lora_A.weight.shape))
            m.reset_lora(A, generator=self.gen)
            for fac in ("lora_A", "lora_B"):
                name = f"{path}.{fac}.weight"
                p = getattr(m, fac).weight
                moments = self._moments(name, p)
                for st in moments:
                    prune_state_tensor(st, c.prune, c.prune_ratio, self.gen)
                if len(moments) == 2:
                    # m follows a pruned v: otherwise Adam steps by lr*m/eps
                    # while B = 0 leaves A without gradient after the restart.
                    moments[0].masked_fill_(moments[1] == 0, 0.0)
        self.events.append(f"restart@{step}")

    def switch_to_relora(self, step: int) -> None:
        c = self.cfg
        apply_lora(self.model, c.targets, c.rank, c.scale, c.dropout, self.gen)
        self.lora_active = True
        old = self.opt
        self._build_optimizer()
        if not isinstance(old, ManualAdamW):
            # carry moments of still-trainable params across (new groups)
            for p in self.named.values():
                if p in old.state:
                    self.opt.state[p] = old.state[p]
        self.events.append(f"warmstart->relora@{step}")

    # -- one update --------------------------------------------------------
    def step(self, inputs: torch.Tensor, targets: torch.Tensor) -> Dict[str, float]:
        c = self.cfg
        t = self.t
        if c.method == "relora":
            if c.warm_start_steps > 0 and t == c.warm_start_steps and not self.lora_active:
                self.switch_to_relora(t)
            elif self.lora_active and t in self.merge_steps and t > 0:
                self.restart(t)
        lr = self.lr(t)
        self.model.train()
        for p in self.named.values():
            p.grad = None
        loss = self.model.loss(inputs, targets)
        loss.backward()
        params = list(self.named.values())
        gnorm = clip_grad_norm_(params, c.clip)
        if isinstance(self.opt, ManualAdamW):
            self.opt.step(self.named, lr, t + 1)
        else:
            for g in self.opt.param_groups:
                g["lr"] = lr
            self.opt.step()
        self.t += 1
        return {"loss": float(loss.detach()), "lr": lr, "grad_norm": gnorm}
