// CpuBackend: fp32 reference backend. Matrix products go to OpenBLAS (its
// OpenMP build), element-wise and reduction loops run on the same OpenMP
// thread pool, so both use every core without fighting over them.
#pragma once

#include "core/Backend.h"
#include "core/RotaryTables.h"

#include <atomic>
#include <vector>

namespace relora {

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(int threads = 0);   // 0 = OMP_NUM_THREADS, else all cores
    ~CpuBackend() override;

    std::string name() const override { return "cpu"; }
    std::string deviceName() const override;

    float* allocate(size_t count) override;
    int32_t* allocateInts(size_t count) override;
    void release(void* ptr) override;
    void upload(float* dst, const float* host, size_t count) override;
    void uploadInts(int32_t* dst, const int32_t* host, size_t count) override;
    void download(float* host, const float* src, size_t count) override;
    void downloadInts(int32_t* host, const int32_t* src, size_t count) override;
    void copy(float* dst, const float* src, size_t count) override;
    void fill(float* x, float value, size_t count) override;
    void synchronize() override {}
    size_t peakMemoryBytes() const override { return peakBytes_; }

    void gemm(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha,
              const float* A, size_t lda, const float* B, size_t ldb, float beta,
              float* C, size_t ldc) override;
    void axpy(float* y, float alpha, const float* x, size_t n) override;
    void scale(float* x, float alpha, size_t n) override;

    void fillNormal(float* x, size_t n, float stddev, uint64_t seed) override;
    void fillUniform(float* x, size_t n, float bound, uint64_t seed) override;
    void dropoutMask(float* mask, size_t n, float p, uint64_t seed) override;
    void multiply(float* out, const float* a, const float* b, size_t n) override;

    void embeddingForward(float* out, const int32_t* tokens, const float* table,
                          size_t N, size_t C) override;
    void embeddingBackward(float* dtable, const float* dout, const int32_t* tokens,
                           size_t N, size_t C, size_t V) override;
    void rmsnormForward(float* out, float* rstd, const float* x, const float* w,
                        size_t N, size_t C, float eps) override;
    void rmsnormBackward(float* dx, float* dw, const float* dout, const float* x,
                         const float* w, const float* rstd, size_t N, size_t C) override;
    void attentionForward(float* out, float* probs, float* qkv,
                          size_t B, size_t T, size_t H, size_t D, float ropeTheta) override;
    void attentionBackward(float* dqkv, const float* dout, const float* out, const float* probs,
                           const float* qkv, size_t B, size_t T, size_t H, size_t D,
                           float ropeTheta) override;
    void swigluForward(float* out, const float* gu, size_t N, size_t F) override;
    void swigluBackward(float* dgu, const float* dout, const float* gu, size_t N, size_t F,
                        float* out) override;
    void crossEntropy(float* dlogits, float* losses, const float* logits,
                      const int32_t* targets, size_t N, size_t V, float gradScale) override;
    void sum(float* out, const float* x, size_t n) override;

    void sumSquaresAccumulate(float* acc, const float* x, size_t n) override;
    void finishGradNorm(float* state, const float* acc, const float* loss,
                        float maxNorm) override;
    void adamw(float* param, const float* grad, float* m, float* v, size_t n, float lr,
               float beta1, float beta2, float eps, float weightDecay, int64_t step,
               const float* state) override;
    void pruneRandom(float* x, size_t n, float p, uint64_t seed) override;
    void pruneMagnitude(float* x, size_t n, float p) override;
    void zeroWhereZero(float* x, const float* ref, size_t n) override;

    std::vector<float> singularValues(const float* a, size_t rows, size_t cols) override;

private:
    // Rotary embedding in place on the first 2H heads (q|k) of x(B·T, 3C) rows;
    // inverse applies the transposed rotation (the backward pass's).
    void rotateQueriesKeys(float* x, size_t B, size_t T, size_t H, size_t D, float theta, bool inverse);

    int threads_;
    RotaryTables rotary_;
    std::atomic<size_t> liveBytes_{0};
    size_t peakBytes_ = 0;
};

}  // namespace relora
