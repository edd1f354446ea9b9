#include "ui/charts/SpectrumPanel.h"

#include "core/RunSpec.h"
#include "ui/data/RunDataPoller.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineSeries>
#include <QVBoxLayout>

#include <algorithm>
#include <cmath>
#include <limits>

namespace relora::ui {

SpectrumPanel::SpectrumPanel(RunDataPoller* poller, QWidget* parent) : QWidget(parent), poller_(poller) {
    matrix_ = new QComboBox;
    for (int t = 0; t < kTargetCount; ++t)
        matrix_->addItem(QString::fromStdString(toString(static_cast<TargetMatrix>(t))));
    layer_ = new QComboBox;
    setLayerCount(1);
    step_ = new QComboBox;
    step_->addItem(tr("latest step"), -1);
    for (QComboBox* box : {matrix_, layer_, step_}) {
        box->setSizeAdjustPolicy(QComboBox::AdjustToContents);
        connect(box, &QComboBox::currentIndexChanged, this, &SpectrumPanel::refresh);
    }

    auto* header = new QHBoxLayout;
    header->setContentsMargins(4, 0, 4, 0);
    header->addWidget(new QLabel(tr("σ of ΔW:")));
    header->addWidget(matrix_);
    header->addWidget(layer_);
    header->addWidget(step_);
    header->addStretch();

    chart_ = new ChartCanvas(tr("Singular values of ΔW"));
    chart_->setAxisTitles(tr("index i"), tr("σᵢ"));
    chart_->setLogY(true);
    connect(chart_, &ChartCanvas::viewChanged, this, &SpectrumPanel::refresh);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    layout->addLayout(header);
    layout->addWidget(chart_, 1);
}

void SpectrumPanel::setLayerCount(int count) {
    count = std::max(1, count);
    if (layer_->count() == count) return;
    const int current = layer_->currentIndex();
    QSignalBlocker block(layer_);
    layer_->clear();
    for (int l = 0; l < count; ++l) layer_->addItem(tr("layer %1").arg(l), l);
    layer_->setCurrentIndex(std::clamp(current, 0, count - 1));
}

std::string SpectrumPanel::matrixLabel() const {
    return "layers." + std::to_string(layer_->currentData().toInt()) + "." + matrix_->currentText().toStdString();
}

void SpectrumPanel::setRuns(std::vector<RunStyle> runs) {
    if (runs == runs_) return;
    runs_ = std::move(runs);
    for (auto& [id, series] : series_) chart_->removeSeries(series);
    series_.clear();
    for (const RunStyle& run : runs_) {
        auto* series = new QLineSeries;
        series->setName(run.name);
        series->setObjectName(run.name);
        series->setPen(QPen(run.color, 1.8));
        chart_->addSeries(series, true);
        series_[run.id] = series;
    }
    refresh();
}

void SpectrumPanel::offerSteps(const std::set<int64_t>& steps) {
    if (static_cast<size_t>(step_->count()) == steps.size() + 1) return;
    const qlonglong chosen = step_->currentData().toLongLong();
    QSignalBlocker block(step_);
    step_->clear();
    step_->addItem(tr("latest step"), -1);
    for (int64_t s : steps) step_->addItem(tr("step %1").arg(s), static_cast<qlonglong>(s));
    const int index = step_->findData(chosen);
    step_->setCurrentIndex(index >= 0 ? index : 0);
}

void SpectrumPanel::refresh() {
    store::RunReader* reader = poller_->reader();
    if (!reader) return;
    const std::string matrix = matrixLabel();
    double yMin = std::numeric_limits<double>::infinity(), yMax = -yMin, xMax = 1;
    try {
        std::map<int64_t, std::vector<int64_t>> stepsOf;
        std::set<int64_t> all;
        for (const RunStyle& run : runs_) {
            stepsOf[run.id] = reader->spectrumSteps(run.id);
            all.insert(stepsOf[run.id].begin(), stepsOf[run.id].end());
        }
        offerSteps(all);
        const qlonglong chosen = step_->currentData().toLongLong();
        for (const RunStyle& run : runs_) {
            QLineSeries* series = series_[run.id];
            const auto& steps = stepsOf[run.id];
            // The chosen step, or the last one this run measured before it.
            const auto at = chosen < 0 ? steps.end() : std::upper_bound(steps.begin(), steps.end(), chosen);
            if (at == steps.begin()) {
                series->clear();
                continue;
            }
            const int64_t step = *(at - 1);
            const auto records = reader->spectra(run.id, step, matrix);
            QList<QPointF> points;
            if (!records.empty()) {
                const auto& sigma = records.front().sigma;
                for (size_t i = 0; i < sigma.size(); ++i) {
                    if (!(sigma[i] > 0) || !std::isfinite(sigma[i])) continue;   // log axis
                    points.append(QPointF(static_cast<double>(i + 1), sigma[i]));
                    yMin = std::min(yMin, static_cast<double>(sigma[i]));
                    yMax = std::max(yMax, static_cast<double>(sigma[i]));
                }
                xMax = std::max(xMax, static_cast<double>(sigma.size()));
            }
            series->setObjectName(tr("%1 (step %2)").arg(run.name).arg(step));
            series->replace(points);
        }
    } catch (const std::exception&) {
        return;   // the poller reports database errors; the last curves stay
    }
    chart_->setTitle(tr("Singular values of ΔW — %1").arg(QString::fromStdString(matrix)));
    if (std::isfinite(yMin)) chart_->setAutoRange(1, xMax, yMin, yMax);
}

}  // namespace relora::ui
