// Every parameter kind's gradient against central finite differences, for
// full-rank and LoRA (with and without dropout), on the CPU backend, with the
// output head over the whole batch and in row chunks.
#include "core/CounterRng.h"
#include "core/LlamaModel.h"
#include "core/cpu/CpuBackend.h"

#include <QtTest>

#include <cmath>
#include <map>

using namespace relora;

namespace {

ModelSpec smallModel() {
    ModelSpec m;
    m.dModel = 16;
    m.dFF = 24;
    m.heads = 2;
    m.layers = 2;
    m.context = 72;  // crosses the CPU attention's 64-row blocks
    m.vocab = 32;
    m.initStd = 0.3f;  // large weights: gradients well above float rounding
    return m;
}

constexpr size_t kBatch = 2;

struct Fixture {
    CpuBackend be{1};
    LlamaModel model;
    int32_t* tokens;
    int32_t* targets;
    explicit Fixture(size_t headChunkElements) : model{be, smallModel(), kBatch, headChunkElements} {
        const size_t N = kBatch * 72;
        tokens = be.allocateInts(N);
        targets = be.allocateInts(N);
        std::vector<int32_t> t(N), g(N);
        for (size_t i = 0; i < N; ++i) {
            t[i] = static_cast<int32_t>(splitmix64(i) % 32);
            g[i] = static_cast<int32_t>(splitmix64(i + 100) % 32);
        }
        be.uploadInts(tokens, t.data(), N);
        be.uploadInts(targets, g.data(), N);
        model.initialise(7);
    }
    ~Fixture() {
        be.release(tokens);
        be.release(targets);
    }
    double loss() {
        model.forward(tokens, targets, kBatch, true, 99);  // same dropout masks every call
        float sum = 0;
        be.download(&sum, model.lossSum(), 1);
        return sum / double(kBatch * 72);
    }
};

}  // namespace

class TestGradients : public QObject {
    Q_OBJECT
private slots:
    void matchesFiniteDifferences_data();
    void matchesFiniteDifferences();
    void headChunkRows_data();
    void headChunkRows();
};

void TestGradients::matchesFiniteDifferences_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<float>("dropout");
    QTest::addColumn<int>("headChunkRows");  // 0: the whole batch in one chunk
    QTest::newRow("full-rank") << "full" << 0.0f << 0;
    QTest::newRow("full-rank, head in 5 chunks") << "full" << 0.0f << 32;
    QTest::newRow("lora") << "lora" << 0.0f << 0;
    QTest::newRow("lora-dropout, head in 3 chunks") << "lora" << 0.25f << 50;
}

void TestGradients::matchesFiniteDifferences() {
    QFETCH(QString, method);
    QFETCH(float, dropout);
    QFETCH(int, headChunkRows);
    Fixture f(headChunkRows == 0 ? LlamaModel::kHeadChunkElements : size_t(headChunkRows) * 32);
    if (method == "lora") {
        f.model.enableLoRA({{TargetMatrix::Wq, TargetMatrix::Wk, TargetMatrix::Wv, TargetMatrix::Wo,
                             TargetMatrix::Gate, TargetMatrix::Up, TargetMatrix::Down},
                            4, 0.5f, dropout},
                           3);
        // B starts at zero, which would make every dA zero: give it values.
        for (auto& p : f.model.parameters())
            if (p.name.ends_with("lora_B.weight")) f.be.fillNormal(p.value, p.count(), 0.3f, 11);
    }
    f.loss();
    f.model.backward();
    // Every gradient before the finite differences: a training forward
    // rewrites the output head's.
    std::map<std::string, std::vector<float>> grads;
    for (auto& p : f.model.parameters()) {
        if (!p.trainable) continue;
        grads[p.name].resize(p.count());
        f.be.download(grads[p.name].data(), p.grad, p.count());
    }

    // Tolerance: float32 central differences with h = 1e-2 on O(1) weights
    // are good to about 1e-3 absolute; relative 3 % on larger gradients.
    const float h = 1e-2f;
    int checked = 0;
    for (auto& p : f.model.parameters()) {
        if (!p.trainable) continue;
        const std::vector<float>& grad = grads[p.name];
        std::vector<float> values = f.model.read(p);
        for (int k = 0; k < 3; ++k) {
            const size_t i = splitmix64(checked * 31 + k) % p.count();
            const float saved = values[i];
            values[i] = saved + h;
            f.model.write(p, values);
            const double up = f.loss();
            values[i] = saved - h;
            f.model.write(p, values);
            const double down = f.loss();
            values[i] = saved;
            f.model.write(p, values);
            const double numeric = (up - down) / (2.0 * h);
            const double tolerance = 1.5e-3 + 0.03 * std::fabs(numeric);
            if (std::fabs(numeric - grad[i]) > tolerance)
                QFAIL(qPrintable(QString("%1[%2]: analytic %3, numeric %4")
                                     .arg(QString::fromStdString(p.name)).arg(i)
                                     .arg(grad[i]).arg(numeric)));
        }
        ++checked;
    }
    // Full-rank checks every base tensor; LoRA skips the frozen targets but
    // adds two factors per target.
    const int expected = method == "full" ? 2 + 2 * (2 + 7) + 1 : 2 + 2 * 2 + 1 + 2 * 7 * 2;
    QCOMPARE(checked, expected);
}

void TestGradients::headChunkRows_data() {
    QTest::addColumn<qulonglong>("N");
    QTest::addColumn<qulonglong>("V");
    QTest::addColumn<qulonglong>("elements");
    QTest::addColumn<qulonglong>("rows");
    QTest::newRow("60m, batch 32 x 512: four even chunks")
        << 16384ull << 32000ull << qulonglong(LlamaModel::kHeadChunkElements) << 4096ull;
    QTest::newRow("at most 96 Mi logits: six even chunks") << 16384ull << 32000ull << qulonglong(96ull << 20) << 2816ull;
    QTest::newRow("the whole batch fits") << 1000ull << 300ull << qulonglong(LlamaModel::kHeadChunkElements) << 1000ull;
    QTest::newRow("under one tile: as many rows as fit") << 1000ull << 32ull << 1024ull << 32ull;
    QTest::newRow("whole tiles, even already") << 4096ull << 1000ull << 1024000ull << 1024ull;
    QTest::newRow("300 rows fit: four chunks of 256") << 1000ull << 1ull << 300ull << 256ull;
}

void TestGradients::headChunkRows() {
    QFETCH(qulonglong, N);
    QFETCH(qulonglong, V);
    QFETCH(qulonglong, elements);
    QFETCH(qulonglong, rows);
    const size_t got = LlamaModel::headChunkRows(N, V, elements);
    QCOMPARE(qulonglong(got), rows);
    QVERIFY(got == N || got * V <= elements);  // a chunk never exceeds its budget
}

QTEST_GUILESS_MAIN(TestGradients)
#include "test_gradients.moc"
