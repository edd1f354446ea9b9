// The learning-rate schedule and ReLoRA's restarts: warmup and minimum LR
// ratio; restarts every N steps or at listed steps, the LR's climb after
// each, optimizer-state pruning, the full-rank warm start; and a live
// preview of the LR over the whole run with a marker at every restart and
// at the warm-start switch.
#pragma once

#include "core/RunSpec.h"

#include <QWidget>

#include <vector>

class QComboBox;
class QFormLayout;
class QLineEdit;
class QLineSeries;
class QSpinBox;

namespace relora::ui {

class ChartCanvas;
class FieldErrors;

class ScheduleEditor : public QWidget {
    Q_OBJECT
public:
    ScheduleEditor(FieldErrors* errors, QWidget* parent = nullptr);

    void load(const RunSpec& spec);
    // Writes the fields into `spec`; fields that cannot be read add problems.
    void store(RunSpec& spec, std::vector<SpecError>& problems) const;
    // Redraws the preview for `spec` (restart fields enabled for ReLoRA only).
    void showPreview(const RunSpec& spec);

    ChartCanvas* preview() const { return preview_; }
    QLineSeries* previewSeries() const { return series_; }

signals:
    void edited();

private:
    // Either the interval or the list of restart steps, as the mode says.
    void showModeRows();

    QFormLayout* form_;
    QSpinBox* warmup_;
    QLineEdit* minLrRatio_;
    QComboBox* mode_;
    QSpinBox* resetInterval_;
    QLineEdit* restartSteps_;
    QSpinBox* restartWarmup_;
    QComboBox* prune_;
    QLineEdit* pruneRatio_;
    QSpinBox* warmStart_;
    std::vector<QWidget*> reloraOnly_;
    ChartCanvas* preview_;
    QLineSeries* series_;
};

}  // namespace relora::ui
