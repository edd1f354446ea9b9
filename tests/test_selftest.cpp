// The CPU self-test (core/SelfTest.h, `relora selftest --backend cpu`): a
// 1-thread CPU backend against the all-cores one, every op, fp32 gradients,
// training curves, merges, pruning, determinism and the LoRA start. Every
// check must pass; a failure names the check, its error and its tolerance.
#include "core/SelfTest.h"

#include <QtTest>

#include <cmath>

using namespace relora;

class TestSelfTest : public QObject {
    Q_OBJECT
private slots:
    void everyCpuCheckPasses();
    void tableEndsWithTheSummaryLine();
    void unknownBackendIsRejected();

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

QTEST_GUILESS_MAIN(TestSelfTest)
#include "test_selftest.moc"
