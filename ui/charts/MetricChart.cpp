#include "ui/charts/MetricChart.h"

#include "ui/charts/Decimation.h"

#include <QLineSeries>

#include <cmath>
#include <limits>
#include <tuple>

namespace relora::ui {
namespace {

constexpr qsizetype kAntialiasedPoints = 6000;

}  // namespace

MetricChart::MetricChart(const QString& title, const QString& yTitle, QWidget* parent)
    : ChartCanvas(title, parent) {
    setAxisTitles(xAxisTitle(options_.x), yTitle);
    connect(this, &ChartCanvas::viewChanged, this, &MetricChart::refresh);
}

void MetricChart::setCurves(std::vector<CurveStyle> curves) {
    if (curves == curves_) return;
    curves_ = std::move(curves);
    rebuildSeries();
    refresh();
}

void MetricChart::setRuns(std::vector<RunStyle> runs) {
    if (runs == runs_) return;
    runs_ = std::move(runs);
    rebuildSeries();
    refresh();
}

void MetricChart::setOptions(const ChartOptions& options) {
    if (options == options_) return;
    const bool newAxis = options.x != options_.x;
    options_ = options;
    setXTitle(xAxisTitle(options_.x));
    if (newAxis)
        resetZoom();   // the old x range means nothing on the new axis; redraws
    else
        refresh();
}

std::set<std::string> MetricChart::keys() const {
    std::set<std::string> out;
    for (const CurveStyle& c : curves_) out.insert(c.key);
    return out;
}

QLineSeries* MetricChart::seriesFor(int64_t run, const std::string& key) const {
    const auto it = series_.find({run, key});
    return it == series_.end() ? nullptr : it->second;
}

void MetricChart::rebuildSeries() {
    for (auto& [id, series] : series_) removeSeries(series);
    series_.clear();
    drawn_.clear();
    for (const RunStyle& run : runs_) {
        for (size_t i = 0; i < curves_.size(); ++i) {
            const CurveStyle& curve = curves_[i];
            auto* series = new QLineSeries;
            // The legend names each run once, by its first curve; the title
            // says what the line styles mean.
            series->setName(i == 0 ? run.name : QString());
            series->setObjectName(curves_.size() > 1 ? run.name + " · " + curve.label : run.name);
            series->setPen(QPen(run.color, curve.width, curve.pen));
            series->setPointsVisible(curve.points);
            addSeries(series, i == 0);
            series_[{run.id, curve.key}] = series;
        }
    }
}

void MetricChart::refresh() {
    struct Curve {
        QLineSeries* series;
        const MetricSeries* metric;
        const RunData* data;
        bool smoothable;
    };
    // The x extent of all data first: it is the range every curve is decimated for.
    std::vector<Curve> curves;
    double xMin = std::numeric_limits<double>::infinity(), xMax = -xMin;
    for (const RunStyle& run : runs_) {
        const RunData* data = cache_ ? cache_->find(run.id) : nullptr;
        for (const CurveStyle& curve : curves_) {
            QLineSeries* series = seriesFor(run.id, curve.key);
            const MetricSeries* metric = data ? data->find(curve.key) : nullptr;
            if (!metric || metric->empty()) {
                series->clear();
                drawn_.erase(series);
                continue;
            }
            const auto x = [&](double step) { return xAt(step, options_.x, data->tokensPerStep, data->clock()); };
            xMin = std::min(xMin, x(metric->steps().front()));
            xMax = std::max(xMax, x(metric->steps().back()));
            curves.push_back({series, metric, data, curve.smoothable});
        }
    }

    DecimationRange range{xMin, xMax, plotWidth()};
    if (isZoomed()) std::tie(range.xMin, range.xMax) = visibleX();
    double yMin = std::numeric_limits<double>::infinity(), yMax = -yMin;
    qsizetype drawnPoints = 0;
    for (const Curve& c : curves) {
        const MetricSeries* clock = c.data->clock();
        Drawn now{c.metric->size(), clock ? clock->size() : 0, range.xMin, range.xMax, range.buckets, options_, logY()};
        if (!c.smoothable) now.options.smoothing = 0;
        Drawn& drawn = drawn_[c.series];
        if (!drawn.sameSource(now)) {
            const std::vector<double> x = xValues(*c.metric, options_.x, c.data->tokensPerStep, clock);
            const auto& y = c.smoothable ? c.metric->smoothed(options_.smoothing) : c.metric->values();
            const QList<QPointF> points = decimateMinMax(x, y, range, logY());
            now.yMin = std::numeric_limits<double>::infinity();
            now.yMax = -now.yMin;
            for (const QPointF& p : points) {
                now.yMin = std::min(now.yMin, p.y());
                now.yMax = std::max(now.yMax, p.y());
            }
            c.series->replace(points);
            drawn = now;
        }
        yMin = std::min(yMin, drawn.yMin);
        yMax = std::max(yMax, drawn.yMax);
        drawnPoints += c.series->count();
    }
    // Antialiasing triples the time to paint a dense chart, and at two
    // points per pixel column its jaggies are not to be seen anyway.
    setRenderHint(QPainter::Antialiasing, drawnPoints < kAntialiasedPoints);
    if (!curves.empty() && std::isfinite(yMin)) setAutoRange(xMin, xMax, yMin, yMax);
    refreshMarkers();
}

void MetricChart::refreshMarkers() {
    std::vector<Marker> markers;
    if (cache_ && !markerKinds_.empty()) {
        for (const RunStyle& run : runs_) {
            const RunData* data = cache_->find(run.id);
            if (!data) continue;
            for (const store::EventRecord& e : data->events) {
                if (!markerKinds_.count(e.kind)) continue;
                const double x = xAt(static_cast<double>(e.step), options_.x, data->tokensPerStep, data->clock());
                markers.push_back({x, run.color, e.kind == "warm_start_switch" ? tr("low-rank") : QString()});
            }
        }
    }
    setMarkers(std::move(markers));
}

}  // namespace relora::ui
