// The warm-start sweep's result: final validation loss (y) against the
// switch from full-rank to ReLoRA in % of the steps (x). A finished run is a
// point (joined by a line in switch order); a run still queued or training
// is a dashed marker at its switch point labelled with its status, and so is
// one that ended without a result (failed, stopped, interrupted), in red.
#pragma once

#include "ui/charts/ChartCanvas.h"
#include "ui/data/SweepData.h"

#include <vector>

class QLineSeries;
class QScatterSeries;

namespace relora::ui {

class SweepChart : public ChartCanvas {
    Q_OBJECT
public:
    explicit SweepChart(QWidget* parent = nullptr);

    void setPoints(std::vector<SweepPoint> points);
    const std::vector<SweepPoint>& points() const { return points_; }
    QScatterSeries* finishedSeries() const { return finished_; }

private:
    void fitRange();

    std::vector<SweepPoint> points_;   // by switch point
    QLineSeries* line_;
    QScatterSeries* finished_;
};

}  // namespace relora::ui
