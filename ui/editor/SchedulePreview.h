// The learning rate over a whole run, as the trainer will follow it
// (scheduleFor(spec)), sampled for the editor's preview chart, with the
// steps where ReLoRA restarts and where a full-rank warm start ends.
#pragma once

#include "core/RunSpec.h"

#include <QList>
#include <QPointF>

#include <optional>
#include <vector>

namespace relora::ui {

struct SchedulePreview {
    QList<QPointF> lr;                    // (step, learning rate), steps ascending
    std::vector<int> restarts;
    std::optional<int> warmStartSwitch;
};

// About `samples` evenly spaced steps, plus every step where the curve
// bends (end of warmup, each trough and the end of its climb), so troughs
// are drawn exactly however long the run. Empty for a spec whose schedule
// is not defined (no steps).
SchedulePreview previewSchedule(const RunSpec& spec, int samples = 600);

}  // namespace relora::ui
