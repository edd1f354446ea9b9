#include "core/ParameterCounts.h"

#include "core/LlamaModel.h"
#include "core/Parameter.h"

namespace relora {

ParameterCounts countParameters(const std::deque<Parameter>& params) {
    ParameterCounts c;
    for (const auto& p : params) {
        c.total += p.count();
        if (p.trainable) c.trainable += p.count();
        if (p.m) c.optimizerState += 2 * p.count();
    }
    return c;
}

ParameterCounts expectedCounts(const RunSpec& spec, bool lowRank) {
    ParameterCounts c;
    c.total = baseParameterCount(spec.model);
    c.trainable = c.total;
    if (lowRank && spec.isLowRank()) {
        const size_t L = static_cast<size_t>(spec.model.layers);
        const size_t r = static_cast<size_t>(spec.method.rank);
        for (TargetMatrix t : spec.method.targets) {
            const auto [out, in] = matrixShape(spec.model, t);
            c.total += L * r * (out + in);
            c.trainable += L * r * (out + in);
            c.trainable -= L * out * in;
        }
    }
    c.optimizerState = 2 * c.trainable;
    return c;
}

size_t updateSize(const std::vector<MatrixUpdate>& updates) {
    size_t total = 0;
    for (const auto& u : updates)
        total += static_cast<size_t>(u.ranks.thresholdRank) * (u.part->out + u.part->weight->cols);
    return total;
}

}  // namespace relora
