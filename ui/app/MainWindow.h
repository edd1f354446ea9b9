// The workbench window: the run editor (left), the live charts (centre),
// the run table and config diff (bottom), the toolbar of run controls and
// chart options, and the status bar. It wires the parts together and owns
// nothing of their logic: runs start through the RunController, and every
// view reads the run database through the RunDataPoller.
#pragma once

#include "core/RunSpec.h"

#include <QMainWindow>
#include <QMap>

#include <cstdint>
#include <optional>
#include <vector>

class QAction;
class QComboBox;
class QLabel;
class QSlider;

namespace relora::ui {

class ChartGrid;
class RunController;
class RunDataPoller;
class RunEditor;
class RunStatusBar;
class RunsPanel;
class SweepDialog;

class MainWindow : public QMainWindow {
    Q_OBJECT
public:
    // Opens `database`; without one, the database used last, else the
    // default one the CLI uses too (store::defaultDatabasePath()).
    explicit MainWindow(const QString& database = {}, QWidget* parent = nullptr);
    ~MainWindow() override;

    static QString defaultDatabasePath();
    // Switches to another run database; says why in a message box and keeps
    // the current one when it cannot.
    bool openDatabase(const QString& path);
    // Queues the runs (all or none: the specs are checked first) and
    // overlays them in the charts. Shows what is wrong instead.
    std::vector<int64_t> queueRuns(const std::vector<RunSpec>& specs);

    RunController* controller() const { return controller_; }
    RunDataPoller* poller() const { return poller_; }
    RunEditor* editor() const { return editor_; }
    ChartGrid* charts() const { return charts_; }
    RunsPanel* runsPanel() const { return runs_; }
    SweepDialog* sweepDialog() const { return sweep_; }
    RunStatusBar* runStatus() const { return status_; }
    QAction* pauseAction() const { return pause_; }
    QAction* resumeAction() const { return resume_; }
    QAction* stopAction() const { return stop_; }

protected:
    void closeEvent(QCloseEvent* event) override;

private:
    void buildActions();
    void buildMenus();
    void buildToolBar();
    void buildDocks();
    void connectController();
    void restoreSettings();
    void saveSettings() const;

    void updateRunActions();
    void updateStatus();
    void overlayChanged();
    void showSweeps();
    void runEnded(qint64 runId, const QString& status, const QString& message);
    void chartOptionsChanged();

    void chooseDatabase(bool create);
    void loadSpecFile();
    void saveSpecFile();
    void exportSnapshot(std::optional<int64_t> runId);
    void exportMetricsCsv();
    void exportCharts(const QString& suffix);
    void duplicateRun(int64_t runId);
    void showError(const QString& title, const QString& text);
    QString runLabel(int64_t runId) const;

    struct Progress {
        int step = 0, total = 0;
        double tokensPerSecond = 0, etaSeconds = 0;
    };

    RunController* controller_;
    RunDataPoller* poller_;
    RunEditor* editor_;
    ChartGrid* charts_;
    RunsPanel* runs_;
    RunStatusBar* status_;
    SweepDialog* sweep_;
    QMap<qint64, Progress> progress_;
    QMap<qint64, QString> devices_;

    QAction *open_, *create_, *loadSpec_, *saveSpec_, *exportPng_, *exportSvg_, *exportCsv_, *exportSnapshot_, *quit_;
    QAction *launch_, *headline_, *sweepAction_, *pause_, *resume_, *stop_, *stopAll_, *resetZoom_;
    QComboBox* xAxis_;
    QSlider* smoothing_;
    QLabel* smoothingValue_;
};

}  // namespace relora::ui
