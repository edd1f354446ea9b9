// Every parameter kind's gradient against central finite differences, for
// full-rank and LoRA (with and without dropout), on the CPU backend.
#include "core/CounterRng.h"
#include "core/LlamaModel.h"
#include "core/cpu/CpuBackend.h"

#include <QtTest>

#include <cmath>

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
    LlamaModel model{be, smallModel(), kBatch};
    int32_t* tokens;
    int32_t* targets;
    Fixture() {
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
};

void TestGradients::matchesFiniteDifferences_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<float>("dropout");
    QTest::newRow("full-rank") << "full" << 0.0f;
    QTest::newRow("lora") << "lora" << 0.0f;
    QTest::newRow("lora-dropout") << "lora" << 0.25f;
}

void TestGradients::matchesFiniteDifferences() {
    QFETCH(QString, method);
    QFETCH(float, dropout);
    Fixture f;
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

    // Tolerance: float32 central differences with h = 1e-2 on O(1) weights
    // are good to about 1e-3 absolute; relative 3 % on larger gradients.
    const float h = 1e-2f;
    int checked = 0;
    for (auto& p : f.model.parameters()) {
        if (!p.trainable) continue;
        std::vector<float> grad(p.count());
        f.be.download(grad.data(), p.grad, grad.size());
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

QTEST_GUILESS_MAIN(TestGradients)
#include "test_gradients.moc"
