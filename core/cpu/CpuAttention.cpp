// Causal multi-head attention on the CPU, q and k rotated in place first (and
// their gradients rotated back at the end): one (batch, head) pair per task,
// its products through single-threaded OpenBLAS calls (OpenBLAS's OpenMP
// build runs serially inside our parallel region), softmax rows kept for the
// backward pass. Products run over blocks of kBlock query (or key) rows and
// only the keys (or queries) causality lets them see: about 5/8 of the full
// T×T work at T = 256.
#include "core/cpu/CpuBackend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace relora {
namespace {

constexpr size_t kBlock = 64;

void sgemm(bool ta, bool tb, size_t M, size_t N, size_t K, float alpha, const float* A,
           size_t lda, const float* B, size_t ldb, float beta, float* C, size_t ldc) {
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha,
                A, static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C,
                static_cast<blasint>(ldc));
}

// Row t of P(T,T) holds scores for keys 0..t; softmax over them, zero beyond.
void causalSoftmax(float* P, size_t T) {
    for (size_t t = 0; t < T; ++t) {
        float* row = P + t * T;
        float mx = row[0];
        for (size_t j = 1; j <= t; ++j) mx = std::max(mx, row[j]);
        float s = 0.0f;
        for (size_t j = 0; j <= t; ++j) {
            row[j] = std::exp(row[j] - mx);
            s += row[j];
        }
        const float inv = 1.0f / s;
        for (size_t j = 0; j <= t; ++j) row[j] *= inv;
        std::fill(row + t + 1, row + T, 0.0f);
    }
}

}  // namespace

void CpuBackend::rotateQueriesKeys(float* x, size_t B, size_t T, size_t H, size_t D, float theta,
                                   bool inverse) {
    rotary_.update(T, D, theta);
    const size_t half = D / 2, ld = 3 * H * D;
    const float sign = inverse ? -1.0f : 1.0f;
#pragma omp parallel for schedule(static)
    for (size_t bt = 0; bt < B * T; ++bt) {
        const float* cosRow = rotary_.cos.data() + (bt % T) * half;
        const float* sinRow = rotary_.sin.data() + (bt % T) * half;
        float* row = x + bt * ld;
        for (size_t h = 0; h < 2 * H; ++h) {  // q's H heads, then k's
            float* v = row + h * D;
            for (size_t i = 0; i < half; ++i) {
                const float c = cosRow[i], s = sign * sinRow[i];
                const float x1 = v[i], x2 = v[i + half];
                v[i] = x1 * c - x2 * s;
                v[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

void CpuBackend::attentionForward(float* out, float* probs, float* qkv, size_t B,
                                  size_t T, size_t H, size_t D, float ropeTheta) {
    rotateQueriesKeys(qkv, B, T, H, D, ropeTheta, false);
    const size_t C = H * D, ld = 3 * C;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel for schedule(static)
    for (size_t bh = 0; bh < B * H; ++bh) {
        const size_t b = bh / H, h = bh % H;
        const float* q = qkv + b * T * ld + h * D;  // (T,D) rows of stride 3C
        const float* k = q + C;
        const float* v = q + 2 * C;
        float* P = probs + bh * T * T;               // (T,T)
        float* o = out + b * T * C + h * D;          // (T,D) rows of stride C
        for (size_t r0 = 0; r0 < T; r0 += kBlock) {  // S = q kᵀ · scale, keys 0..r1
            const size_t r1 = std::min(T, r0 + kBlock);
            sgemm(false, true, r1 - r0, r1, D, scale, q + r0 * ld, ld, k, ld, 0.0f, P + r0 * T, T);
        }
        causalSoftmax(P, T);
        for (size_t r0 = 0; r0 < T; r0 += kBlock) {  // out = P v
            const size_t r1 = std::min(T, r0 + kBlock);
            sgemm(false, false, r1 - r0, D, r1, 1.0f, P + r0 * T, T, v, ld, 0.0f, o + r0 * C, C);
        }
    }
}

void CpuBackend::attentionBackward(float* dqkv, const float* dout, const float* /*out*/, const float* probs,
                                   const float* qkv, size_t B, size_t T, size_t H, size_t D,
                                   float ropeTheta) {
    const size_t C = H * D, ld = 3 * C;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel
    {
        std::vector<float> dP(T * T);  // (T,T) per thread
#pragma omp for schedule(static)
        for (size_t bh = 0; bh < B * H; ++bh) {
            const size_t b = bh / H, h = bh % H;
            const size_t offset = b * T * ld + h * D;
            const float* q = qkv + offset;
            const float* k = q + C;
            const float* v = q + 2 * C;
            float* dq = dqkv + offset;
            float* dk = dq + C;
            float* dv = dq + 2 * C;
            const float* dO = dout + b * T * C + h * D;   // (T,D) rows of stride C
            const float* P = probs + bh * T * T;
            for (size_t r0 = 0; r0 < T; r0 += kBlock) {  // dP = dO vᵀ, keys 0..r1
                const size_t r1 = std::min(T, r0 + kBlock);
                sgemm(false, true, r1 - r0, r1, D, 1.0f, dO + r0 * C, C, v, ld, 0.0f, dP.data() + r0 * T, T);
            }
            for (size_t c0 = 0; c0 < T; c0 += kBlock) {  // dv = Pᵀ dO, queries c0..T
                const size_t c1 = std::min(T, c0 + kBlock);
                sgemm(true, false, c1 - c0, D, T - c0, 1.0f, P + c0 * T + c0, T, dO + c0 * C, C, 0.0f,
                      dv + c0 * ld, ld);
            }
            for (size_t t = 0; t < T; ++t) {  // dS = P ⊙ (dP − Σ_j P dP) · scale
                const float* p = P + t * T;
                float* d = dP.data() + t * T;
                float dot = 0.0f;
                for (size_t j = 0; j <= t; ++j) dot += p[j] * d[j];
                for (size_t j = 0; j <= t; ++j) d[j] = p[j] * (d[j] - dot) * scale;
                std::fill(d + t + 1, d + T, 0.0f);
            }
            for (size_t r0 = 0; r0 < T; r0 += kBlock) {  // dq = dS k
                const size_t r1 = std::min(T, r0 + kBlock);
                sgemm(false, false, r1 - r0, D, r1, 1.0f, dP.data() + r0 * T, T, k, ld, 0.0f, dq + r0 * ld, ld);
            }
            for (size_t c0 = 0; c0 < T; c0 += kBlock) {  // dk = dSᵀ q
                const size_t c1 = std::min(T, c0 + kBlock);
                sgemm(true, false, c1 - c0, D, T - c0, 1.0f, dP.data() + c0 * T + c0, T, q + c0 * ld, ld,
                      0.0f, dk + c0 * ld, ld);
            }
        }
    }
    rotateQueriesKeys(dqkv, B, T, H, D, ropeTheta, true);  // back through the rotation
}

}  // namespace relora
