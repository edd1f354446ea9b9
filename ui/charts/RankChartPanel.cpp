#include "ui/charts/RankChartPanel.h"

#include "core/RunSpec.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QVBoxLayout>

namespace relora::ui {

RankChartPanel::RankChartPanel(QWidget* parent) : QWidget(parent) {
    measure_ = new QComboBox;
    measure_->addItem(tr("effective rank"), QStringLiteral("rank_eff"));
    measure_->addItem(tr("stable rank"), QStringLiteral("rank_stable"));
    measure_->addItem(tr("σ above threshold"), QStringLiteral("rank_thr"));
    matrix_ = new QComboBox;
    for (int t = 0; t < kTargetCount; ++t)
        matrix_->addItem(QString::fromStdString(toString(static_cast<TargetMatrix>(t))));
    layer_ = new QComboBox;
    setLayerCount(0);
    for (QComboBox* box : {measure_, matrix_, layer_}) {
        box->setSizeAdjustPolicy(QComboBox::AdjustToContents);
        connect(box, &QComboBox::currentIndexChanged, this, &RankChartPanel::updateCurve);
    }

    auto* header = new QHBoxLayout;
    header->setContentsMargins(4, 0, 4, 0);
    header->addWidget(new QLabel(tr("ΔW:")));
    header->addWidget(measure_);
    header->addWidget(matrix_);
    header->addWidget(layer_);
    header->addStretch();

    chart_ = new MetricChart(tr("Rank of the learned update ΔW"), tr("rank"));
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(2);
    layout->addLayout(header);
    layout->addWidget(chart_, 1);
    updateCurve();
}

void RankChartPanel::setLayerCount(int count) {
    if (layer_->count() == count + 1) return;
    const int current = layer_->currentIndex();
    QSignalBlocker block(layer_);
    layer_->clear();
    layer_->addItem(tr("mean over layers"), -1);
    for (int l = 0; l < count; ++l) layer_->addItem(tr("layer %1").arg(l), l);
    layer_->setCurrentIndex(current >= 0 && current < layer_->count() ? current : 0);
}

std::string RankChartPanel::key() const {
    const int layer = layer_->currentData().toInt();
    std::string key = measure_->currentData().toString().toStdString() + "/";
    if (layer >= 0) key += "layers." + std::to_string(layer) + ".";
    return key + matrix_->currentText().toStdString();
}

void RankChartPanel::updateCurve() {
    const QString where = layer_->currentIndex() > 0 ? layer_->currentText() : tr("mean over layers");
    chart_->setTitle(tr("Rank of ΔW — %1, %2").arg(matrix_->currentText(), where));
    chart_->setCurves({{key(), measure_->currentText(), Qt::SolidLine, 1.8, false, true}});
    emit keysChanged();
}

}  // namespace relora::ui
