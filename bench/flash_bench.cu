// Times the flash attention kernels (gpu/kernels/flash_attention.cuh) alone
// at a preset's shape, bf16, so kernel changes can be measured in seconds
// and held against PyTorch's (bench/torch_attention_bench.py). On the GPU
// machine, from the repository root:
//   nvcc -arch=sm_90 -std=c++20 -O3 -I. bench/flash_bench.cu -o /tmp/flash_bench && /tmp/flash_bench 32 8 512
#include "gpu/kernels/flash_attention.cuh"

#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace relora::gpu::flash;

#define CHECK(x)                                                                               \
    do {                                                                                       \
        cudaError_t e_ = (x);                                                                  \
        if (e_ != cudaSuccess) {                                                               \
            std::fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, cudaGetErrorString(e_));   \
            std::exit(1);                                                                      \
        }                                                                                      \
    } while (0)

template <typename F>
float microseconds(F&& launch, int reps) {
    cudaEvent_t a, b;
    CHECK(cudaEventCreate(&a));
    CHECK(cudaEventCreate(&b));
    for (int i = 0; i < 3; ++i) launch();
    CHECK(cudaEventRecord(a));
    for (int i = 0; i < reps; ++i) launch();
    CHECK(cudaEventRecord(b));
    CHECK(cudaEventSynchronize(b));
    float ms = 0.f;
    CHECK(cudaEventElapsedTime(&ms, a, b));
    CHECK(cudaGetLastError());
    return ms * 1000.f / reps;
}

int main(int argc, char** argv) {
    constexpr int D = 64;
    const int B = argc > 1 ? std::atoi(argv[1]) : 32, H = argc > 2 ? std::atoi(argv[2]) : 8,
              T = argc > 3 ? std::atoi(argv[3]) : 512;
    const size_t C = static_cast<size_t>(H) * D, N = static_cast<size_t>(B) * T;
    std::vector<__nv_bfloat16> host(N * 3 * C);
    srand(1);
    for (auto& v : host) v = __float2bfloat16(static_cast<float>(rand()) / RAND_MAX - 0.5f);
    __nv_bfloat16 *qkv, *out, *dout, *dqkv;
    float *lse, *delta, *rot;
    CHECK(cudaMalloc(&qkv, N * 3 * C * 2));
    CHECK(cudaMalloc(&dqkv, N * 3 * C * 2));
    CHECK(cudaMalloc(&out, N * C * 2));
    CHECK(cudaMalloc(&dout, N * C * 2));
    CHECK(cudaMalloc(&lse, N * H * 4));
    CHECK(cudaMalloc(&delta, N * H * 4));
    CHECK(cudaMalloc(&rot, static_cast<size_t>(T) * D * 4));
    CHECK(cudaMemcpy(qkv, host.data(), N * 3 * C * 2, cudaMemcpyHostToDevice));
    CHECK(cudaMemcpy(dout, host.data(), N * C * 2, cudaMemcpyHostToDevice));
    std::vector<float> tables(static_cast<size_t>(T) * D);
    for (int t = 0; t < T; ++t)
        for (int i = 0; i < D / 2; ++i) {
            const float a = t * std::pow(10000.f, -2.f * i / D);
            tables[t * D / 2 + i] = std::cos(a);
            tables[static_cast<size_t>(T) * D / 2 + t * D / 2 + i] = std::sin(a);
        }
    CHECK(cudaMemcpy(rot, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
    const float scale = 1.f / std::sqrt(static_cast<float>(D)), scaleLog2 = kLog2e * scale;
    const dim3 grid = flash_grid(B, H, T);
    const int reps = 50;
    const float fwd = microseconds([&] {
        flash_forward_kernel<D><<<grid, kThreadsFA>>>(out, lse, qkv, T, H, scaleLog2);
    }, reps);
    // dQ first: it writes the rows' deltas that dK/dV reads.
    const float dq = microseconds([&] {
        flash_backward_dq_kernel<D><<<grid, kThreadsFA>>>(dqkv, delta, dout, out, qkv, lse, rot,
                                                            rot + T * D / 2, T, H, scale, scaleLog2);
    }, reps);
    const float dkdv = microseconds([&] {
        flash_backward_dkdv_kernel<D><<<grid, kThreadsFA>>>(dqkv, dout, qkv, lse, delta, rot,
                                                              rot + T * D / 2, T, H, scale, scaleLog2);
    }, reps);
    const double flops = 4.0 * B * H * static_cast<double>(T) * T * D / 2;  // causal forward
    std::printf("B=%d H=%d T=%d D=%d bf16 causal\n", B, H, T, D);
    std::printf("forward %7.1f us (%.0f TFLOP/s)\n", fwd, flops / fwd * 1e-6);
    std::printf("dQ+delta %6.1f us\ndK/dV   %7.1f us\nbackward %6.1f us (%.0f TFLOP/s, 2.5x forward)\n",
                dq, dkdv, dkdv + dq, 2.5 * flops / (dkdv + dq) * 1e-6);
    return 0;
}
