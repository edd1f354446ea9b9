// "Full-rank vs LoRA vs ReLoRA": three runs that differ only in the method,
// so that their curves can be compared one to one.
#pragma once

#include "core/RunSpec.h"

#include <vector>

namespace relora::ui {

// The base spec with method full, lora and relora, named "<base>-full",
// "<base>-lora", "<base>-relora" (a method suffix already on the base name
// is replaced). Model, data, seed, optimizer, steps, targets and ReLoRA's
// schedule are the same in all three.
std::vector<RunSpec> matchedMethodRuns(const RunSpec& base);

}  // namespace relora::ui
