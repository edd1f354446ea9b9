// ReLoRA's invariants (DESIGN §5): merges keep outputs, LoRA starts as the
// base model, pruning touches exactly what it should, parameter counts match
// their closed forms, restarts and the warm-start switch happen on schedule,
// and a diverging run stops without overwriting good weights.
#include "core/CounterRng.h"
#include "core/ReLoRA.h"
#include "core/Trainer.h"
#include "core/cpu/CpuBackend.h"

#include <QtTest>

#include <algorithm>
#include <cmath>
#include <limits>

using namespace relora;

namespace {

const std::vector<TargetMatrix> kAllTargets = {TargetMatrix::Wq, TargetMatrix::Wk, TargetMatrix::Wv,
                                               TargetMatrix::Wo, TargetMatrix::Gate, TargetMatrix::Up,
                                               TargetMatrix::Down};

RunSpec smallSpec(Method method) {
    RunSpec s = syntheticSpec(method, 32, 48, 2, 2, 16);
    s.method.rank = 4;
    s.train.batch = 2;
    s.train.steps = 12;
    s.train.evalInterval = 4;
    s.train.evalBatches = 2;
    s.optim.warmup = 2;
    s.relora.resetInterval = 4;
    s.relora.restartWarmup = 2;
    return s;
}

struct Recorder : MetricsSink {
    std::vector<std::pair<int64_t, std::string>> events;
    std::vector<MetricPoint> points;
    std::string status, message;
    void runStarted(const std::string&, const std::string&, const std::string&) override {}
    void metrics(const std::vector<MetricPoint>& p, double) override {
        points.insert(points.end(), p.begin(), p.end());
    }
    void spectrum(int64_t, const std::string&, const std::vector<float>&) override {}
    void event(int64_t step, const std::string& kind, const std::string&) override {
        events.emplace_back(step, kind);
    }
    void runFinished(const std::string& s, const std::string& m) override {
        status = s;
        message = m;
    }
    double last(const std::string& key) const {
        for (auto it = points.rbegin(); it != points.rend(); ++it)
            if (it->key == key) return it->value;
        return std::nan("");
    }
};

std::vector<float> logitsOf(Trainer& t, Backend& be) {
    const auto& batch = t.corpus().validation();
    const size_t N = t.tokensPerStep();
    std::vector<int32_t> in(batch.begin(), batch.begin() + N), tg(batch.begin() + 1, batch.begin() + N + 1);
    int32_t* tok = be.allocateInts(N);
    int32_t* tgt = be.allocateInts(N);
    be.uploadInts(tok, in.data(), N);
    be.uploadInts(tgt, tg.data(), N);
    t.model().forward(tok, tgt, static_cast<size_t>(t.spec().train.batch), false, 0);
    std::vector<float> out(N * static_cast<size_t>(t.spec().model.vocab));
    be.download(out.data(), t.model().logits(), out.size());
    be.release(tok);
    be.release(tgt);
    return out;
}

double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, double(std::fabs(a[i] - b[i])));
    return d;
}

}  // namespace

class TestReLoRA : public QObject {
    Q_OBJECT
private slots:
    void loraAtStepZeroIsTheBaseModel();
    void mergeKeepsOutputs();
    void pruningZeroesTheRightFraction_data();
    void pruningZeroesTheRightFraction();
    void parameterCountsMatchClosedForms_data();
    void parameterCountsMatchClosedForms();
    void restartsAndSwitchHappenOnSchedule();
    void divergenceStopsWithoutTouchingWeights();
};

void TestReLoRA::loraAtStepZeroIsTheBaseModel() {
    CpuBackend be(1);
    Trainer full(smallSpec(Method::FullRank), be);
    Trainer lora(smallSpec(Method::LoRA), be);  // same seed: same base weights
    // B = 0 makes the adapter's term exactly zero: bitwise the same logits.
    QCOMPARE(maxAbsDiff(logitsOf(full, be), logitsOf(lora, be)), 0.0);
}

void TestReLoRA::mergeKeepsOutputs() {
    CpuBackend be(1);
    Trainer t(smallSpec(Method::ReLoRA), be);
    for (auto& p : t.model().parameters())
        if (p.name.ends_with("lora_B.weight")) be.fillNormal(p.value, p.count(), 0.05f, 5);
    const auto before = logitsOf(t, be);
    restartAll(be, t.model().parts(), {PruneMode::Reset, 0}, 9, 0);
    const auto after = logitsOf(t, be);
    // Rounding only: the merge moves s·B·A from one product into another.
    QVERIFY2(maxAbsDiff(before, after) < 1e-4, qPrintable(QString::number(maxAbsDiff(before, after))));
    // ... and the adapters are fresh: B zero, A re-drawn.
    for (auto& p : t.model().parameters())
        if (p.name.ends_with("lora_B.weight")) {
            const auto v = t.model().read(p);
            QVERIFY(std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }));
        }
}

void TestReLoRA::pruningZeroesTheRightFraction_data() {
    QTest::addColumn<int>("mode");
    QTest::addColumn<float>("ratio");
    QTest::addColumn<double>("expectedZeroFraction");
    QTest::newRow("reset") << int(PruneMode::Reset) << 0.0f << 1.0;
    QTest::newRow("random 0.9") << int(PruneMode::Random) << 0.9f << 0.9;
    QTest::newRow("random 0.5") << int(PruneMode::Random) << 0.5f << 0.5;
    QTest::newRow("magnitude 0.9") << int(PruneMode::Magnitude) << 0.9f << 0.9;
    QTest::newRow("magnitude 0.99") << int(PruneMode::Magnitude) << 0.99f << 0.99;
}

void TestReLoRA::pruningZeroesTheRightFraction() {
    QFETCH(int, mode);
    QFETCH(float, ratio);
    QFETCH(double, expectedZeroFraction);
    CpuBackend be(1);
    RunSpec spec = smallSpec(Method::ReLoRA);
    spec.model.dModel = 64;
    spec.model.dFF = 96;
    spec.method.rank = 16;
    Trainer t(spec, be);
    uint64_t salt = 0;
    for (auto& p : t.model().parameters()) {
        if (!p.m) continue;
        be.fillNormal(p.m, p.count(), 1.0f, ++salt);
        be.fillUniform(p.v, p.count(), 1.0f, ++salt);
    }
    const auto snapshot = [&](const Parameter& p, const float* buf) {
        std::vector<float> h(p.count());
        be.download(h.data(), buf, h.size());
        return h;
    };
    std::map<std::string, std::pair<std::vector<float>, std::vector<float>>> before;
    for (auto& p : t.model().parameters())
        if (p.m) before[p.name] = {snapshot(p, p.m), snapshot(p, p.v)};
    const auto weightsBefore = t.model().read(*t.model().find("model.layers.0.self_attn.q_proj.weight"));

    for (LinearPart* part : t.model().parts())
        if (part->lora) pruneOptimizerState(be, *part->lora, {PruneMode(mode), ratio}, 77);

    for (auto& p : t.model().parameters()) {
        if (!p.m) continue;
        const bool factor = p.name.find(".lora_") != std::string::npos;
        for (int which = 0; which < 2; ++which) {
            const auto now = snapshot(p, which ? p.v : p.m);
            const auto& old = which ? before[p.name].second : before[p.name].first;
            size_t zeros = 0;
            for (size_t i = 0; i < now.size(); ++i) {
                if (now[i] == 0.0f) ++zeros;
                else QCOMPARE(now[i], old[i]);  // survivors keep their value
            }
            const double fraction = double(zeros) / double(now.size());
            if (!factor) {
                QCOMPARE(zeros, size_t(0));  // other tensors' moments untouched
                continue;
            }
            if (which == 0) {
                // A first moment never survives its pruned second moment.
                const auto v = snapshot(p, p.v);
                for (size_t i = 0; i < now.size(); ++i)
                    if (v[i] == 0.0f) QCOMPARE(now[i], 0.0f);
                continue;
            }
            if (PruneMode(mode) == PruneMode::Random) {
                // binomial: 5 standard deviations
                const double sd = std::sqrt(ratio * (1 - ratio) / double(now.size()));
                QVERIFY2(std::fabs(fraction - expectedZeroFraction) < 5 * sd + 1e-9,
                         qPrintable(QString("%1 %2").arg(QString::fromStdString(p.name)).arg(fraction)));
            } else if (PruneMode(mode) == PruneMode::Magnitude) {
                // entries at or below the p-quantile: floor(p(n-1))+1 of n
                const double expect = std::floor(ratio * double(now.size() - 1) + 1) / double(now.size());
                QVERIFY2(std::fabs(fraction - expect) <= 1.0 / double(now.size()) + 1e-9,
                         qPrintable(QString("%1 %2 vs %3").arg(QString::fromStdString(p.name)).arg(fraction).arg(expect)));
                // and they are the smallest ones
                float largestPruned = 0, smallestKept = std::numeric_limits<float>::max();
                for (size_t i = 0; i < now.size(); ++i) {
                    if (now[i] == 0.0f) largestPruned = std::max(largestPruned, std::fabs(old[i]));
                    else smallestKept = std::min(smallestKept, std::fabs(old[i]));
                }
                QVERIFY(largestPruned < smallestKept);
            } else {
                QCOMPARE(fraction, expectedZeroFraction);
            }
        }
    }
    QCOMPARE(t.model().read(*t.model().find("model.layers.0.self_attn.q_proj.weight")), weightsBefore);
}

void TestReLoRA::parameterCountsMatchClosedForms_data() {
    QTest::addColumn<int>("method");
    QTest::addColumn<QString>("targets");
    QTest::newRow("full") << int(Method::FullRank) << "wq,wk,wv,wo,gate,up,down";
    QTest::newRow("lora all") << int(Method::LoRA) << "wq,wk,wv,wo,gate,up,down";
    QTest::newRow("lora q,v") << int(Method::LoRA) << "wq,wv";
    QTest::newRow("relora mlp") << int(Method::ReLoRA) << "gate,up,down";
}

void TestReLoRA::parameterCountsMatchClosedForms() {
    QFETCH(int, method);
    QFETCH(QString, targets);
    RunSpec spec = smallSpec(Method(method));
    spec.method.targets.clear();
    for (const QString& t : targets.split(',')) spec.method.targets.push_back(*parseTarget(t.toStdString()));
    CpuBackend be(1);
    Trainer t(spec, be);
    const ParameterCounts live = countParameters(t.model().parameters());
    const ParameterCounts expected = expectedCounts(spec, true);
    QCOMPARE(live.total, expected.total);
    QCOMPARE(live.trainable, expected.trainable);
    QCOMPARE(live.optimizerState, expected.optimizerState);
    // d=32, ff=48, V=256, L=2: 2·256·32 + 2·(4·32² + 3·32·48 + 64) + 32
    QCOMPARE(baseParameterCount(spec.model), size_t(16384 + 2 * (4096 + 4608 + 64) + 32));
}

void TestReLoRA::restartsAndSwitchHappenOnSchedule() {
    RunSpec spec = smallSpec(Method::ReLoRA);
    spec.relora.warmStartSteps = 3;   // restarts at 3 + 4 = 7 and 11
    spec.train.rankThreshold = 1e-5f; // count every direction the update really has
    CpuBackend be(1);
    Recorder rec;
    Trainer t(spec, be, &rec);
    TrainerControl control;
    const RunOutcome outcome = t.run(control);
    QCOMPARE(QString::fromStdString(outcome.status), QString("finished"));
    const std::vector<std::pair<int64_t, std::string>> expected = {
        {3, "warm_start_switch"}, {7, "restart"}, {11, "restart"}};
    QCOMPARE(rec.events, expected);
    // During the warm start everything trains; afterwards only adapters and
    // the non-target tensors do.
    const ParameterCounts low = expectedCounts(spec, true);
    QCOMPARE(size_t(rec.last("params_trainable")), low.trainable);
    QVERIFY(std::isfinite(rec.last("val_loss")));
    // Two merges plus the live adapter: the update's rank exceeds r = 4,
    // which LoRA alone can never do.
    QVERIFY2(rec.last("rank_thr/layers.0.wq") > spec.method.rank,
             qPrintable(QString::number(rec.last("rank_thr/layers.0.wq"))));
}

void TestReLoRA::divergenceStopsWithoutTouchingWeights() {
    RunSpec spec = smallSpec(Method::FullRank);
    CpuBackend be(1);
    Recorder rec;
    Trainer t(spec, be, &rec);
    TrainerControl control;
    t.step();
    t.step();
    Parameter& w = *t.model().find("model.layers.1.mlp.up_proj.weight");
    auto poisoned = t.model().read(w);
    poisoned[5] = std::numeric_limits<float>::infinity();
    t.model().write(w, poisoned);
    const auto embedBefore = t.model().read(*t.model().find("model.embed_tokens.weight"));
    const RunOutcome outcome = t.run(control);
    QCOMPARE(QString::fromStdString(outcome.status), QString("failed"));
    QVERIFY2(outcome.message.find("diverged at step 3") != std::string::npos, outcome.message.c_str());
    QCOMPARE(outcome.steps, 2);
    QCOMPARE(t.model().read(*t.model().find("model.embed_tokens.weight")), embedBefore);
    QCOMPARE(rec.events.back().second, std::string("diverged"));
}

QTEST_GUILESS_MAIN(TestReLoRA)
#include "test_relora.moc"
