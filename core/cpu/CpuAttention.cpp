// Causal multi-head attention on the CPU: one (batch, head) pair per task,
// its products through single-threaded OpenBLAS calls (OpenBLAS's OpenMP
// build runs serially inside our parallel region), softmax rows kept for the
// backward pass.
#include "core/cpu/CpuBackend.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace relora {
namespace {

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

void CpuBackend::attentionForward(float* out, float* probs, const float* qkv, size_t B,
                                  size_t T, size_t H, size_t D) {
    const size_t C = H * D, ld = 3 * C;
    const float scale = 1.0f / std::sqrt(static_cast<float>(D));
#pragma omp parallel for schedule(static)
    for (size_t bh = 0; bh < B * H; ++bh) {
        const size_t b = bh / H, h = bh % H;
        const float* q = qkv + b * T * ld + h * D;  // (T,D) rows of stride 3C
        const float* k = q + C;
        const float* v = q + 2 * C;
        float* P = probs + bh * T * T;               // (T,T)
        sgemm(false, true, T, T, D, scale, q, ld, k, ld, 0.0f, P, T);
        causalSoftmax(P, T);
        sgemm(false, false, T, D, T, 1.0f, P, T, v, ld, 0.0f, out + b * T * C + h * D, C);
    }
}

void CpuBackend::attentionBackward(float* dqkv, const float* dout, const float* probs,
                                   const float* qkv, size_t B, size_t T, size_t H, size_t D) {
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
            sgemm(false, true, T, T, D, 1.0f, dO, C, v, ld, 0.0f, dP.data(), T);
            sgemm(true, false, T, D, T, 1.0f, P, T, dO, C, 0.0f, dv, ld);
            for (size_t t = 0; t < T; ++t) {  // dS = P ⊙ (dP − Σ_j P dP) · scale
                const float* p = P + t * T;
                float* d = dP.data() + t * T;
                float dot = 0.0f;
                for (size_t j = 0; j <= t; ++j) dot += p[j] * d[j];
                for (size_t j = 0; j <= t; ++j) d[j] = p[j] * (d[j] - dot) * scale;
                std::fill(d + t + 1, d + T, 0.0f);
            }
            sgemm(false, false, T, D, T, 1.0f, dP.data(), T, k, ld, 0.0f, dq, ld);
            sgemm(true, false, T, D, T, 1.0f, dP.data(), T, q, ld, 0.0f, dk, ld);
        }
    }
}

}  // namespace relora
