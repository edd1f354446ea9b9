#include "ui/charts/XAxis.h"

#include <algorithm>

namespace relora::ui {
namespace {

double wallAt(const MetricSeries& clock, double step) {
    const auto& steps = clock.steps();
    const auto& wall = clock.wall();
    const auto after = std::lower_bound(steps.begin(), steps.end(), step);
    const size_t i = static_cast<size_t>(after - steps.begin());
    if (i < steps.size() && steps[i] == step) return wall[i];
    if (i == steps.size()) return wall.back();
    const double s0 = i == 0 ? 0.0 : steps[i - 1];
    const double w0 = i == 0 ? 0.0 : wall[i - 1];
    const double f = steps[i] > s0 ? (step - s0) / (steps[i] - s0) : 1.0;
    return w0 + f * (wall[i] - w0);
}

}  // namespace

QString xAxisTitle(XAxisKind kind) {
    switch (kind) {
    case XAxisKind::Tokens: return QStringLiteral("tokens");
    case XAxisKind::WallTime: return QStringLiteral("wall time (s)");
    case XAxisKind::Step: break;
    }
    return QStringLiteral("step");
}

QString toSettingsText(XAxisKind kind) {
    switch (kind) {
    case XAxisKind::Tokens: return QStringLiteral("tokens");
    case XAxisKind::WallTime: return QStringLiteral("wall");
    case XAxisKind::Step: break;
    }
    return QStringLiteral("step");
}

XAxisKind xAxisKindFromText(const QString& text) {
    if (text == QLatin1String("tokens")) return XAxisKind::Tokens;
    if (text == QLatin1String("wall")) return XAxisKind::WallTime;
    return XAxisKind::Step;
}

double xAt(double step, XAxisKind kind, double tokensPerStep, const MetricSeries* clock) {
    switch (kind) {
    case XAxisKind::Tokens: return step * tokensPerStep;
    case XAxisKind::WallTime: return clock && !clock->empty() ? wallAt(*clock, step) : 0.0;
    case XAxisKind::Step: break;
    }
    return step;
}

std::vector<double> xValues(const MetricSeries& series, XAxisKind kind, double tokensPerStep,
                            const MetricSeries* clock) {
    const auto& steps = series.steps();
    switch (kind) {
    case XAxisKind::Step: return steps;
    case XAxisKind::Tokens: {
        std::vector<double> x(steps.size());
        std::transform(steps.begin(), steps.end(), x.begin(), [&](double s) { return s * tokensPerStep; });
        return x;
    }
    case XAxisKind::WallTime: {
        if (!clock || clock->empty() || clock == &series) return series.wall();
        std::vector<double> x(steps.size());
        std::transform(steps.begin(), steps.end(), x.begin(), [&](double s) { return wallAt(*clock, s); });
        return x;
    }
    }
    return steps;
}

}  // namespace relora::ui
