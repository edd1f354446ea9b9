// The live charts, side by side: loss, rank of ΔW, parameter counts,
// learning rate with restart markers, throughput, and the singular-value
// spectrum. They all draw the overlaid runs from the poller's cache and
// share the x axis and smoothing options.
#pragma once

#include "ui/charts/ChartStyle.h"

#include <QTimer>
#include <QWidget>

#include <vector>

class QSettings;

namespace relora::ui {

class ChartCanvas;
class MetricChart;
class RankChartPanel;
class RunDataPoller;
class SpectrumPanel;

class ChartGrid : public QWidget {
    Q_OBJECT
public:
    explicit ChartGrid(RunDataPoller* poller, QWidget* parent = nullptr);

    void setRuns(const std::vector<RunStyle>& runs);
    void setOptions(const ChartOptions& options);
    const ChartOptions& options() const { return options_; }
    // Every chart, named for settings and export file names.
    std::vector<std::pair<QString, ChartCanvas*>> canvases() const;

    MetricChart* lossChart() const { return loss_; }
    MetricChart* lrChart() const { return lr_; }
    RankChartPanel* rankPanel() const { return rank_; }
    SpectrumPanel* spectrumPanel() const { return spectrum_; }

    // Log y per chart.
    void saveSettings(QSettings& settings) const;
    void restoreSettings(const QSettings& settings);

public slots:
    // Brings every chart up to date with the cache, one chart per turn of
    // the event loop (see syncNext()).
    void refresh();
    void resetZoom();

private:
    std::vector<MetricChart*> metricCharts() const;
    void publishKeys();
    // Updates one chart that is behind and lets the event loop paint it
    // before the next: six charts redrawn in one go would hold the GUI
    // thread for the sum of their paints. A timer, not a queued call, so
    // that the window's (low-priority) paint request runs in between.
    void syncNext();

    RunDataPoller* poller_;
    ChartOptions options_;
    std::vector<RunStyle> runs_;
    std::vector<QWidget*> behind_;   // charts still to sync, in order
    QTimer syncTimer_;
    MetricChart* loss_;
    RankChartPanel* rank_;
    MetricChart* params_;
    MetricChart* lr_;
    MetricChart* throughput_;
    SpectrumPanel* spectrum_;
};

}  // namespace relora::ui
