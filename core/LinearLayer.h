// FusedLinear: y(N, out) = x(N, in) · Wᵀ for one or more projections that share
// an input (q|k|v, gate|up) and are stored as one (out, in) matrix, so the
// frozen or full-rank part is one large product. Each part may carry a LoRA
// adapter: y_part += s · (dropout(x) · Aᵀ) · Bᵀ, with A (r, in), B (part_out, r).
// A frozen part gets no weight gradient: that is where LoRA saves arithmetic.
//
// The A factors of a group's adapters are stacked into one (R, in) matrix,
// R = Σ r, so x·Aᵀ and duᵀ·x are one product for the group instead of thin
// ones per part. Without dropout the adapters are also folded into an
// effective weight W + s·B·A once per forward (an r-sized product,
// independent of the batch): the batch-sized products are then exactly those
// of full-rank training and the adapters add only x·Aᵀ, dyᵀ·u, dy·B, duᵀ·x.
// The model folds every group at once (fold(), Backend::foldLowRank) before
// its layers run, so that the backend can batch the small products.
#pragma once

#include "core/Backend.h"
#include "core/Parameter.h"
#include "core/RunSpec.h"

#include <memory>
#include <vector>

namespace relora {

struct LoRAAdapter {
    Parameter* A = nullptr;     // (r, in): rows [offset, offset + r) of the stacked A
    Parameter* B = nullptr;     // (out, r)
    size_t rank = 0;
    size_t offset = 0;          // first row in the stacked A, first column of u
    float scale = 1.0f;         // s = alpha / r (or alpha / sqrt(r))
    float dropout = 0.0f;
    float* mask = nullptr;      // (N, in) inverted-dropout mask, only with dropout
    float* xDropped = nullptr;  // (N, in) masked input, only with dropout
};

struct LinearPart {
    TargetMatrix kind;
    size_t layer = 0;
    size_t out = 0;             // rows of this part
    size_t outOffset = 0;       // its first column in the fused output rows
    Parameter* weight = nullptr;
    std::unique_ptr<LoRAAdapter> lora;
};

class FusedLinear {
public:
    size_t in = 0, outTotal = 0;
    float* weight = nullptr;     // (outTotal, in) fused storage of all parts
    float* grad = nullptr;       // (outTotal, in)
    std::vector<LinearPart> parts;

    // Adapters (set up by LlamaModel::enableLoRA).
    size_t loraRows = 0;         // R = Σ r over the parts with adapters
    float* loraA = nullptr;      // (R, in) stacked A factors
    float* loraAGrad = nullptr;  // (R, in)
    float* u = nullptr;          // (N, R) dropout(x) · Aᵀ, saved for backward
    float* du = nullptr;         // (N, R) scratch, shared by every group of the model
    float* effective = nullptr;  // (outTotal, in) W + s·B·A; only without dropout

    // What makes `effective` (only with it): forward() and backward() use
    // it as it was last folded.
    LowRankFold fold() const;

    // y(N, outTotal) = addend + x·Wᵀ + every part's LoRA term; addend is an
    // (N, outTotal) residual stream (it may be y) or null for none. In
    // training, LoRA dropout draws fresh masks from dropoutSeed; otherwise it
    // is off.
    void forward(Backend& be, const float* x, float* y, size_t N, const float* addend, bool training,
                 uint64_t dropoutSeed) const;
    // From dy(N, outTotal): dx(N, in) = beta·dx + dy·W + LoRA terms; weight
    // gradients of trainable parts; dA, dB of adapters. Follows a training
    // forward() on the same x.
    void backward(Backend& be, const float* dy, const float* x, float* dx, size_t N,
                  float beta) const;
    // backward() in two halves, for a caller that makes x in between: the
    // first needs no x (dx, and the adapters' du), the second gives the
    // weight and adapter gradients from x.
    void backwardInput(Backend& be, const float* dy, float* dx, size_t N, float beta) const;
    void backwardWeights(Backend& be, const float* dy, const float* x, size_t N) const;
    bool allPartsTrainable() const;
    bool anyPartTrainable() const;
};

}  // namespace relora
