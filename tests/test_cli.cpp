// The `relora` command line: every bad argument gets a clear message and a
// non-zero exit code; a run prints progress, writes its metrics file, and
// stops cleanly on Ctrl-C.
#include "tests/support/CliProcess.h"

#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <csignal>

namespace {

using Result = CliResult;

// Runs go to a database of the test's own, never the user's.
QProcessEnvironment testEnvironment() {
    static QTemporaryDir dir;
    QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
    env.insert("RELORA_DB", dir.filePath("runs.sqlite"));
    return env;
}

Result relora(const QStringList& args) { return runRelora(args, testEnvironment()); }

QString writeFile(const QTemporaryDir& dir, const QString& name, const QByteArray& text) {
    const QString path = dir.filePath(name);
    QFile f(path);
    f.open(QIODevice::WriteOnly);
    f.write(text);
    return path;
}

// A small model that trains in a second or two on the CPU.
const QStringList kSmall = {"--set", "model.preset=custom", "--set", "model.d_model=32", "--set",
                            "model.d_ff=64", "--set", "model.heads=2", "--set", "model.layers=1",
                            "--set", "model.context=32", "--set", "train.batch=2", "--set",
                            "method.rank=4", "--set", "optim.warmup=2", "--set", "train.eval_batches=2"};

}  // namespace

class TestCli : public QObject {
    Q_OBJECT
private slots:
    void badInvocations_data();
    void badInvocations();
    void specPrintsAValidSpec();
    void validateListsEveryProblem();
    void runWritesMetricsFile();
    void interruptStopsCleanly();
    void benchCostsReportsEveryFigure();
    void benchProductChoicesFile();
};

void TestCli::badInvocations_data() {
    QTest::addColumn<QStringList>("args");
    QTest::addColumn<int>("code");
    QTest::addColumn<QString>("message");
    QTest::newRow("no command") << QStringList{} << 2 << "usage: relora";
    QTest::newRow("unknown command") << QStringList{"train"} << 2 << "unknown command 'train'";
    QTest::newRow("unknown option") << QStringList{"spec", "--colour"} << 2 << "unknown option --colour";
    QTest::newRow("missing value") << QStringList{"spec", "--preset"} << 2 << "--preset needs a value";
    QTest::newRow("bad preset") << QStringList{"spec", "--preset", "7b"} << 2 << "--preset must be";
    QTest::newRow("bad method") << QStringList{"run", "--method", "galore"} << 2 << "--method must be";
    QTest::newRow("missing spec file") << QStringList{"validate", "/nonexistent/spec.json"} << 1
                                       << "cannot read spec file";
    QTest::newRow("unknown field") << QStringList{"run", "--set", "method.rnak=4"} << 1 << "method.rnak";
    QTest::newRow("set without =") << QStringList{"run", "--set", "method.rank"} << 1 << "method.rank";
    QTest::newRow("missing corpus")
        << QStringList{"run", "--set", "data.corpus=/nonexistent/texts"} << 1 << "/nonexistent/texts";
    QTest::newRow("bad backend") << QStringList{"run", "--backend", "tpu"} << 1 << "backend";
    QTest::newRow("bench bad steps") << QStringList{"bench", "--steps", "x"} << 2 << "--steps expects an integer";
}

void TestCli::badInvocations() {
    QFETCH(QStringList, args);
    QFETCH(int, code);
    QFETCH(QString, message);
    const Result r = relora(args);
    QCOMPARE(r.code, code);
    QVERIFY2(r.err.contains(message), qPrintable(r.err));
}

void TestCli::specPrintsAValidSpec() {
    const Result r = relora({"spec", "--method", "lora", "--preset", "60m"});
    QCOMPARE(r.code, 0);
    const QJsonObject spec = QJsonDocument::fromJson(r.out.toUtf8()).object();
    QCOMPARE(spec["method"].toObject()["kind"].toString(), QString("lora"));
    QCOMPARE(spec["model"].toObject()["d_model"].toInt(), 512);
    QTemporaryDir dir;
    const QString path = writeFile(dir, "spec.json", r.out.toUtf8());
    const Result v = relora({"validate", path});
    QCOMPARE(v.code, 0);
    QVERIFY(v.out.contains("valid"));
}

void TestCli::validateListsEveryProblem() {
    QTemporaryDir dir;
    const QString path = writeFile(
        dir, "bad.json", R"({"model": {"heads": 5}, "method": {"kind": "lora", "rank": 0}, "train": {"steps": 0}})");
    const Result r = relora({"validate", path});
    QCOMPARE(r.code, 1);
    for (const char* field : {"model.heads", "method.rank", "train.steps"})
        QVERIFY2(r.err.contains(field), qPrintable(r.err));
    const Result syntax = relora({"validate", writeFile(dir, "broken.json", "{\"model\": ")});
    QCOMPARE(syntax.code, 1);
    QVERIFY2(syntax.err.contains("bad run spec"), qPrintable(syntax.err));
}

void TestCli::runWritesMetricsFile() {
    QTemporaryDir dir;
    const QString metrics = dir.filePath("run.jsonl");
    const Result r = relora(QStringList{"run", "--method", "relora", "--set", "train.steps=12", "--set",
                                       "relora.reset_interval=5", "--set", "relora.restart_warmup=2",
                                       "--set", "train.eval_interval=6", "--backend", "cpu",
                                       "--metrics", metrics} + kSmall);
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY2(r.err.contains("step 12/12"), qPrintable(r.err));       // progress lines (not a terminal)
    QVERIFY2(r.err.contains("eval @ step 12"), qPrintable(r.err));
    QVERIFY2(r.err.contains("ranks of ΔW @ step 12: wq eff"), qPrintable(r.err));  // the evaluation's second part
    QVERIFY2(r.out.contains("finished after 12 steps"), qPrintable(r.out));
    QFile f(metrics);
    QVERIFY(f.open(QIODevice::ReadOnly));
    QStringList types;
    int restarts = 0;
    while (!f.atEnd()) {
        const QJsonObject o = QJsonDocument::fromJson(f.readLine()).object();
        QVERIFY(!o.isEmpty());
        types << o["type"].toString();
        if (o["kind"].toString() == "restart") ++restarts;
    }
    QCOMPARE(types.front(), QString("run_started"));
    QCOMPARE(types.back(), QString("run_finished"));
    QVERIFY(types.contains("spectrum"));
    QCOMPARE(restarts, 2);  // at steps 5 and 10
}

void TestCli::interruptStopsCleanly() {
    QProcess p;
    p.setProcessEnvironment(testEnvironment());
    p.start(RELORA_CLI, QStringList{"run", "--method", "full", "--set", "train.steps=100000", "--backend", "cpu"} + kSmall);
    QVERIFY(p.waitForStarted());
    // Wait until it trains, then Ctrl-C.
    QByteArray err;
    for (int i = 0; i < 600 && !err.contains("step "); ++i) {
        p.waitForReadyRead(100);
        err += p.readAllStandardError();
    }
    QVERIFY2(err.contains("step "), err.constData());
    ::kill(static_cast<pid_t>(p.processId()), SIGINT);
    QVERIFY(p.waitForFinished(30000));
    err += p.readAllStandardError();
    QCOMPARE(p.exitCode(), 130);
    QVERIFY2(err.contains("stopped"), err.constData());
}

void TestCli::benchCostsReportsEveryFigure() {
    const Result r = relora(QStringList{"bench", "--json", "--costs", "--method", "relora", "--steps", "2",
                                        "--warmup", "1", "--threads", "1", "--set", "train.eval_interval=3"} +
                            kSmall);
    QCOMPARE(r.code, 0);
    const QJsonObject o = QJsonDocument::fromJson(r.out.trimmed().toUtf8()).object();
    QVERIFY2(!o.isEmpty(), qPrintable(r.out + r.err));
    QVERIFY(o["tokens_per_s"].toDouble() > 0);
    QVERIFY(o["validation_ms"].toDouble() > 0);
    QVERIFY(o["evaluation_ms"].toDouble() >= o["validation_ms"].toDouble());
    QCOMPARE(o["eval_interval"].toInt(), 3);
    QVERIFY(std::isfinite(o["eval_overhead_pct"].toDouble()));
    QVERIFY(o["merge_ms_per_layer"].toDouble() > 0);  // ReLoRA: merges timed
}

// The file is written by the first bench and read by the next (the CPU
// backend's choices are empty); one that cannot be written is an error.
void TestCli::benchProductChoicesFile() {
    QTemporaryDir dir;
    const QString file = dir.filePath("choices.txt");
    const QStringList bench = QStringList{"bench", "--method", "full", "--steps", "2", "--warmup", "1",
                                          "--threads", "1"} + kSmall;
    Result r = relora(bench + QStringList{"--product-choices", file});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    QVERIFY(QFile::exists(file));
    r = relora(bench + QStringList{"--product-choices", file});
    QVERIFY2(r.code == 0, qPrintable(r.err));
    r = relora(bench + QStringList{"--product-choices", dir.filePath("missing/choices.txt")});
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("cannot write"), qPrintable(r.err));
}

QTEST_GUILESS_MAIN(TestCli)
#include "test_cli.moc"
