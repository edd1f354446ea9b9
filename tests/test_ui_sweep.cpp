// The GUI's warm-start sweep: the points read from a run database (final
// validation loss of finished runs, pending ones marked), the chart
// following the database as runs finish, the switch points checked before
// anything is queued, and a finished sweep opened again from its runs.
#include "core/Experiments.h"
#include "support/UiTestSupport.h"
#include "ui/charts/SweepChart.h"
#include "ui/data/RunDataPoller.h"
#include "ui/data/SweepData.h"
#include "ui/editor/RunEditor.h"
#include "ui/experiments/SweepDialog.h"

#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScatterSeries>
#include <QTemporaryDir>
#include <QtTest>

using namespace relora;
using namespace relora::ui;

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

double lossOf(size_t i) { return 3.0 - 0.25 * double(i); }

// Trains run `id` of `db` (as a worker thread would) to `step`, where it
// measures this validation loss, and ends it with `status`.
void endRun(const std::string& db, int64_t id, const RunSpec& spec, double valLoss,
            const std::string& status = "finished", int step = -1) {
    store::StoreWriter writer(db, id);
    writer.runStarted(toJson(spec), "cpu", "test CPU");
    writer.metrics({{"val_loss", step < 0 ? spec.train.steps : step, valLoss}}, 1.0);
    writer.runFinished(status, status + " by the test");
}

// The runs in `db`, each left as its status says: "queued", "finished"
// (with final validation loss lossOf(i)) or "stopped" (half-way, with a
// validation loss that is not final). Returns their ids.
std::vector<int64_t> writeRuns(const std::string& db, const std::vector<RunSpec>& specs, const QStringList& statuses) {
    std::vector<int64_t> ids;
    for (size_t i = 0; i < specs.size(); ++i) {
        const RunSpec& spec = specs[i];
        const int64_t id = store::RunStore(db).createRun(toJson(spec), spec.name, toString(spec.method.kind));
        const QString status = statuses.value(int(i), QStringLiteral("queued"));
        if (status == "finished") endRun(db, id, spec, lossOf(i));
        if (status == "stopped") endRun(db, id, spec, lossOf(i), "stopped", spec.train.steps / 2);
        ids.push_back(id);
    }
    return ids;
}

RunSpec sweepBase(int steps = 40) { return uitest::tinySpec(Method::ReLoRA, steps, "study"); }

std::vector<RunSpec> defaultSweep() { return experiments::warmStartSweepRuns(sweepBase(), experiments::kDefaultSweepFractions); }

}  // namespace

class TestSweep : public QObject {
    Q_OBJECT

private slots:
    void pointsComeFromTheDatabase_data() {
        QTest::addColumn<QStringList>("statuses");
        QTest::newRow("all finished") << QStringList{"finished", "finished", "finished", "finished"};
        QTest::newRow("two to come") << QStringList{"finished", "finished", "queued", "queued"};
        QTest::newRow("none yet") << QStringList{"queued", "queued", "queued", "queued"};
        QTest::newRow("one stopped") << QStringList{"finished", "stopped", "finished", "queued"};
    }
    void pointsComeFromTheDatabase() {
        QFETCH(QStringList, statuses);
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        writeRuns(db, experiments::headlineRuns(sweepBase()), {"finished", "finished"});   // not a sweep
        const std::vector<int64_t> ids = writeRuns(db, defaultSweep(), statuses);
        RunDataPoller poller;
        poller.open(QString::fromStdString(db));

        const auto sweeps = sweepsIn(poller);
        QCOMPARE(sweeps.size(), size_t(1));
        QCOMPARE(qs(sweeps[0].stem), QString("study"));
        QCOMPARE(sweeps[0].runs, ids);
        const auto points = sweepPoints(poller, ids);
        QCOMPARE(points.size(), size_t(4));
        const double percent[] = {0, 10, 25, 50};
        for (size_t i = 0; i < 4; ++i) {
            QCOMPARE(points[i].run, ids[i]);
            QCOMPARE(points[i].switchPercent, percent[i]);
            QCOMPARE(points[i].status, statuses[int(i)]);
            QCOMPARE(points[i].finished(), statuses[int(i)] == "finished");
            QCOMPARE(points[i].pending(), statuses[int(i)] == "queued");
            if (points[i].finished()) QCOMPARE(*points[i].finalValLoss, lossOf(i));
        }

        // The chart: a point per finished run, a marker at each other one.
        SweepChart chart;
        chart.setPoints(points);
        QList<QPointF> expected;
        std::vector<std::pair<double, QString>> marked;
        for (size_t i = 0; i < 4; ++i) {
            if (statuses[int(i)] == "finished")
                expected.append({percent[i], lossOf(i)});
            else
                marked.emplace_back(percent[i], QStringLiteral("#%1 %2").arg(ids[i]).arg(statuses[int(i)]));
        }
        QCOMPARE(chart.finishedSeries()->points(), expected);
        QCOMPARE(chart.markers().size(), marked.size());
        for (size_t i = 0; i < marked.size(); ++i) {
            QCOMPARE(chart.markers()[i].x, marked[i].first);
            QCOMPARE(chart.markers()[i].label, marked[i].second);
        }
    }

    void theChartFollowsRunsAsTheyFinish() {
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        const auto specs = experiments::warmStartSweepRuns(sweepBase(), {0, 0.5, 1});
        const std::vector<int64_t> ids = writeRuns(db, specs, {});
        RunDataPoller poller;
        poller.open(QString::fromStdString(db));
        RunEditor editor;
        SweepDialog dialog(&poller, &editor);
        dialog.show();
        QVERIFY(dialog.showSweepOf(ids[1]));
        QCOMPARE(dialog.chart()->finishedSeries()->count(), 0);
        QCOMPARE(dialog.chart()->markers().size(), size_t(3));

        endRun(db, ids[1], specs[1], 2.5);   // as a worker thread would: the poller notices
        QVERIFY(uitest::waitFor([&] { return dialog.chart()->finishedSeries()->count() == 1; }, 5000));
        QCOMPARE(dialog.chart()->finishedSeries()->at(0), QPointF(50, 2.5));
        QCOMPARE(dialog.chart()->markers().size(), size_t(2));
        QVERIFY2(dialog.sweepChoice()->currentText().contains("1 finished"), qPrintable(dialog.sweepChoice()->currentText()));
    }

    void switchPointsAreCheckedBeforeQueueing_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<QStringList>("names");        // empty: nothing can be queued
        QTest::addColumn<QString>("why");
        QTest::newRow("default") << "0, 10, 25, 50 %"
                                 << QStringList{"study-sweep-ws0", "study-sweep-ws10", "study-sweep-ws25", "study-sweep-ws50"}
                                 << "";
        QTest::newRow("with the reference") << "0 50 100" << QStringList{"study-sweep-ws0", "study-sweep-ws50", "study-sweep-full"}
                                            << "";
        QTest::newRow("not a number") << "10, ten" << QStringList{} << "'ten'";
        QTest::newRow("above 100 %") << "120" << QStringList{} << "100 %";
        QTest::newRow("empty") << "" << QStringList{} << "at least one";
        QTest::newRow("no room to restart") << "0, 90" << QStringList{} << "study-sweep-ws90";
    }
    void switchPointsAreCheckedBeforeQueueing() {
        QFETCH(QString, text);
        QFETCH(QStringList, names);
        QFETCH(QString, why);
        RunDataPoller poller;
        RunEditor editor;
        editor.setSpec(sweepBase(1000));   // restarts every 250 steps
        SweepDialog dialog(&poller, &editor);
        dialog.switchPointsField()->setText(text);
        QCOMPARE(dialog.queueButton()->isEnabled(), !names.isEmpty());
        if (names.isEmpty()) {
            QVERIFY2(dialog.planLabel()->text().contains(why), qPrintable(dialog.planLabel()->text()));
            return;
        }
        std::vector<RunSpec> queued;
        connect(&dialog, &SweepDialog::queueRequested, this, [&](const std::vector<RunSpec>& runs) { queued = runs; });
        dialog.queueButton()->click();
        QCOMPARE(queued.size(), size_t(names.size()));
        for (size_t i = 0; i < queued.size(); ++i) {
            QCOMPARE(qs(queued[i].name), names[int(i)]);
            QCOMPARE(queued[i].train.steps, 1000);
        }
    }

    void editingTheSpecPlansAgain() {
        RunDataPoller poller;
        RunEditor editor;
        editor.setSpec(sweepBase(1000));
        SweepDialog dialog(&poller, &editor);
        dialog.switchPointsField()->setText("0, 90");
        QVERIFY(!dialog.queueButton()->isEnabled());
        RunSpec shorter = sweepBase(1000);
        shorter.relora.resetInterval = 50;   // now 100 low-rank steps after 90 % hold a restart
        editor.setSpec(shorter);
        QVERIFY2(dialog.queueButton()->isEnabled(), qPrintable(dialog.planLabel()->text()));
        QVERIFY(dialog.planLabel()->text().contains("900"));
    }

    void aSweepOpensAgainFromItsRuns() {
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        const QStringList allFinished{"finished", "finished", "finished", "finished"};
        const auto first = writeRuns(db, defaultSweep(), allFinished);
        const auto headline = writeRuns(db, experiments::headlineRuns(sweepBase()), allFinished);
        const auto again = writeRuns(db, defaultSweep(), {});
        RunDataPoller poller;
        poller.open(QString::fromStdString(db));
        RunEditor editor;
        SweepDialog dialog(&poller, &editor);
        dialog.show();
        QCOMPARE(dialog.sweepChoice()->count(), 2);

        QVERIFY(dialog.showSweepOf(first[2]));
        QCOMPARE(dialog.sweepChoice()->currentIndex(), 0);
        QCOMPARE(dialog.chart()->finishedSeries()->count(), 4);
        QVERIFY(!dialog.showSweepOf(headline[3]));
        QVERIFY(dialog.showSweepOf(again[0]));
        QCOMPARE(dialog.sweepChoice()->currentIndex(), 1);
        QCOMPARE(dialog.chart()->finishedSeries()->count(), 0);
        QCOMPARE(dialog.chart()->markers().size(), size_t(4));
    }
};

QTEST_MAIN(TestSweep)
#include "test_ui_sweep.moc"
