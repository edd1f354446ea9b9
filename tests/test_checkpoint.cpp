// Checkpoints: a run stopped, saved, and resumed in a fresh trainer gives
// bit-identical losses to an uninterrupted run on the CPU backend, across
// ReLoRA restarts and the warm-start switch; damaged files are refused; the
// backend's product choices travel with the checkpoint.
#include "core/Trainer.h"
#include "core/cpu/CpuBackend.h"

#include <QTemporaryDir>
#include <QtTest>

#include <fstream>

using namespace relora;

namespace {

RunSpec smallReLoRA(int warmStart) {
    RunSpec s = syntheticSpec(Method::ReLoRA, 32, 48, 2, 2, 16);
    s.method.rank = 4;
    s.method.dropout = 0.1f;  // dropout masks must continue too
    s.train.batch = 2;
    s.train.steps = 12;
    s.optim.warmup = 2;
    s.relora.resetInterval = 4;
    s.relora.restartWarmup = 2;
    s.relora.warmStartSteps = warmStart;
    return s;
}

}  // namespace

class TestCheckpoint : public QObject {
    Q_OBJECT
private slots:
    void resumeIsBitIdentical_data();
    void resumeIsBitIdentical();
    void damagedFilesAreRefused();
    void productChoicesTravel_data();
    void productChoicesTravel();
};

void TestCheckpoint::resumeIsBitIdentical_data() {
    QTest::addColumn<int>("warmStart");
    QTest::addColumn<int>("stopAt");
    QTest::newRow("across restarts") << 0 << 6;
    QTest::newRow("on a restart step") << 0 << 8;
    QTest::newRow("before the warm-start switch") << 3 << 2;
    QTest::newRow("after the warm-start switch") << 3 << 5;
}

void TestCheckpoint::resumeIsBitIdentical() {
    QFETCH(int, warmStart);
    QFETCH(int, stopAt);
    const RunSpec spec = smallReLoRA(warmStart);
    CpuBackend be(2);
    std::vector<double> straight;
    {
        Trainer t(spec, be);
        for (int i = 0; i < spec.train.steps; ++i) straight.push_back(t.step().loss);
    }
    QTemporaryDir dir;
    const std::string path = dir.filePath("run.ckpt").toStdString();
    std::vector<double> resumed;
    {
        Trainer t(spec, be);
        for (int i = 0; i < stopAt; ++i) resumed.push_back(t.step().loss);
        writeCheckpoint(path, t.checkpoint());
    }
    Trainer t(spec, be);
    t.restore(readCheckpoint(path));
    QCOMPARE(t.currentStep(), stopAt);
    while (t.currentStep() < spec.train.steps) resumed.push_back(t.step().loss);
    QCOMPARE(resumed, straight);  // exact, not approximate
    QVERIFY(!QFile::exists(QString::fromStdString(path + ".tmp")));
}

void TestCheckpoint::damagedFilesAreRefused() {
    QTemporaryDir dir;
    const std::string path = dir.filePath("bad.ckpt").toStdString();
    std::ofstream(path) << "not a checkpoint";
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, readCheckpoint(path));

    CpuBackend be(1);
    Trainer t(smallReLoRA(0), be);
    t.step();
    writeCheckpoint(path, t.checkpoint());
    std::filesystem::resize_file(path, std::filesystem::file_size(path) - 100);
    try {
        readCheckpoint(path);
        QFAIL("a truncated checkpoint was accepted");
    } catch (const std::runtime_error& e) {
        QVERIFY2(std::string(e.what()).find("damaged") != std::string::npos, e.what());
    }
    // A checkpoint of another model is refused by name.
    RunSpec other = smallReLoRA(0);
    other.model.dModel = 64;
    other.model.dFF = 96;
    Trainer u(other, be);
    writeCheckpoint(path, u.checkpoint());
    QVERIFY_THROWS_EXCEPTION(std::runtime_error, t.restore(readCheckpoint(path)));
}

void TestCheckpoint::productChoicesTravel_data() {
    QTest::addColumn<QString>("header");  // the checkpoint's JSON header line
    QTest::addColumn<QString>("choices");
    QTest::newRow("several lines") << QString() << "cublaslt-choices 1 130000 sm_90 GPU\n0 1 768 16384 768 ff 1a\n";
    QTest::newRow("none (the CPU backend)") << QString() << QString();
    QTest::newRow("a file from before the field")
        << R"({"spec":"{}","step":3,"restart_count":0,"sampler_position":7,"lora_enabled":false,"counters":{},"tensors":[]})"
        << QString();
}

void TestCheckpoint::productChoicesTravel() {
    QFETCH(QString, header);
    QFETCH(QString, choices);
    QTemporaryDir dir;
    const std::string path = dir.filePath("run.ckpt").toStdString();
    if (header.isEmpty()) {
        CheckpointData d;
        d.specJson = "{}";
        d.step = 3;
        d.productChoices = choices.toStdString();
        writeCheckpoint(path, d);
    } else {
        std::ofstream(path) << "RELORA-CKPT 1\n" << header.toStdString() << "\n";
    }
    const CheckpointData back = readCheckpoint(path);
    QCOMPARE(back.step, 3);
    QCOMPARE(QString::fromStdString(back.productChoices), choices);
}

QTEST_GUILESS_MAIN(TestCheckpoint)
#include "test_checkpoint.moc"
