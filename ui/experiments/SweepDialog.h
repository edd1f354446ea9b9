// The warm-start sweep in the GUI (issue 7): how much full-rank training
// does ReLoRA need first? The user edits the switch points (in % of the
// steps); the dialog builds the sweep's runs from the run editor's spec with
// core's warmStartSweepRuns and asks for them to be queued (the main window
// queues them through the RunController). Below, the chart of a sweep's
// final validation loss against its switch point, redrawn from the poller
// whenever the run database changes; any earlier sweep of the database can
// be chosen there, so a finished sweep's plot opens again.
#pragma once

#include "core/Experiments.h"
#include "core/RunSpec.h"

#include <QDialog>

#include <cstdint>
#include <vector>

class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;

namespace relora::ui {

class RunDataPoller;
class RunEditor;
class SweepChart;

class SweepDialog : public QDialog {
    Q_OBJECT
public:
    SweepDialog(RunDataPoller* poller, RunEditor* editor, QWidget* parent = nullptr);

    // The runs the switch points typed give with the editor's spec; empty,
    // with the reason in `why`, unless every one of them can run.
    std::vector<RunSpec> plannedRuns(QString* why = nullptr) const;
    // Shows the sweep run `runId` belongs to; false when it belongs to none.
    bool showSweepOf(int64_t runId);

    QLineEdit* switchPointsField() const { return switchPoints_; }
    QLabel* planLabel() const { return plan_; }
    QPushButton* queueButton() const { return queue_; }
    QComboBox* sweepChoice() const { return choice_; }
    SweepChart* chart() const { return chart_; }

signals:
    // Queue these runs, all or none; the answer is showSweepOf(one of them).
    void queueRequested(const std::vector<RunSpec>& runs);

protected:
    void showEvent(QShowEvent* event) override;

private:
    void replan();
    // Re-reads the database's sweeps (keeping the one shown) and the chart.
    void refreshSweeps();
    void showChosen();

    RunDataPoller* poller_;
    RunEditor* editor_;
    QLineEdit* switchPoints_;
    QLabel* plan_;
    QPushButton* queue_;
    QComboBox* choice_;
    SweepChart* chart_;
    std::vector<experiments::WarmStartSweep> sweeps_;
};

}  // namespace relora::ui
