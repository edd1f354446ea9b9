#include "ui/charts/SweepChart.h"

#include <QLineSeries>
#include <QScatterSeries>

#include <algorithm>
#include <limits>

namespace relora::ui {
namespace {

const QColor kResultColor(31, 119, 180);
const QColor kPendingColor(110, 110, 110);
const QColor kNoResultColor(198, 40, 40);

QString statusLabel(const SweepPoint& p) {
    const QString status = p.status == QLatin1String("running") ? SweepChart::tr("training") : p.status;
    return QStringLiteral("#%1 %2").arg(p.run).arg(status);
}

}  // namespace

SweepChart::SweepChart(QWidget* parent)
    : ChartCanvas(tr("Final validation loss against the switch to ReLoRA"), parent) {
    setAxisTitles(tr("trained full-rank first (% of steps)"), tr("final validation loss"));
    // 0 % and 100 % are the ends of every sweep; the margin keeps their points whole.
    setFixedXRange(-4, 104, 10);
    line_ = new QLineSeries;
    line_->setPen(QPen(kResultColor, 1.5));
    addSeries(line_, false);
    finished_ = new QScatterSeries;
    finished_->setName(tr("finished runs"));
    finished_->setObjectName(tr("final val loss"));
    finished_->setColor(kResultColor);
    finished_->setBorderColor(kResultColor.darker(130));
    finished_->setMarkerSize(10);
    addSeries(finished_, true);
    connect(this, &ChartCanvas::viewChanged, this, &SweepChart::fitRange);
}

void SweepChart::setPoints(std::vector<SweepPoint> points) {
    std::stable_sort(points.begin(), points.end(),
                     [](const SweepPoint& a, const SweepPoint& b) { return a.switchPercent < b.switchPercent; });
    points_ = std::move(points);
    QList<QPointF> results;
    std::vector<Marker> markers;
    for (const SweepPoint& p : points_) {
        if (p.finished())
            results.append({p.switchPercent, *p.finalValLoss});
        else
            markers.push_back({p.switchPercent, p.pending() ? kPendingColor : kNoResultColor, statusLabel(p)});
    }
    line_->replace(results);
    finished_->replace(results);
    setMarkers(std::move(markers));
    fitRange();
}

void SweepChart::fitRange() {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const QPointF& p : finished_->points()) {
        lo = std::min(lo, p.y());
        hi = std::max(hi, p.y());
    }
    setAutoRange(0, 100, lo, hi);
}

}  // namespace relora::ui
