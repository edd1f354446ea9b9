// LlamaModel: the LLaMA-style decoder of DESIGN §4 on a Backend, with its
// forward and hand-written backward pass. Pre-norm RMSNorm, rotary q/k
// ("rotate half"), causal attention, SwiGLU MLP, final RMSNorm, untied head.
// Activations are allocated once for `maxBatch` sequences of `context` tokens;
// the SwiGLU output is recomputed in the backward pass instead of kept per
// layer (the largest saved activation after gate|up, for one cheap pass).
//
// The output head and the cross entropy run over row chunks of at most
// headChunkElements logits: in a training forward each chunk's gradient
// (written over its logits) goes straight into the head's weight gradient
// and d(loss)/d(final norm output), so the (N, V) logits never exist at once
// (2 GiB at 60M, batch 32 × 512).
#pragma once

#include "core/Backend.h"
#include "core/LinearLayer.h"
#include "core/Parameter.h"
#include "core/RunSpec.h"

#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace relora {

struct LoRAConfig {
    std::vector<TargetMatrix> targets;
    size_t rank = 0;
    float scale = 1.0f;
    float dropout = 0.0f;
};

class LlamaModel {
public:
    // At a 32000 vocabulary, four chunks of 4096 rows for a batch of 32 × 512:
    // one 250 MiB bf16 buffer for a chunk's logits and then their gradient,
    // against 1 GiB for the whole batch. Smaller chunks cost time: the head's
    // dX product has fewer output tiles to fill the GPU with, and the weight
    // gradient (fp32, read and written by every chunk) is accumulated more
    // often. (On an H100, six chunks of 2816 rows ran 1.0 % (60m) and 0.6 %
    // (130m) slower; two chunks of 8192 a further 0.7 % and 0.4 % faster,
    // but took 130m's peak over PyTorch's.)
    static constexpr size_t kHeadChunkElements = size_t{160} << 20;
    // Rows per head chunk for N rows of V logits: the chunks as even as
    // whole 128-row product tiles allow, each at most headChunkElements.
    static size_t headChunkRows(size_t N, size_t V, size_t headChunkElements);

    LlamaModel(Backend& backend, const ModelSpec& spec, size_t maxBatch,
               size_t headChunkElements = kHeadChunkElements);
    ~LlamaModel();
    LlamaModel(const LlamaModel&) = delete;
    LlamaModel& operator=(const LlamaModel&) = delete;

    // Matrices N(0, initStd), norm weights 1; draws depend only on the seed.
    void initialise(uint64_t seed);

    // Adds LoRA adapters to the target matrices and freezes those matrices
    // (their AdamW moments are released). A: Kaiming-uniform, B: zeros.
    void enableLoRA(const LoRAConfig& config, uint64_t seed);
    bool hasLoRA() const { return loraEnabled_; }
    const LoRAConfig& loraConfig() const { return lora_; }

    // tokens(B*T), targets(B*T) are backend buffers. Fills the per-token
    // losses and their sum (lossSum()[0]); in training mode also computes
    // the output head's gradients (its weight's, and the final norm
    // output's) for backward().
    void forward(const int32_t* tokens, const int32_t* targets, size_t batch, bool training,
                 uint64_t dropoutSeed);
    // Gradients of the mean loss of the last forward() for every trainable
    // parameter (overwritten, not accumulated across calls).
    void backward();

    // (B*T, V) logits of the last forward(); only when it was not a training
    // one (that writes the gradient over them) and they fit one head chunk
    // (small models, tests): throws otherwise.
    const float* logits() const;
    const float* lossSum() const { return lossSum_; }  // one float on the backend
    size_t tokensPerBatch(size_t batch) const { return batch * spec_.context; }

    std::deque<Parameter>& parameters() { return params_; }
    Parameter* find(const std::string& name);
    // Every projection (layer × target kind), for LoRA and ΔW tracking.
    std::vector<LinearPart*> parts();
    const ModelSpec& spec() const { return spec_; }
    Backend& backend() { return backend_; }

    // Host <-> backend helpers for tests, snapshots and parity dumps.
    std::vector<float> read(const Parameter& p) const;
    void write(Parameter& p, const std::vector<float>& values);

private:
    struct Layer {
        Parameter* attnNorm = nullptr;
        Parameter* mlpNorm = nullptr;
        FusedLinear qkv, wo, gateUp, down;
        // saved activations (probs: the attention state, Backend::attentionStateSize floats)
        float *h1 = nullptr, *rstd1 = nullptr, *qkvOut = nullptr, *probs = nullptr,
              *att = nullptr, *xMid = nullptr, *h2 = nullptr, *rstd2 = nullptr,
              *gu = nullptr;
    };

    float* allocOperand(size_t count);
    Parameter& addParameter(const std::string& name, size_t rows, size_t cols, float* value,
                            float* grad);
    void buildFused(FusedLinear& f, size_t layer, size_t in,
                    const std::vector<std::pair<TargetMatrix, size_t>>& parts);
    float* alloc(size_t count);

    Backend& backend_;
    ModelSpec spec_;
    size_t maxBatch_;
    size_t headChunkRows_;             // rows of logits per head chunk
    std::deque<Parameter> params_;     // stable addresses
    std::vector<void*> owned_;
    Parameter* embed_ = nullptr;
    Parameter* finalNorm_ = nullptr;
    Parameter* head_ = nullptr;
    // The norms' weight gradients, one C-wide row each, (2L+1, C): the
    // backward zeroes them all in one fill instead of one launch a norm.
    float* normGrads_ = nullptr;
    size_t normGradCount_ = 0;
    std::vector<Layer> layers_;
    bool loraEnabled_ = false;
    LoRAConfig lora_;
    std::vector<LowRankFold> folds_;   // the groups' effective weights, made by every forward()

    size_t batch_ = 0;
    size_t headChunks_ = 0;            // chunks the last forward() used
    bool trainingForward_ = false;     // whether the last forward() was a training one
    const int32_t* tokens_ = nullptr;
    std::vector<float*> resid_;        // L+1 residual streams (N, C)
    // logits_: (headChunkRows_, V), one chunk, then its gradient
    float *hf_ = nullptr, *rstdf_ = nullptr, *logits_ = nullptr, *losses_ = nullptr, *lossSum_ = nullptr;
    float *dResid_ = nullptr, *dH_ = nullptr, *dQkv_ = nullptr, *dAtt_ = nullptr,
          *dGu_ = nullptr, *dAct_ = nullptr;
    float* act_ = nullptr;             // (N, F) SwiGLU output of the layer at hand
};

// Closed-form parameter count of the base model (no adapters).
size_t baseParameterCount(const ModelSpec& spec);
// Rows and columns (out, in) of a target matrix.
std::pair<size_t, size_t> matrixShape(const ModelSpec& spec, TargetMatrix t);
// Hugging Face module path of a target in a layer, e.g. "model.layers.2.mlp.up_proj".
std::string modulePath(size_t layer, TargetMatrix t);

}  // namespace relora
