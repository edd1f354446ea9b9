// Parameter counts of DESIGN §6: total, trainable, optimizer-state values,
// and the update size Σ rank_τ(ΔW)·(out + in).
#pragma once

#include "core/RunSpec.h"
#include "core/UpdateTracker.h"

#include <cstddef>
#include <deque>
#include <vector>

namespace relora {

struct Parameter;

struct ParameterCounts {
    size_t total = 0;
    size_t trainable = 0;
    size_t optimizerState = 0;   // AdamW keeps two values per trainable parameter
};

// Counts of a live model.
ParameterCounts countParameters(const std::deque<Parameter>& params);
// Closed forms from a spec alone (for the editor's derived figures and tests):
// `lowRank` says whether the LoRA adapters are in place (false during a
// full-rank warm start).
ParameterCounts expectedCounts(const RunSpec& spec, bool lowRank);
// Σ over measured matrices of rank_τ(ΔW) · (out + in).
size_t updateSize(const std::vector<MatrixUpdate>& updates);

}  // namespace relora
