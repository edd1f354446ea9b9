// The singular values of the learned update ΔW of one matrix at one step,
// one curve per overlaid run: where LoRA's spectrum falls off a cliff at its
// rank, ReLoRA's and full-rank training's go on. Read on demand from the
// run database's spectra table.
#pragma once

#include "ui/charts/ChartCanvas.h"
#include "ui/charts/ChartStyle.h"

#include <QWidget>

#include <cstdint>
#include <map>
#include <set>
#include <vector>

class QComboBox;
class QLineSeries;

namespace relora::ui {

class RunDataPoller;

class SpectrumPanel : public QWidget {
    Q_OBJECT
public:
    explicit SpectrumPanel(RunDataPoller* poller, QWidget* parent = nullptr);

    ChartCanvas* chart() const { return chart_; }
    void setRuns(std::vector<RunStyle> runs);
    void setLayerCount(int count);
    // "layers.0.wq": the matrix label the trainer stores spectra under.
    std::string matrixLabel() const;

public slots:
    void refresh();

private:
    void offerSteps(const std::set<int64_t>& steps);

    RunDataPoller* poller_;
    QComboBox* matrix_;
    QComboBox* layer_;
    QComboBox* step_;
    ChartCanvas* chart_;
    std::vector<RunStyle> runs_;
    std::map<int64_t, QLineSeries*> series_;
};

}  // namespace relora::ui
