#include "ui/charts/ChartGrid.h"

#include "ui/charts/MetricChart.h"
#include "ui/charts/RankChartPanel.h"
#include "ui/charts/SpectrumPanel.h"
#include "ui/data/RunDataPoller.h"

#include <QGridLayout>
#include <QSettings>

namespace relora::ui {

ChartGrid::ChartGrid(RunDataPoller* poller, QWidget* parent) : QWidget(parent), poller_(poller) {
    loss_ = new MetricChart(tr("Loss · dashed: validation"), tr("loss (nats/byte)"));
    loss_->setCurves({{"train_loss", tr("train"), Qt::SolidLine, 1.4, true, false},
                      {"val_loss", tr("validation"), Qt::DashLine, 2.2, false, true}});

    rank_ = new RankChartPanel;

    params_ = new MetricChart(tr("Parameters · dashed: trainable · dotted: update size"), tr("parameters"));
    params_->setCurves({{"params_total", tr("total"), Qt::SolidLine, 1.8, false, false},
                        {"params_trainable", tr("trainable"), Qt::DashLine, 1.8, false, false},
                        {"update_size", tr("update size"), Qt::DotLine, 2.2, false, true}});
    params_->setLogY(true);

    lr_ = new MetricChart(tr("Learning rate · dashed lines: restarts"), tr("learning rate"));
    lr_->setCurves({{"lr", tr("lr"), Qt::SolidLine, 1.6, false, false}});
    lr_->setMarkerEvents({"restart", "warm_start_switch"});

    throughput_ = new MetricChart(tr("Throughput"), tr("tokens/s"));
    throughput_->setCurves({{"tokens_per_s", tr("tokens/s"), Qt::SolidLine, 1.4, true, false}});

    spectrum_ = new SpectrumPanel(poller_);

    for (MetricChart* chart : metricCharts()) chart->setCache(&poller_->cache());
    connect(rank_, &RankChartPanel::keysChanged, this, &ChartGrid::publishKeys);

    auto* grid = new QGridLayout(this);
    grid->setContentsMargins(0, 0, 0, 0);
    grid->setSpacing(4);
    grid->addWidget(loss_, 0, 0);
    grid->addWidget(rank_, 0, 1);
    grid->addWidget(params_, 0, 2);
    grid->addWidget(lr_, 1, 0);
    grid->addWidget(throughput_, 1, 1);
    grid->addWidget(spectrum_, 1, 2);

    syncTimer_.setSingleShot(true);
    syncTimer_.setInterval(1);
    connect(&syncTimer_, &QTimer::timeout, this, &ChartGrid::syncNext);
    connect(poller_, &RunDataPoller::dataChanged, this, &ChartGrid::refresh);
    publishKeys();
}

std::vector<MetricChart*> ChartGrid::metricCharts() const {
    return {loss_, rank_->chart(), params_, lr_, throughput_};
}

std::vector<std::pair<QString, ChartCanvas*>> ChartGrid::canvases() const {
    return {{QStringLiteral("loss"), loss_},         {QStringLiteral("rank"), rank_->chart()},
            {QStringLiteral("parameters"), params_}, {QStringLiteral("learning-rate"), lr_},
            {QStringLiteral("throughput"), throughput_}, {QStringLiteral("spectrum"), spectrum_->chart()}};
}

void ChartGrid::publishKeys() {
    std::set<std::string> keys;
    for (MetricChart* chart : metricCharts()) {
        const auto k = chart->keys();
        keys.insert(k.begin(), k.end());
    }
    poller_->setWantedKeys(QStringLiteral("charts"), keys);
}

void ChartGrid::setRuns(const std::vector<RunStyle>& runs) {
    if (runs == runs_) return;
    runs_ = runs;
    int layers = 0;
    for (const RunStyle& run : runs)
        if (const StoredSpec* s = poller_->spec(run.id); s && s->spec) layers = std::max(layers, s->spec->model.layers);
    rank_->setLayerCount(layers);
    spectrum_->setLayerCount(layers);
    refresh();
}

void ChartGrid::setOptions(const ChartOptions& options) {
    if (options == options_) return;
    options_ = options;
    refresh();
}

void ChartGrid::refresh() {
    behind_ = {loss_, rank_->chart(), params_, lr_, throughput_, spectrum_};
    syncTimer_.start();
}

void ChartGrid::syncNext() {
    if (behind_.empty()) return;
    QWidget* next = behind_.front();
    behind_.erase(behind_.begin());
    if (auto* chart = qobject_cast<MetricChart*>(next)) {
        // Each call is a no-op when nothing changed for this chart.
        chart->setOptions(options_);
        chart->setRuns(runs_);
        chart->refresh();
    } else {
        spectrum_->setRuns(runs_);
        spectrum_->refresh();
    }
    if (!behind_.empty()) syncTimer_.start();
}

void ChartGrid::resetZoom() {
    for (const auto& [name, canvas] : canvases()) canvas->resetZoom();
}

void ChartGrid::saveSettings(QSettings& settings) const {
    for (const auto& [name, canvas] : canvases()) settings.setValue("charts/logY/" + name, canvas->logY());
}

void ChartGrid::restoreSettings(const QSettings& settings) {
    for (const auto& [name, canvas] : canvases()) {
        const QVariant v = settings.value("charts/logY/" + name);
        if (v.isValid()) canvas->setLogY(v.toBool());
    }
}

}  // namespace relora::ui
