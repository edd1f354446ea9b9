#include "core/LinearLayer.h"

#include "core/CounterRng.h"

#include <optional>

namespace relora {

bool FusedLinear::allPartsTrainable() const {
    for (const auto& p : parts)
        if (!p.weight->trainable) return false;
    return true;
}

namespace {

// Whether the adapted parts' dB products are one strided batch: equal
// shapes and scales, and their dy columns, u columns and B gradients each a
// fixed step apart.
bool evenlySpaced(const std::vector<const LinearPart*>& adapted) {
    const LinearPart& p0 = *adapted[0];
    const LoRAAdapter& a0 = *p0.lora;
    const size_t outStep = adapted[1]->outOffset - p0.outOffset, uStep = adapted[1]->lora->offset - a0.offset;
    for (size_t i = 1; i < adapted.size(); ++i) {
        const LinearPart& p = *adapted[i];
        const LoRAAdapter& a = *p.lora;
        if (p.out != p0.out || a.rank != a0.rank || a.scale != a0.scale || p.outOffset != p0.outOffset + i * outStep ||
            a.offset != a0.offset + i * uStep || a.B->grad != a0.B->grad + i * p0.out * a0.rank)
            return false;
    }
    return true;
}

}  // namespace

bool FusedLinear::anyPartTrainable() const {
    for (const auto& p : parts)
        if (p.weight->trainable) return true;
    return false;
}

LowRankFold FusedLinear::fold() const {
    LowRankFold f{effective, weight, outTotal, in, {}};
    for (const auto& part : parts)
        if (const LoRAAdapter* a = part.lora.get())
            f.terms.push_back({a->B->value, a->A->value, part.outOffset, part.out, a->rank, a->scale});
    return f;
}

void FusedLinear::forward(Backend& be, const float* x, float* y, size_t N, const float* addend,
                          bool training, uint64_t dropoutSeed) const {
    const size_t R = loraRows;
    const auto product = [&](const float* w) {
        if (addend) be.gemmAdd(false, true, N, outTotal, in, 1.0f, x, in, w, in, addend, y, outTotal);
        else be.gemm(false, true, N, outTotal, in, 1.0f, x, in, w, in, 0.0f, y, outTotal);
    };
    if (effective) {
        product(effective);
        // u only feeds the adapters' dB.
        if (training) {
            const DeferredProducts scope(be);
            be.gemm(false, true, N, R, in, 1.0f, x, in, loraA, in, 0.0f, u, R);
        }
        return;
    }
    product(weight);
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
        float* ua = u + a->offset;  // (N, r) columns of u, row stride R
        be.gemm(false, true, N, a->rank, in, 1.0f, xa, in, a->A->value, in, 0.0f, ua, R);
        be.gemm(false, true, N, part.out, a->rank, a->scale, ua, R, a->B->value, a->rank, 1.0f,
                y + part.outOffset, outTotal);
    }
}

void FusedLinear::backward(Backend& be, const float* dy, const float* x, float* dx, size_t N,
                           float beta) const {
    backwardInput(be, dy, dx, N, beta);
    backwardWeights(be, dy, x, N);
}

void FusedLinear::backwardInput(Backend& be, const float* dy, float* dx, size_t N, float beta) const {
    const size_t R = loraRows;
    be.gemm(false, false, N, in, outTotal, 1.0f, dy, outTotal, effective ? effective : weight, in,
            beta, dx, in);
    // du = s · dy B; with the effective weight (whose product above already
    // holds the adapters' share of dx) it only feeds dA.
    {
        std::optional<DeferredProducts> scope;
        if (effective) scope.emplace(be);
        for (const auto& part : parts)
            if (const LoRAAdapter* a = part.lora.get())
                be.gemm(false, false, N, a->rank, part.out, a->scale, dy + part.outOffset, outTotal, a->B->value,
                        a->rank, 0.0f, du + a->offset, R);
    }
    if (effective) return;
    // Otherwise dx += du A, masked where the adapter had dropout; the masked
    // input's own use (dA = duᵀ x̃) comes first, as its buffer is reused.
    for (const auto& part : parts) {
        const LoRAAdapter* a = part.lora.get();
        if (!a) continue;
        const float* dua = du + a->offset;
        if (a->dropout > 0.0f) {
            be.gemm(true, false, a->rank, in, N, 1.0f, dua, R, a->xDropped, in, 0.0f, a->A->grad, in);
            be.gemm(false, false, N, in, a->rank, 1.0f, dua, R, a->A->value, in, 0.0f, a->xDropped, in);
            be.multiply(a->xDropped, a->xDropped, a->mask, N * in);
            be.axpy(dx, 1.0f, a->xDropped, N * in);
        } else {
            be.gemm(false, false, N, in, a->rank, 1.0f, dua, R, a->A->value, in, 1.0f, dx, in);
        }
    }
}

void FusedLinear::backwardWeights(Backend& be, const float* dy, const float* x, size_t N) const {
    const size_t R = loraRows;
    const DeferredProducts scope(be);
    if (allPartsTrainable()) {
        be.gemm(true, false, outTotal, in, N, 1.0f, dy, outTotal, x, in, 0.0f, grad, in);
    } else {
        for (const auto& part : parts)
            if (part.weight->trainable)
                be.gemm(true, false, part.out, in, N, 1.0f, dy + part.outOffset, outTotal, x, in,
                        0.0f, part.weight->grad, in);
    }
    // dB = s · dyᵀ u, for alike adapters at even spacing as one batch.
    std::vector<const LinearPart*> adapted;
    for (const auto& part : parts)
        if (part.lora) adapted.push_back(&part);
    if (const size_t n = adapted.size(); n > 1 && evenlySpaced(adapted)) {
        const LinearPart& p0 = *adapted[0];
        const LoRAAdapter& a0 = *p0.lora;
        be.gemmStridedBatched(true, false, p0.out, a0.rank, N, a0.scale, dy + p0.outOffset, outTotal,
                              adapted[1]->outOffset - p0.outOffset, u + a0.offset, R,
                              adapted[1]->lora->offset - a0.offset, 0.0f, a0.B->grad, a0.rank,
                              p0.out * a0.rank, n);
    } else {
        for (const LinearPart* part : adapted) {
            const LoRAAdapter& a = *part->lora;
            be.gemm(true, false, part->out, a.rank, N, a.scale, dy + part->outOffset, outTotal, u + a.offset, R,
                    0.0f, a.B->grad, a.rank);
        }
    }
    // dA = duᵀ x: for the whole stack, or per adapter without dropout
    // (backwardInput took those with dropout).
    if (effective) {
        if (R) be.gemm(true, false, R, in, N, 1.0f, du, R, x, in, 0.0f, loraAGrad, in);
        return;
    }
    for (const auto& part : parts) {
        const LoRAAdapter* a = part.lora.get();
        if (a && a->dropout <= 0.0f)
            be.gemm(true, false, a->rank, in, N, 1.0f, du + a->offset, R, x, in, 0.0f, a->A->grad, in);
    }
}

}  // namespace relora
