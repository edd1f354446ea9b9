#include "ui/app/MainWindow.h"

#include "core/Experiments.h"
#include "core/Trainer.h"
#include "core/store/RunFiles.h"
#include "ui/app/Resources.h"
#include "ui/app/RunStatusBar.h"
#include "ui/app/SnapshotDialog.h"
#include "ui/charts/ChartCanvas.h"
#include "ui/charts/ChartGrid.h"
#include "ui/controller/RunController.h"
#include "ui/controller/RunFiles.h"
#include "ui/data/MetricsCsv.h"
#include "ui/data/RunDataPoller.h"
#include "ui/editor/DerivedFigures.h"
#include "ui/editor/PresetLibrary.h"
#include "ui/editor/RunEditor.h"
#include "ui/experiments/SweepDialog.h"
#include "ui/runs/RunTableModel.h"
#include "ui/runs/RunsPanel.h"

#include <QAction>
#include <QApplication>
#include <QCloseEvent>
#include <QComboBox>
#include <QDir>
#include <QDockWidget>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QPainter>
#include <QPushButton>
#include <QSettings>
#include <QSlider>
#include <QStatusBar>
#include <QSvgGenerator>
#include <QToolBar>
#include <QToolButton>

#include <algorithm>
#include <fstream>
#include <set>

namespace relora::ui {
namespace {

// Runs overlaid when a database is opened, so its latest comparison shows.
constexpr int kRunsShownOnOpen = 4;

}  // namespace

MainWindow::MainWindow(const QString& database, QWidget* parent) : QMainWindow(parent) {
    initWorkbenchResources();
    setWindowIcon(QIcon(QStringLiteral(":/icons/relora-workbench.svg")));
    controller_ = new RunController(this);
    poller_ = new RunDataPoller(this);
    editor_ = new RunEditor;
    charts_ = new ChartGrid(poller_);
    runs_ = new RunsPanel(poller_);
    status_ = new RunStatusBar;
    sweep_ = new SweepDialog(poller_, editor_, this);
    setCentralWidget(charts_);
    statusBar()->addPermanentWidget(status_, 1);

    buildActions();
    buildMenus();
    buildToolBar();
    buildDocks();
    connectController();
    restoreSettings();

    connect(editor_, &RunEditor::launchRequested, this, [this](const RunSpec& spec) { queueRuns({spec}); });
    connect(editor_, &RunEditor::headlineRequested, this,
            [this](const RunSpec& spec) { queueRuns(experiments::headlineRuns(spec)); });
    connect(sweep_, &SweepDialog::queueRequested, this, [this](const std::vector<RunSpec>& specs) {
        if (const auto ids = queueRuns(specs); !ids.empty()) sweep_->showSweepOf(ids.front());
    });
    connect(runs_, &RunsPanel::sweepRequested, this, [this](qint64 id) {
        showSweeps();
        sweep_->showSweepOf(id);
    });
    connect(runs_, &RunsPanel::overlayChanged, this, &MainWindow::overlayChanged);
    connect(runs_, &RunsPanel::duplicateRequested, this, &MainWindow::duplicateRun);
    connect(runs_, &RunsPanel::snapshotRequested, this, [this](qint64 id) { exportSnapshot(id); });
    connect(runs_, &RunsPanel::stopRequested, this, [this](qint64 id) {
        const auto training = controller_->trainingRuns(), queued = controller_->queuedRuns();
        if (std::count(training.begin(), training.end(), id) || std::count(queued.begin(), queued.end(), id))
            controller_->stop(id);
        else
            statusBar()->showMessage(tr("%1 is trained by another program (the CLI?); stop it there.").arg(runLabel(id)), 10000);
    });
    connect(poller_, &RunDataPoller::runsChanged, this, &MainWindow::updateStatus);
    connect(poller_, &RunDataPoller::failed, this,
            [this](const QString& message) { statusBar()->showMessage(tr("Run database: %1").arg(message)); });

    const QString path = !database.isEmpty() ? database
                         : QSettings().value("database/path").toString().isEmpty()
                             ? defaultDatabasePath()
                             : QSettings().value("database/path").toString();
    if (!openDatabase(path)) editor_->setDatabaseReady(false, tr("open a run database first (File > Open)"));
    updateRunActions();
}

MainWindow::~MainWindow() {
    // Runs end before the views they report to are gone: no signal of the
    // controller's shutdown may reach this half-destroyed window.
    controller_->blockSignals(true);
    controller_->shutdown(-1);
}

QString MainWindow::defaultDatabasePath() {
    return QString::fromStdString(store::defaultDatabasePath());   // the CLI's default too
}

// ---- construction ---------------------------------------------------------------

void MainWindow::buildActions() {
    const auto action = [this](const QString& icon, const QString& text, auto slot) {
        auto* a = new QAction(icon.isEmpty() ? QIcon() : QIcon(":/icons/" + icon + ".svg"), text, this);
        connect(a, &QAction::triggered, this, slot);
        return a;
    };
    open_ = action("open", tr("&Open database…"), [this] { chooseDatabase(false); });
    open_->setShortcut(QKeySequence::Open);
    create_ = action("", tr("&New database…"), [this] { chooseDatabase(true); });
    loadSpec_ = action("open", tr("&Load run spec…"), [this] { loadSpecFile(); });
    saveSpec_ = action("save", tr("&Save run spec…"), [this] { saveSpecFile(); });
    saveSpec_->setShortcut(QKeySequence::Save);
    exportPng_ = action("export", tr("Export charts as &PNG…"), [this] { exportCharts(QStringLiteral("png")); });
    exportSvg_ = action("", tr("Export charts as S&VG…"), [this] { exportCharts(QStringLiteral("svg")); });
    exportCsv_ = action("export", tr("Export overlaid runs' metrics as &CSV…"), [this] { exportMetricsCsv(); });
    exportSnapshot_ = action("snapshot", tr("Export &HDF5 snapshot…"), [this] { exportSnapshot(std::nullopt); });
    quit_ = action("", tr("&Quit"), [this] { close(); });
    quit_->setShortcut(QKeySequence::Quit);

    launch_ = action("launch", tr("&Launch"), [this] { editor_->launchButton()->click(); });
    launch_->setShortcut(Qt::CTRL | Qt::Key_Return);
    headline_ = action("compare", tr("&Headline: 4 methods"), [this] { editor_->headlineButton()->click(); });
    sweepAction_ = action("sweep", tr("Warm-start s&weep…"), [this] { showSweeps(); });
    pause_ = action("pause", tr("&Pause"), [this] {
        if (auto id = controller_->currentRun()) controller_->pause(*id);
    });
    resume_ = action("resume", tr("&Resume"), [this] {
        if (auto id = controller_->currentRun()) controller_->resume(*id);
    });
    stop_ = action("stop", tr("&Stop"), [this] {
        if (auto id = controller_->currentRun()) controller_->stop(*id);
    });
    stopAll_ = action("", tr("Stop all and clear the &queue"), [this] {
        for (int64_t id : controller_->queuedRuns()) controller_->stop(id);
        for (int64_t id : controller_->trainingRuns()) controller_->stop(id);
    });
    resetZoom_ = action("reset-zoom", tr("&Reset zoom"), [this] { charts_->resetZoom(); });
    for (QAction* a : {launch_, headline_, sweepAction_, pause_, resume_, stop_, resetZoom_})
        a->setToolTip(a->text().remove('&'));
}

void MainWindow::buildMenus() {
    QMenu* file = menuBar()->addMenu(tr("&File"));
    file->addActions({open_, create_});
    file->addSeparator();
    file->addActions({loadSpec_, saveSpec_});
    file->addSeparator();
    file->addActions({exportPng_, exportSvg_, exportCsv_, exportSnapshot_});
    file->addSeparator();
    file->addAction(quit_);

    QMenu* presets = menuBar()->addMenu(tr("&Presets"));
    QStringList problems;
    for (const Preset& p : bundledPresets(&problems)) {
        presets->addAction(tr("Load \"%1\" into the editor").arg(p.title), this, [this, spec = p.spec] {
            editor_->setSpec(spec);
        });
    }
    for (const QString& problem : problems) qWarning("preset left out: %s", qPrintable(problem));
    presets->addSeparator();
    for (const experiments::ExperimentDefaults& e : experiments::experimentDefaults()) {
        presets->addAction(tr("Load the %1 experiment spec (%2 steps, rank %3) into the editor")
                               .arg(QString::fromStdString(e.preset)).arg(e.steps).arg(e.rank),
                           this, [this, preset = e.preset] { editor_->setSpec(experiments::experimentSpec(preset)); });
    }

    QMenu* run = menuBar()->addMenu(tr("&Run"));
    run->addActions({launch_, headline_, sweepAction_});
    run->addSeparator();
    run->addActions({pause_, resume_, stop_, stopAll_});

    QMenu* view = menuBar()->addMenu(tr("&View"));
    view->addAction(resetZoom_);
    view->setObjectName(QStringLiteral("viewMenu"));
}

void MainWindow::buildToolBar() {
    QToolBar* bar = addToolBar(tr("Runs and charts"));
    bar->setObjectName(QStringLiteral("mainToolBar"));
    bar->setToolButtonStyle(Qt::ToolButtonTextBesideIcon);
    bar->addActions({launch_, headline_, sweepAction_});
    bar->addSeparator();
    bar->addActions({pause_, resume_, stop_});
    bar->addSeparator();

    xAxis_ = new QComboBox;
    xAxis_->setObjectName(QStringLiteral("xAxisChoice"));
    xAxis_->addItem(tr("step"), toSettingsText(XAxisKind::Step));
    xAxis_->addItem(tr("tokens"), toSettingsText(XAxisKind::Tokens));
    xAxis_->addItem(tr("wall time"), toSettingsText(XAxisKind::WallTime));
    smoothing_ = new QSlider(Qt::Horizontal);
    smoothing_->setObjectName(QStringLiteral("smoothingSlider"));
    smoothing_->setRange(0, 99);
    smoothing_->setFixedWidth(120);
    smoothing_->setToolTip(tr("Debiased exponential moving average of train loss and throughput"));
    smoothingValue_ = new QLabel;
    smoothingValue_->setMinimumWidth(32);
    bar->addWidget(new QLabel(tr(" x axis ")));
    bar->addWidget(xAxis_);
    bar->addWidget(new QLabel(tr("  smoothing ")));
    bar->addWidget(smoothing_);
    bar->addWidget(smoothingValue_);
    bar->addAction(resetZoom_);
    bar->addSeparator();
    bar->addActions({exportSnapshot_, exportCsv_});
    connect(xAxis_, &QComboBox::currentIndexChanged, this, &MainWindow::chartOptionsChanged);
    connect(smoothing_, &QSlider::valueChanged, this, &MainWindow::chartOptionsChanged);
}

void MainWindow::buildDocks() {
    auto* editorDock = new QDockWidget(tr("Run editor"));
    editorDock->setObjectName(QStringLiteral("editorDock"));
    editorDock->setWidget(editor_);
    editorDock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::LeftDockWidgetArea, editorDock);
    auto* runsDock = new QDockWidget(tr("Runs"));
    runsDock->setObjectName(QStringLiteral("runsDock"));
    runsDock->setWidget(runs_);
    runsDock->setFeatures(QDockWidget::DockWidgetMovable | QDockWidget::DockWidgetFloatable);
    addDockWidget(Qt::BottomDockWidgetArea, runsDock);
    resizeDocks({editorDock}, {380}, Qt::Horizontal);
    resizeDocks({runsDock}, {170}, Qt::Vertical);
}

void MainWindow::connectController() {
    connect(controller_, &RunController::runQueued, this, [this] { updateRunActions(); });
    connect(controller_, &RunController::runStarted, this, [this](qint64 id, const QString& backend, const QString& device) {
        devices_[id] = backend + ": " + device;
        updateRunActions();
    });
    connect(controller_, &RunController::progress, this,
            [this](qint64 id, int step, int total, double tokensPerSecond, double eta) {
                progress_[id] = {step, total, tokensPerSecond, eta};
                if (controller_->currentRun() == id) updateStatus();
            });
    connect(controller_, &RunController::pausedChanged, this, [this] {
        updateRunActions();
        updateStatus();
    });
    connect(controller_, &RunController::runEnded, this, &MainWindow::runEnded);
    connect(controller_, &RunController::busyChanged, this, [this] { updateRunActions(); });
    connect(controller_, &RunController::snapshotWritten, this, [this](qint64 id, qint64 step, const QString& path) {
        statusBar()->showMessage(tr("Snapshot of %1 at step %2 written to %3").arg(runLabel(id)).arg(step).arg(path), 15000);
    });
    connect(controller_, &RunController::snapshotFailed, this, [this](qint64 id, const QString& message) {
        showError(tr("Snapshot not written"), tr("The snapshot of %1 could not be written:\n%2").arg(runLabel(id), message));
    });
    connect(controller_, &RunController::warning, this, [this](qint64 id, const QString& message) {
        statusBar()->showMessage(tr("%1: %2").arg(runLabel(id), message), 15000);
    });
}

// ---- settings -------------------------------------------------------------------

void MainWindow::restoreSettings() {
    QSettings s;
    restoreGeometry(s.value("window/geometry").toByteArray());
    restoreState(s.value("window/state").toByteArray());
    xAxis_->setCurrentIndex(std::max(0, xAxis_->findData(s.value("charts/x", "step").toString())));
    smoothing_->setValue(s.value("charts/smoothing", 60).toInt());
    charts_->restoreSettings(s);
    chartOptionsChanged();
    for (const char* device : {"cpu", "cuda"})
        editor_->setMeasuredSpeed(device, s.value(QStringLiteral("speed/") + device, 0.0).toDouble());
    try {
        const QString spec = s.value("editor/spec").toString();
        if (!spec.isEmpty()) editor_->setSpec(fromJson(spec.toStdString()));
    } catch (const std::exception&) {
        // A spec saved by another version: the editor keeps its default.
    }
}

void MainWindow::saveSettings() const {
    QSettings s;
    s.setValue("window/geometry", saveGeometry());
    s.setValue("window/state", saveState());
    s.setValue("charts/x", xAxis_->currentData());
    s.setValue("charts/smoothing", smoothing_->value());
    charts_->saveSettings(s);
    s.setValue("editor/spec", QString::fromStdString(toJson(editor_->spec())));
    if (!controller_->database().isEmpty()) s.setValue("database/path", controller_->database());
}

void MainWindow::chartOptionsChanged() {
    ChartOptions options;
    options.x = xAxisKindFromText(xAxis_->currentData().toString());
    options.smoothing = smoothing_->value() / 100.0;
    smoothingValue_->setText(QString::number(options.smoothing, 'f', 2));
    charts_->setOptions(options);
}

// ---- database and runs ------------------------------------------------------------

bool MainWindow::openDatabase(const QString& path) {
    try {
        QDir().mkpath(QFileInfo(path).absolutePath());
        controller_->setDatabase(path);
        poller_->open(path);
    } catch (const std::exception& e) {
        showError(tr("Cannot open the run database"), QString::fromStdString(e.what()));
        return false;
    }
    setWindowTitle(tr("ReLoRA Workbench — %1").arg(QDir::toNativeSeparators(path)));
    QSettings().setValue("database/path", path);
    for (int64_t id : std::set<int64_t>(runs_->model()->checkedRuns())) runs_->setOverlaid(id, false);
    const auto& runs = poller_->runs();
    for (size_t i = runs.size() > kRunsShownOnOpen ? runs.size() - kRunsShownOnOpen : 0; i < runs.size(); ++i)
        runs_->setOverlaid(runs[i].id, true);
    editor_->setDatabaseReady(true);
    return true;
}

void MainWindow::chooseDatabase(bool create) {
    if (controller_->busy()) {
        showError(tr("Runs in progress"), tr("Stop the queued and training runs before switching databases."));
        return;
    }
    const QString start = QFileInfo(controller_->database()).absolutePath();
    const QString filter = tr("Run databases (*.sqlite *.db);;All files (*)");
    const QString path = create ? QFileDialog::getSaveFileName(this, tr("New run database"), start, filter)
                                : QFileDialog::getOpenFileName(this, tr("Open run database"), start, filter);
    if (!path.isEmpty()) openDatabase(path);
}

std::vector<int64_t> MainWindow::queueRuns(const std::vector<RunSpec>& specs) {
    for (const RunSpec& spec : specs) {
        const auto errors = validate(spec);
        if (errors.empty()) continue;
        QString text = tr("%1 cannot run:").arg(QString::fromStdString(spec.name));
        for (const SpecError& e : errors) text += QStringLiteral("\n• %1: %2").arg(QString::fromStdString(e.field), QString::fromStdString(e.message));
        showError(tr("Invalid run spec"), text);
        return {};
    }
    std::vector<int64_t> ids;
    try {
        for (const RunSpec& spec : specs) ids.push_back(controller_->enqueue(spec));
    } catch (const std::exception& e) {
        showError(tr("Run not queued"), QString::fromStdString(e.what()));
    }
    poller_->pollNow();
    for (int64_t id : ids) runs_->setOverlaid(id, true);
    return ids;
}

void MainWindow::showSweeps() {
    sweep_->show();
    sweep_->raise();
    sweep_->activateWindow();
}

void MainWindow::overlayChanged() {
    const std::vector<RunStyle> runs = runs_->overlaidRuns();
    std::set<int64_t> ids;
    for (const RunStyle& r : runs) ids.insert(r.id);
    poller_->setWatchedRuns(ids);
    charts_->setRuns(runs);
}

void MainWindow::runEnded(qint64 runId, const QString& status, const QString& message) {
    statusBar()->showMessage(tr("%1 %2: %3").arg(runLabel(runId), status, message), 15000);
    // What the run reached is the speed to estimate the next one with.
    const StoredSpec* stored = poller_->spec(runId);
    if (stored && stored->spec && progress_.contains(runId) && status != QLatin1String("failed")) {
        const RunSpec& spec = *stored->spec;
        const double tokensPerStep = static_cast<double>(spec.train.batch) * spec.model.context;
        const double flops = deriveFigures(spec, 1).flopsPerStep / tokensPerStep * progress_[runId].tokensPerSecond;
        const QString device = RunController::deviceKey(spec);
        editor_->setMeasuredSpeed(device, flops);
        QSettings().setValue("speed/" + device, flops);
    }
    progress_.remove(runId);
    poller_->pollNow();
    updateRunActions();
}

void MainWindow::updateRunActions() {
    const auto current = controller_->currentRun();
    const bool paused = current && controller_->isPaused(*current);
    pause_->setEnabled(current && !paused);
    resume_->setEnabled(paused);
    stop_->setEnabled(current.has_value());
    stopAll_->setEnabled(controller_->busy());
    updateStatus();
}

void MainWindow::updateStatus() {
    const auto current = controller_->currentRun();
    if (!current || !progress_.contains(*current)) {
        status_->showIdle(static_cast<int>(controller_->queuedRuns().size()));
        return;
    }
    const Progress& p = progress_[*current];
    status_->showProgress(runLabel(*current), p.step, p.total, p.tokensPerSecond, p.etaSeconds,
                          devices_.value(*current), controller_->isPaused(*current));
}

QString MainWindow::runLabel(int64_t runId) const {
    const store::RunSummary* run = poller_->run(runId);
    return QStringLiteral("%1 #%2").arg(run ? QString::fromStdString(run->name) : tr("run")).arg(runId);
}

void MainWindow::duplicateRun(int64_t runId) {
    const StoredSpec* stored = poller_->spec(runId);
    if (!stored || !stored->spec) {
        showError(tr("Cannot copy this run"),
                  tr("The spec of %1 cannot be read: %2").arg(runLabel(runId), stored ? stored->error : tr("not found")));
        return;
    }
    RunSpec spec = *stored->spec;
    spec.name += "-copy";
    editor_->setSpec(spec);
}

// ---- files --------------------------------------------------------------------------

void MainWindow::loadSpecFile() {
    const QString path = QFileDialog::getOpenFileName(this, tr("Load run spec"), QString(), tr("Run specs (*.json)"));
    if (path.isEmpty()) return;
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        showError(tr("Cannot load the spec"), tr("%1 cannot be read: %2").arg(path, file.errorString()));
        return;
    }
    try {
        editor_->setSpec(fromJson(file.readAll().toStdString()));
    } catch (const std::exception& e) {
        showError(tr("Cannot load the spec"), tr("%1 is not a valid run spec:\n%2").arg(path, QString::fromStdString(e.what())));
    }
}

void MainWindow::saveSpecFile() {
    const RunSpec spec = editor_->spec();
    const QString path = QFileDialog::getSaveFileName(this, tr("Save run spec"), QString::fromStdString(spec.name) + ".json",
                                                      tr("Run specs (*.json)"));
    if (path.isEmpty()) return;
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate) ||
        file.write(QByteArray::fromStdString(toJson(spec) + "\n")) < 0)
        showError(tr("Cannot save the spec"), tr("%1 cannot be written: %2").arg(path, file.errorString()));
}

void MainWindow::exportSnapshot(std::optional<int64_t> runId) {
    if (!runId) runId = runs_->currentRun();
    if (!runId) runId = controller_->currentRun();
    if (!runId || !poller_->reader()) {
        showError(tr("No run chosen"), tr("Select a run in the run table first."));
        return;
    }
    std::vector<int64_t> steps;
    try {
        for (const auto& f : poller_->reader()->checkpoints(*runId)) steps.push_back(f.step);
    } catch (const std::exception& e) {
        showError(tr("Cannot read the run"), QString::fromStdString(e.what()));
        return;
    }
    const auto training = controller_->trainingRuns();
    const bool live = std::find(training.begin(), training.end(), *runId) != training.end();
    // The live step moves on while the dialog is open; its file is named by the step it has now.
    const int liveStep = progress_.value(*runId).step;
    const std::string database = controller_->database().toStdString();
    SnapshotDialog dialog(runLabel(*runId), live, steps, [&database, id = *runId, liveStep](int64_t step) {
        try {
            return QString::fromStdString(snapshotPath(database, id, step >= 0 ? step : liveStep));
        } catch (const std::exception&) {
            return QString();   // the run's folder cannot be made: the user chooses a place
        }
    }, this);
    if (dialog.exec() != QDialog::Accepted || dialog.path().isEmpty()) return;
    controller_->exportSnapshot(*runId, dialog.step(), dialog.path());
    statusBar()->showMessage(tr("Writing the snapshot of %1…").arg(runLabel(*runId)));
}

void MainWindow::exportMetricsCsv() {
    std::vector<int64_t> ids;
    for (const RunStyle& r : runs_->overlaidRuns()) ids.push_back(r.id);
    if (ids.empty() || !poller_->reader()) {
        showError(tr("No runs overlaid"), tr("Tick the runs to export in the run table."));
        return;
    }
    const QString path = QFileDialog::getSaveFileName(this, tr("Export metrics"), QStringLiteral("metrics.csv"), tr("CSV (*.csv)"));
    if (path.isEmpty()) return;
    std::ofstream out(path.toStdString());
    try {
        writeMetricsCsv(*poller_->reader(), ids, out);
        out.close();
        if (!out) throw std::runtime_error("the file could not be written completely");
        statusBar()->showMessage(tr("Metrics of %n run(s) written to %1", nullptr, static_cast<int>(ids.size())).arg(path), 10000);
    } catch (const std::exception& e) {
        showError(tr("Export failed"), tr("%1: %2").arg(path, QString::fromStdString(e.what())));
    }
}

void MainWindow::exportCharts(const QString& suffix) {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export charts"), "charts." + suffix,
                                                      suffix.toUpper() + " (*." + suffix + ")");
    if (path.isEmpty()) return;
    bool ok = false;
    if (suffix == QLatin1String("svg")) {
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(charts_->size());
        svg.setViewBox(charts_->rect());
        QPainter painter;
        if (painter.begin(&svg)) {
            charts_->render(&painter);
            ok = painter.end();
        }
    } else {
        ok = charts_->grab().save(path);
    }
    if (!ok) showError(tr("Export failed"), tr("%1 could not be written.").arg(path));
}

void MainWindow::showError(const QString& title, const QString& text) {
    statusBar()->showMessage(title, 10000);
    QMessageBox::warning(this, title, text);
}

// ---- closing --------------------------------------------------------------------------

void MainWindow::closeEvent(QCloseEvent* event) {
    if (controller_->busy()) {
        const int training = static_cast<int>(controller_->trainingRuns().size());
        const int queued = static_cast<int>(controller_->queuedRuns().size());
        const auto answer = QMessageBox::question(
            this, tr("Runs in progress"),
            tr("%n run(s) training and %1 queued. Stop them and quit?\n\nA training run stops after its current step "
               "and keeps a checkpoint and a snapshot; queued runs are cancelled.", nullptr, training).arg(queued),
            QMessageBox::Yes | QMessageBox::No, QMessageBox::No);
        if (answer != QMessageBox::Yes) {
            event->ignore();
            return;
        }
        statusBar()->showMessage(tr("Stopping…"));
        QApplication::setOverrideCursor(Qt::WaitCursor);
        controller_->shutdown(-1);
        QApplication::restoreOverrideCursor();
    }
    saveSettings();
    event->accept();
}

}  // namespace relora::ui
