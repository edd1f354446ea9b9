// Element-wise kernels on flat arrays of n floats: fill, axpy, scale, multiply.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

// x(n) = value
__global__ void fill_kernel(float* __restrict__ x, float value, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) x[i] = value;
}

// y(n) += alpha * x(n)   (multiply and add rounded separately, as the CPU does)
template <typename Y>
__global__ void axpy_kernel(Y* __restrict__ y, float alpha, const float* __restrict__ x, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads())
        storeAs(y + i, __fadd_rn(loadAsFloat(y + i), __fmul_rn(alpha, x[i])));
}

// x(n) *= alpha
__global__ void scale_kernel(float* __restrict__ x, float alpha, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) x[i] *= alpha;
}

// out(n) = a(n) * b(n); out may alias a or b (no __restrict__ here)
template <typename In>
__global__ void multiply_kernel(float* out, const In* a, const float* b, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) out[i] = loadAsFloat(a + i) * b[i];
}

}  // namespace relora::gpu
