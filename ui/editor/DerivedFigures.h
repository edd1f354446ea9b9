// What a spec will cost, shown while it is edited: parameter counts (the
// engine's closed forms), optimizer-state memory, and rough estimates of
// peak memory and training time. The estimates count the model's buffers
// and floating-point operations; they say "about", not "exactly".
#pragma once

#include "core/ParameterCounts.h"
#include "core/RunSpec.h"

#include <optional>

namespace relora::ui {

struct DerivedFigures {
    ParameterCounts counts;                    // with the adapters in place (LoRA, ReLoRA)
    std::optional<ParameterCounts> warmStart;  // ReLoRA's full-rank warm start, when it has one
    double optimizerBytes = 0;                 // AdamW's two float32 moments, at the largest phase
    double memoryBytes = 0;                    // weights, gradients, moments, ΔW references, activations
    double flopsPerStep = 0;                   // a training step, forward and backward
    double seconds = 0;                        // training steps and evaluations at the given speed
};

// bf16Activations: the run's operand buffers take 2 bytes a value (the CUDA
// backend in bf16 precision), else 4.
DerivedFigures deriveFigures(const RunSpec& spec, double flopsPerSecond, bool bf16Activations = false);

// A floating-point rate to estimate with before any run was measured on the
// device ("cpu" or "cuda"); the workbench replaces it with measured speed.
double assumedFlopsPerSecond(const char* device);

}  // namespace relora::ui
