// `relora run`: trains one spec headless, with a progress display, an
// optional JSON-lines metrics file, and a clean stop on Ctrl-C.
#include "app/cli/Commands.h"
#include "app/cli/ConsoleSink.h"
#include "core/Trainer.h"

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <unistd.h>

namespace relora::cli {
namespace {

TrainerControl* g_control = nullptr;

void onInterrupt(int) {
    if (g_control) g_control->stop = true;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the program at once
}

std::string formatDuration(double seconds) {
    const long s = static_cast<long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

// A bar redrawn in place on a terminal; a plain line every 2 % otherwise.
class ProgressDisplay {
public:
    ProgressDisplay(int total, size_t tokensPerStep)
        : total_(total), tokens_(tokensPerStep), tty_(isatty(fileno(stderr))) {}

    void update(const StepResult& r) {
        const double alpha = r.step <= 3 ? 1.0 : 0.1;  // smoothed step time for rate and ETA
        seconds_ = alpha * r.seconds + (1 - alpha) * seconds_;
        const double eta = seconds_ * (total_ - r.step);
        const double rate = tokens_ / seconds_;
        if (tty_) {
            const int width = 24, filled = width * r.step / total_;
            std::fprintf(stderr, "\r\033[K[%s%s] %d/%d loss %.4f lr %.2e %.0f tok/s ETA %s",
                         std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                         r.step, total_, r.loss, r.lr, rate, formatDuration(eta).c_str());
        } else if (r.step % std::max(1, total_ / 50) == 0 || r.step == total_) {
            std::fprintf(stderr, "step %d/%d loss %.4f lr %.2e |g| %.3f %.0f tok/s ETA %s\n", r.step,
                         total_, r.loss, r.lr, r.gradNorm, rate, formatDuration(eta).c_str());
        }
        std::fflush(stderr);
    }

private:
    int total_;
    double tokens_;
    bool tty_;
    double seconds_ = 0;
};

}  // namespace

int runCommand(const std::vector<std::string>& args) {
    std::set<std::string> valued = kSpecOptions;
    valued.insert("metrics");
    const Arguments a(args, {}, valued);
    const RunSpec spec = loadSpec(a);
    auto backend = createBackendFor(spec);

    ConsoleSink console(stderr);
    FanOutSink sinks;
    sinks.add(&console);
    std::unique_ptr<JsonLinesSink> jsonl;
    if (auto path = a.value("metrics")) {
        jsonl = std::make_unique<JsonLinesSink>(*path);
        sinks.add(jsonl.get());
    }
    std::fprintf(stderr, "run '%s': %s, preset %s, %d steps of %d x %d tokens\n", spec.name.c_str(),
                 toString(spec.method.kind).c_str(), spec.model.preset.c_str(), spec.train.steps,
                 spec.train.batch, spec.model.context);
    Trainer trainer(spec, *backend, &sinks);
    const auto& report = trainer.corpus().report();
    if (!spec.data.synthetic)
        std::fprintf(stderr, "corpus: %zu files, %zu skipped, %zu train / %zu validation tokens\n",
                     report.filesRead.size(), report.skipped.size(), report.trainTokens,
                     report.validationTokens);

    TrainerControl control;
    g_control = &control;
    std::signal(SIGINT, onInterrupt);
    ProgressDisplay progress(spec.train.steps, trainer.tokensPerStep());
    const RunOutcome outcome = trainer.run(control, [&](const StepResult& r) { progress.update(r); });
    std::signal(SIGINT, SIG_DFL);
    g_control = nullptr;
    if (outcome.finalValidationLoss)
        std::printf("%s: %s after %d steps, final val_loss %.4f, best %.4f\n", spec.name.c_str(),
                    outcome.status.c_str(), outcome.steps, *outcome.finalValidationLoss,
                    *outcome.bestValidationLoss);
    return outcome.status == "failed" ? 1 : outcome.status == "stopped" ? 130 : 0;
}

}  // namespace relora::cli
