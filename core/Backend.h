// Backend: the one interface through which all tensor math of the engine goes.
//
// Tensors live on the backend: every `float*` / `int32_t*` passed here is a
// backend pointer (host memory for the CPU backend, device memory for CUDA).
// The trainer and the model only pass these pointers around; they never read
// or write through them. Host transfers are explicit (upload/download) and the
// trainer does them only between steps, so a step never waits on the device.
//
// Conventions: row-major matrices, sizes in size_t, shapes written next to
// every pointer. B batch, T sequence, C model width, H heads, D = C/H head
// width, N = B*T tokens, V vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace relora {

// One tensor of a multi-tensor optimizer step (Backend::adamwAll): param,
// grad, m, v are (n) backend arrays; `step` counts this tensor's updates
// from 1 (tensors added by a warm-start switch start later than the rest).
struct OptimizerTensor {
    float* param = nullptr;
    const float* grad = nullptr;
    float* m = nullptr;
    float* v = nullptr;
    size_t n = 0;
    float weightDecay = 0.0f;
    int64_t step = 1;
};

// A tensor x(n) in backend memory.
struct TensorRef {
    float* data = nullptr;
    size_t n = 0;
};

// A row-major matrix data(rows, cols) in backend memory.
struct MatrixRef {
    const float* data = nullptr;
    size_t rows = 0, cols = 0;
};

// scale · B(rows, rank) · A(rank, cols): one adapter's term of a
// LowRankFold, added onto the target's rows [rowOffset, rowOffset + rows)
// (the terms of a fold cover disjoint rows: one adapter a part). A's rows
// have stride cols (a block of a group's stacked A factors).
struct LowRankTerm {
    const float* B = nullptr;
    const float* A = nullptr;
    size_t rowOffset = 0, rows = 0, rank = 0;
    float scale = 1.0f;
};

// target(rows, cols) = base(rows, cols) + Σ terms: a LoRA group's effective
// weight W + s·B·A (Backend::foldLowRank).
struct LowRankFold {
    float* target = nullptr;
    const float* base = nullptr;
    size_t rows = 0, cols = 0;
    std::vector<LowRankTerm> terms;
};

struct AdamWSettings {
    float lr = 0.0f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

class Backend {
public:
    virtual ~Backend() = default;

    virtual std::string name() const = 0;        // "cpu" or "cuda"
    virtual std::string deviceName() const = 0;  // e.g. "AMD EPYC (2 threads)"

    // What decides the rounding of this process's products beyond their
    // operands (CUDA: the cuBLASLt algorithm timed for each shape), as
    // opaque text; "" where nothing does. A checkpoint keeps it, and a
    // resumed run adopts it so that it continues bit for bit. Adopting
    // returns "" or why the choices do not apply here (another GPU model
    // or library version: the products then choose afresh).
    virtual std::string productChoices() const { return {}; }
    virtual std::string adoptProductChoices(const std::string& /*choices*/) { return {}; }

    // ---- memory -----------------------------------------------------------
    virtual float* allocate(size_t count) = 0;             // zero-filled
    virtual int32_t* allocateInts(size_t count) = 0;       // zero-filled
    virtual void release(void* ptr) = 0;
    // An activation buffer of `count` values that a backend may store at
    // lower precision: the CUDA backend's bf16 mode keeps bf16, which its
    // products and attention kernels round every operand to anyway, so the
    // activations take half the memory and the products skip a conversion.
    // (The logits are one too: PyTorch's autocast also keeps them in bf16.)
    // Pointers into it (column blocks, row offsets) are fine. Only these ops
    // take one: gemm (A, B and C), copy (dst), axpy (y), rmsnormForward
    // (out), rmsnormBackward (dout), attentionForward (out, qkv), attentionBackward (every
    // pointer but state), swigluForward (out, gu), swigluBackward (all four),
    // crossEntropy (logits, dlogits), multiply (a) and download. The default
    // is allocate().
    virtual float* allocateOperand(size_t count) { return allocate(count); }
    virtual void upload(float* dst, const float* host, size_t count) = 0;
    virtual void uploadInts(int32_t* dst, const int32_t* host, size_t count) = 0;
    virtual void download(float* host, const float* src, size_t count) = 0;
    virtual void downloadInts(int32_t* host, const int32_t* src, size_t count) = 0;
    virtual void copy(float* dst, const float* src, size_t count) = 0;
    virtual void fill(float* x, float value, size_t count) = 0;
    virtual void synchronize() = 0;
    virtual size_t peakMemoryBytes() const = 0;

    // ---- dense algebra ----------------------------------------------------
    // C(M,N) = alpha * op(A) * op(B) + beta * C, row-major; op(A) is (M,K),
    // op(B) is (K,N). lda/ldb/ldc are row strides of the stored matrices.
    virtual void gemm(bool transA, bool transB, size_t M, size_t N, size_t K,
                      float alpha, const float* A, size_t lda,
                      const float* B, size_t ldb,
                      float beta, float* C, size_t ldc) = 0;
    // C(M,N) = alpha * op(A) * op(B) + R(M,N), R and C with row stride ldc
    // and the same storage (R may be C): a product added onto a residual
    // stream without a copy of the stream first. The default copies R into
    // C, then accumulates.
    virtual void gemmAdd(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                         size_t lda, const float* B, size_t ldb, const float* R, float* C, size_t ldc) {
        if (R != C) {
            if (ldc == N) copy(C, R, M * N);
            else for (size_t i = 0; i < M; ++i) copy(C + i * ldc, R + i * ldc, N);
        }
        gemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, 1.0f, C, ldc);
    }
    // The products issued between these two calls write what only such
    // products, the optimizer (sumSquaresAccumulateAll, adamwAll) and
    // downloads read: weight gradients, and LoRA's u and du, which feed the
    // adapters' gradients only. A backend may run them beside the ops that
    // follow (the CUDA backend: on a second stream, where they use the
    // tensor cores while norms and SwiGLU wait on memory). The default
    // ignores them.
    virtual void beginDeferredProducts() {}
    virtual void endDeferredProducts() {}
    // batch products of one shape at even spacing: C_i = alpha·op(A_i)·op(B_i)
    // + beta·C_i with A_i = A + i·strideA, B_i = B + i·strideB and
    // C_i = C + i·strideC (floats), each as gemm. The default multiplies one
    // by one; a backend with launch costs does them in one launch (the
    // adapters' dB of q|k|v and gate|up).
    virtual void gemmStridedBatched(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha,
                                    const float* A, size_t lda, size_t strideA, const float* B, size_t ldb,
                                    size_t strideB, float beta, float* C, size_t ldc, size_t strideC,
                                    size_t batch) {
        for (size_t i = 0; i < batch; ++i)
            gemm(transA, transB, M, N, K, alpha, A + i * strideA, lda, B + i * strideB, ldb, beta, C + i * strideC,
                 ldc);
    }
    // Every fold at once (LoRA's effective weights before a forward pass);
    // targets may be operand buffers. The default copies and multiplies fold
    // by fold, term by term; a backend with launch costs folds all the terms
    // (56 in a 60M-class model) in a launch or two.
    virtual void foldLowRank(const std::vector<LowRankFold>& folds) {
        for (const LowRankFold& f : folds) {
            copy(f.target, f.base, f.rows * f.cols);
            for (const LowRankTerm& t : f.terms)
                gemm(false, false, t.rows, f.cols, t.rank, t.scale, t.B, t.rank, t.A, f.cols, 1.0f,
                     f.target + t.rowOffset * f.cols, f.cols);
        }
    }
    // y(n) += alpha * x(n)
    virtual void axpy(float* y, float alpha, const float* x, size_t n) = 0;
    // x(n) *= alpha
    virtual void scale(float* x, float alpha, size_t n) = 0;

    // ---- random numbers (counter based: same values on every backend) ------
    // x[i] = normal(0, stddev) drawn from (seed, i).
    virtual void fillNormal(float* x, size_t n, float stddev, uint64_t seed) = 0;
    // x[i] = uniform(-bound, bound) drawn from (seed, i).
    virtual void fillUniform(float* x, size_t n, float bound, uint64_t seed) = 0;
    // mask[i] = (uniform01(seed,i) >= p) ? 1/(1-p) : 0   (inverted dropout)
    virtual void dropoutMask(float* mask, size_t n, float p, uint64_t seed) = 0;
    // out(n) = a(n) * b(n)
    virtual void multiply(float* out, const float* a, const float* b, size_t n) = 0;

    // ---- model kernels ----------------------------------------------------
    // out(N,C) = table(V,C)[tokens(N)]
    virtual void embeddingForward(float* out, const int32_t* tokens, const float* table,
                                  size_t N, size_t C) = 0;
    // dtable(V,C) += scatter of dout(N,C) by tokens(N), every token below V
    virtual void embeddingBackward(float* dtable, const float* dout, const int32_t* tokens,
                                   size_t N, size_t C, size_t V) = 0;
    // out(N,C) = x * rstd * w; rstd(N) = 1/sqrt(mean(x^2) + eps)
    virtual void rmsnormForward(float* out, float* rstd, const float* x, const float* w,
                                size_t N, size_t C, float eps) = 0;
    // dx(N,C) += d/dx; dw(C) += d/dw   (accumulating: the residual stream adds)
    virtual void rmsnormBackward(float* dx, float* dw, const float* dout, const float* x,
                                 const float* w, const float* rstd, size_t N, size_t C) = 0;
    // Causal self-attention with the rotary embedding. qkv(N, 3C) holds q|k|v
    // per token as the projection made them; q and k are rotated in place
    // ("rotate half", Hugging Face Llama; angles of base ropeTheta) and the
    // backward pass reads them rotated. out(N,C); state(attentionStateSize
    // floats) keeps what the backward pass needs: the softmax rows
    // probs(B,H,T,T) by default; a flash-style backend keeps only one
    // log-sum-exp per row (B,H,T) and recomputes the rest.
    virtual void attentionForward(float* out, float* state, float* qkv,
                                  size_t B, size_t T, size_t H, size_t D, float ropeTheta) = 0;
    // dqkv(N,3C) = gradient with respect to the projection's output, i.e.
    // through the rotation (overwritten); dout(N,C); out, state and qkv as
    // the forward pass left them.
    virtual void attentionBackward(float* dqkv, const float* dout, const float* out,
                                   const float* state, const float* qkv,
                                   size_t B, size_t T, size_t H, size_t D, float ropeTheta) = 0;
    // Floats of `state` the attention of this shape needs (at most B·H·T·T).
    virtual size_t attentionStateSize(size_t B, size_t T, size_t H, size_t /*D*/) const {
        return B * H * T * T;
    }
    // out(N,F) = silu(gate) * up, with gu(N,2F) = gate|up per token.
    virtual void swigluForward(float* out, const float* gu, size_t N, size_t F) = 0;
    // dgu(N,2F) from dout(N,F) (overwritten). out(N,F), when not null (and
    // stored as dgu is), receives swigluForward's output again, computed as it does:
    // the backward pass remakes the activation in the same read of gu.
    virtual void swigluBackward(float* dgu, const float* dout, const float* gu,
                                size_t N, size_t F, float* out) = 0;
    // Cross entropy of logits(N,V) against targets(N): losses(N). When dlogits
    // is not null it receives gradScale · d(loss_n)/d(logits) (it may alias
    // logits: the softmax is never stored separately).
    virtual void crossEntropy(float* dlogits, float* losses, const float* logits,
                              const int32_t* targets, size_t N, size_t V, float gradScale) = 0;
    // out[0] = sum(x(n))   (one float on the backend)
    virtual void sum(float* out, const float* x, size_t n) = 0;

    // ---- optimizer --------------------------------------------------------
    // acc[0] += sum(x(n)^2)
    virtual void sumSquaresAccumulate(float* acc, const float* x, size_t n) = 0;
    // From acc[0] = sum of squared gradients: state[0] = global norm,
    // state[1] = clip factor min(1, maxNorm/(norm+1e-6)) (1 if maxNorm <= 0),
    // state[2] = 1 if the norm or loss[0] is not finite (the step must not
    // be applied: a diverged step never overwrites good weights).
    virtual void finishGradNorm(float* state, const float* acc, const float* loss,
                                float maxNorm) = 0;
    // One AdamW step on one tensor; grad is multiplied by state[1] first;
    // nothing changes when state[2] != 0. `step` counts from 1.
    virtual void adamw(float* param, const float* grad, float* m, float* v, size_t n,
                       float lr, float beta1, float beta2, float eps, float weightDecay,
                       int64_t step, const float* state) = 0;
    // The same two steps over every trainable tensor at once: acc[0] += Σ of
    // all squared gradients, and AdamW on each tensor (backends with launch
    // costs do each in one pass; the default calls the per-tensor ops).
    virtual void sumSquaresAccumulateAll(float* acc, const std::vector<OptimizerTensor>& tensors) {
        for (const auto& t : tensors) sumSquaresAccumulate(acc, t.grad, t.n);
    }
    virtual void adamwAll(const std::vector<OptimizerTensor>& tensors, const AdamWSettings& s,
                          const float* state) {
        for (const auto& t : tensors)
            adamw(t.param, t.grad, t.m, t.v, t.n, s.lr, s.beta1, s.beta2, s.eps, t.weightDecay, t.step,
                  state);
    }
    // Zero a random fraction p of x(n) (entries with uniform01(seed,i) < p).
    virtual void pruneRandom(float* x, size_t n, float p, uint64_t seed) = 0;
    // Zero entries of x(n) whose |value| is at or below the p-quantile of |x|.
    virtual void pruneMagnitude(float* x, size_t n, float p) = 0;
    // pruneMagnitude on each tensor (each by its own quantile); backends
    // with launch costs do them together (a ReLoRA restart prunes 4 moments
    // per adapter, 224 tensors at 60M).
    virtual void pruneMagnitudeAll(const std::vector<TensorRef>& tensors, float p) {
        for (const TensorRef& t : tensors) pruneMagnitude(t.data, t.n, p);
    }
    // x[i] = 0 where ref[i] == 0 (a first moment follows its pruned second one).
    virtual void zeroWhereZero(float* x, const float* ref, size_t n) = 0;

    // ---- analysis (may synchronise; only called between steps) -------------
    // Singular values (descending) of the row-major matrix a(rows, cols).
    virtual std::vector<float> singularValues(const float* a, size_t rows, size_t cols) = 0;
    // Spectra in the background, so that measuring ΔW need not stall
    // training: queueSingularValues reads the matrices in stream order (the
    // caller may overwrite them with its next ops) and may return before the
    // values exist; takeSingularValues gives the singular values of every
    // matrix queued since the last take, in queue order, or nothing while
    // they are still being computed (wait = false). The default computes them
    // at once, one by one.
    virtual void queueSingularValues(const std::vector<MatrixRef>& matrices) {
        for (const MatrixRef& m : matrices) queuedSpectra_.push_back(singularValues(m.data, m.rows, m.cols));
    }
    virtual std::optional<std::vector<std::vector<float>>> takeSingularValues(bool /*wait*/) {
        return std::exchange(queuedSpectra_, {});
    }

private:
    std::vector<std::vector<float>> queuedSpectra_;  // the default's finished spectra
};

// Brackets a scope's products with Backend::beginDeferredProducts and
// endDeferredProducts.
class DeferredProducts {
public:
    explicit DeferredProducts(Backend& be) : be_(be) { be_.beginDeferredProducts(); }
    ~DeferredProducts() { be_.endDeferredProducts(); }
    DeferredProducts(const DeferredProducts&) = delete;
    DeferredProducts& operator=(const DeferredProducts&) = delete;

private:
    Backend& be_;
};

struct BackendOptions {
    int threads = 0;              // CPU threads, 0 = OMP_NUM_THREADS, else all cores
    bool bf16MatMul = true;       // CUDA: bf16 operands, fp32 accumulation
};

// kind: "auto", "cpu" or "cuda". Throws std::runtime_error with a clear
// message when the kind is unknown or (for "cuda") no device is usable.
std::unique_ptr<Backend> createBackend(const std::string& kind, const BackendOptions& options = {});
// True when this build has CUDA support and a usable device is present;
// `why` says what is missing otherwise.
bool cudaAvailable(std::string* why = nullptr);
// The CPU backend's threads when BackendOptions::threads is 0: the first
// entry of OMP_NUM_THREADS where it is set, else the number of cores.
int defaultCpuThreads();

}  // namespace relora
