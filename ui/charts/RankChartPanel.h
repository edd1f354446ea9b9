// The effective rank of the learned update ΔW, one curve per run, for one
// target matrix type: averaged over the layers (the trainer's "rank_eff/wq")
// or, on demand, of one layer ("rank_eff/layers.2.wq"); also the stable and
// the threshold rank.
#pragma once

#include "ui/charts/MetricChart.h"

#include <QWidget>

class QComboBox;

namespace relora::ui {

class RankChartPanel : public QWidget {
    Q_OBJECT
public:
    explicit RankChartPanel(QWidget* parent = nullptr);

    MetricChart* chart() const { return chart_; }
    // Offers layers 0 .. count − 1 besides the mean.
    void setLayerCount(int count);
    // The metric key shown now, e.g. "rank_eff/wq" or "rank_eff/layers.0.wq".
    std::string key() const;

signals:
    void keysChanged();

private:
    void updateCurve();

    QComboBox* measure_;
    QComboBox* matrix_;
    QComboBox* layer_;
    MetricChart* chart_;
};

}  // namespace relora::ui
