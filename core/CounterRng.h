// Counter-based random numbers: value i of stream `seed` is a pure function of
// (seed, i). Every backend (CPU loops, CUDA threads) draws the same numbers in
// any order and with any parallel split, so runs are reproducible across
// backends and resumable without saving generator state.
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define RELORA_HOST_DEVICE __host__ __device__
#else
#define RELORA_HOST_DEVICE
#endif

namespace relora {

RELORA_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// Derives an independent stream seed, e.g. mixSeed(runSeed, layer * 16 + matrix).
RELORA_HOST_DEVICE inline uint64_t mixSeed(uint64_t seed, uint64_t salt) {
    return splitmix64(seed ^ splitmix64(salt + 0x632BE59BD9B4E019ull));
}

// Uniform in [0, 1) with 24 random bits (exactly representable in float).
RELORA_HOST_DEVICE inline float uniform01(uint64_t seed, uint64_t i) {
    return static_cast<float>(splitmix64(seed ^ splitmix64(i)) >> 40) * (1.0f / 16777216.0f);
}

// Standard normal by Box-Muller from draws 2i and 2i+1.
RELORA_HOST_DEVICE inline float standardNormal(uint64_t seed, uint64_t i) {
    const float u1 = 1.0f - uniform01(seed, 2 * i);  // (0, 1]: log is finite
    const float u2 = uniform01(seed, 2 * i + 1);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.28318530717958647692f * u2);
}

}  // namespace relora
