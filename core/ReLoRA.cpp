#include "core/ReLoRA.h"

#include "core/CounterRng.h"

#include <cmath>

namespace relora {

void mergeAndReinit(Backend& be, LinearPart& part, uint64_t seed) {
    LoRAAdapter& a = *part.lora;
    const size_t in = part.weight->cols, out = part.out, r = a.rank;
    be.gemm(false, false, out, in, r, a.scale, a.B->value, r, a.A->value, in, 1.0f,
            part.weight->value, in);
    be.fillUniform(a.A->value, a.A->count(), 1.0f / std::sqrt(static_cast<float>(in)), seed);
    be.fill(a.B->value, 0.0f, a.B->count());
}

void pruneOptimizerState(Backend& be, const std::vector<AdapterSeed>& adapters, const PruneConfig& prune) {
    std::vector<TensorRef> byMagnitude;
    for (const auto& [adapter, seed] : adapters) {
        uint64_t salt = 0;
        for (Parameter* p : {adapter->A, adapter->B}) {
            for (float* moment : {p->m, p->v}) {
                switch (prune.mode) {
                case PruneMode::Reset: be.fill(moment, 0.0f, p->count()); break;
                case PruneMode::Random: be.pruneRandom(moment, p->count(), prune.ratio, mixSeed(seed, salt)); break;
                case PruneMode::Magnitude: byMagnitude.push_back({moment, p->count()}); break;
                }
                ++salt;
            }
        }
    }
    if (!byMagnitude.empty()) be.pruneMagnitudeAll(byMagnitude, prune.ratio);
    // A first moment kept over a zeroed second one would step by lr·m̂/eps:
    // right after a restart B = 0 gives A no gradient, so nothing rebuilds
    // v before the rate climbs. Such entries lose their first moment too.
    for (const auto& [adapter, seed] : adapters)
        for (Parameter* p : {adapter->A, adapter->B}) be.zeroWhereZero(p->m, p->v, p->count());
}

void pruneOptimizerState(Backend& be, LoRAAdapter& adapter, const PruneConfig& prune, uint64_t seed) {
    pruneOptimizerState(be, {{&adapter, seed}}, prune);
}

void restartAll(Backend& be, const std::vector<LinearPart*>& parts, const PruneConfig& prune,
                uint64_t runSeed, int restartIndex) {
    const uint64_t restartSeed = mixSeed(runSeed, 0x5E5E7000ull + static_cast<uint64_t>(restartIndex));
    std::vector<AdapterSeed> adapters;
    for (LinearPart* part : parts) {
        if (!part->lora) continue;
        const uint64_t partSeed = mixSeed(restartSeed, part->layer * 8 + static_cast<size_t>(part->kind));
        mergeAndReinit(be, *part, partSeed);
        adapters.push_back({part->lora.get(), mixSeed(partSeed, 1)});
    }
    pruneOptimizerState(be, adapters, prune);
}

}  // namespace relora
