// Rotary embedding tables ("rotate half", Hugging Face Llama): the cosine and
// sine of position · theta^(-2i/D) for every position t < T and pair i < D/2,
// in float32 exactly as Hugging Face computes them. Both backends build their
// tables here, so they rotate by bit-identical angles.
#pragma once

#include <cstddef>
#include <vector>

namespace relora {

struct RotaryTables {
    size_t T = 0, D = 0;
    float theta = 0;
    std::vector<float> cos, sin;  // (T, D/2) each

    // Rebuilds the tables for another shape or base; false when they already match.
    bool update(size_t positions, size_t headWidth, float base);
};

}  // namespace relora
