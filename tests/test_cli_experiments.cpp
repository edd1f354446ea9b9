// `relora headline` and `relora sweep` on a tiny custom model: the runs they
// queue in the database (matched specs, warm-start switches, restarts), the
// comparison and verdict they print, the sweep's table and plot, and their
// argument checks.
#include "core/RunSpec.h"
#include "core/store/RunStore.h"
#include "tests/support/CliProcess.h"

#include <QProcess>
#include <QRegularExpression>
#include <QTemporaryDir>
#include <QtTest>

namespace {

using Result = CliResult;

Result cli(const QStringList& args) { return runRelora(args); }

// A model small enough that each run takes a second or two.
QStringList tinyModel() {
    return {"--backend", "cpu", "--set", "model.preset=custom", "--set", "model.d_model=32",
            "--set", "model.d_ff=64", "--set", "model.heads=2", "--set", "model.layers=1",
            "--set", "model.context=64", "--set", "train.batch=4", "--set", "method.rank=4",
            "--set", "train.eval_batches=2"};
}

std::vector<relora::store::EventRecord> eventsOf(relora::store::RunReader& reader, int64_t id,
                                                 const std::string& kind) {
    std::vector<relora::store::EventRecord> out;
    for (const auto& e : reader.events(id))
        if (e.kind == kind) out.push_back(e);
    return out;
}

}  // namespace

class TestCliExperiments : public QObject {
    Q_OBJECT
private slots:
    void headlineRunsFourMatchedRunsAndJudgesTheOrdering();
    void sweepSwitchesAtEachFractionAndPlots();
    void sweepTakesASpecFile();
    void badArgumentsQueueNothing();
};

void TestCliExperiments::headlineRunsFourMatchedRunsAndJudgesTheOrdering() {
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    const Result r = cli(QStringList{"headline", "--steps", "40", "--db", db} << tinyModel());
    QVERIFY2(r.code == 0, qPrintable(r.err.right(2000)));
    for (const char* text : {"runs #1, #2, #3, #4", "final val loss", "best val loss", "rank_eff wq",
                             "params trainable", "update size", "verdict: "})
        QVERIFY2(r.out.contains(text), qPrintable(text + QString(" not in:\n") + r.out));
    QVERIFY(r.out.contains("matches the ReLoRA paper") || r.out.contains("differs from the ReLoRA paper"));
    // The defaults derived from 40 steps: restarts every 10, warm start 10 (25 %).
    QVERIFY2(r.out.contains("ReLoRA restarts every 10 steps, warm start 10 steps"), qPrintable(r.out));

    relora::store::RunReader reader(db.toStdString());
    const auto runs = reader.listRuns();
    QCOMPARE(runs.size(), size_t(4));
    const char* names[] = {"custom-full", "custom-lora", "custom-relora", "custom-relora-ws25"};
    const char* methods[] = {"full", "lora", "relora", "relora"};
    std::vector<relora::RunSpec> specs;
    for (size_t i = 0; i < 4; ++i) {
        QCOMPARE(QString::fromStdString(runs[i].name), QString(names[i]));
        QCOMPARE(QString::fromStdString(runs[i].method), QString(methods[i]));
        QCOMPARE(QString::fromStdString(runs[i].status), QString("finished"));
        QVERIFY(runs[i].valLoss.has_value());
        QCOMPARE(runs[i].lastStep.value_or(0), int64_t(40));
        specs.push_back(relora::fromJson(*reader.spec(runs[i].id)));
    }
    // Matched: seed, data, model, steps and the LR's peak and cosine.
    for (const auto& s : specs) {
        QCOMPARE(s.train.seed, specs[0].train.seed);
        QCOMPARE(s.train.steps, 40);
        QCOMPARE(s.train.batch, 4);
        QCOMPARE(s.model.dModel, 32);
        QCOMPARE(s.data.corpus, specs[0].data.corpus);
        QCOMPARE(s.optim.lr, specs[0].optim.lr);
        QCOMPARE(s.optim.warmup, specs[0].optim.warmup);
        QCOMPARE(s.method.rank, 4);
    }
    QCOMPARE(specs[2].relora.warmStartSteps, 0);
    QCOMPARE(specs[3].relora.warmStartSteps, 10);

    const auto switches = eventsOf(reader, runs[3].id, "warm_start_switch");
    QCOMPARE(switches.size(), size_t(1));
    QCOMPARE(switches[0].step, int64_t(10));
    QCOMPARE(eventsOf(reader, runs[2].id, "warm_start_switch").size(), size_t(0));
    QCOMPARE(eventsOf(reader, runs[2].id, "restart").size(), size_t(3));   // 10, 20, 30
    QCOMPARE(eventsOf(reader, runs[3].id, "restart").size(), size_t(2));   // 20, 30
    QCOMPARE(eventsOf(reader, runs[1].id, "restart").size(), size_t(0));
    // LoRA's update has rank r at most; every run measured its ranks.
    for (const auto& run : runs) QVERIFY(reader.latest(run.id, "rank_eff/wq").has_value());
    QVERIFY(reader.latest(runs[1].id, "rank_thr/wq")->value <= 4);
    // Low-rank runs train fewer parameters.
    QVERIFY(reader.latest(runs[1].id, "params_trainable")->value <
            reader.latest(runs[0].id, "params_trainable")->value);
}

void TestCliExperiments::sweepSwitchesAtEachFractionAndPlots() {
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    const Result r = cli(QStringList{"sweep", "--fractions", "0,50%,1", "--steps", "40", "--db", db}
                            << tinyModel());
    QVERIFY2(r.code == 0, qPrintable(r.err.right(2000)));
    QVERIFY2(r.out.contains("final validation loss against the switch"), qPrintable(r.out));
    for (const char* row : {"0 %", "50 %", "100 %"}) QVERIFY2(r.out.contains(row), qPrintable(r.out));
    // The plot: one star per run, an axis, the fractions under it.
    const QString plot = r.out.mid(r.out.indexOf("final val loss\n"));
    QCOMPARE(plot.count('*'), 3);
    QVERIFY(plot.contains("+----"));
    QVERIFY(plot.contains("share of steps trained full-rank first"));

    relora::store::RunReader reader(db.toStdString());
    const auto runs = reader.listRuns();
    QCOMPARE(runs.size(), size_t(3));
    QCOMPARE(QString::fromStdString(runs[0].name), QString("custom-sweep-ws0"));
    QCOMPARE(QString::fromStdString(runs[1].name), QString("custom-sweep-ws50"));
    QCOMPARE(QString::fromStdString(runs[2].name), QString("custom-sweep-full"));
    QCOMPARE(QString::fromStdString(runs[2].method), QString("full"));
    QCOMPARE(relora::fromJson(*reader.spec(runs[1].id)).relora.warmStartSteps, 20);
    const auto switches = eventsOf(reader, runs[1].id, "warm_start_switch");
    QCOMPARE(switches.size(), size_t(1));
    QCOMPARE(switches[0].step, int64_t(20));
    for (const auto& run : runs) {
        QCOMPARE(QString::fromStdString(run.status), QString("finished"));
        // Every finished run's final loss is in the table.
        QVERIFY2(r.out.contains(QString::number(*run.valLoss, 'f', 4)), qPrintable(r.out));
    }
}

void TestCliExperiments::sweepTakesASpecFile() {
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    const Result spec = cli(QStringList{"spec", "--method", "lora", "--preset", "tiny"} << tinyModel()
                               << "--set" << "name=mine" << "--set" << "train.steps=30"
                               << "--set" << "relora.reset_interval=5" << "--set" << "relora.restart_warmup=1"
                               << "--set" << "optim.warmup=3" << "--set" << "train.eval_interval=10");
    QCOMPARE(spec.code, 0);
    const QString file = dir.filePath("mine.json");
    QFile f(file);
    QVERIFY(f.open(QIODevice::WriteOnly));
    f.write(spec.out.toUtf8());
    f.close();
    const Result r = cli({"sweep", file, "--fractions", "0.2", "--db", db});
    QVERIFY2(r.code == 0, qPrintable(r.err.right(2000)));
    relora::store::RunReader reader(db.toStdString());
    const auto runs = reader.listRuns();
    QCOMPARE(runs.size(), size_t(1));
    QCOMPARE(QString::fromStdString(runs[0].name), QString("mine-sweep-ws20"));
    QCOMPARE(QString::fromStdString(runs[0].method), QString("relora"));  // the sweep's method
    const relora::RunSpec s = relora::fromJson(*reader.spec(runs[0].id));
    QCOMPARE(s.relora.warmStartSteps, 6);
    QCOMPARE(s.relora.resetInterval, 5);  // the file's, not derived
    QCOMPARE(s.train.steps, 30);
}

void TestCliExperiments::badArgumentsQueueNothing() {
    QTemporaryDir dir;
    const QString db = dir.filePath("runs.sqlite");
    const auto run = [&](QStringList args) { return cli(args << "--db" << db); };
    QCOMPARE(run({"sweep", "--fractions", "1.5"}).code, 2);
    QCOMPARE(run({"sweep", "--fractions", "abc"}).code, 2);
    QCOMPARE(run({"sweep", "--fractions", ","}).code, 2);
    QCOMPARE(run({"headline", "--preset", "huge"}).code, 2);
    QCOMPARE(run({"headline", "--warm-start", "0"}).code, 2);
    QCOMPARE(run({"headline", "spec.json"}).code, 2);
    QCOMPARE(run({"headline", "--method", "lora"}).code, 2);
    // A spec that cannot run: every problem named with its run, nothing queued.
    const Result bad = run(QStringList{"headline", "--steps", "40", "--set", "relora.reset_interval=35"} << tinyModel());
    QCOMPARE(bad.code, 1);
    QVERIFY2(bad.err.contains("custom-relora-ws25: relora.reset_interval"), qPrintable(bad.err));
    QVERIFY2(!bad.err.contains("custom-relora: relora.reset_interval"), qPrintable(bad.err));
    QVERIFY(!QFileInfo::exists(db) || relora::store::RunReader(db.toStdString()).listRuns().empty());
}

QTEST_GUILESS_MAIN(TestCliExperiments)
#include "test_cli_experiments.moc"
