// The run database from the command line: run, list, show, metrics, compare,
// export, delete; Ctrl-C and kill -9 followed by `resume`, whose losses are
// bit-identical to those of an uninterrupted run across ReLoRA restarts.
#include "tests/support/CliProcess.h"

#include <QElapsedTimer>
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <csignal>

namespace {

using Result = CliResult;

class Cli {
public:
    explicit Cli(const QString& db) : db_(db) {}
    Result operator()(QStringList args) const { return runRelora(args << "--db" << db_); }
    // Starts a run and signals it once it has written `afterStep`'s progress line.
    int interrupt(const QStringList& args, int afterStep, int signal) const {
        QProcess p;
        p.start(RELORA_CLI, QStringList(args) << "--db" << db_);
        if (!p.waitForStarted()) return -1;
        QByteArray err;
        const QByteArray marker = "step " + QByteArray::number(afterStep) + "/";
        QElapsedTimer waited;  // generous: a loaded CI machine trains slowly
        waited.start();
        while (!err.contains(marker) && p.state() == QProcess::Running && waited.elapsed() < 600000) {
            p.waitForReadyRead(100);
            err += p.readAllStandardError();
        }
        ::kill(static_cast<pid_t>(p.processId()), signal);
        p.waitForFinished(60000);
        return p.exitStatus() == QProcess::CrashExit ? -signal : p.exitCode();
    }

private:
    QString db_;
};

// A small ReLoRA run with restarts every 10 steps and a progress line every
// `steps / 50` steps; long enough (a second or two) to be interrupted.
QStringList smallRun(const QString& name, int steps = 40) {
    return {"run", "--method", "relora", "--backend", "cpu", "--set", "name=" + name,
            "--set", "model.preset=custom", "--set", "model.d_model=32", "--set", "model.d_ff=64",
            "--set", "model.heads=2", "--set", "model.layers=1", "--set", "model.context=64",
            "--set", "train.batch=4", "--set", "train.steps=" + QString::number(steps), "--set", "optim.warmup=4",
            "--set", "method.rank=4", "--set", "relora.reset_interval=10",
            "--set", "relora.restart_warmup=2", "--set", "train.eval_interval=10",
            "--set", "train.checkpoint_interval=5", "--set", "train.eval_batches=2"};
}

QString trainLossCsv(const Cli& cli, int run) {
    const Result r = cli({"metrics", QString::number(run), "--keys", "train_loss", "--csv"});
    return r.code == 0 ? r.out : "error: " + r.err;
}

}  // namespace

class TestCliStore : public QObject {
    Q_OBJECT
private slots:
    void runListShowMetricsCompareExportDelete();
    void resumeAfterInterruptIsBitIdentical_data();
    void resumeAfterInterruptIsBitIdentical();
    void badDatabaseAndRunArguments();
    void runThatCannotStartIsRecordedAsFailed();
};

void TestCliStore::runListShowMetricsCompareExportDelete() {
    QTemporaryDir dir;
    const Cli cli(dir.filePath("runs.sqlite"));
    QCOMPARE(cli(smallRun("a")).code, 0);
    QCOMPARE(cli(QStringList(smallRun("b")) << "--set" << "method.kind=lora").code, 0);

    const Result list = cli({"list"});
    QCOMPARE(list.code, 0);
    QVERIFY2(list.out.contains("relora") && list.out.contains("lora") && list.out.count("finished") == 2,
             qPrintable(list.out));
    const Result show = cli({"show", "1"});
    QVERIFY2(show.out.contains("restart") && show.out.contains("snapshot") && show.out.contains("rank(ΔW) wq"),
             qPrintable(show.out));
    QVERIFY(cli({"show", "1", "--spec"}).out.contains("\"reset_interval\": 10"));

    const QStringList csv = trainLossCsv(cli, 1).trimmed().split('\n');
    QCOMPARE(csv.front(), QString("step,train_loss"));
    QCOMPARE(csv.size(), 41);

    const Result compare = cli({"compare", "1", "2"});
    QCOMPARE(compare.code, 0);
    for (const char* row : {"final val loss", "best val loss", "params trainable", "update size", "tokens/s"})
        QVERIFY2(compare.out.contains(row), qPrintable(compare.out));

    const QString h5 = dir.filePath("export.h5");
    QCOMPARE(cli({"export", "1", "-o", h5}).code, 0);
    QVERIFY(QFileInfo(h5).size() > 0);
    const Result missing = cli({"export", "1", "--step", "7", "-o", h5});
    QCOMPARE(missing.code, 1);
    QVERIFY2(missing.err.contains("steps available: 40"), qPrintable(missing.err));

    const QString files = dir.filePath("runs.sqlite.files/run-2");
    QVERIFY(QDir(files).exists());
    QCOMPARE(cli({"delete", "2"}).code, 2);  // no terminal to ask on, no --yes
    QCOMPARE(cli({"delete", "2", "--yes"}).code, 0);
    QVERIFY(!QDir(files).exists());
    QVERIFY(!cli({"list"}).out.contains(" b "));
    QCOMPARE(cli({"show", "2"}).code, 1);
}

void TestCliStore::resumeAfterInterruptIsBitIdentical_data() {
    QTest::addColumn<int>("signal");
    QTest::addColumn<int>("exitCode");
    QTest::addColumn<QString>("status");
    QTest::newRow("Ctrl-C") << int(SIGINT) << 130 << "stopped";
    QTest::newRow("kill -9") << int(SIGKILL) << -int(SIGKILL) << "interrupted";
}

void TestCliStore::resumeAfterInterruptIsBitIdentical() {
    QFETCH(int, signal);
    QFETCH(int, exitCode);
    QFETCH(QString, status);
    QTemporaryDir dir;
    const Cli cli(dir.filePath("runs.sqlite"));
    QCOMPARE(cli(smallRun("straight", 400)).code, 0);
    QCOMPARE(cli.interrupt(smallRun("cut", 400), 200, signal), exitCode);
    QVERIFY2(cli({"list"}).out.contains(status), qPrintable(cli({"list"}).out));
    const Result resumed = cli({"resume", "2"});
    QVERIFY2(resumed.code == 0, qPrintable(resumed.err));
    QVERIFY(resumed.err.contains("resuming at step"));
    // Steps redone after the checkpoint overwrite their rows with the same
    // values; after kill -9 they also fill in rows that were never committed.
    QCOMPARE(trainLossCsv(cli, 2), trainLossCsv(cli, 1));
    QCOMPARE(cli({"resume", "2"}).code, 1);  // finished runs do not resume
}

void TestCliStore::badDatabaseAndRunArguments() {
    QTemporaryDir dir;
    const QString notDb = dir.filePath("notes.sqlite");
    QFile f(notDb);
    f.open(QIODevice::WriteOnly);
    f.write("these are my notes, not a database\n");
    f.close();
    const Result r = Cli(notDb)({"list"});
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("notes.sqlite"), qPrintable(r.err));
    QCOMPARE(QFileInfo(notDb).size(), qint64(35));  // untouched

    const Cli cli(dir.filePath("runs.sqlite"));
    QCOMPARE(cli({"show", "abc"}).code, 2);
    QCOMPARE(cli({"show", "0"}).code, 2);
    QCOMPARE(cli({"resume"}).code, 2);
    QCOMPARE(cli({"compare", "1"}).code, 2);
    QCOMPARE(cli({"export", "1"}).code, 2);  // no -o
}

void TestCliStore::runThatCannotStartIsRecordedAsFailed() {
    QTemporaryDir dir;
    const Cli cli(dir.filePath("runs.sqlite"));
    const Result r = cli(QStringList(smallRun("gpu")) << "--backend" << "cuda");
    if (r.code == 0) QSKIP("this machine has a usable GPU");
    QCOMPARE(r.code, 1);
    QVERIFY2(r.err.contains("CUDA"), qPrintable(r.err));
    const Result list = cli({"list"});
    QVERIFY2(list.out.contains("failed"), qPrintable(list.out));
    QVERIFY2(cli({"show", "1"}).out.contains("CUDA"), "the reason is kept with the run");
}

QTEST_GUILESS_MAIN(TestCliStore)
#include "test_cli_store.moc"
