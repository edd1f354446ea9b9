// SelfTest: checks one backend against the CPU reference on a small model
// (`relora selftest`, tests/test_selftest.cpp). It reuses the engine
// (Trainer, LlamaModel, restartAll, pruneOptimizerState) rather than a model
// of its own, so it checks what a run computes:
//   op:      every Backend operation against the reference on random inputs
//   (a) fp32: logits, loss and every gradient, full-rank and LoRA
//   (b) bf16: 100-step loss curves of full, LoRA and ReLoRA (restarts every
//             25 steps, magnitude pruning) follow the reference's
//   (c) a ReLoRA merge keeps the logits (fp32)
//   (d) each pruning mode zeroes the expected fraction of the factors'
//       moments, the same entries as the reference, and nothing else
//   (e) two identical 20-step runs give bit-identical losses, and so does a
//       run stopped, checkpointed and restored into a fresh backend
//   (f) LoRA at step 0 computes exactly the base model
// For the CPU backend the tested backend is a 1-thread CpuBackend and the
// reference one on all cores (what CI runs); for CUDA the reference is the
// CPU backend on all cores.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace relora {

struct SelfTestCheck {
    std::string name;       // e.g. "(a) fp32 full: gradients"
    bool passed = false;
    double error = 0;       // what was measured (NaN when the check threw)
    double tolerance = 0;   // the bound it had to meet (error <= tolerance)
    std::string detail;     // worst tensor, a failed condition, or the exception text
    double seconds = 0;     // wall time of the check (shared work is counted once)
};

struct SelfTestReport {
    std::string backend, device;                     // the backend tested
    std::string reference, referenceDevice;          // what it was compared with
    std::vector<SelfTestCheck> checks;
    int passed() const;
    int failed() const;
};

struct SelfTestOptions {
    std::string backend = "auto";   // auto | cpu | cuda
    int trainSteps = 100;           // steps per method of the bf16 curve checks (b)
    // Progress: called once the backends are known, then after every check.
    std::function<void(const SelfTestReport&)> onStart;
    std::function<void(const SelfTestCheck&)> onCheck;
};

// Runs every check. Throws std::runtime_error only when the requested
// backend cannot be created at all (e.g. "cuda" without a usable device);
// failures of individual checks, GPU errors included, become failed rows.
SelfTestReport runSelfTest(const SelfTestOptions& options = {});

// The table: a title line, a header, one row per check, then the line
// "N passed, M failed".
std::string selfTestTitle(const SelfTestReport& report);
std::string selfTestHeader();
std::string selfTestRow(const SelfTestCheck& check);
std::string selfTestSummary(const SelfTestReport& report);
std::string formatSelfTest(const SelfTestReport& report);

}  // namespace relora
