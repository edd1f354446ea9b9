// A chart of metric series for the overlaid runs: per run and per curve
// (metric key) one QLineSeries, rebuilt from the RunMetricCache with
// replace() — smoothed on the full data, then decimated to the visible
// range and the plot's width — never grown point by point.
#pragma once

#include "ui/charts/ChartCanvas.h"
#include "ui/charts/ChartStyle.h"
#include "ui/charts/RunMetricCache.h"

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

class QLineSeries;

namespace relora::ui {

class MetricChart : public ChartCanvas {
    Q_OBJECT
public:
    MetricChart(const QString& title, const QString& yTitle, QWidget* parent = nullptr);

    void setCache(const RunMetricCache* cache) { cache_ = cache; }
    void setCurves(std::vector<CurveStyle> curves);
    void setRuns(std::vector<RunStyle> runs);
    void setOptions(const ChartOptions& options);
    // Events of these kinds ("restart", "warm_start_switch") are drawn as
    // vertical markers in the run's colour.
    void setMarkerEvents(std::set<std::string> kinds) { markerKinds_ = std::move(kinds); }

    const std::vector<CurveStyle>& curves() const { return curves_; }
    std::set<std::string> keys() const;
    QLineSeries* seriesFor(int64_t run, const std::string& key) const;

public slots:
    // Redraws every curve from the cache.
    void refresh();

private:
    // What a series was last drawn from: when nothing of it changed, the
    // curve is not decimated and replaced again (of 8 runs, usually only the
    // one training grows).
    struct Drawn {
        size_t rows = 0, clockRows = 0;
        double xMin = 0, xMax = 0;
        int buckets = 0;
        ChartOptions options;
        bool logY = false;
        double yMin = 0, yMax = 0;   // of the points drawn
        bool sameSource(const Drawn& o) const {
            return rows == o.rows && clockRows == o.clockRows && xMin == o.xMin && xMax == o.xMax &&
                   buckets == o.buckets && options == o.options && logY == o.logY;
        }
    };

    void rebuildSeries();
    void refreshMarkers();

    const RunMetricCache* cache_ = nullptr;
    std::vector<CurveStyle> curves_;
    std::vector<RunStyle> runs_;
    ChartOptions options_;
    std::set<std::string> markerKinds_;
    std::map<std::pair<int64_t, std::string>, QLineSeries*> series_;
    std::map<QLineSeries*, Drawn> drawn_;
};

}  // namespace relora::ui
