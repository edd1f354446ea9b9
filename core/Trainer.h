// Trainer: runs one RunSpec on one Backend (DESIGN §3): samples batches,
// steps the model with AdamW under the method's schedule, performs ReLoRA's
// warm-start switch and restarts, evaluates, measures the learned update,
// and reports everything to a MetricsSink. Runs on the caller's thread (the
// GUI's controller puts it on a worker thread); stop and pause are polled
// between steps.
#pragma once

#include "core/Backend.h"
#include "core/Checkpoint.h"
#include "core/Corpus.h"
#include "core/LearningRateSchedule.h"
#include "core/LlamaModel.h"
#include "core/MetricsSink.h"
#include "core/ParameterCounts.h"
#include "core/RunSpec.h"
#include "core/UpdateTracker.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace relora {

struct TrainerControl {
    std::atomic<bool> stop{false};
    std::atomic<bool> pause{false};
};

struct StepResult {
    int step = 0;               // updates completed, counting this one (1-based)
    double loss = 0;
    double lr = 0;
    double gradNorm = 0;
    double seconds = 0;
    bool diverged = false;
    std::string divergence;     // what was not finite, when diverged
};

struct Evaluation {
    int step = 0;
    double validationLoss = 0;
    std::vector<MatrixUpdate> updates;
    ParameterCounts counts;
    size_t updateSize = 0;
};

struct RunOutcome {
    std::string status;         // finished | stopped | failed
    std::string message;
    int steps = 0;
    std::optional<double> finalValidationLoss;
    std::optional<double> bestValidationLoss;
};

// Thrown when a spec does not validate; what() lists every problem.
struct InvalidSpec : std::invalid_argument {
    explicit InvalidSpec(std::vector<SpecError> e);
    std::vector<SpecError> errors;
};

// The backend a spec asks for (kind, threads, precision).
std::unique_ptr<Backend> createBackendFor(const RunSpec& spec);

class Trainer {
public:
    // Validates the spec (throws InvalidSpec) and loads its corpus (throws
    // std::runtime_error); builds and initialises the model on `backend`.
    Trainer(const RunSpec& spec, Backend& backend, MetricsSink* sink = nullptr);
    ~Trainer();

    // Trains to the end of the spec, or until control.stop. Never throws:
    // failures end the run with status "failed" and a message.
    RunOutcome run(TrainerControl& control,
                   const std::function<void(const StepResult&)>& progress = {});

    // One update from the sampler, or from given host batches (B*T each).
    StepResult step();
    StepResult step(const std::vector<int32_t>& inputs, const std::vector<int32_t>& targets);
    // Mean validation loss over the fixed validation batches.
    double validationLoss();
    // Validation loss, ΔW spectra and counts now; also sent to the sink.
    Evaluation evaluate();
    // The same in two halves, so that training can go on while the backend
    // computes the spectra: start() measures the validation loss and counts
    // (sent to the sink at once) and starts the spectra; finish() sends and
    // returns the whole evaluation once they are ready (nothing while they
    // are not and wait is false, or when none was started).
    void startEvaluation();
    std::optional<Evaluation> finishEvaluation(bool wait);

    // The complete state of the run now, and its restoration into a trainer
    // built from the same spec: a bit-identical continuation, on the GPU too
    // where the backend can adopt the checkpoint's product choices (an
    // event "products_retuned" says when it cannot).
    CheckpointData checkpoint();
    void restore(const CheckpointData& data);

    int currentStep() const { return step_; }
    LlamaModel& model() { return *model_; }
    const RunSpec& spec() const { return spec_; }
    const LearningRateSchedule& schedule() const { return *schedule_; }
    const Corpus& corpus() const { return *corpus_; }
    Backend& backend() { return backend_; }
    size_t tokensPerStep() const;

    // Called right after every ReLoRA restart (tests dump the new factors).
    std::function<void(int step)> afterRestart;
    // Called by run() every train.checkpointInterval steps and when the run
    // ends with good weights (finished, stopped, or diverged before the bad
    // update); the owner decides where checkpoints go.
    std::function<void(Trainer&)> saveCheckpoint;

private:
    void switchToLowRank();
    std::string describeDivergence(float loss, float norm);
    std::vector<Parameter*> trainable();

    RunSpec spec_;
    Backend& backend_;
    MetricsSink* sink_;
    std::unique_ptr<Corpus> corpus_;
    std::unique_ptr<BatchSampler> sampler_;
    std::vector<std::pair<std::vector<int32_t>, std::vector<int32_t>>> validation_;
    std::unique_ptr<LlamaModel> model_;
    std::unique_ptr<LearningRateSchedule> schedule_;
    std::unique_ptr<UpdateTracker> tracker_;
    std::vector<int> restarts_;
    int32_t* tokens_ = nullptr;    // (B*T) backend
    int32_t* targets_ = nullptr;   // (B*T) backend
    float* normAcc_ = nullptr;     // (1)
    float* normState_ = nullptr;   // (3) norm, clip factor, skip flag
    int step_ = 0;
    int restartCount_ = 0;
    std::optional<Evaluation> pending_;  // started, spectra not yet collected
    // Wall-clock origin of the metrics' `wall` values: the start of run().
    std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    double wallSeconds() const;
    std::vector<int32_t> hostInputs_, hostTargets_;
};

}  // namespace relora
