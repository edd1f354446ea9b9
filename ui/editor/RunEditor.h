// The run editor: every field of a run spec a researcher chooses, checked
// as it is typed by the engine's own validate() (the reason is shown at the
// field, and on the Launch button while it is disabled), with the derived
// figures (parameters, optimizer memory, memory and time estimates) and the
// schedule preview kept up to date. It only describes runs: launching is
// asked for by signal, and the main window hands it to the RunController.
#pragma once

#include "core/RunSpec.h"

#include <QMap>
#include <QWidget>

#include <vector>

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QPushButton;
class QSpinBox;

namespace relora::ui {

class FieldErrors;
class ScheduleEditor;

class RunEditor : public QWidget {
    Q_OBJECT
public:
    explicit RunEditor(QWidget* parent = nullptr);

    void setSpec(const RunSpec& spec);
    // The spec as edited; fields the editor does not show keep the values
    // of the spec last set.
    RunSpec spec() const;
    // What stops a launch now (reading problems first, then validate()'s).
    const std::vector<SpecError>& problems() const { return problems_; }
    QString launchBlockedReason() const;

    // Launching needs an open run database.
    void setDatabaseReady(bool ready, const QString& why = {});
    // Floating-point rate measured on a device ("cpu", "cuda"), for the
    // time estimate.
    void setMeasuredSpeed(const QString& device, double flopsPerSecond);

    FieldErrors* fieldErrors() const { return errors_; }
    ScheduleEditor* scheduleEditor() const { return schedule_; }
    QPushButton* launchButton() const { return launch_; }
    QPushButton* headlineButton() const { return headline_; }
    QLabel* derivedLabel() const { return derived_; }

public slots:
    // Reads the fields, validates, and updates marks, figures and preview.
    void revalidate();

signals:
    void launchRequested(const RunSpec& spec);
    // The headline experiment (core/Experiments.h) with this spec as base.
    void headlineRequested(const RunSpec& spec);
    // The spec changed: a field was edited, or setSpec loaded another one.
    void specEdited();

private:
    QWidget* buildRunGroup();
    QWidget* buildModelGroup();
    QWidget* buildDataGroup();
    QWidget* buildAdapterGroup();
    QWidget* buildOptimGroup();
    QWidget* buildTrainGroup();
    QWidget* buildLaunchBar();
    void connectEdits();
    // The fields as a spec; text that is no number adds a problem.
    RunSpec readFields(std::vector<SpecError>& problems) const;
    void applyPreset(const QString& preset);
    void sizesEdited();
    void showDerived(const RunSpec& spec);
    QString headlineBlockedReason(const RunSpec& spec) const;

    FieldErrors* errors_;
    RunSpec base_;
    std::vector<SpecError> problems_;
    bool databaseReady_ = false;
    QString databaseWhy_;
    QMap<QString, double> measuredSpeed_;

    QLineEdit* name_;
    QComboBox* method_;
    QComboBox* backend_;
    QComboBox* preset_;
    QSpinBox *dModel_, *dFF_, *heads_, *layers_, *context_;
    QLineEdit* corpus_;
    QCheckBox* synthetic_;
    QSpinBox* rank_;
    QLineEdit *alpha_, *dropout_;
    QComboBox* scaling_;
    std::vector<QCheckBox*> targets_;
    QWidget* targetBox_;
    std::vector<QWidget*> adapterFields_;
    ScheduleEditor* schedule_;
    QLineEdit *lr_, *weightDecay_, *clip_, *seed_;
    QSpinBox *batch_, *steps_, *evalInterval_, *snapshotInterval_;
    QLabel* derived_;
    QPushButton* launch_;
    QPushButton* headline_;
    QLabel* reason_;
};

}  // namespace relora::ui
