#include "core/LlamaModel.h"

#include "core/CounterRng.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace relora {
namespace {

const char* hfSuffix(TargetMatrix t) {
    switch (t) {
    case TargetMatrix::Wq: return "self_attn.q_proj";
    case TargetMatrix::Wk: return "self_attn.k_proj";
    case TargetMatrix::Wv: return "self_attn.v_proj";
    case TargetMatrix::Wo: return "self_attn.o_proj";
    case TargetMatrix::Gate: return "mlp.gate_proj";
    case TargetMatrix::Up: return "mlp.up_proj";
    case TargetMatrix::Down: return "mlp.down_proj";
    }
    return "";
}

}  // namespace

std::string modulePath(size_t layer, TargetMatrix t) {
    return "model.layers." + std::to_string(layer) + "." + hfSuffix(t);
}

std::pair<size_t, size_t> matrixShape(const ModelSpec& s, TargetMatrix t) {
    const size_t C = static_cast<size_t>(s.dModel), F = static_cast<size_t>(s.dFF);
    switch (t) {
    case TargetMatrix::Gate:
    case TargetMatrix::Up: return {F, C};
    case TargetMatrix::Down: return {C, F};
    default: return {C, C};
    }
}

size_t baseParameterCount(const ModelSpec& s) {
    const size_t C = static_cast<size_t>(s.dModel), F = static_cast<size_t>(s.dFF);
    const size_t V = static_cast<size_t>(s.vocab), L = static_cast<size_t>(s.layers);
    return 2 * V * C + L * (4 * C * C + 3 * C * F + 2 * C) + C;
}

size_t LlamaModel::headChunkRows(size_t N, size_t V, size_t headChunkElements) {
    N = std::max<size_t>(N, 1);
    size_t most = std::clamp<size_t>(headChunkElements / std::max<size_t>(V, 1), 1, N);
    if (most >= N) return N;
    if (most < 128) return most;
    most -= most % 128;  // whole product tiles
    const size_t chunks = (N + most - 1) / most, even = (N + chunks - 1) / chunks;
    return std::min(most, (even + 127) / 128 * 128);
}

LlamaModel::LlamaModel(Backend& backend, const ModelSpec& spec, size_t maxBatch,
                       size_t headChunkElements)
    : backend_(backend), spec_(spec), maxBatch_(maxBatch) {
    const size_t C = static_cast<size_t>(spec.dModel), F = static_cast<size_t>(spec.dFF);
    const size_t V = static_cast<size_t>(spec.vocab), L = static_cast<size_t>(spec.layers);
    const size_t T = static_cast<size_t>(spec.context), H = static_cast<size_t>(spec.heads);
    const size_t N = maxBatch * T;
    headChunkRows_ = headChunkRows(N, V, headChunkElements);

    embed_ = &addParameter("model.embed_tokens.weight", V, C, alloc(V * C), alloc(V * C));
    normGradCount_ = (2 * L + 1) * C;
    normGrads_ = alloc(normGradCount_);
    layers_.resize(L);
    for (size_t l = 0; l < L; ++l) {
        Layer& ly = layers_[l];
        const std::string pre = "model.layers." + std::to_string(l) + ".";
        ly.attnNorm = &addParameter(pre + "input_layernorm.weight", C, 1, alloc(C), normGrads_ + 2 * l * C);
        buildFused(ly.qkv, l, C, {{TargetMatrix::Wq, C}, {TargetMatrix::Wk, C}, {TargetMatrix::Wv, C}});
        buildFused(ly.wo, l, C, {{TargetMatrix::Wo, C}});
        ly.mlpNorm = &addParameter(pre + "post_attention_layernorm.weight", C, 1, alloc(C),
                                   normGrads_ + (2 * l + 1) * C);
        buildFused(ly.gateUp, l, C, {{TargetMatrix::Gate, F}, {TargetMatrix::Up, F}});
        buildFused(ly.down, l, F, {{TargetMatrix::Down, C}});

        ly.h1 = allocOperand(N * C);
        ly.rstd1 = alloc(N);
        ly.qkvOut = allocOperand(N * 3 * C);
        ly.probs = alloc(backend_.attentionStateSize(maxBatch, T, H, C / H));
        ly.att = allocOperand(N * C);
        ly.xMid = alloc(N * C);
        ly.h2 = allocOperand(N * C);
        ly.rstd2 = alloc(N);
        ly.gu = allocOperand(N * 2 * F);
    }
    finalNorm_ = &addParameter("model.norm.weight", C, 1, alloc(C), normGrads_ + 2 * L * C);
    head_ = &addParameter("lm_head.weight", V, C, alloc(V * C), alloc(V * C));

    for (size_t l = 0; l <= L; ++l) resid_.push_back(alloc(N * C));
    hf_ = allocOperand(N * C);  // read only by the head's products
    rstdf_ = alloc(N);
    logits_ = allocOperand(headChunkRows_ * V);
    losses_ = alloc(N);
    lossSum_ = alloc(1);
    dResid_ = alloc(N * C);
    dH_ = allocOperand(N * C);  // written by products, read by a norm's backward
    dQkv_ = allocOperand(N * 3 * C);
    dAtt_ = allocOperand(N * C);
    dGu_ = allocOperand(N * 2 * F);
    dAct_ = allocOperand(N * F);
    act_ = allocOperand(N * F);

    for (auto& p : params_) {
        p.m = alloc(p.count());
        p.v = alloc(p.count());
    }
}

LlamaModel::~LlamaModel() {
    for (void* p : owned_) backend_.release(p);
}

float* LlamaModel::alloc(size_t count) {
    float* p = backend_.allocate(count);
    owned_.push_back(p);
    return p;
}

float* LlamaModel::allocOperand(size_t count) {
    float* p = backend_.allocateOperand(count);
    owned_.push_back(p);
    return p;
}

const float* LlamaModel::logits() const {
    if (trainingForward_)
        throw std::logic_error("the last forward was a training one: its logits were overwritten by their gradient");
    if (headChunks_ > 1)
        throw std::logic_error("the last forward's logits were computed in " + std::to_string(headChunks_) +
                               " chunks; only the last chunk is kept");
    return logits_;
}

Parameter& LlamaModel::addParameter(const std::string& name, size_t rows, size_t cols,
                                    float* value, float* grad) {
    Parameter p;
    p.name = name;
    p.rows = rows;
    p.cols = cols;
    p.value = value;
    p.grad = grad;
    params_.push_back(std::move(p));
    return params_.back();
}

void LlamaModel::buildFused(FusedLinear& f, size_t layer, size_t in,
                            const std::vector<std::pair<TargetMatrix, size_t>>& parts) {
    f.in = in;
    for (const auto& [kind, out] : parts) f.outTotal += out;
    f.weight = alloc(f.outTotal * in);
    f.grad = alloc(f.outTotal * in);
    size_t offset = 0;
    for (const auto& [kind, out] : parts) {
        LinearPart part;
        part.kind = kind;
        part.layer = layer;
        part.out = out;
        part.outOffset = offset;
        part.weight = &addParameter(modulePath(layer, kind) + ".weight", out, in,
                                    f.weight + offset * in, f.grad + offset * in);
        f.parts.push_back(std::move(part));
        offset += out;
    }
}

void LlamaModel::initialise(uint64_t seed) {
    size_t index = 0;
    for (auto& p : params_) {
        if (p.isMatrix())
            backend_.fillNormal(p.value, p.count(), spec_.initStd, mixSeed(seed, index));
        else
            backend_.fill(p.value, 1.0f, p.count());
        ++index;
    }
}

std::vector<LinearPart*> LlamaModel::parts() {
    std::vector<LinearPart*> out;
    for (auto& ly : layers_)
        for (FusedLinear* f : {&ly.qkv, &ly.wo, &ly.gateUp, &ly.down})
            for (auto& p : f->parts) out.push_back(&p);
    return out;
}

Parameter* LlamaModel::find(const std::string& name) {
    for (auto& p : params_)
        if (p.name == name) return &p;
    return nullptr;
}

void LlamaModel::enableLoRA(const LoRAConfig& config, uint64_t seed) {
    if (loraEnabled_) throw std::logic_error("LoRA is already enabled");
    const size_t N = maxBatch_ * static_cast<size_t>(spec_.context);
    const size_t r = config.rank;
    const auto chosen = [&](TargetMatrix kind) {
        for (TargetMatrix t : config.targets)
            if (t == kind) return true;
        return false;
    };
    const auto adapterRows = [&](const FusedLinear& f) {
        size_t rows = 0;
        for (const auto& part : f.parts) rows += chosen(part.kind) ? r : 0;
        return rows;
    };
    // du is scratch within one group's backward: one buffer serves them all.
    size_t maxRows = 0;
    for (const auto& ly : layers_)
        for (const FusedLinear* f : {&ly.qkv, &ly.wo, &ly.gateUp, &ly.down}) maxRows = std::max(maxRows, adapterRows(*f));
    float* du = maxRows ? allocOperand(N * maxRows) : nullptr;
    for (auto& ly : layers_) {
        for (FusedLinear* f : {&ly.qkv, &ly.wo, &ly.gateUp, &ly.down}) {
            const size_t rows = adapterRows(*f);
            if (rows == 0) continue;
            const size_t in = f->in;
            f->loraRows = rows;
            f->loraA = alloc(rows * in);
            f->loraAGrad = alloc(rows * in);
            f->u = allocOperand(N * rows);
            f->du = du;
            if (config.dropout == 0.0f) f->effective = allocOperand(f->outTotal * in);
            // The group's B factors (and their gradients) one after the other,
            // so that alike adapters' dB are one strided batch.
            size_t bCount = 0;
            for (const auto& part : f->parts) bCount += chosen(part.kind) ? part.out * r : 0;
            float* bValues = alloc(bCount);
            float* bGrads = alloc(bCount);
            size_t offset = 0, bOffset = 0;
            for (auto& part : f->parts) {
                if (!chosen(part.kind)) continue;
                auto a = std::make_unique<LoRAAdapter>();
                const std::string path = modulePath(part.layer, part.kind);
                a->A = &addParameter(path + ".lora_A.weight", r, in, f->loraA + offset * in,
                                     f->loraAGrad + offset * in);
                a->B = &addParameter(path + ".lora_B.weight", part.out, r, bValues + bOffset, bGrads + bOffset);
                bOffset += part.out * r;
                for (Parameter* p : {a->A, a->B}) {
                    p->m = alloc(p->count());
                    p->v = alloc(p->count());
                }
                a->rank = r;
                a->offset = offset;
                a->scale = config.scale;
                a->dropout = config.dropout;
                if (config.dropout > 0.0f) {
                    a->mask = alloc(N * in);
                    a->xDropped = alloc(N * in);
                }
                // Kaiming-uniform with a = sqrt(5), as PyTorch's LoRA: bound 1/sqrt(in).
                backend_.fillUniform(a->A->value, a->A->count(), 1.0f / std::sqrt(static_cast<float>(in)),
                                     mixSeed(seed, part.layer * 8 + static_cast<size_t>(part.kind)));
                Parameter* w = part.weight;
                w->trainable = false;
                for (float* moment : {w->m, w->v}) {
                    backend_.release(moment);
                    std::erase(owned_, static_cast<void*>(moment));
                }
                w->m = w->v = nullptr;
                part.lora = std::move(a);
                offset += r;
            }
            if (f->anyPartTrainable()) continue;
            // No part of the group trains any more: its weight gradient is never written.
            backend_.release(f->grad);
            std::erase(owned_, static_cast<void*>(f->grad));
            f->grad = nullptr;
            for (auto& part : f->parts) part.weight->grad = nullptr;
        }
    }
    for (auto& ly : layers_)
        for (const FusedLinear* f : {&ly.qkv, &ly.wo, &ly.gateUp, &ly.down})
            if (f->effective) folds_.push_back(f->fold());
    lora_ = config;
    loraEnabled_ = true;
}

void LlamaModel::forward(const int32_t* tokens, const int32_t* targets, size_t batch,
                         bool training, uint64_t dropoutSeed) {
    if (batch > maxBatch_) throw std::invalid_argument("batch larger than the model was sized for");
    Backend& be = backend_;
    const size_t C = static_cast<size_t>(spec_.dModel), F = static_cast<size_t>(spec_.dFF);
    const size_t V = static_cast<size_t>(spec_.vocab), T = static_cast<size_t>(spec_.context);
    const size_t H = static_cast<size_t>(spec_.heads), D = C / H;
    const size_t N = batch * T;
    batch_ = batch;
    tokens_ = tokens;
    if (!folds_.empty()) be.foldLowRank(folds_);
    be.embeddingForward(resid_[0], tokens, embed_->value, N, C);
    for (size_t l = 0; l < layers_.size(); ++l) {
        Layer& ly = layers_[l];
        be.rmsnormForward(ly.h1, ly.rstd1, resid_[l], ly.attnNorm->value, N, C, spec_.normEps);
        ly.qkv.forward(be, ly.h1, ly.qkvOut, N, nullptr, training, dropoutSeed);
        be.attentionForward(ly.att, ly.probs, ly.qkvOut, batch, T, H, D, spec_.ropeTheta);
        ly.wo.forward(be, ly.att, ly.xMid, N, resid_[l], training, dropoutSeed);
        be.rmsnormForward(ly.h2, ly.rstd2, ly.xMid, ly.mlpNorm->value, N, C, spec_.normEps);
        ly.gateUp.forward(be, ly.h2, ly.gu, N, nullptr, training, dropoutSeed);
        be.swigluForward(act_, ly.gu, N, F);
        ly.down.forward(be, act_, resid_[l + 1], N, ly.xMid, training, dropoutSeed);
    }
    be.rmsnormForward(hf_, rstdf_, resid_.back(), finalNorm_->value, N, C, spec_.normEps);
    headChunks_ = 0;
    trainingForward_ = training;
    for (size_t row = 0; row < N; row += headChunkRows_, ++headChunks_) {
        const size_t rows = std::min(headChunkRows_, N - row);
        const float* h = hf_ + row * C;
        be.gemm(false, true, rows, V, C, 1.0f, h, C, head_->value, C, 0.0f, logits_, V);
        be.crossEntropy(training ? logits_ : nullptr, losses_ + row, logits_, targets + row, rows, V,
                        1.0f / static_cast<float>(N));
        if (!training) continue;
        // logits_ now holds d(mean loss)/d(logits) of these rows.
        if (head_->trainable) {
            const DeferredProducts scope(be);
            be.gemm(true, false, V, C, rows, 1.0f, logits_, V, h, C, row == 0 ? 0.0f : 1.0f, head_->grad, C);
        }
        be.gemm(false, false, rows, C, V, 1.0f, logits_, V, head_->value, C, 0.0f, dH_ + row * C, C);
    }
    be.sum(lossSum_, losses_, N);
}

void LlamaModel::backward() {
    Backend& be = backend_;
    const size_t C = static_cast<size_t>(spec_.dModel), F = static_cast<size_t>(spec_.dFF);
    const size_t T = static_cast<size_t>(spec_.context);
    const size_t H = static_cast<size_t>(spec_.heads), D = C / H;
    const size_t N = batch_ * T;
    // The norms' backward adds to their weights' gradients, which lie in one
    // block (frozen norms' rows are zeroed too, and never read).
    const bool normsTrain = finalNorm_->trainable || std::any_of(layers_.begin(), layers_.end(), [](const Layer& ly) {
                                return ly.attnNorm->trainable || ly.mlpNorm->trainable;
                            });
    if (normsTrain) be.fill(normGrads_, 0.0f, normGradCount_);
    if (embed_->trainable) be.fill(embed_->grad, 0.0f, embed_->count());

    // forward() left d(loss)/d(final norm output) in dH_ and the head's gradient.
    be.fill(dResid_, 0.0f, N * C);
    be.rmsnormBackward(dResid_, finalNorm_->grad, dH_, resid_.back(), finalNorm_->value, rstdf_, N, C);

    for (size_t l = layers_.size(); l-- > 0;) {
        Layer& ly = layers_[l];
        // x_out = x_mid + down(swiglu(gate_up(norm(x_mid))))
        // SwiGLU's output is made again rather than kept per layer, (N, F)
        // values in every layer: by the pass that takes SwiGLU's gradient,
        // between the two halves of down's backward (only its weight
        // gradients need the activation).
        ly.down.backwardInput(be, dResid_, dAct_, N, 0.0f);
        be.swigluBackward(dGu_, dAct_, ly.gu, N, F, act_);
        ly.down.backwardWeights(be, dResid_, act_, N);
        ly.gateUp.backward(be, dGu_, ly.h2, dH_, N, 0.0f);
        be.rmsnormBackward(dResid_, ly.mlpNorm->grad, dH_, ly.xMid, ly.mlpNorm->value, ly.rstd2, N, C);
        // x_mid = x_in + o(attention(rope(qkv(norm(x_in)))))
        ly.wo.backward(be, dResid_, ly.att, dAtt_, N, 0.0f);
        be.attentionBackward(dQkv_, dAtt_, ly.att, ly.probs, ly.qkvOut, batch_, T, H, D, spec_.ropeTheta);
        ly.qkv.backward(be, dQkv_, ly.h1, dH_, N, 0.0f);
        be.rmsnormBackward(dResid_, ly.attnNorm->grad, dH_, resid_[l], ly.attnNorm->value, ly.rstd1, N, C);
    }
    if (embed_->trainable) be.embeddingBackward(embed_->grad, dResid_, tokens_, N, C, embed_->rows);
}

std::vector<float> LlamaModel::read(const Parameter& p) const {
    std::vector<float> host(p.count());
    backend_.download(host.data(), p.value, host.size());
    return host;
}

void LlamaModel::write(Parameter& p, const std::vector<float>& values) {
    if (values.size() != p.count())
        throw std::invalid_argument(p.name + ": expected " + std::to_string(p.count()) + " values");
    backend_.upload(p.value, values.data(), values.size());
}

}  // namespace relora
