// Fused cross entropy: per-token loss and, optionally, gradScale·(softmax −
// onehot) in fp32 (it may be written over the logits) or bf16 (the output
// head's products take it as it is). Logits are fp32 or bf16 (an operand
// buffer: the head's product writes them so, as PyTorch's autocast does). One block per row. Rows of up to
// kRowInRegisters·4 values per thread (the output head's 32000 at 512
// threads) are read once into registers: max, sum of exp and the gradient
// from there. Otherwise an online max/sum-of-exp pass, then the gradient
// pass over memory; float4 loads and stores where the rows allow.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

#include <cooperative_groups.h>

#include <cstdint>

namespace relora::gpu {

// Merge (m, s) pairs: s·e^{m−M} + s'·e^{m'−M}, M = max(m, m').
__device__ inline void mergeMaxSum(float& m, float& s, float m2, float s2) {
    if (m2 == -INFINITY) return;
    if (m == -INFINITY) { m = m2; s = s2; return; }
    const float M = fmaxf(m, m2);
    s = s * expf(m - M) + s2 * expf(m2 - M);
    m = M;
}

// gradScale · (softmax − onehot) of one logit z, given the row's log-sum-exp.
__device__ inline float logitGrad(float z, float lse, bool target, float gradScale) {
    const float g = expf(z - lse) * gradScale;
    return target ? g - gradScale : g;
}

// One logit into the running (max, sum of exp) of a thread.
__device__ inline void addLogit(float& m, float& s, float z) {
    if (z > m) { s = s * expf(m - z) + 1.0f; m = z; }
    else s += expf(z - m);
}

// logits(N,V), targets(N) -> losses(N); dlogits(N,V) or null. Block per row.
// Vec4: V % 4 == 0 and aligned rows, read and written four values at a time.
template <bool Vec4, typename Grad, typename Logit>
__global__ void cross_entropy_kernel(Grad* dlogits, float* __restrict__ losses, const Logit* logits,
                                     const int32_t* __restrict__ targets, size_t N, size_t V,
                                     float gradScale) {
    __shared__ float sharedM[32], sharedS[32];
    __shared__ float rowLse;
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const Logit* z = logits + n * V;
        float m = -INFINITY, s = 0.0f;
        if (Vec4) {
            for (size_t v = threadIdx.x; v < V / 4; v += blockDim.x) {
                const float4 z4 = loadAs4(z + 4 * v);
                addLogit(m, s, z4.x);
                addLogit(m, s, z4.y);
                addLogit(m, s, z4.z);
                addLogit(m, s, z4.w);
            }
        } else {
            for (size_t v = threadIdx.x; v < V; v += blockDim.x) addLogit(m, s, loadAsFloat(z + v));
        }
        for (int o = 16; o > 0; o >>= 1) {
            const float m2 = __shfl_xor_sync(0xffffffffu, m, o), s2 = __shfl_xor_sync(0xffffffffu, s, o);
            mergeMaxSum(m, s, m2, s2);
        }
        if (lane == 0) { sharedM[warp] = m; sharedS[warp] = s; }
        __syncthreads();
        if (threadIdx.x == 0) {
            float M = sharedM[0], S = sharedS[0];
            for (int k = 1; k < warps; ++k) mergeMaxSum(M, S, sharedM[k], sharedS[k]);
            const float lse = M + logf(S);
            const size_t t = static_cast<size_t>(targets[n]);
            losses[n] = lse - loadAsFloat(z + t);  // read before any thread overwrites the row
            rowLse = lse;
        }
        __syncthreads();
        const float lse = rowLse;
        if (dlogits) {
            Grad* d = dlogits + n * V;
            const size_t t = static_cast<size_t>(targets[n]);
            const auto grad = [&](float zv, size_t v) { return logitGrad(zv, lse, v == t, gradScale); };
            if (Vec4) {
                for (size_t v = threadIdx.x; v < V / 4; v += blockDim.x) {
                    const float4 z4 = loadAs4(z + 4 * v);
                    storeAs4(d + 4 * v, make_float4(grad(z4.x, 4 * v), grad(z4.y, 4 * v + 1),
                                                    grad(z4.z, 4 * v + 2), grad(z4.w, 4 * v + 3)));
                }
            } else {
                for (size_t v = threadIdx.x; v < V; v += blockDim.x) storeAs(d + v, grad(loadAsFloat(z + v), v));
            }
        }
        __syncthreads();  // shared values are reused by the next row
    }
}

constexpr int kRowInRegisters = 16;  // float4 per thread

// A thread's share of a row held in registers: float4s first, first + step,
// ... below end (32-bit offsets within a row keep the indices cheap; the
// kernels using it take rows of at most 4·kRowInRegisters·512 values).
struct RowInRegisters {
    float4 r[kRowInRegisters];
    unsigned first, step, end;

    // Loads the share (−inf past end) and returns its maximum.
    template <typename Logit>
    __device__ float load(const Logit* z) {
        float m = -INFINITY;
#pragma unroll
        for (int k = 0; k < kRowInRegisters; ++k) {
            const unsigned v = first + k * step;
            r[k] = v < end ? loadAs4(z + 4 * v) : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
            m = fmaxf(m, fmaxf(fmaxf(r[k].x, r[k].y), fmaxf(r[k].z, r[k].w)));
        }
        return m;
    }
    // The registers then keep e = exp(z − m): the gradient is e/s, one
    // exponential per logit instead of two. Returns the share's Σ e.
    __device__ float exponentiate(float m) {
        float s = 0.0f;
#pragma unroll
        for (int k = 0; k < kRowInRegisters; ++k) {
            r[k] = make_float4(expf(r[k].x - m), expf(r[k].y - m), expf(r[k].z - m), expf(r[k].w - m));
            s += r[k].x + r[k].y + r[k].z + r[k].w;
        }
        return s;
    }
    // d = gradScale · (e/s − onehot(t)) over the share.
    template <typename Grad>
    __device__ void storeGradient(Grad* d, unsigned t, float s, float gradScale) const {
        const float scale = gradScale / s;
        const auto grad = [&](float e, unsigned v) { return v == t ? e * scale - gradScale : e * scale; };
#pragma unroll
        for (int k = 0; k < kRowInRegisters; ++k) {
            const unsigned v = first + k * step;
            if (v < end)
                storeAs4(d + 4 * v, make_float4(grad(r[k].x, 4 * v), grad(r[k].y, 4 * v + 1),
                                                grad(r[k].z, 4 * v + 2), grad(r[k].w, 4 * v + 3)));
        }
    }
};

// As cross_entropy_kernel for rows with V % 4 == 0, 16-byte aligned, and
// V ≤ 4·kRowInRegisters·blockDim.x: each thread keeps its float4 of the
// row in registers, so the logits are read from memory once.
template <typename Grad, typename Logit>
__global__ void __launch_bounds__(512) cross_entropy_row_kernel(Grad* dlogits, float* __restrict__ losses,
                                                                const Logit* logits,
                                                                const int32_t* __restrict__ targets, size_t N,
                                                                size_t V, float gradScale) {
    __shared__ float shared[32];
    RowInRegisters row;
    row.first = threadIdx.x;
    row.step = blockDim.x;
    row.end = static_cast<unsigned>(V / 4);
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const Logit* z = logits + n * V;
        const float m = blockMax(row.load(z), shared);
        const float s = blockSum(row.exponentiate(m), shared);
        const unsigned t = static_cast<unsigned>(targets[n]);
        if (threadIdx.x == 0) losses[n] = m + logf(s) - loadAsFloat(z + t);
        if (!dlogits) continue;
        __syncthreads();  // the target logit is read before any thread overwrites the row
        row.storeGradient(dlogits + n * V, t, s, gradScale);
    }
}

constexpr int kSplitThreads = 256;

// As cross_entropy_row_kernel, with each row split over a cluster of two
// blocks (sm_90): block rank r keeps float4s [r·h, r·h + h) of the row,
// h = ceil(V/8), in registers (16 a thread), and the two exchange their
// maxima and sums through distributed shared memory. A whole row in
// registers takes most of an SM's register file, so one block of a row per
// SM leaves the memory idle while it reduces; half-row blocks of different
// rows (three an SM) share an SM and one's loads overlap another's
// reductions: 4096 rows of 32000 bf16 logits in 228 us against 254 (H100).
// Four blocks a row (a quarter each, five an SM) were no faster, nor was
// ex2.approx in place of expf inside the step, nor a persistent grid whose
// blocks fetch their next half-row into shared memory by cp.async while
// reducing this one (242-293 us, the H100, 2-6 blocks an SM). Both
// blocks add the halves in rank order, so both compute the same
// log-sum-exp. Launch: kSplitThreads threads, two blocks a row (an even
// grid), V ≤ 128·kSplitThreads.
template <typename Grad, typename Logit>
__global__ void __cluster_dims__(2, 1, 1) __launch_bounds__(kSplitThreads, 3)
    cross_entropy_split_kernel(Grad* dlogits, float* __restrict__ losses, const Logit* logits,
                               const int32_t* __restrict__ targets, size_t N, size_t V, float gradScale) {
    namespace cg = cooperative_groups;
    const cg::cluster_group cluster = cg::this_cluster();
    __shared__ float shared[32];
    __shared__ float exchange[2];  // this block's maximum and sum, read by both blocks
    const unsigned rank = cluster.block_rank();
    const unsigned V4 = static_cast<unsigned>(V / 4), half = (V4 + 1) / 2;
    RowInRegisters row;
    row.first = rank * half + threadIdx.x;
    row.step = kSplitThreads;
    row.end = min(V4, rank * half + half);
    const auto gather = [&](int slot, float own, auto combine) {
        if (threadIdx.x == 0) exchange[slot] = own;
        cluster.sync();
        return combine(*cluster.map_shared_rank(exchange + slot, 0u), *cluster.map_shared_rank(exchange + slot, 1u));
    };
    for (size_t n = blockIdx.x / 2; n < N; n += gridDim.x / 2) {
        const Logit* z = logits + n * V;
        const unsigned t = static_cast<unsigned>(targets[n]);
        // Read before the sync after which either block may overwrite the row.
        const float target = rank == 0 && threadIdx.x == 0 ? loadAsFloat(z + t) : 0.0f;
        const float m = gather(0, blockMax(row.load(z), shared), [](float a, float b) { return fmaxf(a, b); });
        const float s = gather(1, blockSum(row.exponentiate(m), shared), [](float a, float b) { return a + b; });
        if (rank == 0 && threadIdx.x == 0) losses[n] = m + logf(s) - target;
        if (dlogits) row.storeGradient(dlogits + n * V, t, s, gradScale);
    }
    cluster.sync();  // neither block leaves while the other may still read its exchange
}

}  // namespace relora::gpu
