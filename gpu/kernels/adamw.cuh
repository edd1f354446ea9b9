// AdamW, reading the clip factor and skip flag from the device (state from
// finish_grad_norm_kernel), so no host round trip: on one tensor, and on
// every trainable tensor in one launch (multi_tensor.cuh finds the tensor).
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// One element: g is the clipped gradient; bc1/bc2 = 1 − β^step,
// decay = 1 − lr·weightDecay, as the CPU backend computes them.
__device__ inline void adamwElement(float& param, float& m, float& v, float g, float lr, float beta1,
                                    float beta2, float eps, float decay, float bc1, float bc2) {
    const float mi = beta1 * m + (1.0f - beta1) * g;
    const float vi = beta2 * v + (1.0f - beta2) * g * g;
    m = mi;
    v = vi;
    const float mhat = mi / bc1;
    const float vhat = vi / bc2;
    param = param * decay - lr * mhat / (sqrtf(vhat) + eps);
}

// param, grad, m, v: (n); state(3): [1] clip, [2] skip.
__global__ void adamw_kernel(float* __restrict__ param, const float* __restrict__ grad, float* __restrict__ m,
                             float* __restrict__ v, size_t n, float lr, float beta1, float beta2, float eps,
                             float decay, float bc1, float bc2, const float* __restrict__ state) {
    if (state[2] != 0.0f) return;
    const float clip = state[1];
    for (size_t i = globalThread(); i < n; i += gridThreads())
        adamwElement(param[i], m[i], v[i], grad[i] * clip, lr, beta1, beta2, eps, decay, bc1, bc2);
}

}  // namespace relora::gpu
