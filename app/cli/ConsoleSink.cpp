#include "app/cli/ConsoleSink.h"

#include <map>

#include <unistd.h>

namespace relora::cli {
namespace {

// On a terminal the progress bar owns the current line: erase it first.
const char* clearLine(std::FILE* out) { return isatty(fileno(out)) ? "\r\033[K" : ""; }

}  // namespace

void ConsoleSink::runStarted(const std::string&, const std::string& backend,
                             const std::string& device) {
    std::fprintf(out_, "backend: %s (%s)\n", backend.c_str(), device.c_str());
}

// An evaluation arrives in two parts (Trainer::startEvaluation and
// finishEvaluation): the validation loss and counts at once, the ranks of ΔW
// when their spectra are ready, possibly a few steps later. One line each.
void ConsoleSink::metrics(const std::vector<MetricPoint>& points, double) {
    std::map<std::string, double> v;
    for (const auto& p : points) v[p.key] = p.value;
    const long long step = points.empty() ? 0 : (long long)points.front().step;
    if (v.count("val_loss")) {
        std::fprintf(out_, "%seval @ step %lld: val_loss %.4f (ppl %.2f) | params %.3gM trainable %.3gM\n",
                     clearLine(out_), step, v["val_loss"], v["val_ppl"], v["params_total"] / 1e6,
                     v["params_trainable"] / 1e6);
    } else if (v.count("update_size")) {
        std::fprintf(out_, "%sranks of ΔW @ step %lld:", clearLine(out_), step);
        for (const char* kind : {"wq", "wk", "wv", "wo", "gate", "up", "down"}) {
            const auto it = v.find(std::string("rank_eff/") + kind);
            if (it != v.end())
                std::fprintf(out_, " %s eff %.1f thr %.0f |", kind, it->second, v[std::string("rank_thr/") + kind]);
        }
        std::fprintf(out_, " update %.3gM\n", v["update_size"] / 1e6);
    } else {
        return;  // per-step lines are the progress display's
    }
    std::fflush(out_);
}

void ConsoleSink::event(int64_t step, const std::string& kind, const std::string& detail) {
    std::fprintf(out_, "%s%s @ step %lld: %s\n", clearLine(out_),
                 kind.c_str(), (long long)step, detail.c_str());
    std::fflush(out_);
}

void ConsoleSink::runFinished(const std::string& status, const std::string& message) {
    std::fprintf(out_, "%s%s: %s\n", clearLine(out_), status.c_str(),
                 message.c_str());
}

}  // namespace relora::cli
