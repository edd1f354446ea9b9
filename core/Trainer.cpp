#include "core/Trainer.h"

#include "core/CounterRng.h"
#include "core/ReLoRA.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <sstream>
#include <thread>

namespace relora {
namespace {

using Clock = std::chrono::steady_clock;

// Independent seed streams of one run.
enum SeedStream : uint64_t { kInit = 1, kLoRAInit, kSampler, kDropout, kRestart, kSynthetic };

float loraScale(const MethodSpec& m) {
    const float r = static_cast<float>(m.rank);
    return m.rankStabilised ? m.alpha / std::sqrt(r) : m.alpha / r;
}

std::unique_ptr<Corpus> loadCorpus(const RunSpec& spec) {
    if (spec.data.synthetic) {
        const size_t tokens = std::max<size_t>(
            1u << 20, static_cast<size_t>(spec.train.batch) * (spec.model.context + 1) * 16);
        return std::make_unique<Corpus>(
            Corpus::synthetic(tokens, spec.model.vocab, mixSeed(spec.train.seed, kSynthetic)));
    }
    return std::make_unique<Corpus>(Corpus::load(spec.data.corpus, spec.data.validationFraction));
}

}  // namespace

namespace {

std::string formatErrors(const std::vector<SpecError>& errors) {
    std::ostringstream out;
    out << "invalid run spec:";
    for (const auto& e : errors) out << "\n  " << e.field << ": " << e.message;
    return out.str();
}

}  // namespace

InvalidSpec::InvalidSpec(std::vector<SpecError> e)
    : std::invalid_argument(formatErrors(e)), errors(std::move(e)) {}

std::unique_ptr<Backend> createBackendFor(const RunSpec& spec) {
    return createBackend(spec.backend, {spec.train.threads, spec.precision == "bf16"});
}

Trainer::Trainer(const RunSpec& spec, Backend& backend, MetricsSink* sink)
    : spec_(spec), backend_(backend), sink_(sink) {
    if (auto errors = validate(spec_); !errors.empty())
        throw InvalidSpec(errors);
    const size_t B = static_cast<size_t>(spec_.train.batch);
    const size_t T = static_cast<size_t>(spec_.model.context);
    corpus_ = loadCorpus(spec_);
    sampler_ = std::make_unique<BatchSampler>(corpus_->train(), B, T, mixSeed(spec_.train.seed, kSampler));
    validation_ = validationBatches(corpus_->validation(), B, T,
                                    static_cast<size_t>(spec_.train.evalBatches));

    model_ = std::make_unique<LlamaModel>(backend_, spec_.model, B);
    model_->initialise(mixSeed(spec_.train.seed, kInit));

    const bool relora = spec_.method.kind == Method::ReLoRA;
    restarts_ = spec_.restartSchedule();
    schedule_ = scheduleFor(spec_);

    if (spec_.isLowRank() && !(relora && spec_.relora.warmStartSteps > 0))
        model_->enableLoRA({spec_.method.targets, static_cast<size_t>(spec_.method.rank),
                            loraScale(spec_.method), spec_.method.dropout},
                           mixSeed(spec_.train.seed, kLoRAInit));
    std::vector<LinearPart*> tracked;
    for (LinearPart* p : model_->parts())
        if (spec_.targets(p->kind)) tracked.push_back(p);
    tracker_ = std::make_unique<UpdateTracker>(backend_, tracked);

    tokens_ = backend_.allocateInts(B * T);
    targets_ = backend_.allocateInts(B * T);
    normAcc_ = backend_.allocate(1);
    normState_ = backend_.allocate(3);
}

Trainer::~Trainer() {
    tracker_.reset();
    model_.reset();
    for (void* p : {static_cast<void*>(tokens_), static_cast<void*>(targets_),
                    static_cast<void*>(normAcc_), static_cast<void*>(normState_)})
        backend_.release(p);
}

size_t Trainer::tokensPerStep() const {
    return static_cast<size_t>(spec_.train.batch) * static_cast<size_t>(spec_.model.context);
}

std::vector<Parameter*> Trainer::trainable() {
    std::vector<Parameter*> out;
    for (auto& p : model_->parameters())
        if (p.trainable) out.push_back(&p);
    return out;
}

void Trainer::switchToLowRank() {
    model_->enableLoRA({spec_.method.targets, static_cast<size_t>(spec_.method.rank),
                        loraScale(spec_.method), spec_.method.dropout},
                       mixSeed(spec_.train.seed, kLoRAInit));
    tracker_->resetReference();
    if (sink_)
        sink_->event(step_, "warm_start_switch",
                     "switched from full-rank to ReLoRA after " + std::to_string(step_) + " steps");
}

StepResult Trainer::step() {
    sampler_->next(hostInputs_, hostTargets_);
    return step(hostInputs_, hostTargets_);
}

StepResult Trainer::step(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets) {
    const size_t B = static_cast<size_t>(spec_.train.batch);
    const size_t N = tokensPerStep();
    if (inputs.size() != N || targets.size() != N)
        throw std::invalid_argument("a training batch must hold batch x context tokens");
    const auto started = Clock::now();
    const int t = step_;
    if (spec_.method.kind == Method::ReLoRA) {
        if (t > 0 && t == spec_.relora.warmStartSteps && !model_->hasLoRA()) switchToLowRank();
        if (std::binary_search(restarts_.begin(), restarts_.end(), t)) {
            const auto& r = spec_.relora;
            restartAll(backend_, model_->parts(), {r.prune, r.pruneRatio},
                       mixSeed(spec_.train.seed, kRestart), restartCount_);
            ++restartCount_;
            if (sink_) {
                std::ostringstream detail;
                detail << "restart " << restartCount_ << ": merged adapters into the weights, "
                       << "pruned optimizer state (" << toString(r.prune);
                if (r.prune != PruneMode::Reset) detail << " " << r.pruneRatio;
                detail << ")";
                sink_->event(t, "restart", detail.str());
            }
            if (afterRestart) afterRestart(t);
        }
    }
    const double lr = schedule_->at(t);
    backend_.uploadInts(tokens_, inputs.data(), N);
    backend_.uploadInts(targets_, targets.data(), N);
    model_->forward(tokens_, targets_, B, true, mixSeed(mixSeed(spec_.train.seed, kDropout), t));
    model_->backward();

    const auto params = trainable();
    const auto& o = spec_.optim;
    std::vector<OptimizerTensor> tensors;
    tensors.reserve(params.size());
    for (Parameter* p : params)
        tensors.push_back({p->value, p->grad, p->m, p->v, p->count(),
                           p->isMatrix() ? o.weightDecay : 0.0f, p->updates + 1});
    backend_.fill(normAcc_, 0.0f, 1);
    backend_.sumSquaresAccumulateAll(normAcc_, tensors);
    backend_.finishGradNorm(normState_, normAcc_, model_->lossSum(), o.clip);
    backend_.adamwAll(tensors, {static_cast<float>(lr), o.beta1, o.beta2, o.eps}, normState_);

    float lossSum = 0, state[3] = {0, 0, 0};
    backend_.download(&lossSum, model_->lossSum(), 1);
    backend_.download(state, normState_, 3);
    StepResult r;
    r.loss = lossSum / static_cast<double>(N);
    r.lr = lr;
    r.gradNorm = state[0];
    if (state[2] != 0.0f) {
        r.step = t + 1;
        r.diverged = true;
        r.divergence = describeDivergence(static_cast<float>(r.loss), state[0]);
        r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
        return r;
    }
    for (Parameter* p : params) ++p->updates;
    r.step = ++step_;
    r.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    return r;
}

std::string Trainer::describeDivergence(float loss, float norm) {
    std::ostringstream out;
    if (!std::isfinite(loss)) {
        out << "the training loss is " << loss;
    } else {
        out << "the gradient norm is " << norm << " (loss " << loss << ")";
        // Rare path: name the first tensor whose gradient is not finite.
        for (Parameter* p : trainable()) {
            float acc = 0;
            backend_.fill(normAcc_, 0.0f, 1);
            backend_.sumSquaresAccumulate(normAcc_, p->grad, p->count());
            backend_.download(&acc, normAcc_, 1);
            if (!std::isfinite(acc)) {
                out << "; first non-finite gradient: " << p->name;
                break;
            }
        }
    }
    out << "; the update was not applied, weights are those of step " << step_;
    return out.str();
}

double Trainer::validationLoss() {
    double total = 0;
    size_t count = 0;
    const size_t T = static_cast<size_t>(spec_.model.context);
    for (const auto& [inputs, targets] : validation_) {
        const size_t batch = inputs.size() / T;
        backend_.uploadInts(tokens_, inputs.data(), inputs.size());
        backend_.uploadInts(targets_, targets.data(), targets.size());
        model_->forward(tokens_, targets_, batch, false, 0);
        float sum = 0;
        backend_.download(&sum, model_->lossSum(), 1);
        total += sum;
        count += inputs.size();
    }
    return count ? total / static_cast<double>(count) : std::nan("");
}

double Trainer::wallSeconds() const {
    return std::chrono::duration<double>(Clock::now() - started_).count();
}

Evaluation Trainer::evaluate() {
    startEvaluation();
    return *finishEvaluation(true);
}

void Trainer::startEvaluation() {
    if (pending_) finishEvaluation(true);  // one evaluation at a time
    Evaluation e;
    e.step = step_;
    e.validationLoss = validationLoss();
    e.counts = countParameters(model_->parameters());
    tracker_->startMeasure();
    if (sink_)
        sink_->metrics({{"val_loss", step_, e.validationLoss},
                        {"val_ppl", step_, std::exp(e.validationLoss)},
                        {"params_total", step_, double(e.counts.total)},
                        {"params_trainable", step_, double(e.counts.trainable)},
                        {"optimizer_state", step_, double(e.counts.optimizerState)},
                        {"peak_memory_mb", step_, double(backend_.peakMemoryBytes()) / (1 << 20)}},
                       wallSeconds());
    pending_ = std::move(e);
}

std::optional<Evaluation> Trainer::finishEvaluation(bool wait) {
    if (!pending_) return std::nullopt;
    std::optional<std::vector<MatrixUpdate>> updates = tracker_->finishMeasure(spec_.train.rankThreshold, wait);
    if (!updates) return std::nullopt;
    Evaluation e = std::move(*pending_);
    pending_.reset();
    e.updates = std::move(*updates);
    e.updateSize = updateSize(e.updates);
    if (!sink_) return e;
    // Reported at the step the evaluation started, though later steps may
    // have run while the spectra were computed.
    std::vector<MetricPoint> points = {{"update_size", e.step, double(e.updateSize)}};
    // Per matrix, and averaged per matrix type over the layers.
    std::map<std::string, std::array<double, 4>> byKind;  // eff, stable, thr, count
    for (const auto& u : e.updates) {
        points.push_back({"rank_eff/" + u.label, e.step, u.ranks.effectiveRank});
        points.push_back({"rank_stable/" + u.label, e.step, u.ranks.stableRank});
        points.push_back({"rank_thr/" + u.label, e.step, double(u.ranks.thresholdRank)});
        auto& k = byKind[toString(u.part->kind)];
        k[0] += u.ranks.effectiveRank;
        k[1] += u.ranks.stableRank;
        k[2] += u.ranks.thresholdRank;
        k[3] += 1;
        sink_->spectrum(e.step, u.label, u.sigma);
    }
    for (const auto& [kind, k] : byKind) {
        points.push_back({"rank_eff/" + kind, e.step, k[0] / k[3]});
        points.push_back({"rank_stable/" + kind, e.step, k[1] / k[3]});
        points.push_back({"rank_thr/" + kind, e.step, k[2] / k[3]});
    }
    sink_->metrics(points, wallSeconds());
    return e;
}

CheckpointData Trainer::checkpoint() {
    CheckpointData d;
    d.specJson = toJson(spec_);
    d.step = step_;
    d.restartCount = restartCount_;
    d.samplerPosition = sampler_->position();
    d.loraEnabled = model_->hasLoRA();
    d.productChoices = backend_.productChoices();
    const auto read = [&](const float* src, size_t n) {
        std::vector<float> host(n);
        backend_.download(host.data(), src, n);
        return host;
    };
    for (auto& p : model_->parameters()) {
        d.tensors["w:" + p.name] = read(p.value, p.count());
        if (p.m) {
            d.tensors["m:" + p.name] = read(p.m, p.count());
            d.tensors["v:" + p.name] = read(p.v, p.count());
        }
        d.counters["updates:" + p.name] = p.updates;
    }
    for (size_t i = 0; i < tracker_->tracked().size(); ++i)
        d.tensors["ref:" + partLabel(*tracker_->tracked()[i])] =
            read(tracker_->references()[i], tracker_->tracked()[i]->weight->count());
    return d;
}

void Trainer::restore(const CheckpointData& d) {
    if (d.loraEnabled && !model_->hasLoRA())
        model_->enableLoRA({spec_.method.targets, static_cast<size_t>(spec_.method.rank),
                            loraScale(spec_.method), spec_.method.dropout},
                           mixSeed(spec_.train.seed, kLoRAInit));
    const auto load = [&](const std::string& key, float* dst, size_t n) {
        const auto it = d.tensors.find(key);
        if (it == d.tensors.end() || it->second.size() != n)
            throw std::runtime_error("checkpoint does not match this run's model: " + key);
        backend_.upload(dst, it->second.data(), n);
    };
    for (auto& p : model_->parameters()) {
        load("w:" + p.name, p.value, p.count());
        if (p.m) {
            load("m:" + p.name, p.m, p.count());
            load("v:" + p.name, p.v, p.count());
        }
        const auto it = d.counters.find("updates:" + p.name);
        p.updates = it == d.counters.end() ? 0 : it->second;
    }
    for (size_t i = 0; i < tracker_->tracked().size(); ++i)
        load("ref:" + partLabel(*tracker_->tracked()[i]), tracker_->references()[i],
             tracker_->tracked()[i]->weight->count());
    step_ = d.step;
    restartCount_ = d.restartCount;
    sampler_->setPosition(d.samplerPosition);
    if (const std::string why = backend_.adoptProductChoices(d.productChoices); !why.empty() && sink_)
        sink_->event(step_, "products_retuned", why + "; the continuation may differ in the last bits");
}

RunOutcome Trainer::run(TrainerControl& control,
                        const std::function<void(const StepResult&)>& progress) {
    RunOutcome outcome;
    started_ = Clock::now();
    // The spectra of an evaluation finish in the background while training
    // goes on (on backends that can); they are collected between steps.
    const auto recordEvaluation = [&] {
        startEvaluation();
        const double loss = pending_->validationLoss;
        outcome.finalValidationLoss = loss;
        if (!outcome.bestValidationLoss || loss < *outcome.bestValidationLoss) outcome.bestValidationLoss = loss;
        finishEvaluation(false);
    };
    try {
        if (sink_) sink_->runStarted(toJson(spec_), backend_.name(), backend_.deviceName());
        if (step_ == 0) recordEvaluation();
        while (step_ < spec_.train.steps) {
            while (control.pause && !control.stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (control.stop) {
                if (saveCheckpoint) saveCheckpoint(*this);
                outcome.status = "stopped";
                outcome.message = "stopped at step " + std::to_string(step_);
                break;
            }
            const StepResult r = step();
            finishEvaluation(false);
            if (r.diverged) {
                if (saveCheckpoint) saveCheckpoint(*this);  // the weights before the bad update
                outcome.status = "failed";
                outcome.message = "diverged at step " + std::to_string(r.step) + ": " + r.divergence;
                if (sink_) sink_->event(r.step, "diverged", r.divergence);
                break;
            }
            if (sink_ && (r.step % spec_.train.logInterval == 0 || r.step == spec_.train.steps)) {
                const double tokens = static_cast<double>(tokensPerStep());
                sink_->metrics({{"train_loss", r.step, r.loss},
                                {"lr", r.step, r.lr},
                                {"grad_norm", r.step, r.gradNorm},
                                {"tokens_per_s", r.step, tokens / r.seconds},
                                {"step_ms", r.step, r.seconds * 1e3}},
                               wallSeconds());
            }
            if (progress) progress(r);
            if (r.step % spec_.train.evalInterval == 0 || r.step == spec_.train.steps) recordEvaluation();
            const int every = spec_.train.checkpointInterval;
            if (saveCheckpoint && ((every > 0 && r.step % every == 0) || r.step == spec_.train.steps))
                saveCheckpoint(*this);
        }
        if (outcome.status.empty()) {
            outcome.status = "finished";
            char text[64];
            std::snprintf(text, sizeof text, "trained %d steps in %.1f s", step_, wallSeconds());
            outcome.message = text;
        }
        finishEvaluation(true);
    } catch (const std::exception& e) {
        outcome.status = "failed";
        outcome.message = std::string("step ") + std::to_string(step_) + ": " + e.what();
    }
    outcome.steps = step_;
    if (sink_) sink_->runFinished(outcome.status, outcome.message);
    return outcome;
}

}  // namespace relora
