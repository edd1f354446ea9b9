// `relora bench`: training throughput per method on synthetic tokens,
// measured with the trainer's own step (so it times what a run does).
#include "app/cli/Commands.h"
#include "core/Trainer.h"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace relora::cli {

int benchCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {"json"},
                      {"preset", "method", "batch", "context", "steps", "warmup", "threads",
                       "backend", "rank", "set"});
    if (!a.positionals().empty()) throw UsageError("relora bench takes no positional arguments");
    const std::string which = a.valueOr("method", "all");
    std::vector<Method> methods;
    if (which == "all") methods = {Method::FullRank, Method::LoRA, Method::ReLoRA};
    else if (auto m = parseMethod(which)) methods = {*m};
    else throw UsageError("--method must be full, lora, relora or all");
    const int steps = a.intValue("steps", 20), warmup = a.intValue("warmup", 3);
    if (steps < 2 || warmup < 0) throw UsageError("--steps must be at least 2 and --warmup not negative");

    if (!a.flag("json"))
        std::printf("%-8s %-8s %12s %10s %10s  %s\n", "method", "preset", "tokens/s", "ms/step", "peak MiB",
                    "device");
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
        spec.train.steps = warmup + steps;
        spec.optim.warmup = 1;
        // ReLoRA pays for its merges: restarts fall inside the timed steps.
        spec.relora.resetInterval = std::max(2, std::min(10, steps / 2));
        spec.relora.restartWarmup = 1;
        std::string json = toJson(spec);
        for (const std::string& s : a.values("set")) json = applyOverride(json, s);
        spec = fromJson(json);

        auto backend = createBackendFor(spec);
        Trainer trainer(spec, *backend);
        for (int i = 0; i < warmup; ++i) trainer.step();
        std::vector<double> seconds;
        for (int i = 0; i < steps; ++i) seconds.push_back(trainer.step().seconds);
        double total = 0;
        for (double s : seconds) total += s;
        const double mean = total / steps;
        const double tps = static_cast<double>(trainer.tokensPerStep()) / mean;
        backend->synchronize();
        const double peakMiB = static_cast<double>(backend->peakMemoryBytes()) / (1024.0 * 1024.0);
        if (a.flag("json"))
            std::printf("{\"impl\":\"relora\",\"method\":\"%s\",\"preset\":\"%s\",\"tokens_per_s\":%.1f,"
                        "\"step_ms\":%.2f,\"peak_mib\":%.1f,\"backend\":\"%s\",\"device\":\"%s\",\"batch\":%d,\"context\":%d}\n",
                        toString(method).c_str(), preset.c_str(), tps, mean * 1e3, peakMiB,
                        backend->name().c_str(), backend->deviceName().c_str(), spec.train.batch,
                        spec.model.context);
        else
            std::printf("%-8s %-8s %12.0f %10.1f %10.0f  %s\n", toString(method).c_str(), preset.c_str(), tps,
                        mean * 1e3, peakMiB, backend->deviceName().c_str());
        std::fflush(stdout);
    }
    return 0;
}

}  // namespace relora::cli
