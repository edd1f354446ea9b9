// Learning-rate schedules against their formulas (DESIGN §5).
#include "core/LearningRateSchedule.h"

#include <QtTest>

#include <cmath>
#include <numbers>

using namespace relora;

namespace {

double cosineFormula(int t, double lr, double m, int w0, int total) {
    if (t < w0) return lr * t / w0;
    const double progress = std::clamp(double(t - w0) / (total - w0), 0.0, 1.0);
    return lr * (m + (1 - m) * 0.5 * (1 + std::cos(std::numbers::pi * progress)));
}

}  // namespace

class TestSchedule : public QObject {
    Q_OBJECT
private slots:
    void cosinePoints_data();
    void cosinePoints();
    void jaggedPoints_data();
    void jaggedPoints();
    void jaggedEqualsCosineAwayFromRestarts();
};

void TestSchedule::cosinePoints_data() {
    QTest::addColumn<int>("step");
    QTest::addColumn<double>("expected");
    // lr 1e-3, min ratio 0.1, warmup 100, 1000 steps
    QTest::newRow("start") << 0 << 0.0;
    QTest::newRow("mid-warmup") << 50 << 0.5e-3;
    QTest::newRow("warmup end") << 100 << 1e-3;
    QTest::newRow("half-way") << 550 << 1e-3 * (0.1 + 0.9 * 0.5);
    QTest::newRow("last step") << 1000 << 1e-4;
    QTest::newRow("past the end") << 1200 << 1e-4;
}

void TestSchedule::cosinePoints() {
    QFETCH(int, step);
    QFETCH(double, expected);
    CosineSchedule s(1e-3, 0.1, 100, 1000);
    QVERIFY2(std::fabs(s.at(step) - expected) < 1e-12, qPrintable(QString::number(s.at(step))));
}

void TestSchedule::jaggedPoints_data() {
    QTest::addColumn<int>("step");
    QTest::addColumn<double>("factor");  // multiplier on the cosine
    // restarts at 300 and 600, restart warmup 50
    QTest::newRow("warmup end") << 100 << 1.0;
    QTest::newRow("before restart") << 299 << 1.0;
    QTest::newRow("at restart: zero") << 300 << 0.0;
    QTest::newRow("climbing") << 325 << 0.5;
    QTest::newRow("back on cosine") << 350 << 1.0;
    QTest::newRow("second restart") << 600 << 0.0;
    QTest::newRow("second climb") << 610 << 0.2;
    QTest::newRow("last step") << 999 << 1.0;
}

void TestSchedule::jaggedPoints() {
    QFETCH(int, step);
    QFETCH(double, factor);
    JaggedCosineSchedule s(1e-3, 0.1, 100, 1000, {300, 600}, 50);
    const double expected = factor * cosineFormula(step, 1e-3, 0.1, 100, 1000);
    QVERIFY2(std::fabs(s.at(step) - expected) < 1e-12,
             qPrintable(QString("%1 vs %2").arg(s.at(step)).arg(expected)));
}

void TestSchedule::jaggedEqualsCosineAwayFromRestarts() {
    JaggedCosineSchedule j(3e-4, 0.0, 10, 500, {200}, 20);
    CosineSchedule c(3e-4, 0.0, 10, 500);
    for (int t = 0; t < 500; ++t) {
        if (t >= 200 && t < 220) QVERIFY(j.at(t) < c.at(t));
        else QCOMPARE(j.at(t), c.at(t));
    }
}

QTEST_GUILESS_MAIN(TestSchedule)
#include "test_schedule.moc"
