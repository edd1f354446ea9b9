// End to end, offscreen: launch a tiny CPU run from the editor, wait until
// the charts hold points read from the run database, pause, resume, export
// an HDF5 snapshot of the live run, stop it; the GUI thread never stalls
// while the run trains; closing the window during a run asks, then stops it
// cleanly; a corrupt database gives a message and loses nothing; window and
// chart options persist.
#include "core/snapshot/Snapshot.h"
#include "support/UiTestSupport.h"
#include "ui/app/MainWindow.h"
#include "ui/app/RunStatusBar.h"
#include "ui/charts/ChartGrid.h"
#include "ui/charts/MetricChart.h"
#include "ui/controller/RunController.h"
#include "ui/data/RunDataPoller.h"
#include "ui/editor/RunEditor.h"
#include "ui/runs/RunTableModel.h"
#include "ui/runs/RunsPanel.h"

#include <QAction>
#include <QApplication>
#include <QComboBox>
#include <QLineSeries>
#include <QMessageBox>
#include <QPushButton>
#include <QSettings>
#include <QSignalSpy>
#include <QSlider>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <QtTest>

#include <ctime>

using namespace relora;
using namespace relora::ui;

namespace {

// How long the GUI thread went without running a 5 ms timer: the worst
// gap in wall-clock time, and the worst in the thread's own CPU time. On a
// machine busy with other work the first also counts time the scheduler gave
// to other processes; the second is what the workbench itself spent.
class StallMeter : public QObject {
public:
    StallMeter() {
        timer_.setTimerType(Qt::PreciseTimer);
        timer_.setInterval(5);
        connect(&timer_, &QTimer::timeout, this, [this] {
            const qint64 wall = clock_.nsecsElapsed(), cpu = threadCpuNanoseconds();
            if (lastWall_ > 0) {
                worstWall_ = std::max(worstWall_, wall - lastWall_);
                worstCpu_ = std::max(worstCpu_, cpu - lastCpu_);
            }
            lastWall_ = wall;
            lastCpu_ = cpu;
        });
        clock_.start();
        timer_.start();
    }
    double worstWallMs() const { return worstWall_ / 1e6; }
    double worstCpuMs() const { return worstCpu_ / 1e6; }

private:
    static qint64 threadCpuNanoseconds() {
        timespec t{};
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
        return qint64(t.tv_sec) * 1000000000 + t.tv_nsec;
    }
    QTimer timer_;
    QElapsedTimer clock_;
    qint64 lastWall_ = 0, lastCpu_ = 0, worstWall_ = 0, worstCpu_ = 0;
};

// Clicks `button` of the next message box as soon as it is shown.
void answerNextMessageBox(QMessageBox::StandardButton button) {
    auto* poll = new QTimer;
    poll->setInterval(20);
    QObject::connect(poll, &QTimer::timeout, [poll, button] {
        if (auto* box = qobject_cast<QMessageBox*>(QApplication::activeModalWidget())) {
            box->button(button)->click();
            poll->deleteLater();
        }
    });
    poll->start();
}

int64_t latestStep(const QString& db, int64_t run) {
    const auto p = store::RunReader(db.toStdString()).latest(run, "train_loss");
    return p ? p->step : -1;
}

}  // namespace

class TestWorkbench : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() {
        QStandardPaths::setTestModeEnabled(true);   // settings and data in a test location
        QCoreApplication::setOrganizationName("relora-test");
        QCoreApplication::setApplicationName("relora-workbench-test");
    }

    void init() {
        QSettings().clear();
        dir_ = std::make_unique<QTemporaryDir>();
        db_ = dir_->filePath("runs.sqlite");
    }

    void launchWatchPauseResumeExportAndStop() {
        MainWindow window(db_);
        window.resize(1400, 900);
        window.show();
        QVERIFY(QTest::qWaitForWindowExposed(&window));

        // One training thread: OpenMP threads that spin-wait slow to a crawl
        // when other jobs share the machine. The stall meter counts the GUI
        // thread's own work, which does not depend on it.
        RunSpec spec = uitest::tinySpec(Method::ReLoRA, 1000000, "e2e");
        spec.train.evalInterval = 100;
        spec.relora.resetInterval = 300;
        window.editor()->setSpec(spec);
        QVERIFY2(window.editor()->launchButton()->isEnabled(), qPrintable(window.editor()->launchBlockedReason()));
        QSignalSpy started(window.controller(), &RunController::runStarted);
        StallMeter stalls;
        QTest::mouseClick(window.editor()->launchButton(), Qt::LeftButton);
        QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, 20000);
        const int64_t id = started.at(0).at(0).toLongLong();
        QVERIFY(window.runsPanel()->model()->checkedRuns().count(id));   // overlaid at once

        // The charts fill with points read from the database.
        MetricChart* loss = window.charts()->lossChart();
        QTRY_VERIFY_WITH_TIMEOUT(loss->seriesFor(id, "train_loss")->count() > 50, kSlowMs);
        QTRY_VERIFY_WITH_TIMEOUT(loss->seriesFor(id, "val_loss")->count() >= 3, kSlowMs);
        const auto stored = store::RunReader(db_.toStdString()).series(id, "val_loss");
        const QLineSeries* val = loss->seriesFor(id, "val_loss");
        for (int i = 0; i < val->count(); ++i) {
            QCOMPARE(val->at(i).x(), double(stored[static_cast<size_t>(i)].step));
            QCOMPARE(val->at(i).y(), stored[static_cast<size_t>(i)].value);
        }
        QTRY_VERIFY_WITH_TIMEOUT(window.charts()->lrChart()->seriesFor(id, "lr")->count() > 50, kSlowMs);
        QTRY_VERIFY_WITH_TIMEOUT(window.runStatus()->text().contains("tok/s"), kSlowMs);
        QVERIFY(window.runStatus()->text().contains("e2e #"));

        // Pause: no new steps reach the database.
        QVERIFY(window.pauseAction()->isEnabled());
        window.pauseAction()->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(window.controller()->isPaused(id), kSlowMs);
        QVERIFY(window.resumeAction()->isEnabled());
        QTest::qWait(400);   // the writer commits what came before the pause
        const int64_t pausedAt = latestStep(db_, id);
        QTest::qWait(500);
        QCOMPARE(latestStep(db_, id), pausedAt);
        QVERIFY(window.runStatus()->text().contains("paused"));

        // A snapshot of the live run, served while it is paused.
        QSignalSpy written(window.controller(), &RunController::snapshotWritten);
        const QString path = dir_->filePath("live.h5");
        window.controller()->exportSnapshot(id, std::nullopt, path);
        QTRY_COMPARE_WITH_TIMEOUT(written.count(), 1, kSlowMs);
        QCOMPARE(written.at(0).at(1).toLongLong(), pausedAt);
        QCOMPARE(readSnapshot(path.toStdString()).intAttribute("step"), pausedAt);

        // Resume: steps go on.
        window.resumeAction()->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(latestStep(db_, id) > pausedAt + 10, kSlowMs);

        // Stop: the run ends 'stopped', with its checkpoint and final snapshot.
        window.stopAction()->trigger();
        QTRY_VERIFY_WITH_TIMEOUT(!window.controller()->busy(), kSlowMs);
        store::RunReader reader(db_.toStdString());
        QCOMPARE(reader.run(id)->status, std::string("stopped"));
        QCOMPARE(reader.checkpoints(id).size(), size_t(1));
        QCOMPARE(reader.snapshots(id).size(), size_t(2));   // the exported one and the final one
        const int row = window.runsPanel()->model()->rowOf(id);
        QTRY_COMPARE(window.runsPanel()->model()->data(window.runsPanel()->model()->index(row, RunTableModel::Status)).toString(),
                     QString("stopped"));
        qInfo("longest GUI stall while training: %.1f ms of the GUI thread's work, %.1f ms wall clock",
              stalls.worstCpuMs(), stalls.worstWallMs());
        QVERIFY2(stalls.worstCpuMs() < kMaxStallMs, qPrintable(QString("the GUI worked %1 ms without returning to its event loop").arg(stalls.worstCpuMs())));
        QVERIFY2(stalls.worstWallMs() < kMaxWallStallMs, qPrintable(QString("the GUI stalled %1 ms").arg(stalls.worstWallMs())));
    }

    void closingDuringARunAsksThenStopsIt() {
        auto* window = new MainWindow(db_);
        window->show();
        QVERIFY(QTest::qWaitForWindowExposed(window));
        QSignalSpy started(window->controller(), &RunController::runStarted);
        const auto ids = window->queueRuns({uitest::tinySpec(Method::LoRA, 1000000, "closing")});
        QCOMPARE(ids.size(), size_t(1));
        QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, 20000);

        answerNextMessageBox(QMessageBox::No);
        QVERIFY(!window->close());                 // asked, and the answer was no
        QVERIFY(window->controller()->busy());
        answerNextMessageBox(QMessageBox::Yes);
        QVERIFY(window->close());
        QVERIFY(!window->controller()->busy());
        delete window;
        QCOMPARE(store::RunReader(db_.toStdString()).run(ids[0])->status, std::string("stopped"));
    }

    void aCorruptDatabaseGivesAMessageAndLosesNothing() {
        const QString junk = dir_->filePath("junk.sqlite");
        const QByteArray bytes("SQLite format 3\0 but not really a database at all", 48);
        {
            QFile f(junk);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(bytes);
        }
        MainWindow window(db_);
        answerNextMessageBox(QMessageBox::Ok);
        QVERIFY(!window.openDatabase(junk));
        QCOMPARE(window.controller()->database(), db_);
        QCOMPARE(window.poller()->path(), db_);
        QFile f(junk);
        QVERIFY(f.open(QIODevice::ReadOnly));
        QCOMPARE(f.readAll(), bytes);
    }

    void windowAndChartOptionsPersist() {
        {
            MainWindow window(db_);
            window.findChild<QSlider*>("smoothingSlider")->setValue(85);
            auto* xAxis = window.findChild<QComboBox*>("xAxisChoice");
            QVERIFY(xAxis);
            const int tokens = xAxis->findText("tokens");
            QVERIFY(tokens >= 0);
            xAxis->setCurrentIndex(tokens);
            QVERIFY(window.close());
        }
        MainWindow again;   // no database given: the one used last
        QCOMPARE(again.controller()->database(), db_);
        QCOMPARE(again.charts()->options().smoothing, 0.85);
        QCOMPARE(again.charts()->options().x, XAxisKind::Tokens);
    }

private:
    // No stall a user would notice (a tenth of a second) of the GUI thread's
    // own work, while a run trains on every core. The worst pass is the
    // run's end (its bookkeeping, a poll and the charts' redraw): 21–53 ms
    // on the 2-core development machine and CI, so 50 ms failed at random.
    // Wall-clock gaps get a margin for a machine that other jobs share (CI
    // runners, a shared workstation).
    static constexpr double kMaxStallMs = 100;
    static constexpr double kMaxWallStallMs = 250;
    static constexpr int kSlowMs = 60000;
    std::unique_ptr<QTemporaryDir> dir_;
    QString db_;
};

QTEST_MAIN(TestWorkbench)
#include "test_ui_workbench.moc"
