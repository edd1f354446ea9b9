// A short real training run on the default corpus (Debian's fortunes)
// lowers validation loss for every method.
#include "core/Trainer.h"
#include "core/cpu/CpuBackend.h"

#include <QtTest>

using namespace relora;

namespace {

struct LossRecorder : MetricsSink {
    std::vector<double> validation;
    std::vector<std::string> events;
    void runStarted(const std::string&, const std::string&, const std::string&) override {}
    void metrics(const std::vector<MetricPoint>& points, double) override {
        for (const auto& p : points)
            if (p.key == "val_loss") validation.push_back(p.value);
    }
    void spectrum(int64_t, const std::string&, const std::vector<float>&) override {}
    void event(int64_t, const std::string& kind, const std::string&) override { events.push_back(kind); }
    void runFinished(const std::string&, const std::string&) override {}
};

}  // namespace

class TestTraining : public QObject {
    Q_OBJECT
private slots:
    void validationLossFalls_data();
    void validationLossFalls();
};

void TestTraining::validationLossFalls_data() {
    QTest::addColumn<QString>("method");
    QTest::newRow("full-rank") << "full";
    QTest::newRow("lora") << "lora";
    QTest::newRow("relora") << "relora";
    QTest::newRow("relora warm start") << "relora-warm";
}

void TestTraining::validationLossFalls() {
    QFETCH(QString, method);
    RunSpec spec = syntheticSpec(*parseMethod(method.section('-', 0, 0).toStdString()), 64, 172, 4, 2, 64);
    spec.data.synthetic = false;  // the default corpus: real text
    spec.method.rank = 8;
    spec.train.batch = 8;
    spec.train.steps = 80;
    spec.train.evalInterval = 80;
    spec.train.evalBatches = 4;
    spec.optim.lr = 3e-3f;
    spec.optim.warmup = 10;
    spec.relora.resetInterval = 25;
    spec.relora.restartWarmup = 5;
    if (method == "relora-warm") spec.relora.warmStartSteps = 20;
    CpuBackend be;
    LossRecorder rec;
    Trainer trainer(spec, be, &rec);
    TrainerControl control;
    const RunOutcome outcome = trainer.run(control);
    QCOMPARE(QString::fromStdString(outcome.status), QString("finished"));
    QCOMPARE(rec.validation.size(), size_t(2));  // before and after
    // Byte-level text: from ln(256) ≈ 5.55 to well under 4 in 80 steps.
    QVERIFY2(rec.validation.front() > 5.0, qPrintable(QString::number(rec.validation.front())));
    QVERIFY2(rec.validation.back() < rec.validation.front() - 1.5,
             qPrintable(QString("%1 -> %2").arg(rec.validation.front()).arg(rec.validation.back())));
    if (method.startsWith("relora")) QVERIFY(std::count(rec.events.begin(), rec.events.end(), "restart") >= 2);
    if (method == "relora-warm") QCOMPARE(rec.events.front(), std::string("warm_start_switch"));
}

QTEST_GUILESS_MAIN(TestTraining)
#include "test_training.moc"
