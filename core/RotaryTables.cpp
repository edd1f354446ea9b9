#include "core/RotaryTables.h"

#include <cmath>

namespace relora {

bool RotaryTables::update(size_t positions, size_t headWidth, float base) {
    if (positions == T && headWidth == D && base == theta) return false;
    const size_t half = headWidth / 2;
    cos.assign(positions * half, 0.0f);
    sin.assign(positions * half, 0.0f);
    for (size_t i = 0; i < half; ++i) {
        const float invFreq = 1.0f / std::pow(base, static_cast<float>(2 * i) / static_cast<float>(headWidth));
        for (size_t t = 0; t < positions; ++t) {
            const float angle = static_cast<float>(t) * invFreq;
            cos[t * half + i] = std::cos(angle);
            sin[t * half + i] = std::sin(angle);
        }
    }
    T = positions;
    D = headWidth;
    theta = base;
    return true;
}

}  // namespace relora
