// The RunController: runs recorded as queued and trained one at a time per
// device on the worker thread; queued runs cancelled; a run that cannot
// start marked failed with the reason; checkpoints and final snapshots
// written next to the database and recorded in it; HDF5 snapshots exported
// from checkpoints when idle; a clean shutdown; and no harm from a bad
// database or a switch while busy.
#include "core/Trainer.h"
#include "core/snapshot/Snapshot.h"
#include "support/UiTestSupport.h"
#include "ui/controller/RunController.h"
#include "ui/controller/RunFiles.h"

#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include <filesystem>

using namespace relora;
using namespace relora::ui;
namespace fs = std::filesystem;

class TestController : public QObject {
    Q_OBJECT

private slots:
    void init() {
        dir_ = std::make_unique<QTemporaryDir>();
        db_ = dir_->filePath("runs.sqlite");
    }

    void runsTrainOneAtATimeAndLeaveCheckpointAndSnapshot() {
        RunController controller;
        controller.setDatabase(db_);
        QSignalSpy ended(&controller, &RunController::runEnded);
        const int64_t first = controller.enqueue(uitest::tinySpec(Method::ReLoRA, 40, "first"));
        const int64_t second = controller.enqueue(uitest::tinySpec(Method::LoRA, 30, "second"));
        QVERIFY(controller.busy());
        QCOMPARE(controller.queuedRuns(), std::vector<int64_t>{second});
        {
            store::RunReader reader(db_.toStdString());
            QCOMPARE(reader.run(second)->status, std::string("queued"));
        }
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 2, 60000);
        QCOMPARE(ended.at(0).at(0).toLongLong(), first);   // in the order queued
        QCOMPARE(ended.at(1).at(0).toLongLong(), second);
        QVERIFY(!controller.busy());

        store::RunReader reader(db_.toStdString());
        for (int64_t id : {first, second}) {
            const auto run = reader.run(id);
            QCOMPARE(run->status, std::string("finished"));
            QVERIFY(run->valLoss.has_value());
            const auto checkpoints = reader.checkpoints(id);
            QVERIFY(!checkpoints.empty());
            QVERIFY(fs::exists(checkpoints.back().path));
            QVERIFY(checkpoints.back().path.starts_with(db_.toStdString() + ".files/run-" + std::to_string(id) + "/"));
            const auto snapshots = reader.snapshots(id);
            QCOMPARE(snapshots.size(), size_t(1));
            QCOMPARE(readSnapshot(snapshots[0].path).intAttribute("step"), id == first ? 40 : 30);
        }
        QVERIFY(!reader.events(first).empty());   // ReLoRA restarted
    }

    void queuedRunsCanBeCancelledAndTrainingOnesStopped() {
        RunController controller;
        controller.setDatabase(db_);
        QSignalSpy started(&controller, &RunController::runStarted);
        QSignalSpy ended(&controller, &RunController::runEnded);
        const int64_t longRun = controller.enqueue(uitest::tinySpec(Method::FullRank, 1000000, "long"));
        const int64_t waiting = controller.enqueue(uitest::tinySpec(Method::LoRA, 10, "waiting"));
        QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, 20000);
        QCOMPARE(controller.currentRun().value_or(0), longRun);
        controller.stop(waiting);
        QCOMPARE(ended.count(), 1);
        QCOMPARE(ended.at(0).at(2).toString(), QString("cancelled before it started"));
        controller.stop(longRun);
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 2, 20000);
        QCOMPARE(ended.at(1).at(1).toString(), QString("stopped"));
        QVERIFY(!controller.busy());
        store::RunReader reader(db_.toStdString());
        QCOMPARE(reader.run(waiting)->status, std::string("stopped"));
        QCOMPARE(reader.run(longRun)->status, std::string("stopped"));
        QCOMPARE(reader.checkpoints(longRun).size(), size_t(1));
        QCOMPARE(reader.snapshots(longRun).size(), size_t(1));
        QCOMPARE(started.count(), 1);   // the cancelled run never started
    }

    void aRunThatCannotStartIsMarkedFailedWithTheReason() {
        RunController controller;
        controller.setDatabase(db_);
        QSignalSpy started(&controller, &RunController::runStarted);
        QSignalSpy ended(&controller, &RunController::runEnded);
        const QString corpus = dir_->filePath("corpus.txt");
        {
            QFile f(corpus);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write(QByteArray("Some text to train on. ").repeated(400));
        }
        const int64_t blocker = controller.enqueue(uitest::tinySpec(Method::FullRank, 1000000, "blocker"));
        RunSpec doomed = uitest::tinySpec(Method::LoRA, 10, "doomed");
        doomed.data.synthetic = false;
        doomed.data.corpus = corpus.toStdString();
        const int64_t id = controller.enqueue(doomed);   // valid now
        QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, 20000);
        QVERIFY(QFile::remove(corpus));                    // gone by the time it starts
        controller.stop(blocker);
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 2, 20000);
        QCOMPARE(ended.at(1).at(0).toLongLong(), id);
        QCOMPARE(ended.at(1).at(1).toString(), QString("failed"));
        QVERIFY2(ended.at(1).at(2).toString().contains("corpus.txt"), qPrintable(ended.at(1).at(2).toString()));
        store::RunReader reader(db_.toStdString());
        QCOMPARE(reader.run(id)->status, std::string("failed"));
        QVERIFY(reader.run(id)->message.find("could not start") != std::string::npos);
    }

    void anInvalidSpecIsRefusedBeforeAnythingIsRecorded() {
        RunController controller;
        controller.setDatabase(db_);
        RunSpec bad = uitest::tinySpec(Method::LoRA, 10);
        bad.method.rank = 1000;
        QVERIFY_THROWS_EXCEPTION(InvalidSpec, controller.enqueue(bad));
        QVERIFY(store::RunReader(db_.toStdString()).listRuns().empty());
        QVERIFY(!controller.busy());
    }

    void snapshotsAreExportedFromCheckpointsWhenIdle() {
        RunController controller;
        controller.setDatabase(db_);
        QSignalSpy ended(&controller, &RunController::runEnded);
        RunSpec spec = uitest::tinySpec(Method::ReLoRA, 40, "exported");
        spec.train.checkpointInterval = 20;
        const int64_t id = controller.enqueue(spec);
        QTRY_COMPARE_WITH_TIMEOUT(ended.count(), 1, 30000);

        QSignalSpy written(&controller, &RunController::snapshotWritten);
        QSignalSpy failed(&controller, &RunController::snapshotFailed);
        const QString path = dir_->filePath("out/at-20.h5");
        controller.exportSnapshot(id, 20, path);
        QTRY_COMPARE_WITH_TIMEOUT(written.count(), 1, 20000);
        QCOMPARE(written.at(0).at(1).toLongLong(), 20);
        const SnapshotContents contents = readSnapshot(path.toStdString());
        QCOMPARE(contents.intAttribute("step"), 20);
        QCOMPARE(contents.intAttribute("run_id"), id);
        QVERIFY(contents.find("model.layers.0.self_attn.q_proj.lora_A.weight"));
        const auto recorded = store::RunReader(db_.toStdString()).snapshots(id);
        QVERIFY(std::any_of(recorded.begin(), recorded.end(),
                            [&](const store::FileRecord& f) { return f.path == path.toStdString(); }));

        controller.exportSnapshot(id, 33, dir_->filePath("nope.h5"));
        QTRY_COMPARE_WITH_TIMEOUT(failed.count(), 1, 20000);
        QVERIFY(failed.at(0).at(1).toString().contains("no checkpoint at step 33"));
        QVERIFY(!QFile::exists(dir_->filePath("nope.h5")));
    }

    void shutdownStopsTrainingRunsCleanly() {
        int64_t id = 0;
        {
            RunController controller;
            controller.setDatabase(db_);
            QSignalSpy started(&controller, &RunController::runStarted);
            id = controller.enqueue(uitest::tinySpec(Method::LoRA, 1000000, "endless"));
            QTRY_COMPARE_WITH_TIMEOUT(started.count(), 1, 20000);
            QVERIFY(controller.shutdown(30000));
            QVERIFY(!controller.busy());
        }
        store::RunReader reader(db_.toStdString());
        QCOMPARE(reader.run(id)->status, std::string("stopped"));
        QCOMPARE(reader.checkpoints(id).size(), size_t(1));
    }

    void aBadDatabaseIsRefusedAndTheCurrentOneKept() {
        RunController controller;
        controller.setDatabase(db_);
        const QString junk = dir_->filePath("junk.sqlite");
        {
            QFile f(junk);
            QVERIFY(f.open(QIODevice::WriteOnly));
            f.write("not a database");
        }
        QVERIFY_THROWS_EXCEPTION(store::StoreError, controller.setDatabase(junk));
        QCOMPARE(controller.database(), db_);
        QSignalSpy started(&controller, &RunController::runStarted);
        const int64_t id = controller.enqueue(uitest::tinySpec(Method::FullRank, 1000000, "busy"));
        QVERIFY_THROWS_EXCEPTION(std::logic_error, controller.setDatabase(dir_->filePath("other.sqlite")));
        controller.stop(id);
        QVERIFY(controller.shutdown(30000));
    }

private:
    std::unique_ptr<QTemporaryDir> dir_;
    QString db_;
};

QTEST_MAIN(TestController)
#include "test_ui_controller.moc"
