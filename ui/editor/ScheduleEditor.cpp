#include "ui/editor/ScheduleEditor.h"

#include "ui/charts/ChartCanvas.h"
#include "ui/editor/FieldErrors.h"
#include "ui/editor/FormFields.h"
#include "ui/editor/SchedulePreview.h"

#include <QComboBox>
#include <QFormLayout>
#include <QLegend>
#include <QLineEdit>
#include <QLineSeries>
#include <QSpinBox>
#include <QVBoxLayout>

#include <algorithm>
#include <climits>

namespace relora::ui {

ScheduleEditor::ScheduleEditor(FieldErrors* errors, QWidget* parent) : QWidget(parent) {
    warmup_ = makeIntField(0, INT_MAX);
    minLrRatio_ = makeNumberField();
    mode_ = new QComboBox;
    mode_->addItem(tr("every N steps"));
    mode_->addItem(tr("at listed steps"));
    resetInterval_ = makeIntField(0, INT_MAX);
    restartSteps_ = new QLineEdit;
    restartSteps_->setPlaceholderText(tr("e.g. 300, 600, 900"));
    restartWarmup_ = makeIntField(0, INT_MAX);
    prune_ = new QComboBox;
    for (PruneMode m : {PruneMode::Reset, PruneMode::Random, PruneMode::Magnitude})
        prune_->addItem(QString::fromStdString(toString(m)), static_cast<int>(m));
    pruneRatio_ = makeNumberField();
    warmStart_ = makeIntField(0, INT_MAX);
    warmStart_->setSpecialValueText(tr("none"));

    auto* form = form_ = new QFormLayout;
    form->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    form->addRow(tr("LR warmup (steps)"), errors->attach("optim.warmup", warmup_));
    form->addRow(tr("Minimum LR ratio"), errors->attach("optim.min_lr_ratio", minLrRatio_));
    form->addRow(tr("Restart"), mode_);
    form->addRow(tr("Restart every (steps)"), errors->attach("relora.reset_interval", resetInterval_));
    form->addRow(tr("Restart at steps"), errors->attach("relora.restart_steps", restartSteps_));
    form->addRow(tr("LR climb after restart"), errors->attach("relora.restart_warmup", restartWarmup_));
    form->addRow(tr("Optimizer pruning"), errors->attach("relora.prune", prune_));
    form->addRow(tr("Pruning ratio"), errors->attach("relora.prune_ratio", pruneRatio_));
    form->addRow(tr("Full-rank warm start (steps)"), errors->attach("relora.warm_start_steps", warmStart_));
    reloraOnly_ = {mode_, resetInterval_, restartSteps_, restartWarmup_, prune_, pruneRatio_, warmStart_};

    preview_ = new ChartCanvas(tr("Learning rate over the run"));
    preview_->setAxisTitles(tr("step"), tr("LR"));
    preview_->chart()->legend()->hide();
    preview_->setMinimumHeight(170);
    series_ = new QLineSeries;
    series_->setObjectName(tr("LR"));
    series_->setPen(QPen(QColor(0x4e, 0x79, 0xa7), 1.8));
    preview_->addSeries(series_, false);

    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addLayout(form);
    layout->addWidget(preview_);

    for (QSpinBox* box : {warmup_, resetInterval_, restartWarmup_, warmStart_})
        connect(box, &QSpinBox::valueChanged, this, &ScheduleEditor::edited);
    for (QLineEdit* field : {minLrRatio_, restartSteps_, pruneRatio_})
        connect(field, &QLineEdit::textChanged, this, &ScheduleEditor::edited);
    connect(prune_, &QComboBox::currentIndexChanged, this, &ScheduleEditor::edited);
    connect(mode_, &QComboBox::currentIndexChanged, this, [this] {
        showModeRows();
        emit edited();
    });
    showModeRows();
}

void ScheduleEditor::showModeRows() {
    // The rows hold the fields' FieldErrors containers.
    form_->setRowVisible(resetInterval_->parentWidget(), mode_->currentIndex() == 0);
    form_->setRowVisible(restartSteps_->parentWidget(), mode_->currentIndex() == 1);
}

void ScheduleEditor::load(const RunSpec& spec) {
    const QSignalBlocker blockThis(this), blockMode(mode_);
    warmup_->setValue(spec.optim.warmup);
    setNumber(minLrRatio_, spec.optim.minLrRatio);
    const ReLoRASpec& r = spec.relora;
    resetInterval_->setValue(r.resetInterval);
    QStringList steps;
    for (int s : r.restartSteps) steps << QString::number(s);
    restartSteps_->setText(steps.join(QStringLiteral(", ")));
    mode_->setCurrentIndex(r.restartSteps.empty() ? 0 : 1);
    showModeRows();
    restartWarmup_->setValue(r.restartWarmup);
    prune_->setCurrentIndex(prune_->findData(static_cast<int>(r.prune)));
    setNumber(pruneRatio_, r.pruneRatio);
    warmStart_->setValue(r.warmStartSteps);
}

void ScheduleEditor::store(RunSpec& spec, std::vector<SpecError>& problems) const {
    spec.optim.warmup = warmup_->value();
    if (auto v = readNumber(minLrRatio_, "optim.min_lr_ratio", problems)) spec.optim.minLrRatio = static_cast<float>(*v);
    ReLoRASpec& r = spec.relora;
    r.resetInterval = resetInterval_->value();
    r.restartSteps.clear();
    if (mode_->currentIndex() == 1) {
        if (auto steps = readIntList(restartSteps_, "relora.restart_steps", problems)) {
            r.restartSteps = *steps;
            if (steps->empty() && spec.method.kind == Method::ReLoRA)
                problems.push_back({"relora.restart_steps", "list at least one step, or restart every N steps"});
        }
    }
    r.restartWarmup = restartWarmup_->value();
    r.prune = static_cast<PruneMode>(prune_->currentData().toInt());
    if (auto v = readNumber(pruneRatio_, "relora.prune_ratio", problems)) r.pruneRatio = static_cast<float>(*v);
    r.warmStartSteps = warmStart_->value();
}

void ScheduleEditor::showPreview(const RunSpec& spec) {
    const bool relora = spec.method.kind == Method::ReLoRA;
    for (QWidget* w : reloraOnly_) {
        w->setEnabled(relora);
        w->setToolTip(relora ? QString() : tr("Only ReLoRA restarts; full-rank and LoRA follow one cosine."));
    }
    pruneRatio_->setEnabled(relora && spec.relora.prune != PruneMode::Reset);

    const SchedulePreview p = previewSchedule(spec);
    series_->replace(p.lr);
    std::vector<ChartCanvas::Marker> markers;
    const QColor restart(0xe1, 0x57, 0x59);
    for (int r : p.restarts) markers.push_back({static_cast<double>(r), restart, QString()});
    if (p.warmStartSwitch) markers.push_back({static_cast<double>(*p.warmStartSwitch), QColor(0x59, 0xa1, 0x4f), tr("low-rank")});
    preview_->setMarkers(std::move(markers));
    double top = 0;
    for (const QPointF& point : p.lr) top = std::max(top, point.y());
    if (!p.lr.isEmpty()) preview_->setAutoRange(0, std::max(1, spec.train.steps - 1), 0, top);
    preview_->setTitle(p.restarts.empty() ? tr("Learning rate over the run")
                                          : tr("Learning rate over the run — %1 restarts").arg(p.restarts.size()));
}

}  // namespace relora::ui
