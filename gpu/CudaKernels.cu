// CudaBackend: element-wise and model kernels (fills, random draws,
// embedding, RMSNorm, RoPE, SwiGLU, cross entropy). The kernels themselves
// live in kernels/*.cuh; this file sizes the launches.
#include "gpu/CudaBackendImpl.h"

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/cross_entropy.cuh"
#include "gpu/kernels/elementwise.cuh"
#include "gpu/kernels/embedding.cuh"
#include "gpu/kernels/random.cuh"
#include "gpu/kernels/rmsnorm.cuh"
#include "gpu/kernels/rope.cuh"
#include "gpu/kernels/swiglu.cuh"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <cmath>
#include <type_traits>

namespace relora::gpu {

void CudaBackend::fill(float* x, float value, size_t count) {
    RELORA_OP_WRITES("fill", {x, count});
    if (count == 0) return;
    fill_kernel<<<gridFor(count), kThreads, 0, stream_>>>(x, value, count);
    CUDA_CHECK_LAUNCH("fill_kernel");
}

void CudaBackend::axpy(float* y, float alpha, const float* x, size_t n) {
    RELORA_OP_WRITES("axpy", {y, n});
    if (n == 0) return;
    beforeRead(x, n);
    withStorage(y, [&](auto* out) { axpy_kernel<<<gridFor(n), kThreads, 0, stream_>>>(out, alpha, x, n); });
    CUDA_CHECK_LAUNCH("axpy_kernel");
}

void CudaBackend::scale(float* x, float alpha, size_t n) {
    RELORA_OP_WRITES("scale", {x, n});
    if (n == 0) return;
    scale_kernel<<<gridFor(n), kThreads, 0, stream_>>>(x, alpha, n);
    CUDA_CHECK_LAUNCH("scale_kernel");
}

void CudaBackend::multiply(float* out, const float* a, const float* b, size_t n) {
    RELORA_OP_WRITES("multiply", {out, n});
    if (n == 0) return;
    withStorage(a, [&](const auto* in) { multiply_kernel<<<gridFor(n), kThreads, 0, stream_>>>(out, in, b, n); });
    CUDA_CHECK_LAUNCH("multiply_kernel");
}

void CudaBackend::fillNormal(float* x, size_t n, float stddev, uint64_t seed) {
    RELORA_OP_WRITES("fillNormal", {x, n});
    if (n == 0) return;
    fill_normal_kernel<<<gridFor(n), kThreads, 0, stream_>>>(x, n, stddev, seed);
    CUDA_CHECK_LAUNCH("fill_normal_kernel");
}

void CudaBackend::fillUniform(float* x, size_t n, float bound, uint64_t seed) {
    RELORA_OP_WRITES("fillUniform", {x, n});
    if (n == 0) return;
    fill_uniform_kernel<<<gridFor(n), kThreads, 0, stream_>>>(x, n, bound, seed);
    CUDA_CHECK_LAUNCH("fill_uniform_kernel");
}

void CudaBackend::dropoutMask(float* mask, size_t n, float p, uint64_t seed) {
    RELORA_OP_WRITES("dropoutMask", {mask, n});
    if (n == 0) return;
    const float keep = 1.0f / (1.0f - p);
    dropout_mask_kernel<<<gridFor(n), kThreads, 0, stream_>>>(mask, n, p, keep, seed);
    CUDA_CHECK_LAUNCH("dropout_mask_kernel");
}

void CudaBackend::pruneRandom(float* x, size_t n, float p, uint64_t seed) {
    RELORA_OP_WRITES("pruneRandom", {x, n});
    if (n == 0) return;
    prune_random_kernel<<<gridFor(n), kThreads, 0, stream_>>>(x, n, p, seed);
    CUDA_CHECK_LAUNCH("prune_random_kernel");
}

void CudaBackend::embeddingForward(float* out, const int32_t* tokens, const float* table, size_t N,
                                   size_t C) {
    RELORA_OP_WRITES("embeddingForward", {out, N * C});
    if (N == 0 || C == 0) return;
    const bool byFour = C % 4 == 0 && aligned16(out) && aligned16(table);
    const dim3 threads = rowsBlock(byFour ? C / 4 : C);
    const unsigned blocks = static_cast<unsigned>(std::min<size_t>((N + threads.y - 1) / threads.y, 65535));
    if (byFour) embedding_forward_kernel<float4><<<blocks, threads, 0, stream_>>>(out, tokens, table, N, C);
    else embedding_forward_kernel<float><<<blocks, threads, 0, stream_>>>(out, tokens, table, N, C);
    CUDA_CHECK_LAUNCH("embedding_forward_kernel");
}

void CudaBackend::embeddingBackward(float* dtable, const float* dout, const int32_t* tokens, size_t N,
                                    size_t C, size_t V) {
    RELORA_OP("embeddingBackward");
    if (N == 0 || C == 0) return;
    if (N > static_cast<size_t>(INT32_MAX)) throw std::runtime_error("embeddingBackward: too many tokens");
    const int n = static_cast<int>(N);
    // Stable radix sort of (token, position): runs of equal tokens with
    // their positions ascending, i.e. the CPU backend's summation order.
    // Tokens lie in [0, V), so only their low bits need sorting (15 of 32
    // for a vocabulary of 32000: two digit passes instead of four).
    int keyBits = 1;
    while (keyBits < 31 && (size_t{1} << keyBits) < V) ++keyBits;
    auto* keysOut = static_cast<int32_t*>(ensure(sortKeysOut_, N * sizeof(int32_t)));
    auto* valuesIn = static_cast<int32_t*>(ensure(sortValuesIn_, N * sizeof(int32_t)));
    auto* valuesOut = static_cast<int32_t*>(ensure(sortValuesOut_, N * sizeof(int32_t)));
    size_t tempBytes = 0;
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, tempBytes, tokens, keysOut, valuesIn, valuesOut, n, 0,
                                               keyBits, stream_));
    void* temp = ensure(sortTemp_, tempBytes);
    iota_kernel<<<gridFor(N), kThreads, 0, stream_>>>(valuesIn, N);
    CUDA_CHECK_LAUNCH("iota_kernel");
    CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp, tempBytes, tokens, keysOut, valuesIn, valuesOut, n, 0, keyBits,
                                               stream_));
    const int threads = static_cast<int>(std::min<size_t>(256, (C + 31) / 32 * 32));
    const unsigned blocks = static_cast<unsigned>(std::min<size_t>(N, 65535));
    embedding_backward_kernel<<<blocks, threads, 0, stream_>>>(dtable, dout, keysOut, valuesOut, N, C);
    CUDA_CHECK_LAUNCH("embedding_backward_kernel");
}

void CudaBackend::rmsnormForward(float* out, float* rstd, const float* x, const float* w, size_t N, size_t C,
                                 float eps) {
    RELORA_OP_WRITES("rmsnormForward", {out, N * C}, {rstd, N});
    if (N == 0) return;
    // One warp per row, kThreads/32 rows per block.
    const bool byFour = C % 4 == 0 && aligned16(out) && aligned16(x) && aligned16(w);
    const unsigned blocks = gridFor(N * 32);
    withStorage(out, [&](auto* o) {
        // Rows of the presets' widths (512, 768) in registers.
        if (byFour && C <= 4 * 32 * 4)
            rmsnorm_forward_kernel<float4, 4><<<blocks, kThreads, 0, stream_>>>(o, rstd, x, w, N, C, eps);
        else if (byFour && C <= 4 * 32 * 6)
            rmsnorm_forward_kernel<float4, 6><<<blocks, kThreads, 0, stream_>>>(o, rstd, x, w, N, C, eps);
        else if (byFour)
            rmsnorm_forward_kernel<float4, 0><<<blocks, kThreads, 0, stream_>>>(o, rstd, x, w, N, C, eps);
        else
            rmsnorm_forward_kernel<float, 0><<<blocks, kThreads, 0, stream_>>>(o, rstd, x, w, N, C, eps);
    });
    CUDA_CHECK_LAUNCH("rmsnorm_forward_kernel");
}

void CudaBackend::rmsnormBackward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                                  const float* rstd, size_t N, size_t C) {
    RELORA_OP_WRITES("rmsnormBackward", {dx, N * C}, {dw, C});
    if (N == 0 || C == 0) return;
    // Shared memory holds one C-wide dw row per warp: as many warps as fit
    // in 48 KiB, at most 8.
    const size_t maxWarps = (48 * 1024) / (C * sizeof(float));
    if (maxWarps == 0)
        throw std::runtime_error("rmsnormBackward: width " + std::to_string(C) + " exceeds 12288 columns");
    const size_t warps = std::min<size_t>(8, maxWarps);
    // A fixed number of blocks for a given N: the summation order, and so
    // the result, depends on the shapes only. Two blocks per SM, all resident
    // at once (a register-held row of 768 takes 110 registers a thread), each
    // warp's row loads all in flight together, keep the memory busy: 56.5 us
    // at 16384 x 512 against 57.8 with four, 82.8 against 84.2 at 768 (H100).
    const size_t targetBlocks = static_cast<size_t>(std::max(1, smCount_)) * 2;
    const size_t rowsPerBlock = std::max<size_t>(warps, (N + targetBlocks - 1) / targetBlocks);
    const size_t blocks = (N + rowsPerBlock - 1) / rowsPerBlock;
    auto* partial = static_cast<float*>(ensure(rmsPartials_, blocks * C * sizeof(float)));
    const dim3 grid(static_cast<unsigned>(blocks)), block(static_cast<unsigned>(warps * 32));
    const size_t shared = warps * C * sizeof(float);
    const bool byFour = C % 4 == 0 && aligned16(dx) && aligned16(dout) && aligned16(x) && aligned16(w);
    // bf16 mode: the projection before the norm takes dx as a bf16 operand
    // for its dX and dW (and its adapters'), so the kernel writes that copy
    // into the operand cache as it goes.
    __nv_bfloat16* dx16 = bf16_ ? claimBf16Operand(dx, N, C, C) : nullptr;
    // dout in bf16 when the products before the norm write an operand buffer.
    withStorage(dout, [&](const auto* g) {
        // Rows of the presets' widths (512, 768) in registers.
        if (byFour && C <= 4 * 32 * 4)
            rmsnorm_backward_kernel<float4, 4><<<grid, block, shared, stream_>>>(dx, dx16, partial, g, x, w, rstd,
                                                                                N, C, rowsPerBlock);
        else if (byFour && C <= 4 * 32 * 6)
            rmsnorm_backward_kernel<float4, 6><<<grid, block, shared, stream_>>>(dx, dx16, partial, g, x, w, rstd,
                                                                                N, C, rowsPerBlock);
        else if (byFour)
            rmsnorm_backward_kernel<float4, 0><<<grid, block, shared, stream_>>>(dx, dx16, partial, g, x, w, rstd,
                                                                                N, C, rowsPerBlock);
        else
            rmsnorm_backward_kernel<float, 0><<<grid, block, shared, stream_>>>(dx, dx16, partial, g, x, w, rstd,
                                                                               N, C, rowsPerBlock);
    });
    CUDA_CHECK_LAUNCH("rmsnorm_backward_kernel");
    rmsnorm_dw_reduce_kernel<<<static_cast<unsigned>((C + 31) / 32), 256, 0, stream_>>>(dw, partial, blocks, C);
    CUDA_CHECK_LAUNCH("rmsnorm_dw_reduce_kernel");
}

const float* CudaBackend::rotaryTables(size_t T, size_t D, float theta) {
    if (rotary_.update(T, D, theta)) {
        const size_t n = rotary_.cos.size();
        auto* tables = static_cast<float*>(ensure(ropeTables_, 2 * n * sizeof(float)));
        upload(tables, rotary_.cos.data(), n);
        upload(tables + n, rotary_.sin.data(), n);
    }
    return static_cast<const float*>(ropeTables_.ptr);
}

void CudaBackend::rotateQueriesKeys(float* x, size_t B, size_t T, size_t H, size_t D, float theta,
                                    bool inverse) {
    const size_t half = D / 2, rowStride = 3 * H * D;
    if (B * T * H * half == 0) return;
    const float* tables = rotaryTables(T, D, theta);
    const unsigned rows = static_cast<unsigned>(std::min<size_t>(B * T, 65535));
    const float sign = inverse ? -1.0f : 1.0f;
    // Four pairs a thread where every row's x1s and x2s stay aligned.
    const bool byFour = half % 4 == 0 && rowStride % 4 == 0 && aligned16(x);
    // A block as wide as a row's work (whole warps), at most kThreads.
    const size_t groups = 2 * H * half / (byFour ? 4 : 1);
    const unsigned threads = static_cast<unsigned>(std::min<size_t>(kThreads, (groups + 31) / 32 * 32));
    const float* sinTable = tables + T * half;
    withStorage(x, [&](auto* v) {
        if (byFour)
            rope_kernel<4><<<rows, threads, 0, stream_>>>(v, tables, sinTable, B, T, 2 * H, D, rowStride, sign);
        else
            rope_kernel<1><<<rows, threads, 0, stream_>>>(v, tables, sinTable, B, T, 2 * H, D, rowStride, sign);
    });
    CUDA_CHECK_LAUNCH("rope_kernel");
}

void CudaBackend::swigluForward(float* out, const float* gu, size_t N, size_t F) {
    RELORA_OP_WRITES("swigluForward", {out, N * F});
    if (N * F == 0) return;
    const unsigned blocks = static_cast<unsigned>(std::min<size_t>(N, 65535));
    const bool vec4 = F % 4 == 0 && aligned16(out) && aligned16(gu);
    withStorage(out, [&](auto* o) {
        withStorage(gu, [&](const auto* g) {
            if (vec4) swiglu_forward_kernel<true><<<blocks, kThreads, 0, stream_>>>(o, g, N, F);
            else swiglu_forward_kernel<false><<<blocks, kThreads, 0, stream_>>>(o, g, N, F);
        });
    });
    CUDA_CHECK_LAUNCH("swiglu_forward_kernel");
}

void CudaBackend::swigluBackward(float* dgu, const float* dout, const float* gu, size_t N, size_t F, float* out) {
    RELORA_OP_WRITES("swigluBackward", {dgu, N * 2 * F}, {out, N * F});
    if (N * F == 0) return;
    if (out && (storedBf16(out) != nullptr) != (storedBf16(dgu) != nullptr))
        throw std::logic_error("swigluBackward: the activation and the gradient must have the same storage");
    const unsigned blocks = static_cast<unsigned>(std::min<size_t>(N, 65535));
    const bool vec4 = F % 4 == 0 && aligned16(dgu) && aligned16(dout) && aligned16(gu) && (!out || aligned16(out));
    withStorage(dgu, [&](auto* d) {
        using Grad = std::remove_pointer_t<decltype(d)>;
        Grad* o = nullptr;
        if constexpr (std::is_same_v<Grad, float>) o = out;
        else o = out ? storedBf16(out) : nullptr;
        withStorage(gu, [&](const auto* g) {
            withStorage(dout, [&](const auto* dy) {
                if (vec4) swiglu_backward_kernel<true><<<blocks, kThreads, 0, stream_>>>(d, o, dy, g, N, F);
                else swiglu_backward_kernel<false><<<blocks, kThreads, 0, stream_>>>(d, o, dy, g, N, F);
            });
        });
    });
    CUDA_CHECK_LAUNCH("swiglu_backward_kernel");
}

void CudaBackend::crossEntropy(float* dlogits, float* losses, const float* logits, const int32_t* targets,
                               size_t N, size_t V, float gradScale) {
    // It writes losses and dlogits only, so the operand cache keeps the
    // rest: the head weight's bf16 copy, made by a chunk's forward product,
    // then serves that chunk's dX product and the next chunks (one
    // conversion of the (V, C) weight a step instead of two a chunk).
    beforeWrites({{losses, N}, {dlogits, dlogits ? N * V : 0}});
    beforeRead(logits, N * V);
    forgetBf16OperandsIn(losses, losses + N);
    if (dlogits) forgetBf16OperandsIn(dlogits, dlogits + N * V);
    ProfScope prof(*this, "crossEntropy");
    if (N == 0) return;
    const unsigned blocks = static_cast<unsigned>(std::min<size_t>(N, 65535));
    const int threads = V >= 4096 ? 512 : 256;
    // logits and dlogits in bf16 (operand buffers) when the head's products write and take them so.
    withStorage(logits, [&](const auto* z) {
        withStorage(dlogits, [&](auto* d) {
            const size_t rowThreads = ((V / 4 + kRowInRegisters - 1) / kRowInRegisters + 31) / 32 * 32;
            const bool vec4 = V % 4 == 0 && aligned16(z) && aligned16(d);
            if (vec4 && rowThreads > kSplitThreads && rowThreads <= 2 * kSplitThreads)
                cross_entropy_split_kernel<<<2 * std::min<unsigned>(blocks, 32767), kSplitThreads, 0, stream_>>>(
                    d, losses, z, targets, N, V, gradScale);
            else if (vec4 && rowThreads <= 512)
                cross_entropy_row_kernel<<<blocks, static_cast<unsigned>(rowThreads), 0, stream_>>>(
                    d, losses, z, targets, N, V, gradScale);
            else if (vec4)
                cross_entropy_kernel<true><<<blocks, threads, 0, stream_>>>(d, losses, z, targets, N, V, gradScale);
            else
                cross_entropy_kernel<false><<<blocks, threads, 0, stream_>>>(d, losses, z, targets, N, V, gradScale);
        });
    });
    CUDA_CHECK_LAUNCH("cross_entropy_kernel");
}

}  // namespace relora::gpu
