// Min/max-per-pixel decimation: a line of a million points drawn into 800
// pixel columns shows, per column, only how far it reaches down and up. So
// per bucket of the visible x range we keep the lowest and the highest point
// (in their original order), at most two points per pixel whatever the
// data, and the picture is that of the full line.
#pragma once

#include <QList>
#include <QPointF>

#include <vector>

namespace relora::ui {

struct DecimationRange {
    double xMin = 0, xMax = 0;   // the visible x range
    int buckets = 800;           // usually the plot's width in pixels
};

// x ascending. Points whose y is not finite (or, with positiveOnly, not
// above zero, for a log axis) are left out. One point beyond each end of the
// range is kept so that the line runs to the plot's edges.
QList<QPointF> decimateMinMax(const std::vector<double>& x, const std::vector<double>& y,
                              const DecimationRange& range, bool positiveOnly = false);

}  // namespace relora::ui
