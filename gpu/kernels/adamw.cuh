// AdamW on one tensor, reading the clip factor and skip flag from the
// device (state from finish_grad_norm_kernel), so no host round trip.
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// param, grad, m, v: (n). bc1/bc2 = 1 − β^step (host-computed as the CPU
// backend does); decay = 1 − lr·weightDecay; state(3): [1] clip, [2] skip.
__global__ void adamw_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, size_t n, float lr, float beta1, float beta2, float eps,
                             float decay, float bc1, float bc2, const float* __restrict__ state) {
    if (state[2] != 0.0f) return;
    const float clip = state[1];
    for (size_t i = globalThread(); i < n; i += gridThreads()) {
        const float g = grad[i] * clip;
        const float mi = beta1 * m[i] + (1.0f - beta1) * g;
        const float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        const float mhat = mi / bc1;
        const float vhat = vi / bc2;
        param[i] = param[i] * decay - lr * mhat / (sqrtf(vhat) + eps);
    }
}

}  // namespace relora::gpu
