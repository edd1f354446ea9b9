#include "ui/editor/SchedulePreview.h"

#include "core/LearningRateSchedule.h"

#include <algorithm>
#include <set>

namespace relora::ui {

SchedulePreview previewSchedule(const RunSpec& spec, int samples) {
    SchedulePreview out;
    const int steps = spec.train.steps;
    if (steps < 1) return out;
    if (spec.method.kind == Method::ReLoRA) {
        out.restarts = spec.restartSchedule();
        if (spec.relora.warmStartSteps > 0 && spec.relora.warmStartSteps < steps)
            out.warmStartSwitch = spec.relora.warmStartSteps;
    }

    std::set<int> at;
    const int stride = std::max(1, steps / std::max(1, samples));
    for (int s = 0; s < steps; s += stride) at.insert(s);
    at.insert(steps - 1);
    at.insert(std::clamp(spec.optim.warmup, 0, steps - 1));
    std::vector<int> troughs = out.restarts;
    if (out.warmStartSwitch) troughs.push_back(*out.warmStartSwitch);
    for (int r : troughs)
        for (int s : {r - 1, r, r + std::max(1, spec.relora.restartWarmup)})
            if (s >= 0 && s < steps) at.insert(s);

    const auto schedule = scheduleFor(spec);
    out.lr.reserve(static_cast<qsizetype>(at.size()));
    for (int s : at) out.lr.append(QPointF(s, schedule->at(s)));
    return out;
}

}  // namespace relora::ui
