#include "ui/experiments/SweepDialog.h"

#include "ui/charts/SweepChart.h"
#include "ui/data/RunDataPoller.h"
#include "ui/data/SweepData.h"
#include "ui/editor/RunEditor.h"

#include <QComboBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QVBoxLayout>

#include <algorithm>

namespace relora::ui {
namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

// "0, 10, 25, 50 %" from 0, 0.1, 0.25, 0.5.
QString percentList(const std::vector<double>& fractions) {
    QStringList items;
    for (double f : fractions) items << QString::number(f * 100, 'g', 4);
    return items.join(QStringLiteral(", ")) + QStringLiteral(" %");
}

// "60, 150 and 300", the full-rank steps of the runs.
QString stepList(const std::vector<RunSpec>& runs) {
    QStringList items;
    for (const RunSpec& r : runs)
        items << (r.method.kind == Method::FullRank ? SweepDialog::tr("%1 (full-rank throughout)").arg(r.train.steps)
                                                    : QString::number(r.relora.warmStartSteps));
    const QString last = items.takeLast();
    return items.isEmpty() ? last : SweepDialog::tr("%1 and %2").arg(items.join(QStringLiteral(", ")), last);
}

}  // namespace

SweepDialog::SweepDialog(RunDataPoller* poller, RunEditor* editor, QWidget* parent)
    : QDialog(parent), poller_(poller), editor_(editor) {
    setWindowTitle(tr("Warm-start sweep"));
    switchPoints_ = new QLineEdit(percentList(experiments::kDefaultSweepFractions));
    switchPoints_->setObjectName(QStringLiteral("switchPoints"));
    switchPoints_->setToolTip(tr("Shares of the steps trained full-rank before switching to ReLoRA, in %, "
                                 "separated by commas; 100 % is a full-rank run throughout, the reference"));
    queue_ = new QPushButton(QIcon(QStringLiteral(":/icons/sweep.svg")), tr("Queue sweep"));
    queue_->setObjectName(QStringLiteral("queueSweep"));
    plan_ = new QLabel;
    plan_->setWordWrap(true);
    choice_ = new QComboBox;
    choice_->setObjectName(QStringLiteral("sweepChoice"));
    choice_->setSizeAdjustPolicy(QComboBox::AdjustToContents);
    chart_ = new SweepChart;

    auto* switchRow = new QHBoxLayout;
    switchRow->addWidget(switchPoints_, 1);
    switchRow->addWidget(queue_);
    auto* form = new QFormLayout;
    form->addRow(tr("Switch to ReLoRA after (% of steps)"), switchRow);
    form->addRow(QString(), plan_);
    form->addRow(tr("Sweep shown"), choice_);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(form);
    layout->addWidget(chart_, 1);
    resize(720, 560);

    connect(switchPoints_, &QLineEdit::textChanged, this, &SweepDialog::replan);
    connect(editor_, &RunEditor::specEdited, this, &SweepDialog::replan);
    connect(queue_, &QPushButton::clicked, this, [this] {
        const std::vector<RunSpec> runs = plannedRuns();
        if (!runs.empty()) emit queueRequested(runs);
    });
    connect(choice_, &QComboBox::currentIndexChanged, this, &SweepDialog::showChosen);
    // Reading the sweeps costs a pass over the specs: only while it shows.
    connect(poller_, &RunDataPoller::runsChanged, this, [this] {
        if (isVisible()) refreshSweeps();
    });
    replan();
}

std::vector<RunSpec> SweepDialog::plannedRuns(QString* why) const {
    const auto fail = [why](const QString& reason) {
        if (why) *why = reason;
        return std::vector<RunSpec>();
    };
    std::vector<double> fractions;
    try {
        fractions = experiments::parseFractions(switchPoints_->text().toStdString(), true);
    } catch (const std::invalid_argument& e) {
        return fail(tr("Switch points: %1.").arg(qs(e.what())));
    }
    if (!editor_->problems().empty()) {
        const SpecError& e = editor_->problems().front();
        return fail(tr("Fix the run editor's spec first: %1 %2").arg(qs(e.field), qs(e.message)));
    }
    std::vector<RunSpec> runs = experiments::warmStartSweepRuns(editor_->spec(), fractions);
    for (const RunSpec& run : runs) {
        const auto errors = validate(run, false);
        if (!errors.empty())
            return fail(tr("%1 could not run: %2 %3").arg(qs(run.name), qs(errors.front().field), qs(errors.front().message)));
    }
    return runs;
}

void SweepDialog::replan() {
    QString why;
    const std::vector<RunSpec> runs = plannedRuns(&why);
    queue_->setEnabled(!runs.empty());
    plan_->setStyleSheet(runs.empty() ? QStringLiteral("color: #c62828;") : QString());
    if (runs.empty()) {
        plan_->setText(why);
        return;
    }
    plan_->setText(tr("%n run(s) of the run editor's spec, %1 steps each, named %2-sweep-…: full-rank for the "
                      "first %3 steps, then ReLoRA.", nullptr, static_cast<int>(runs.size()))
                       .arg(runs.front().train.steps)
                       .arg(qs(experiments::experimentStem(runs.front().name)), stepList(runs)));
}

bool SweepDialog::showSweepOf(int64_t runId) {
    refreshSweeps();
    for (const auto& sweep : sweeps_) {
        if (std::find(sweep.runs.begin(), sweep.runs.end(), runId) == sweep.runs.end()) continue;
        choice_->setCurrentIndex(choice_->findData(QVariant::fromValue<qlonglong>(sweep.runs.front())));
        return true;
    }
    return false;
}

void SweepDialog::showEvent(QShowEvent* event) {
    QDialog::showEvent(event);
    replan();
    refreshSweeps();
}

void SweepDialog::refreshSweeps() {
    sweeps_ = sweepsIn(*poller_);
    QStringList labels;
    for (const auto& sweep : sweeps_) {
        const auto points = sweepPoints(*poller_, sweep.runs);
        const auto finished = std::count_if(points.begin(), points.end(), [](const SweepPoint& p) { return p.finished(); });
        labels << tr("%1: %n run(s), #%2–#%3, %4 finished", nullptr, static_cast<int>(sweep.runs.size()))
                      .arg(qs(sweep.stem))
                      .arg(sweep.runs.front())
                      .arg(sweep.runs.back())
                      .arg(finished);
    }
    QStringList shownLabels;
    for (int i = 0; i < choice_->count(); ++i) shownLabels << choice_->itemText(i);
    // Rebuilt only when it changed: the list may be open while runs train.
    if (labels != shownLabels) {
        const QSignalBlocker block(choice_);
        const QVariant shown = choice_->currentData();
        choice_->clear();
        for (size_t i = 0; i < sweeps_.size(); ++i)
            choice_->addItem(labels[static_cast<int>(i)], QVariant::fromValue<qlonglong>(sweeps_[i].runs.front()));
        const int index = choice_->findData(shown);
        choice_->setCurrentIndex(index >= 0 ? index : choice_->count() - 1);   // else the newest
    }
    choice_->setEnabled(!sweeps_.empty());
    choice_->setPlaceholderText(tr("no sweep in this database yet"));
    showChosen();
}

void SweepDialog::showChosen() {
    const qlonglong first = choice_->currentData().toLongLong();
    const auto sweep = std::find_if(sweeps_.begin(), sweeps_.end(),
                                    [&](const experiments::WarmStartSweep& s) { return s.runs.front() == first; });
    chart_->setPoints(sweep == sweeps_.end() ? std::vector<SweepPoint>() : sweepPoints(*poller_, sweep->runs));
}

}  // namespace relora::ui
