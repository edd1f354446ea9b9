#include "ui/editor/DerivedFigures.h"

#include "core/LlamaModel.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace relora::ui {
namespace {

constexpr double kFloat = 4;   // bytes: weights, moments and the residual stream are float32

// Matrix parameters a token passes through (the embedding is a lookup).
double matrixParameters(const ModelSpec& m) {
    const double C = m.dModel, F = m.dFF;
    return m.layers * (4 * C * C + 3 * C * F) + static_cast<double>(m.vocab) * C;
}

// Forward + backward operations of one token. A trained matrix costs 6 per
// parameter (forward, input gradient, weight gradient); a frozen one 4 (no
// weight gradient); causal attention 2·T·C per layer forward (QKᵀ and PV,
// half the square), three times that with its backward.
double flopsPerToken(const RunSpec& spec, bool lowRank) {
    const ModelSpec& m = spec.model;
    double frozen = 0, adapters = 0;
    if (lowRank && spec.isLowRank()) {
        for (TargetMatrix t : spec.method.targets) {
            const auto [out, in] = matrixShape(m, t);
            frozen += static_cast<double>(m.layers) * out * in;
            adapters += static_cast<double>(m.layers) * spec.method.rank * (out + in);
        }
    }
    const double trained = matrixParameters(m) - frozen + adapters;
    const double attention = 2.0 * m.context * m.dModel * m.layers;
    return 6 * trained + 4 * frozen + 3 * attention;
}

// The buffers LlamaModel keeps for a batch: in float32 the residual streams,
// the norms' 1/rms, the attention state (B·H·T² probabilities, or B·H·T
// with the flash kernels of the bf16 mode) and the backward pass's residual
// gradient; as operand buffers (Backend::allocateOperand) the other saved
// activations, N·(6C + 2F) per layer, one chunk of logits (then its gradient),
// and the other work buffers.
struct ActivationFloats {
    double fp32 = 0, operand = 0;
};

ActivationFloats activationFloats(const RunSpec& spec, bool bf16Activations) {
    const ModelSpec& m = spec.model;
    const double B = spec.train.batch, T = m.context, C = m.dModel, F = m.dFF, N = B * T, V = m.vocab;
    const double headRows = static_cast<double>(LlamaModel::headChunkRows(
        static_cast<size_t>(N), static_cast<size_t>(V), LlamaModel::kHeadChunkElements));
    const double state = bf16Activations ? B * m.heads * T : B * m.heads * T * T;
    ActivationFloats a;
    a.fp32 = m.layers * (N * C + 2 * N + state) + (m.layers + 1) * N * C + N * (2 * C + 2);
    a.operand = m.layers * N * (6 * C + 2 * F) + N * (5 * C + 4 * F) + headRows * V;
    return a;
}

double targetFloats(const RunSpec& spec) {
    double total = 0;
    for (TargetMatrix t : spec.method.targets) {
        const auto [out, in] = matrixShape(spec.model, t);
        total += static_cast<double>(spec.model.layers) * out * in;
    }
    return total;
}

}  // namespace

double assumedFlopsPerSecond(const char* device) {
    // A laptop core sustains a few tens of GFLOP/s in float32 BLAS; a data
    // centre GPU in bf16 some hundred TFLOP/s, of which small models use a part.
    return std::strcmp(device, "cuda") == 0 ? 5e13 : 2e10;
}

DerivedFigures deriveFigures(const RunSpec& spec, double flopsPerSecond, bool bf16Activations) {
    DerivedFigures f;
    const bool relora = spec.method.kind == Method::ReLoRA;
    const bool warmStart = relora && spec.relora.warmStartSteps > 0;
    f.counts = expectedCounts(spec, true);
    if (warmStart) f.warmStart = expectedCounts(spec, false);
    const double trainable = static_cast<double>(std::max(f.counts.trainable, f.warmStart ? f.warmStart->trainable : 0));
    f.optimizerBytes = 2 * trainable * kFloat;
    const double total = static_cast<double>(f.counts.total);
    // ΔW is measured against a copy of every target matrix (UpdateTracker).
    const ActivationFloats activations = activationFloats(spec, bf16Activations);
    f.memoryBytes = kFloat * (total + trainable + 2 * trainable + targetFloats(spec) + activations.fp32) +
                    (bf16Activations ? 2 : kFloat) * activations.operand;

    const double tokens = static_cast<double>(spec.train.batch) * spec.model.context;
    const double steps = spec.train.steps;
    const double warmSteps = warmStart ? std::min<double>(spec.relora.warmStartSteps, steps) : 0;
    f.flopsPerStep = tokens * flopsPerToken(spec, true);
    const double training = tokens * (warmSteps * flopsPerToken(spec, false) +
                                      (steps - warmSteps) * flopsPerToken(spec, true));
    // An evaluation runs eval_batches forward passes (a third of a step each).
    const double evaluations = spec.train.evalInterval > 0 ? steps / spec.train.evalInterval + 1 : 1;
    const double evaluation = evaluations * spec.train.evalBatches * tokens * flopsPerToken(spec, false) / 3;
    f.seconds = flopsPerSecond > 0 ? (training + evaluation) / flopsPerSecond : 0;
    return f;
}

}  // namespace relora::ui
