// What the charts put on the x axis: optimizer steps, tokens seen, or wall
// time since the run started.
#pragma once

#include "ui/charts/MetricSeries.h"

#include <QString>

#include <vector>

namespace relora::ui {

enum class XAxisKind { Step, Tokens, WallTime };

QString xAxisTitle(XAxisKind kind);
QString toSettingsText(XAxisKind kind);               // "step", "tokens", "wall"
XAxisKind xAxisKindFromText(const QString& text);      // unknown text: Step

// The x of one step of a run (see xValues).
double xAt(double step, XAxisKind kind, double tokensPerStep, const MetricSeries* clock);

// The x of every point of `series`. Tokens are steps × tokensPerStep. Wall
// time comes from `clock`, the run's train_loss series: evaluation rows are
// reported without a time of their own, so their step is placed on the
// clock's timeline (linearly between its neighbours, 0 at step 0). Without a
// clock the series' own times are used.
std::vector<double> xValues(const MetricSeries& series, XAxisKind kind, double tokensPerStep,
                            const MetricSeries* clock);

}  // namespace relora::ui
