// CudaBackend: the Backend interface on one CUDA device (internal to gpu/).
//
// Everything runs on one non-blocking stream in issue order, except the
// deferred products (weight gradients), which may run beside it on a second one
// (beginDeferredProducts, SideStream); only download,
// downloadInts, synchronize and singularValues wait for the device. Memory is
// zero-filled cudaMalloc memory counted in a live-bytes counter whose maximum
// is peakMemoryBytes(). Scratch buffers (attention backward, RMSNorm partial
// sums, sort space) are cached by size and reused, so a training step never
// allocates once the first step has run. Matrix products: with
// BackendOptions::bf16MatMul, both operands are rounded to bf16 by our own
// kernel (a small cache reuses the copy of an operand until memory is
// written) and multiplied with fp32 accumulation by cuBLASLt (LtMatmul: a
// cached plan per shape, the fastest of its heuristic's candidates);
// operand buffers (allocateOperand) are kept in bf16 and used as they are
// (products of fp32 operands over 64 Mi elements let cuBLAS convert:
// CUBLAS_COMPUTE_32F_FAST_16BF; two fp32 operands under 1 Mi elements each
// multiply in TF32). Without bf16MatMul, plain fp32 cuBLAS (no TF32). In
// bf16 mode attention is flash-style (CudaAttention.cu). RELORA_CUDA_PROFILE=1 times
// every op with events and prints a table at destruction. The optimizer's
// norm and AdamW run over all tensors in one launch each; AdamW also rounds
// the new weights into their operand-cache copies, so the next step's
// products need not convert them again. Reductions use
// fixed launch shapes and no float atomics, so results are bit-reproducible.
#pragma once

#include "core/Backend.h"
#include "core/RotaryTables.h"
#include "gpu/CudaCheck.h"
#include "gpu/LtMatmul.h"
#include "gpu/SideStream.h"
#include "gpu/SpectraWorker.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace relora::gpu {

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(const BackendOptions& options);
    ~CudaBackend() override;
    CudaBackend(const CudaBackend&) = delete;
    CudaBackend& operator=(const CudaBackend&) = delete;

    std::string name() const override { return "cuda"; }
    std::string deviceName() const override { return deviceName_; }
    std::string productChoices() const override;
    std::string adoptProductChoices(const std::string& choices) override;

    float* allocate(size_t count) override;
    // bf16 mode: `count` bf16 values on the device behind a handle (see
    // storedBf16).
    float* allocateOperand(size_t count) override;
    int32_t* allocateInts(size_t count) override;
    void release(void* ptr) override;
    void upload(float* dst, const float* host, size_t count) override;
    void uploadInts(int32_t* dst, const int32_t* host, size_t count) override;
    void download(float* host, const float* src, size_t count) override;
    void downloadInts(int32_t* host, const int32_t* src, size_t count) override;
    void copy(float* dst, const float* src, size_t count) override;
    void fill(float* x, float value, size_t count) override;
    void synchronize() override;
    size_t peakMemoryBytes() const override { return peakBytes_; }

    void gemm(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha,
              const float* A, size_t lda, const float* B, size_t ldb, float beta,
              float* C, size_t ldc) override;
    // bf16 products put the addend straight into cuBLASLt's C; fp32 ones copy it.
    void gemmAdd(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                 size_t lda, const float* B, size_t ldb, const float* R, float* C, size_t ldc) override;
    // Inside them, a bf16 product whose operands are operand buffers or
    // cached bf16 copies runs on the side stream (SideStream), unless
    // profiling (which times ops on the main stream) or
    // RELORA_CUDA_SIDE_STREAM=0.
    void beginDeferredProducts() override { deferredProducts_ = side_ != nullptr; }
    void endDeferredProducts() override { deferredProducts_ = false; }
    // Both operands in operand buffers (bf16 mode): one cuBLASLt product of
    // `batch` matrices; fp32 operands and output: cuBLAS's strided batch in
    // the backend's compute type (the unfused attention); otherwise one by one.
    void gemmStridedBatched(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                            size_t lda, size_t strideA, const float* B, size_t ldb, size_t strideB, float beta,
                            float* C, size_t ldc, size_t strideC, size_t batch) override;
    // bf16 mode with every target an operand buffer: one narrowing launch
    // (the factors into the operand cache's kept slots or foldFactors_, the
    // rows no adapter covers into the targets), then one launch of the fold
    // kernel for every adapter's rows (lowrank_fold.cuh); otherwise
    // Backend's fold by fold.
    void foldLowRank(const std::vector<LowRankFold>& folds) override;
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
    size_t attentionStateSize(size_t B, size_t T, size_t H, size_t D) const override {
        return flashAttention(D) ? B * H * T : B * H * T * T;
    }
    // bf16 mode and a head width the flash kernels are built for.
    bool flashAttention(size_t D) const { return bf16_ && (D == 32 || D == 64); }
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
    void sumSquaresAccumulateAll(float* acc, const std::vector<OptimizerTensor>& tensors) override;
    void adamwAll(const std::vector<OptimizerTensor>& tensors, const AdamWSettings& s,
                  const float* state) override;
    void pruneRandom(float* x, size_t n, float p, uint64_t seed) override;
    void pruneMagnitude(float* x, size_t n, float p) override;
    void pruneMagnitudeAll(const std::vector<TensorRef>& tensors, float p) override;
    void zeroWhereZero(float* x, const float* ref, size_t n) override;

    std::vector<float> singularValues(const float* a, size_t rows, size_t cols) override;
    // Per group of equal min(rows, cols) = n: the Gram matrices (n, n) in
    // fp64 by cuBLAS on the stream, then their eigenvalues by LAPACK on the
    // host, on the spectra worker's threads (SpectraWorker).
    void queueSingularValues(const std::vector<MatrixRef>& matrices) override;
    std::optional<std::vector<std::vector<float>>> takeSingularValues(bool wait) override;

    // The bf16 storage of element k of an operand buffer for the pointer
    // handle + k (allocateOperand in bf16 mode), or null for an fp32
    // pointer. Ops that accept operand buffers dispatch on it; the others
    // refuse them (requireFp32). A handle is a range of `count` floats of
    // reserved, inaccessible host address space: it overlaps no device
    // allocation, so any pointer into it (a column block, a row offset) is
    // recognised, and an op that does not translate it faults rather than
    // read bf16 bits as floats.
    __nv_bfloat16* storedBf16(const float* p) const;
    void requireFp32(const float* p, const char* op) const;
    // Calls f with p as stored: its bf16 storage for an operand buffer,
    // else p itself (kernels are templated on the element type).
    template <typename F>
    void withStorage(float* p, F&& f) const {
        if (__nv_bfloat16* s = storedBf16(p)) f(s);
        else f(p);
    }
    template <typename F>
    void withStorage(const float* p, F&& f) const {
        if (const __nv_bfloat16* s = storedBf16(p)) f(s);
        else f(p);
    }

    // Every op that writes device memory other than through gemm calls this
    // first (RELORA_OP does): the bf16 operand copies may be stale after it.
    void forgetBf16Operands();

    // Op profile (RELORA_CUDA_PROFILE=1): device time per Backend op label,
    // measured with events around each op; printed to stderr at destruction.
    bool profiling() const { return profile_; }
    int profBegin(const std::string& label);
    void profEnd(int slot);

private:
    void profResolve();
    void profPrint();
    // A device buffer that only grows: reused by every call that fits.
    struct Scratch {
        void* ptr = nullptr;
        size_t bytes = 0;
    };
    void* rawAllocate(size_t bytes);                 // zero-filled, counted
    void rawRelease(void* ptr);
    struct StoredBf16 {
        __nv_bfloat16* data;  // (count) on the device
        size_t count;
    };
    void releaseOperand(std::map<uintptr_t, StoredBf16>::iterator it);
    void* ensure(Scratch& s, size_t bytes);          // grows s to at least `bytes`
    // Host -> device through a pinned staging buffer: returns once the host
    // data is copied out, the device copy runs in stream order.
    void uploadBytes(void* dst, const void* host, size_t bytes);
    void destroy() noexcept;
    // gemm and gemmAdd: C = alpha·op(A)·op(B) + beta·addend (addend may be C).
    void product(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                 size_t lda, const float* B, size_t ldb, float beta, const float* addend, float* C, size_t ldc);
    // The device's rotary tables cos(T, D/2) | sin(T, D/2), uploaded once per (T, D, theta).
    const float* rotaryTables(size_t T, size_t D, float theta);
    // Rotary embedding in place on the first 2H heads (q|k) of the rows
    // x(B·T, 3C) (fp32 or an operand buffer); inverse applies the transposed
    // rotation (the backward pass's).
    void rotateQueriesKeys(float* x, size_t B, size_t T, size_t H, size_t D, float theta, bool inverse);
    // x(n) itself, or for an operand buffer an fp32 copy in `scratch`.
    const float* widened(const float* x, size_t n, Scratch& scratch);
    // out(n) = bf16(x(n))
    void narrow(__nv_bfloat16* out, const float* x, size_t n);
    // Deterministic sum of x(n) (squares when `squares`) into out[0], added
    // to it when `accumulate`: fixed per-block partials, then one block.
    void reduce(float* out, const float* x, size_t n, bool squares, bool accumulate);
    // The bf16 copy of the row-strided fp32 matrix src(rows, cols; ld), from
    // the operand cache or converted now; *ld16 receives its row stride.
    const __nv_bfloat16* bf16Operand(const float* src, size_t rows, size_t cols, size_t ld, size_t* ld16);
    // A cache slot (kept, else the least recently used transient one), sized
    // for and registered as the bf16 copy of src(rows, cols; ld), packed; the
    // caller fills it before any product reads it (stream order). Without
    // `transient`, only a kept slot (which no later claim takes over before
    // the cache is next cleared), else null.
    __nv_bfloat16* claimBf16Operand(const float* src, size_t rows, size_t cols, size_t ld, bool transient = true);
    // Drops the cached copies whose source overlaps [begin, end).
    void forgetBf16OperandsIn(const float* begin, const float* end);
    struct Bf16Operand;  // a slot of the operand cache, below
    // The same for ranges of `count` floats from `begin` (an operand buffer's
    // handle range is harmless: no copy has such a source).
    struct Written {
        const float* begin;
        size_t count;
    };
    void forgetBf16OperandsIn(std::initializer_list<Written> ranges);
    // Before an op writes these ranges (or reads one): waits for the side
    // stream's ops on that memory (SideStream), when there is a side stream.
    void beforeWrites(std::initializer_list<Written> ranges);
    void beforeRead(const float* begin, size_t count);
    // The main stream waits for all side-stream work (ops that read any memory).
    void joinSide();
    // The cached bf16 copy of src(rows, cols; ld) or null; *ld16 its row
    // stride, *slot its cache slot.
    const __nv_bfloat16* cachedBf16Operand(const float* src, size_t rows, size_t cols, size_t ld, size_t* ld16,
                                           Bf16Operand** slot);
    // Whether a product runs on the side stream: a deferred one whose
    // operands are bf16 already (see beginDeferredProducts). After issuing
    // one there, sideIssued records what it read and wrote.
    bool onSide(bool operandsReady) const { return deferredProducts_ && operandsReady; }
    void sideIssued(std::initializer_list<SideStream::Range> ranges, Bf16Operand* slotA, Bf16Operand* slotB);
    // Uploads the multi-tensor table (multi_tensor.cuh) when the tensors
    // differ from the last upload; returns the number of chunks. A tensor
    // inside the last source of an operand cache slot gets that slot's copy
    // as its bf16 copy, which AdamW writes (adamwAll).
    long long uploadTensorTable(const std::vector<OptimizerTensor>& tensors);
    // A table that stays the same from step to step: `bytes` into `device`
    // unless `held` (what it holds) equals them already.
    void uploadIfChanged(Scratch& device, std::vector<unsigned char>& held, std::vector<unsigned char> bytes);

    int device_ = 0;
    std::string deviceName_;
    int smCount_ = 0;
    bool bf16_ = true;
    cublasComputeType_t computeType_ = CUBLAS_COMPUTE_32F_FAST_16BF;
    cudaStream_t stream_ = nullptr;
    cublasHandle_t cublas_ = nullptr;
    std::unique_ptr<LtMatmul> lt_;  // the bf16 products
    // The deferred products' stream, with a cuBLASLt and workspace of its own.
    std::unique_ptr<SideStream> side_;
    std::unique_ptr<LtMatmul> sideLt_;
    bool deferredProducts_ = false;

    std::unordered_map<void*, size_t> sizes_;
    std::map<uintptr_t, StoredBf16> bf16Stored_;  // handle -> storage
    size_t liveBytes_ = 0, peakBytes_ = 0;

    Scratch cublasWorkspace_, sideWorkspace_;
    // bf16 copies of product operands, valid until an op writes over their
    // source. A backward pass multiplies the same gradient twice in a row
    // (dx = dy·W, then dW = dyᵀ·x and the adapters' dy·B, dyᵀ·u), a LoRA
    // forward the same input twice: the copy made for the first product
    // serves the next ones (also for a column block of it). Matrices of up
    // to kKeptElements (the layers' weights, the adapters' factors) go to a
    // larger pool, so that the copy of a weight made for the forward product
    // also serves its dX product in the backward pass; larger ones (the
    // activations' gradients, the head's weight) share a few slots.
    struct Bf16Operand {
        const float* src = nullptr;   // null: empty
        const float* home = nullptr;  // the last source, kept when the copy goes stale
        size_t rows = 0, cols = 0, ld = 0;
        uint64_t lastUse = 0;
        size_t sideTicket = 0;       // the last side-stream op reading the copy
        Scratch copy;                // (rows, cols) bf16, packed
    };
    // A kept copy goes back to the slot its source had (each step's weights
    // after AdamW wiped the cache), else to an empty slot it fits, else to a
    // slot with no memory yet while the pool stays within kKeptBytes, else
    // to the transient slots: a kept slot never reallocates (cudaFree would
    // wait for the device).
    static constexpr size_t kTransientOperands = 3;  // both operands of a product + one kept
    static constexpr size_t kKeptOperands = 160;     // 130m: 48 weights; LoRA's factors 132
    static constexpr size_t kKeptElements = size_t{4} << 20;  // 130m gate|up: 3.1 Mi
    static constexpr size_t kKeptBytes = size_t{256} << 20;  // the kept pool's memory, at most
    Bf16Operand bf16Operands_[kTransientOperands + kKeptOperands];
    // The kept slot for a copy of `bytes` from src, or null (use a transient one).
    Bf16Operand* keptSlot(const float* src, size_t bytes);
    // The slot whose last source (packed rows) holds p(n): a weight that the
    // products convert, or a part of a fused one; or null.
    Bf16Operand* slotHolding(const float* p, size_t n);
    uint64_t bf16Clock_ = 0;
    Scratch tensorTable_;        // multi-tensor table + chunk prefix
    std::vector<unsigned char> tensorTableHost_;  // what tensorTable_ holds
    int tensorTableCount_ = 0;
    Scratch tensorPartials_;     // (chunks) doubles of the multi-tensor norm
    // foldLowRank: the factors' bf16 copies that found no kept slot, the
    // narrowing table and the fold kernel's table of segments.
    Scratch foldFactors_, foldTable_, foldSegments_;
    std::vector<unsigned char> foldTableHost_, foldSegmentsHost_;
    Scratch reducePartials_;     // (kReduceBlocks) doubles
    Scratch attentionDP_;        // (B,H,T,T) dP / dS of the attention backward
    Scratch attentionDelta_;     // (B,H,T) rowsum(dO ⊙ O) of the flash backward
    // fp32 copies of operand buffers where the attention needs fp32
    // (qkv, out or dout, the forward's out in the backward, dqkv)
    Scratch attentionQkv32_, attentionOut32_, attentionForwardOut32_, attentionDqkv32_;
    Scratch rmsPartials_;        // (blocks, C) per-block dw partial sums
    Scratch sortKeys_, sortValuesIn_, sortValuesOut_, sortKeysOut_, sortTemp_;  // embedding backward
    Scratch pruneTable_, pruneKeys_, pruneSorted_, pruneTemp_;  // magnitude pruning
    // Spectra queued since the last take: per matrix, the worker's batch
    // and its place in it; per batch a Gram buffer and a ready event.
    struct QueuedSpectrum {
        size_t rows, cols, batch, index;
    };
    std::vector<QueuedSpectrum> queuedSpectra_;
    size_t spectraBatches_ = 0;
    std::vector<Scratch> spectraGrams_;
    std::vector<cudaEvent_t> spectraReady_;
    Scratch spectraDouble_;  // one matrix in fp64
    std::unique_ptr<SpectraWorker> spectraWorker_;
    RotaryTables rotary_;  // on the host, as the CPU backend computes them
    Scratch ropeTables_;   // their device copy
    void* staging_ = nullptr;            // pinned host memory
    size_t stagingBytes_ = 0;
    cudaEvent_t stagingFree_ = nullptr;  // recorded after the last copy out of staging_

    bool profile_ = false;
    struct ProfSlot {
        std::string label;
        cudaEvent_t begin = nullptr, end = nullptr;
    };
    std::vector<ProfSlot> profSlots_;
    size_t profUsed_ = 0;
    long profDownloads_ = 0, profSkipDownloads_ = 0;
    std::map<std::string, std::pair<double, long>> profTotals_;  // label -> (ms, calls)
};

// Times the enclosing Backend op when profiling is on (no cost otherwise).
class ProfScope {
public:
    ProfScope(CudaBackend& be, const char* label) : be_(be) {
        if (be_.profiling()) slot_ = be_.profBegin(label);
    }
    ProfScope(CudaBackend& be, const std::string& label) : be_(be) {
        if (be_.profiling()) slot_ = be_.profBegin(label);
    }
    ~ProfScope() {
        if (slot_ >= 0) be_.profEnd(slot_);
    }
    ProfScope(const ProfScope&) = delete;
    ProfScope& operator=(const ProfScope&) = delete;

private:
    CudaBackend& be_;
    int slot_ = -1;
};
// Opens every Backend op that writes device memory (gemm and crossEntropy
// handle their own, knowing what they write): times it, and drops the bf16
// operand copies it may make stale: all of them, or with RELORA_OP_WRITES
// those whose source overlaps the ranges it names ({pointer, floats}, ...).
// Both first wait for the side stream's work on the memory the op writes
// (RELORA_OP: for all of it).
#define RELORA_OP(label)        \
    joinSide();                 \
    forgetBf16Operands();       \
    ::relora::gpu::ProfScope relora_prof_scope_(*this, label)
#define RELORA_OP_WRITES(label, ...)     \
    beforeWrites({__VA_ARGS__});         \
    forgetBf16OperandsIn({__VA_ARGS__}); \
    ::relora::gpu::ProfScope relora_prof_scope_(*this, label)

}  // namespace relora::gpu
