// Rank metrics of ΔW, the LAPACK singular values behind them, and the JSON
// lines sink that records them.
#include "core/MetricsSink.h"
#include "core/RankMetrics.h"

#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

using namespace relora;

namespace {

// n×k matrix (row-major, double) with orthonormal columns: modified
// Gram-Schmidt on Gaussian columns, run twice for orthogonality to rounding.
std::vector<double> randomOrthonormal(size_t n, size_t k, std::mt19937_64& rng) {
    std::normal_distribution<double> normal;
    std::vector<double> q(n * k);
    for (double& v : q) v = normal(rng);
    for (int pass = 0; pass < 2; ++pass) {
        for (size_t j = 0; j < k; ++j) {
            for (size_t i = 0; i < j; ++i) {
                double dot = 0;
                for (size_t r = 0; r < n; ++r) dot += q[r * k + i] * q[r * k + j];
                for (size_t r = 0; r < n; ++r) q[r * k + j] -= dot * q[r * k + i];
            }
            double norm = 0;
            for (size_t r = 0; r < n; ++r) norm += q[r * k + j] * q[r * k + j];
            norm = std::sqrt(norm);
            for (size_t r = 0; r < n; ++r) q[r * k + j] /= norm;
        }
    }
    return q;
}

// rows×cols row-major matrix U diag(sigma) Vᵀ with random orthonormal U, V.
std::vector<float> withSpectrum(size_t rows, size_t cols, const std::vector<double>& sigma,
                                uint64_t seed) {
    std::mt19937_64 rng(seed);
    const size_t k = sigma.size();
    const std::vector<double> u = randomOrthonormal(rows, k, rng);
    const std::vector<double> v = randomOrthonormal(cols, k, rng);
    std::vector<float> a(rows * cols);
    for (size_t i = 0; i < rows; ++i) {
        for (size_t j = 0; j < cols; ++j) {
            double sum = 0;
            for (size_t l = 0; l < k; ++l) sum += u[i * k + l] * sigma[l] * v[j * k + l];
            a[i * cols + j] = static_cast<float>(sum);
        }
    }
    return a;
}

std::vector<float> equal(size_t n, float value) { return std::vector<float>(n, value); }

// Strings as QString, so that a failed comparison prints both sides.
QString str(const nlohmann::json& j) {
    return QString::fromStdString(j.is_string() ? j.get<std::string>() : j.dump());
}

std::vector<nlohmann::json> readJsonLines(const QString& path) {
    std::ifstream in(path.toStdString());
    std::vector<nlohmann::json> lines;
    for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
    return lines;
}

}  // namespace

class TestRankMetrics : public QObject {
    Q_OBJECT

private slots:
    void ranksOfKnownSpectra_data() {
        QTest::addColumn<std::vector<float>>("sigma");
        QTest::addColumn<double>("effective");
        QTest::addColumn<double>("stable");
        QTest::newRow("one equal value") << equal(1, 2.5f) << 1.0 << 1.0;
        QTest::newRow("4 equal values") << equal(4, 0.7f) << 4.0 << 4.0;
        QTest::newRow("768 equal values") << equal(768, 0.01f) << 768.0 << 768.0;
        QTest::newRow("one nonzero") << std::vector<float>{3, 0, 0, 0} << 1.0 << 1.0;
        // p = 2/3, 1/3: exp(H) = 3 / 2^(2/3).
        QTest::newRow("2, 1") << std::vector<float>{2, 1} << 3 / std::cbrt(4.0) << 1.25;
        // p = 8/15, 4/15, 2/15, 1/15: exp(H) = 15 / 2^(34/15); Σσ² = 85/64.
        QTest::newRow("halving")
            << std::vector<float>{1, 0.5f, 0.25f, 0.125f} << 15 / std::pow(2.0, 34.0 / 15)
            << 85.0 / 64;
        QTest::newRow("halving, any order")
            << std::vector<float>{0.25f, 1, 0.125f, 0.5f} << 15 / std::pow(2.0, 34.0 / 15)
            << 85.0 / 64;
        // Scaling the spectrum changes neither rank.
        QTest::newRow("halving, scaled by 8")
            << std::vector<float>{8, 4, 2, 1} << 15 / std::pow(2.0, 34.0 / 15) << 85.0 / 64;
        QTest::newRow("all zero") << equal(16, 0.0f) << 0.0 << 0.0;
        QTest::newRow("empty") << std::vector<float>{} << 0.0 << 0.0;
    }
    void ranksOfKnownSpectra() {
        QFETCH(std::vector<float>, sigma);
        QFETCH(double, effective);
        QFETCH(double, stable);
        QVERIFY2(std::abs(effectiveRank(sigma) - effective) <= 1e-9 * std::max(1.0, effective),
                 std::to_string(effectiveRank(sigma)).c_str());
        QVERIFY2(std::abs(stableRank(sigma) - stable) <= 1e-9 * std::max(1.0, stable),
                 std::to_string(stableRank(sigma)).c_str());
        const RankSummary s = summarizeSpectrum(sigma, 0.1f);
        QCOMPARE(s.effectiveRank, effectiveRank(sigma));
        QCOMPARE(s.stableRank, stableRank(sigma));
        QCOMPARE(s.thresholdRank, thresholdRank(sigma, 0.1f));
    }

    void thresholdRankCountsTheBoundary_data() {
        QTest::addColumn<std::vector<float>>("sigma");
        QTest::addColumn<float>("tau");
        QTest::addColumn<int>("expected");
        const std::vector<float> s{0.5f, 0.2f, 0.1f, 0.05f, 0.0f};
        QTest::newRow("σ == τ counts") << s << 0.1f << 3;
        QTest::newRow("just above a σ") << s << std::nextafter(0.1f, 1.0f) << 2;
        QTest::newRow("just below a σ") << s << std::nextafter(0.1f, 0.0f) << 3;
        QTest::newRow("above all") << s << 0.6f << 0;
        QTest::newRow("τ = 0 skips zeros") << s << 0.0f << 4;
        QTest::newRow("all zero, τ = 0") << equal(8, 0.0f) << 0.0f << 0;
        QTest::newRow("all zero") << equal(8, 0.0f) << 0.1f << 0;
    }
    void thresholdRankCountsTheBoundary() {
        QFETCH(std::vector<float>, sigma);
        QFETCH(float, tau);
        QFETCH(int, expected);
        QCOMPARE(thresholdRank(sigma, tau), expected);
        QCOMPARE(summarizeSpectrum(sigma, tau).thresholdRank, expected);
    }

    void singularValuesOfKnownMatrices_data() {
        QTest::addColumn<int>("rows");
        QTest::addColumn<int>("cols");
        QTest::newRow("square 8") << 8 << 8;
        QTest::newRow("tall 12x5") << 12 << 5;
        QTest::newRow("wide 5x12") << 5 << 12;
        QTest::newRow("tall 96x40") << 96 << 40;
        QTest::newRow("wide 40x96") << 40 << 96;
        QTest::newRow("row 1x7") << 1 << 7;
        QTest::newRow("column 7x1") << 7 << 1;
    }
    void singularValuesOfKnownMatrices() {
        QFETCH(int, rows);
        QFETCH(int, cols);
        const size_t k = size_t(std::min(rows, cols));
        std::vector<double> sigma(k);
        for (size_t i = 0; i < k; ++i) sigma[i] = 4.0 - 3.5 * double(i) / double(std::max<size_t>(k - 1, 1));
        const std::vector<float> a = withSpectrum(size_t(rows), size_t(cols), sigma, 1234 + k);
        const std::vector<float> got = singularValuesHost(a.data(), size_t(rows), size_t(cols));
        QCOMPARE(got.size(), k);
        for (size_t i = 0; i < k; ++i) {
            QVERIFY2(std::abs(got[i] - sigma[i]) <= 1e-4 * sigma[i],
                     (std::to_string(i) + ": " + std::to_string(got[i]) + " vs " +
                      std::to_string(sigma[i]))
                         .c_str());
        }
        QVERIFY(std::is_sorted(got.rbegin(), got.rend()));
    }

    void rankDeficientMatrixHasItsThresholdRank() {
        const std::vector<double> sigma{3, 2, 1, 0.5, 0.11, 0.09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
        const std::vector<float> a = withSpectrum(30, 20, sigma, 99);
        const std::vector<float> got = singularValuesHost(a.data(), 30, 20);
        QCOMPARE(got.size(), size_t(20));
        QCOMPARE(thresholdRank(got, 0.1f), 5);
        QCOMPARE(thresholdRank(got, 1e-3f), 6);
        for (size_t i = 6; i < got.size(); ++i) QVERIFY2(got[i] < 1e-5f, std::to_string(got[i]).c_str());
    }

    void singularValuesRejectNonFiniteInput() {
        std::vector<float> a(12, 1.0f);
        a[5] = std::numeric_limits<float>::quiet_NaN();
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, singularValuesHost(a.data(), 3, 4));
        a[5] = std::numeric_limits<float>::infinity();
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, singularValuesHost(a.data(), 3, 4));
        QVERIFY(singularValuesHost(a.data(), 0, 4).empty());
    }

    void jsonLinesSinkWritesParseableLines() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString path = tmp.filePath("run.jsonl");
        {
            JsonLinesSink sink(path.toStdString());
            sink.runStarted(R"({"name":"tiny","method":{"kind":"relora"}})", "cpu", "2 cores");
            sink.metrics({{"train_loss", 1, 5.25},
                          {"lr", 1, 1e-3},
                          {"grad_norm", 1, std::numeric_limits<double>::quiet_NaN()},
                          {"val_loss", 1, -std::numeric_limits<double>::infinity()}},
                         0.5);
            sink.spectrum(100, "layers.3.wq", {2.0f, 0.3f, std::numeric_limits<float>::infinity()});
            sink.event(100, "restart", "merge \xFF invalid UTF-8");
            sink.runFinished("finished", "done");
        }
        const std::vector<nlohmann::json> lines = readJsonLines(path);
        QCOMPARE(lines.size(), size_t(8));

        QCOMPARE(str(lines[0]["type"]), QString("run_started"));
        QCOMPARE(str(lines[0]["spec"]["method"]["kind"]), QString("relora"));
        QCOMPARE(str(lines[0]["backend"]), QString("cpu"));
        QCOMPARE(str(lines[0]["device"]), QString("2 cores"));

        QCOMPARE(str(lines[1]["type"]), QString("metric"));
        QCOMPARE(str(lines[1]["key"]), QString("train_loss"));
        QCOMPARE(lines[1]["step"].get<int64_t>(), int64_t(1));
        QCOMPARE(lines[1]["value"].get<double>(), 5.25);
        QCOMPARE(lines[1]["t"].get<double>(), 0.5);
        QCOMPARE(lines[2]["value"].get<double>(), 1e-3);
        QCOMPARE(str(lines[3]["key"]), QString("grad_norm"));
        QVERIFY(lines[3]["value"].is_null());
        QVERIFY(lines[4]["value"].is_null());

        QCOMPARE(str(lines[5]["type"]), QString("spectrum"));
        QCOMPARE(lines[5]["step"].get<int64_t>(), int64_t(100));
        QCOMPARE(str(lines[5]["matrix"]), QString("layers.3.wq"));
        QCOMPARE(lines[5]["sigma"].size(), size_t(3));
        QCOMPARE(lines[5]["sigma"][1].get<float>(), 0.3f);
        QVERIFY(lines[5]["sigma"][2].is_null());

        QCOMPARE(str(lines[6]["type"]), QString("event"));
        QCOMPARE(str(lines[6]["kind"]), QString("restart"));
        QVERIFY(lines[6]["detail"].get<std::string>().starts_with("merge "));

        QCOMPARE(str(lines[7]["type"]), QString("run_finished"));
        QCOMPARE(str(lines[7]["status"]), QString("finished"));
        QCOMPARE(str(lines[7]["message"]), QString("done"));
    }

    void jsonLinesSinkFlushesEventsAtOnce() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString path = tmp.filePath("live.jsonl");
        JsonLinesSink sink(path.toStdString());
        sink.metrics({{"train_loss", 7, 3.0}}, 1.0);
        sink.event(7, "diverged", "loss is NaN");
        // A reader (the GUI, tail -f) sees both lines while the run goes on.
        const std::vector<nlohmann::json> lines = readJsonLines(path);
        QCOMPARE(lines.size(), size_t(2));
        QCOMPARE(str(lines[1]["kind"]), QString("diverged"));
    }

    void jsonLinesSinkKeepsAnUnparsableSpecAsText() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const QString path = tmp.filePath("bad-spec.jsonl");
        JsonLinesSink(path.toStdString()).runStarted("{not json", "cpu", "");
        const std::vector<nlohmann::json> lines = readJsonLines(path);
        QCOMPARE(lines.size(), size_t(1));
        QCOMPARE(str(lines[0]["spec"]), QString("{not json"));
    }

    void jsonLinesSinkNamesAPathItCannotOpen() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const std::string path = tmp.filePath("no/such/folder/run.jsonl").toStdString();
        try {
            JsonLinesSink sink(path);
            QFAIL("the sink opened a file in a missing folder");
        } catch (const std::runtime_error& e) {
            QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
        }
    }
};

QTEST_GUILESS_MAIN(TestRankMetrics)
#include "test_rankmetrics.moc"
