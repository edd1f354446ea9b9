// `relora bench`: training throughput per method on synthetic tokens,
// measured with the trainer's own step (so it times what a run does). With
// --costs also what the workbench's measurements cost next to it:
//   evaluation   one evaluation (validation loss, ΔW spectra, counts) waited for
//   overhead     what an evaluation adds to the evalInterval steps it starts,
//                as the run loop does it (spectra overlap the steps where the
//                backend computes them in the background), against the same
//                steps without one; the median of three rounds
//   merge        one ReLoRA merge with optimizer pruning, per layer; the
//                median of three after one untimed merge
// --product-choices FILE takes the backend's product algorithms from FILE,
// or writes the first method's there when FILE does not exist yet: a
// profiler's run (whose timings of candidates mean nothing) then
// multiplies as an unprofiled one did.
#include "app/cli/Commands.h"
#include "core/ReLoRA.h"
#include "core/Trainer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <vector>

namespace relora::cli {
namespace {

// Seconds that fn takes on the device (the backend is synchronised before and after).
template <typename Fn>
double timed(Backend& backend, Fn&& fn) {
    backend.synchronize();
    const auto start = std::chrono::steady_clock::now();
    fn();
    backend.synchronize();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

struct MeasurementCosts {
    double validationMs = 0, evaluationMs = 0, overheadPercent = 0;
    double mergeMsPerLayer = -1;  // ReLoRA only
};

MeasurementCosts measurementCosts(Trainer& trainer, Backend& backend) {
    MeasurementCosts c;
    const RunSpec& spec = trainer.spec();
    c.validationMs = 1e3 * timed(backend, [&] { trainer.validationLoss(); });
    c.evaluationMs = 1e3 * timed(backend, [&] { trainer.evaluate(); });
    const int interval = spec.train.evalInterval;
    const auto plainSteps = [&] {
        for (int i = 0; i < interval; ++i) trainer.step();
    };
    const auto stepsWithEvaluation = [&] {
        trainer.startEvaluation();
        trainer.finishEvaluation(false);
        for (int i = 0; i < interval; ++i) {
            trainer.step();
            trainer.finishEvaluation(false);
        }
        trainer.finishEvaluation(true);
    };
    // Plain steps before and after, so that a drift in speed cancels; the
    // median of three such rounds, as one round varies by a percent.
    std::vector<double> overheads;
    for (int round = 0; round < 3; ++round) {
        const double before = timed(backend, plainSteps);
        const double withEvaluation = timed(backend, stepsWithEvaluation);
        const double plain = (before + timed(backend, plainSteps)) / 2;
        overheads.push_back(100.0 * (withEvaluation - plain) / plain);
    }
    std::sort(overheads.begin(), overheads.end());
    c.overheadPercent = overheads[1];
    if (spec.method.kind == Method::ReLoRA) {
        // After one untimed merge (a run's first loads its kernels), the
        // median of three.
        std::vector<double> merges;
        for (int round = 0; round < 4; ++round)
            merges.push_back(timed(backend, [&] {
                restartAll(backend, trainer.model().parts(), {spec.relora.prune, spec.relora.pruneRatio}, 1, 0);
            }));
        std::sort(merges.begin() + 1, merges.end());
        c.mergeMsPerLayer = 1e3 * merges[2] / spec.model.layers;
    }
    return c;
}

void writeTextFile(const std::string& path, const std::string& text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

}  // namespace

int benchCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {"json", "costs"},
                      {"preset", "method", "batch", "context", "steps", "warmup", "threads",
                       "backend", "rank", "set", "product-choices"});
    if (!a.positionals().empty()) throw UsageError("relora bench takes no positional arguments");
    const std::string which = a.valueOr("method", "all");
    std::vector<Method> methods;
    if (which == "all") methods = {Method::FullRank, Method::LoRA, Method::ReLoRA};
    else if (auto m = parseMethod(which)) methods = {*m};
    else throw UsageError("--method must be full, lora, relora or all");
    const int steps = a.intValue("steps", 20), warmup = a.intValue("warmup", 3);
    if (steps < 2 || warmup < 0) throw UsageError("--steps must be at least 2 and --warmup not negative");
    const bool costs = a.flag("costs");

    if (!a.flag("json")) {
        std::printf("%-8s %-8s %12s %10s %10s", "method", "preset", "tokens/s", "ms/step", "peak MiB");
        if (costs) std::printf(" %9s %10s %11s", "eval ms", "eval cost", "merge/layer");
        std::printf("  %s\n", "device");
    }
    for (Method method : methods) {
        const std::string preset = a.valueOr("preset", "tiny");
        RunSpec spec = defaultSpec(method, preset);
        spec.name = "bench";
        spec.data.synthetic = true;
        spec.backend = a.valueOr("backend", "auto");
        spec.train.batch = a.intValue("batch", 8);
        spec.model.context = a.intValue("context", 256);
        spec.train.threads = a.intValue("threads", 0);
        spec.method.rank = a.intValue("rank", spec.method.rank);
        spec.optim.warmup = 1;
        // ReLoRA pays for its merges: restarts fall inside the timed steps.
        spec.relora.resetInterval = std::max(2, std::min(10, steps / 2));
        spec.relora.restartWarmup = 1;
        std::string json = toJson(spec);
        for (const std::string& s : a.values("set")) json = applyOverride(json, s);
        spec = fromJson(json);
        // Room for the timed steps and, with --costs, three evaluation intervals.
        spec.train.steps = warmup + steps + (costs ? 3 * spec.train.evalInterval : 0);

        auto backend = createBackendFor(spec);
        const std::string choicesPath = a.valueOr("product-choices", "");
        const bool adoptChoices = !choicesPath.empty() && std::filesystem::exists(choicesPath);
        if (adoptChoices) {
            if (const std::string why = backend->adoptProductChoices(readTextFile(choicesPath, "product choices")); !why.empty())
                throw std::runtime_error(choicesPath + ": " + why);
        }
        Trainer trainer(spec, *backend);
        for (int i = 0; i < warmup; ++i) trainer.step();
        std::vector<double> seconds;
        for (int i = 0; i < steps; ++i) seconds.push_back(trainer.step().seconds);
        double total = 0;
        for (double s : seconds) total += s;
        const double mean = total / steps;
        const double tps = static_cast<double>(trainer.tokensPerStep()) / mean;
        backend->synchronize();
        if (!choicesPath.empty() && !adoptChoices) writeTextFile(choicesPath, backend->productChoices());
        const double peakMiB = static_cast<double>(backend->peakMemoryBytes()) / (1024.0 * 1024.0);
        const MeasurementCosts c = costs ? measurementCosts(trainer, *backend) : MeasurementCosts{};
        if (a.flag("json")) {
            std::printf("{\"impl\":\"relora\",\"method\":\"%s\",\"preset\":\"%s\",\"tokens_per_s\":%.1f,"
                        "\"step_ms\":%.2f,\"peak_mib\":%.1f,\"backend\":\"%s\",\"device\":\"%s\",\"batch\":%d,"
                        "\"context\":%d",
                        toString(method).c_str(), preset.c_str(), tps, mean * 1e3, peakMiB,
                        backend->name().c_str(), backend->deviceName().c_str(), spec.train.batch,
                        spec.model.context);
            if (costs)
                std::printf(",\"validation_ms\":%.2f,\"evaluation_ms\":%.2f,\"eval_interval\":%d,"
                            "\"eval_overhead_pct\":%.3f,\"merge_ms_per_layer\":%.4f",
                            c.validationMs, c.evaluationMs, spec.train.evalInterval, c.overheadPercent,
                            c.mergeMsPerLayer);
            std::printf("}\n");
        } else {
            std::printf("%-8s %-8s %12.0f %10.1f %10.0f", toString(method).c_str(), preset.c_str(), tps,
                        mean * 1e3, peakMiB);
            if (costs) {
                char merge[32] = "-";
                if (c.mergeMsPerLayer >= 0) std::snprintf(merge, sizeof merge, "%.3f ms", c.mergeMsPerLayer);
                std::printf(" %9.1f %9.2f%% %11s", c.evaluationMs, c.overheadPercent, merge);
            }
            std::printf("  %s\n", backend->deviceName().c_str());
        }
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace relora::cli
