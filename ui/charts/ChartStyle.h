// How the charts draw: which runs (each in its own colour), which metric
// keys per run (each in its own line style), and the options every chart
// shares (x axis, smoothing).
#pragma once

#include "ui/charts/XAxis.h"

#include <QColor>
#include <QString>

#include <cstdint>
#include <string>

namespace relora::ui {

struct RunStyle {
    int64_t id = 0;
    QString name;      // as the legend shows it
    QColor color;
    bool operator==(const RunStyle&) const = default;
};

struct CurveStyle {
    std::string key;                 // metric key, e.g. "val_loss"
    QString label;                   // in the hover read-out, e.g. "validation"
    Qt::PenStyle pen = Qt::SolidLine;
    double width = 1.5;
    bool smoothable = true;          // noisy per-step metrics; not LR or counts
    bool points = false;             // mark each point (sparse series)
    bool operator==(const CurveStyle&) const = default;
};

struct ChartOptions {
    XAxisKind x = XAxisKind::Step;
    double smoothing = 0.6;          // debiased EMA weight, 0 = raw
    bool operator==(const ChartOptions&) const = default;
};

}  // namespace relora::ui
