// ReLoRA's restart (DESIGN §5): merge each adapter into its frozen weight,
// re-initialise the factors, and prune the factors' AdamW moments.
#pragma once

#include "core/LinearLayer.h"
#include "core/RunSpec.h"

#include <utility>
#include <vector>

namespace relora {

struct PruneConfig {
    PruneMode mode = PruneMode::Magnitude;
    float ratio = 0.9f;
};

// W += s·B·A; A ← Kaiming-uniform (bound 1/sqrt(in)) from `seed`; B ← 0.
void mergeAndReinit(Backend& be, LinearPart& part, uint64_t seed);

// Prunes the first and second moments of A and B (each tensor on its own;
// the optimizer's step count is not touched), then zeroes the first moment
// wherever the second one was pruned.
void pruneOptimizerState(Backend& be, LoRAAdapter& adapter, const PruneConfig& prune, uint64_t seed);
// The same for several adapters, each with its seed (random pruning), with
// all magnitude prunings in one backend call.
using AdapterSeed = std::pair<LoRAAdapter*, uint64_t>;
void pruneOptimizerState(Backend& be, const std::vector<AdapterSeed>& adapters, const PruneConfig& prune);

// Merges, re-initialises and prunes every adapter of the model. The seed of
// part p at restart k is mixSeed(runSeed, ...) so runs are reproducible.
void restartAll(Backend& be, const std::vector<LinearPart*>& parts, const PruneConfig& prune,
                uint64_t runSeed, int restartIndex);

}  // namespace relora
