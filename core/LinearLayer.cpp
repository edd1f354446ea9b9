#include "core/LinearLayer.h"

#include "core/CounterRng.h"

namespace relora {

bool FusedLinear::allPartsTrainable() const {
    for (const auto& p : parts)
        if (!p.weight->trainable) return false;
    return true;
}

void FusedLinear::forward(Backend& be, const float* x, float* y, size_t N, float beta,
                          bool training, uint64_t dropoutSeed) const {
    be.gemm(false, true, N, outTotal, in, 1.0f, x, in, weight, in, beta, y, outTotal);
    for (const auto& part : parts) {
        const LoRAAdapter* a = part.lora.get();
        if (!a) continue;
        const float* xa = x;
        if (training && a->dropout > 0.0f) {
            be.dropoutMask(a->mask, N * in, a->dropout,
                           mixSeed(dropoutSeed, part.layer * 8 + static_cast<size_t>(part.kind)));
            be.multiply(a->xDropped, x, a->mask, N * in);
            xa = a->xDropped;
        }
        be.gemm(false, true, N, a->rank, in, 1.0f, xa, in, a->A->value, in, 0.0f, a->u, a->rank);
        be.gemm(false, true, N, part.out, a->rank, a->scale, a->u, a->rank, a->B->value, a->rank,
                1.0f, y + part.outOffset, outTotal);
    }
}

void FusedLinear::backward(Backend& be, const float* dy, const float* x, float* dx, size_t N,
                           float beta) const {
    be.gemm(false, false, N, in, outTotal, 1.0f, dy, outTotal, weight, in, beta, dx, in);
    if (allPartsTrainable()) {
        be.gemm(true, false, outTotal, in, N, 1.0f, dy, outTotal, x, in, 0.0f, grad, in);
    } else {
        for (const auto& part : parts)
            if (part.weight->trainable)
                be.gemm(true, false, part.out, in, N, 1.0f, dy + part.outOffset, outTotal, x, in,
                        0.0f, part.weight->grad, in);
    }
    for (const auto& part : parts) {
        const LoRAAdapter* a = part.lora.get();
        if (!a) continue;
        const float* dyPart = dy + part.outOffset;
        const size_t r = a->rank;
        const float* xa = a->dropout > 0.0f ? a->xDropped : x;
        // dB = s · dyᵀ u ;  du = s · dy B ;  dA = duᵀ x̃ ;  dx += (du A) ⊙ mask
        be.gemm(true, false, part.out, r, N, a->scale, dyPart, outTotal, a->u, r, 0.0f,
                a->B->grad, r);
        be.gemm(false, false, N, r, part.out, a->scale, dyPart, outTotal, a->B->value, r, 0.0f,
                a->du, r);
        be.gemm(true, false, r, in, N, 1.0f, a->du, r, xa, in, 0.0f, a->A->grad, in);
        if (a->dropout > 0.0f) {
            // The masked input is no longer needed: reuse it for du·A.
            be.gemm(false, false, N, in, r, 1.0f, a->du, r, a->A->value, in, 0.0f, a->xDropped, in);
            be.multiply(a->xDropped, a->xDropped, a->mask, N * in);
            be.axpy(dx, 1.0f, a->xDropped, N * in);
        } else {
            be.gemm(false, false, N, in, r, 1.0f, a->du, r, a->A->value, in, 1.0f, dx, in);
        }
    }
}

}  // namespace relora
