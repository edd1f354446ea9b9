// CudaBackend: causal multi-head attention with the rotary embedding. The
// forward pass rotates q and k in place (kernels/rope.cuh) before the
// products.
//
// bf16 mode with head width 32 or 64: flash-style kernels
// (kernels/flash_attention.cuh) on bf16 tensor cores, whose backward kernels
// rotate the gradients of q and k back as they store them; the saved state is
// one log-sum-exp per score row (B,H,T), never the (B,H,T,T) probabilities.
//
// fp32 mode (and other head widths): cuBLAS strided-batched products, with
// the softmax rows kept in probs(B,H,T,T) as the CPU backend keeps them, and
// the inverse rotation as a pass of its own; qkv, out, dout and dqkv given as
// bf16 operand buffers are widened to fp32 scratch copies there (outputs
// narrowed back). The flash kernels read and write them as they are (the
// backward ones when all three of qkv, dout and dqkv are).
// q, k, v of head h of sequence b are (T, D) row blocks of qkv(N, 3C) with
// row stride 3C, at offsets b·T·3C + h·D (+C for k, +2C for v). One strided
// batch cannot cover both b and h (their strides differ), so the products
// loop over the smaller of the two and batch over the other.
#include "gpu/CudaBackendImpl.h"

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/flash_attention.cuh"
#include "gpu/kernels/softmax.cuh"

#include <cmath>
#include <stdexcept>

namespace relora::gpu {
namespace {

// Offsets of one (outer) slice and strides between batch entries for the
// three layouts: qkv/dqkv (N,3C) & out/dout (N,C) row blocks, and P (B,H,T,T).
struct HeadBatching {
    size_t outer, batch;                    // loop count, batch count
    size_t outerQkv, outerOut, outerP;      // offsets per loop iteration
    size_t strideQkv, strideOut, strideP;   // strides per batch entry
};

HeadBatching headBatching(size_t B, size_t T, size_t H, size_t D) {
    const size_t C = H * D;
    if (H <= B)  // loop over heads, batch over sequences
        return {H, B, D, D, T * T, T * 3 * C, T * C, H * T * T};
    return {B, H, T * 3 * C, T * C, H * T * T, D, D, T * T};  // loop over sequences, batch over heads
}

// The flash kernels copy 16-byte chunks of bf16 rows (8-byte float4 reads
// of fp32 ones); with C a multiple of 32 every row is aligned when the base is.
template <typename T>
void requireFlashAligned(const T* p) {
    if (!aligned16(p))
        throw std::logic_error("flash attention: a q|k|v or attention-output buffer is not 16-byte aligned");
}

}  // namespace

void CudaBackend::attentionForward(float* out, float* probs, float* qkv, size_t B, size_t T, size_t H,
                                   size_t D, float ropeTheta) {
    RELORA_OP_WRITES("attentionForward", {out, B * T * H * D}, {probs, attentionStateSize(B, T, H, D)},
                     {qkv, B * T * 3 * H * D});
    if (B * T * H * D == 0) return;
    rotateQueriesKeys(qkv, B, T, H, D, ropeTheta, false);
    if (flashAttention(D)) {
        // probs is the (B,H,T) log-sum-exp state here.
        const dim3 grid = flash::flash_grid(B, H, T);
        const float scaleLog2 = flash::kLog2e / std::sqrt(static_cast<float>(D));
        const int t = static_cast<int>(T), h = static_cast<int>(H);
        withStorage(out, [&](auto* o) {
            withStorage(static_cast<const float*>(qkv), [&](const auto* q) {
                requireFlashAligned(q);
                if (D == 64) flash::flash_forward_kernel<64><<<grid, flash::kThreadsFA, 0, stream_>>>(o, probs, q, t, h, scaleLog2);
                else flash::flash_forward_kernel<32><<<grid, flash::kThreadsFA, 0, stream_>>>(o, probs, q, t, h, scaleLog2);
            });
        });
        CUDA_CHECK_LAUNCH("flash_forward_kernel");
        return;
    }
    const size_t C = H * D, ld = 3 * C;
    const float* qkv32 = widened(qkv, B * T * 3 * C, attentionQkv32_);
    __nv_bfloat16* out16 = storedBf16(out);
    if (out16) out = static_cast<float*>(ensure(attentionOut32_, B * T * C * sizeof(float)));
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const HeadBatching hb = headBatching(B, T, H, D);
    // P(T,T) = scale · q(T,D) · k(T,D)ᵀ, full square (the causal mask is applied by the softmax)
    for (size_t o = 0; o < hb.outer; ++o) {
        const float* q = qkv32 + o * hb.outerQkv;
        gemmStridedBatched(false, true, T, T, D, scale, q, ld, hb.strideQkv, q + C, ld, hb.strideQkv, 0.0f,
                           probs + o * hb.outerP, T, hb.strideP, hb.batch);
    }
    const size_t rows = B * H * T;
    causal_softmax_kernel<<<gridFor(rows * 32), kThreads, 0, stream_>>>(probs, rows, T);
    CUDA_CHECK_LAUNCH("causal_softmax_kernel");
    // out(T,D) = P(T,T) · v(T,D), written into out's (N,C) row blocks
    for (size_t o = 0; o < hb.outer; ++o) {
        const float* v = qkv32 + o * hb.outerQkv + 2 * C;
        gemmStridedBatched(false, false, T, D, T, 1.0f, probs + o * hb.outerP, T, hb.strideP, v, ld, hb.strideQkv,
                           0.0f, out + o * hb.outerOut, C, hb.strideOut, hb.batch);
    }
    if (out16) narrow(out16, out, B * T * C);
}

void CudaBackend::attentionBackward(float* dqkv, const float* dout, const float* out, const float* probs,
                                    const float* qkv, size_t B, size_t T, size_t H, size_t D, float ropeTheta) {
    RELORA_OP_WRITES("attentionBackward", {dqkv, B * T * 3 * H * D});
    if (B * T * H * D == 0) return;
    if (flashAttention(D)) {
        auto* delta = static_cast<float*>(ensure(attentionDelta_, B * H * T * sizeof(float)));
        const int t = static_cast<int>(T), h = static_cast<int>(H);
        const dim3 grid = flash::flash_grid(B, H, T);
        const float scale = 1.0f / std::sqrt(static_cast<float>(D)), scaleLog2 = flash::kLog2e * scale;
        const float* cosT = rotaryTables(T, D, ropeTheta);
        const float* sinT = cosT + T * D / 2;
        // The kernels take qkv, out, dout and dqkv all bf16 (the model's
        // operand buffers) or all fp32; a mix goes through fp32 copies. dQ
        // first: its kernel writes the rows' deltas that the dK/dV kernel reads.
        auto run = [&](auto* dq, const auto* dO, const auto* o, const auto* q) {
            requireFlashAligned(q);
            requireFlashAligned(o);
            requireFlashAligned(dO);
            if (D == 64) {
                flash::flash_backward_dq_kernel<64><<<grid, flash::kThreadsFA, 0, stream_>>>(
                    dq, delta, dO, o, q, probs, cosT, sinT, t, h, scale, scaleLog2);
                CUDA_CHECK_LAUNCH("flash_backward_dq_kernel");
                flash::flash_backward_dkdv_kernel<64><<<grid, flash::kThreadsFA, 0, stream_>>>(
                    dq, dO, q, probs, delta, cosT, sinT, t, h, scale, scaleLog2);
            } else {
                flash::flash_backward_dq_kernel<32><<<grid, flash::kThreadsFA, 0, stream_>>>(
                    dq, delta, dO, o, q, probs, cosT, sinT, t, h, scale, scaleLog2);
                CUDA_CHECK_LAUNCH("flash_backward_dq_kernel");
                flash::flash_backward_dkdv_kernel<32><<<grid, flash::kThreadsFA, 0, stream_>>>(
                    dq, dO, q, probs, delta, cosT, sinT, t, h, scale, scaleLog2);
            }
            CUDA_CHECK_LAUNCH("flash_backward_dkdv_kernel");
        };
        const size_t C = H * D, N = B * T;
        __nv_bfloat16 *dq16 = storedBf16(dqkv), *dout16 = storedBf16(dout), *qkv16 = storedBf16(qkv);
        __nv_bfloat16* out16 = storedBf16(out);
        if (dq16 && dout16 && qkv16 && out16)
            return run(dq16, static_cast<const __nv_bfloat16*>(dout16), static_cast<const __nv_bfloat16*>(out16),
                       static_cast<const __nv_bfloat16*>(qkv16));
        float* dq32 = dq16 ? static_cast<float*>(ensure(attentionDqkv32_, N * 3 * C * sizeof(float))) : dqkv;
        run(dq32, widened(dout, N * C, attentionOut32_), widened(out, N * C, attentionForwardOut32_),
            widened(qkv, N * 3 * C, attentionQkv32_));
        if (dq16) narrow(dq16, dq32, N * 3 * C);
        return;
    }
    const size_t C = H * D, ld = 3 * C;
    qkv = widened(qkv, B * T * 3 * C, attentionQkv32_);
    dout = widened(dout, B * T * C, attentionOut32_);
    __nv_bfloat16* dqkv16 = storedBf16(dqkv);
    if (dqkv16) dqkv = static_cast<float*>(ensure(attentionDqkv32_, B * T * 3 * C * sizeof(float)));
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
    const HeadBatching hb = headBatching(B, T, H, D);
    // dP / dS (B,H,T,T): cached scratch, same layout as probs.
    auto* dP = static_cast<float*>(ensure(attentionDP_, B * H * T * T * sizeof(float)));
    for (size_t o = 0; o < hb.outer; ++o) {
        const float* q = qkv + o * hb.outerQkv;
        const float* v = q + 2 * C;
        const float* dO = dout + o * hb.outerOut;
        const float* P = probs + o * hb.outerP;
        float* dv = dqkv + o * hb.outerQkv + 2 * C;
        // dP(T,T) = dO(T,D) · v(T,D)ᵀ
        gemmStridedBatched(false, true, T, T, D, 1.0f, dO, C, hb.strideOut, v, ld, hb.strideQkv, 0.0f,
                           dP + o * hb.outerP, T, hb.strideP, hb.batch);
        // dv(T,D) = P(T,T)ᵀ · dO(T,D)
        gemmStridedBatched(true, false, T, D, T, 1.0f, P, T, hb.strideP, dO, C, hb.strideOut, 0.0f, dv, ld,
                           hb.strideQkv, hb.batch);
    }
    const size_t rows = B * H * T;
    causal_softmax_backward_kernel<<<gridFor(rows * 32), kThreads, 0, stream_>>>(dP, probs, rows, T, scale);
    CUDA_CHECK_LAUNCH("causal_softmax_backward_kernel");
    for (size_t o = 0; o < hb.outer; ++o) {
        const float* q = qkv + o * hb.outerQkv;
        const float* k = q + C;
        const float* dS = dP + o * hb.outerP;
        float* dq = dqkv + o * hb.outerQkv;
        float* dk = dq + C;
        // dq(T,D) = dS(T,T) · k(T,D);  dk(T,D) = dS(T,T)ᵀ · q(T,D)
        gemmStridedBatched(false, false, T, D, T, 1.0f, dS, T, hb.strideP, k, ld, hb.strideQkv, 0.0f, dq, ld,
                           hb.strideQkv, hb.batch);
        gemmStridedBatched(true, false, T, D, T, 1.0f, dS, T, hb.strideP, q, ld, hb.strideQkv, 0.0f, dk, ld,
                           hb.strideQkv, hb.batch);
    }
    rotateQueriesKeys(dqkv, B, T, H, D, ropeTheta, true);  // back through the rotation
    if (dqkv16) narrow(dqkv16, dqkv, B * T * 3 * C);
}

}  // namespace relora::gpu
