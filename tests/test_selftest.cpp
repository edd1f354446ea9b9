// The CPU self-test (core/SelfTest.h, `relora selftest --backend cpu`): a
// 1-thread CPU backend against the all-cores one, every op, fp32 gradients,
// training curves, merges, pruning, determinism and the LoRA start. Every
// check must pass; a failure names the check, its error and its tolerance.
// Also which thread count "all cores" (threads 0) means.
#include "core/SelfTest.h"
#include "core/cpu/CpuBackend.h"

#include <QtTest>

#include <omp.h>

#include <cmath>

using namespace relora;

class TestSelfTest : public QObject {
    Q_OBJECT
private slots:
    void everyCpuCheckPasses();
    void tableEndsWithTheSummaryLine();
    void unknownBackendIsRejected();
    void defaultThreadsFollowOmpNumThreads_data();
    void defaultThreadsFollowOmpNumThreads();

private:
    SelfTestReport report_;
    bool ran_ = false;
    const SelfTestReport& report() {
        if (!ran_) {
            SelfTestOptions options;
            options.backend = "cpu";
            options.trainSteps = 40;  // the user-facing command runs 100; CI needs less
            report_ = runSelfTest(options);
            ran_ = true;
        }
        return report_;
    }
};

void TestSelfTest::everyCpuCheckPasses() {
    const SelfTestReport& r = report();
    QCOMPARE(QString::fromStdString(r.backend), QString("cpu"));
    QCOMPARE(QString::fromStdString(r.reference), QString("cpu"));
    QVERIFY(r.checks.size() >= 30);
    for (const SelfTestCheck& c : r.checks) {
        QVERIFY2(c.passed, qPrintable(QString::fromStdString(selfTestRow(c))));
        QVERIFY2(std::isfinite(c.error) && c.error <= c.tolerance, qPrintable(QString::fromStdString(c.name)));
    }
    QCOMPARE(r.failed(), 0);
    // (a)-(f) and the op checks are all there.
    for (const char* prefix : {"op: ", "(a) ", "(b) ", "(c) ", "(d) ", "(e) ", "(f) "}) {
        bool found = false;
        for (const SelfTestCheck& c : r.checks) found = found || c.name.rfind(prefix, 0) == 0;
        QVERIFY2(found, prefix);
    }
}

void TestSelfTest::tableEndsWithTheSummaryLine() {
    const SelfTestReport& r = report();
    const QString table = QString::fromStdString(formatSelfTest(r));
    const QStringList lines = table.trimmed().split('\n');
    QCOMPARE(lines.last(), QString("%1 passed, 0 failed").arg(r.checks.size()));
    QCOMPARE(lines.size(), int(r.checks.size()) + 3);  // title, header, rows, summary
}

void TestSelfTest::unknownBackendIsRejected() {
    SelfTestOptions options;
    options.backend = "tpu";
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, runSelfTest(options));
}

void TestSelfTest::defaultThreadsFollowOmpNumThreads_data() {
    QTest::addColumn<QByteArray>("env");     // OMP_NUM_THREADS; empty: unset
    QTest::addColumn<int>("requested");      // BackendOptions::threads
    QTest::addColumn<int>("defaultCount");   // what 0 means; 0: the number of cores
    QTest::newRow("unset") << QByteArray() << 0 << 0;
    QTest::newRow("3") << QByteArray("3") << 0 << 3;
    QTest::newRow("a list takes its first entry") << QByteArray("4,2") << 0 << 4;
    QTest::newRow("not a count") << QByteArray("many") << 0 << 0;
    QTest::newRow("an explicit count wins") << QByteArray("3") << 1 << 3;
}

void TestSelfTest::defaultThreadsFollowOmpNumThreads() {
    QFETCH(QByteArray, env);
    QFETCH(int, requested);
    QFETCH(int, defaultCount);
    const bool wasSet = qEnvironmentVariableIsSet("OMP_NUM_THREADS");
    const QByteArray saved = qgetenv("OMP_NUM_THREADS");
    if (env.isEmpty()) qunsetenv("OMP_NUM_THREADS");
    else qputenv("OMP_NUM_THREADS", env);
    const int byDefault = defaultCount > 0 ? defaultCount : omp_get_num_procs();
    const int used = requested > 0 ? requested : byDefault;
    // Twice: the first backend's omp_set_num_threads must not change what 0 means.
    for (int round = 0; round < 2; ++round) {
        const CpuBackend backend(requested);
        QVERIFY2(QString::fromStdString(backend.deviceName()).endsWith(QString("(%1 threads)").arg(used)),
                 backend.deviceName().c_str());
        QCOMPARE(defaultCpuThreads(), byDefault);
    }
    if (wasSet) qputenv("OMP_NUM_THREADS", saved);
    else qunsetenv("OMP_NUM_THREADS");
}

QTEST_GUILESS_MAIN(TestSelfTest)
#include "test_selftest.moc"
