// The experiments' run specs (core/Experiments.h): the per-preset defaults
// and the fields derived from the steps, the four headline runs differing
// only in name, method and warm start, a sweep's fractions turned into
// warm-start steps, the fraction syntax with its rejections, and finding a
// database's sweeps again from their runs.
#include "core/Experiments.h"

#include <nlohmann/json.hpp>

#include <QtTest>

#include <cmath>
#include <limits>

using namespace relora;
using namespace relora::experiments;


namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

QString qs(const std::string& s) { return QString::fromStdString(s); }
QString qs(Method m) { return qs(toString(m)); }

// The spec as JSON without the fields an experiment may change.
std::string withoutExperimentFields(const RunSpec& spec) {
    auto j = nlohmann::json::parse(toJson(spec));
    j.erase("name");
    j["method"].erase("kind");
    j["relora"].erase("warm_start_steps");
    return j.dump();
}

RunSpec sweepBase(int steps, const std::string& name = "study") {
    RunSpec s = experimentSpec("tiny");
    s.name = name;
    s.train.steps = steps;
    deriveFromSteps(s);
    return s;
}

std::vector<std::pair<int64_t, RunSpec>> numbered(const std::vector<RunSpec>& specs, int64_t firstId) {
    std::vector<std::pair<int64_t, RunSpec>> out;
    for (const RunSpec& s : specs) out.emplace_back(firstId++, s);
    return out;
}

}  // namespace

class TestExperiments : public QObject {
    Q_OBJECT

private slots:
    void presetSpecsHaveTheExperimentShapeAndValidate_data() {
        QTest::addColumn<QString>("preset");
        QTest::addColumn<int>("steps");
        QTest::addColumn<int>("rank");
        QTest::addColumn<int>("resetInterval");
        QTest::newRow("tiny") << "tiny" << 600 << 8 << 150;
        QTest::newRow("60m") << "60m" << 2000 << 128 << 500;
        QTest::newRow("130m") << "130m" << 2000 << 128 << 500;
    }
    void presetSpecsHaveTheExperimentShapeAndValidate() {
        QFETCH(QString, preset);
        QFETCH(int, steps);
        QFETCH(int, rank);
        QFETCH(int, resetInterval);
        const RunSpec spec = experimentSpec(preset.toStdString());
        QCOMPARE(qs(spec.name), preset);
        QCOMPARE(qs(spec.method.kind), qs(Method::ReLoRA));
        QCOMPARE(spec.train.steps, steps);
        QCOMPARE(spec.method.rank, rank);
        QCOMPARE(spec.relora.resetInterval, resetInterval);
        QCOMPARE(spec.optim.warmup, steps / 12);
        QCOMPARE(spec.train.evalInterval, steps / 6);
        // Every run of both experiments can start from it.
        std::vector<RunSpec> runs = headlineRuns(spec);
        for (const RunSpec& r : warmStartSweepRuns(spec, kDefaultSweepFractions)) runs.push_back(r);
        for (const RunSpec& r : runs) {
            const auto errors = validate(r, false);
            QVERIFY2(errors.empty(), qPrintable(qs(r.name + ": " + (errors.empty() ? "" : errors[0].field + " " + errors[0].message))));
        }
    }

    void unknownPresetHasNoExperiment() {
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, experimentSpec("huge"));
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, experimentSpec("custom"));
    }

    void derivingKeepsTheFieldsNamed() {
        RunSpec spec = experimentSpec("tiny");
        spec.train.steps = 1200;
        spec.relora.resetInterval = 7;
        spec.optim.warmup = 3;
        deriveFromSteps(spec, {"relora.reset_interval"});
        QCOMPARE(spec.relora.resetInterval, 7);
        QCOMPARE(spec.optim.warmup, 100);
        QCOMPARE(spec.relora.restartWarmup, 1);   // at most a quarter of the kept interval
        QCOMPARE(spec.train.evalInterval, 200);
    }

    void headlineRunsDifferOnlyInNameMethodAndWarmStart_data() {
        QTest::addColumn<QString>("baseName");
        QTest::addColumn<double>("warmStart");
        QTest::addColumn<int>("steps");
        QTest::addColumn<QString>("stem");
        QTest::addColumn<int>("warmStartSteps");
        QTest::addColumn<QString>("warmRunName");
        QTest::newRow("preset name, 25 %") << "tiny" << 0.25 << 600 << "tiny" << 150 << "tiny-relora-ws25";
        QTest::newRow("method suffix dropped") << "study-relora" << 0.1 << 40 << "study" << 4 << "study-relora-ws10";
        QTest::newRow("a headline run's name") << "x-relora-ws25" << 0.5 << 30 << "x" << 15 << "x-relora-ws50";
        QTest::newRow("rounded steps") << "r" << 0.33 << 40 << "r" << 13 << "r-relora-ws33";
    }
    void headlineRunsDifferOnlyInNameMethodAndWarmStart() {
        QFETCH(QString, baseName);
        QFETCH(double, warmStart);
        QFETCH(int, steps);
        QFETCH(QString, stem);
        QFETCH(int, warmStartSteps);
        QFETCH(QString, warmRunName);
        RunSpec base = experimentSpec("tiny");
        base.name = baseName.toStdString();
        base.method.kind = Method::LoRA;
        base.relora.warmStartSteps = 3;   // the base's own warm start is not kept
        base.train.steps = steps;
        const auto runs = headlineRuns(base, warmStart);
        QCOMPARE(runs.size(), size_t(4));
        const Method methods[] = {Method::FullRank, Method::LoRA, Method::ReLoRA, Method::ReLoRA};
        const QString names[] = {stem + "-full", stem + "-lora", stem + "-relora", warmRunName};
        const int warm[] = {0, 0, 0, warmStartSteps};
        for (size_t i = 0; i < 4; ++i) {
            QCOMPARE(qs(runs[i].name), names[i]);
            QCOMPARE(qs(runs[i].method.kind), qs(methods[i]));
            QCOMPARE(runs[i].relora.warmStartSteps, warm[i]);
            QCOMPARE(withoutExperimentFields(runs[i]), withoutExperimentFields(base));
        }
    }

    void headlineRejectsAWarmStartOutsideTheRun_data() {
        QTest::addColumn<double>("warmStart");
        QTest::newRow("none") << 0.0;
        QTest::newRow("all of it") << 1.0;
        QTest::newRow("negative") << -0.25;
        QTest::newRow("NaN") << kNaN;
    }
    void headlineRejectsAWarmStartOutsideTheRun() {
        QFETCH(double, warmStart);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, headlineRuns(experimentSpec("tiny"), warmStart));
    }

    void sweepTurnsFractionsIntoWarmStartSteps_data() {
        QTest::addColumn<std::vector<double>>("fractions");
        QTest::addColumn<int>("steps");
        QTest::addColumn<QStringList>("names");
        QTest::addColumn<std::vector<int>>("warmStartSteps");   // -1: the full-rank reference
        QTest::newRow("default") << kDefaultSweepFractions << 600
                                 << QStringList{"study-sweep-ws0", "study-sweep-ws10", "study-sweep-ws25", "study-sweep-ws50"}
                                 << std::vector<int>{0, 60, 150, 300};
        QTest::newRow("unordered, with 100 %") << std::vector<double>{0.5, 1, 0} << 40
                                               << QStringList{"study-sweep-ws0", "study-sweep-ws50", "study-sweep-full"}
                                               << std::vector<int>{0, 20, -1};
        QTest::newRow("one step, two fractions") << std::vector<double>{0.1, 0.11} << 10
                                                 << QStringList{"study-sweep-ws10"} << std::vector<int>{1};
        QTest::newRow("rounds up to the end") << std::vector<double>{0.99} << 40 << QStringList{"study-sweep-full"}
                                              << std::vector<int>{-1};
    }
    void sweepTurnsFractionsIntoWarmStartSteps() {
        QFETCH(std::vector<double>, fractions);
        QFETCH(int, steps);
        QFETCH(QStringList, names);
        QFETCH(std::vector<int>, warmStartSteps);
        RunSpec base = sweepBase(steps, "study-relora-ws25");   // the stem is "study"
        base.method.kind = Method::LoRA;
        const auto runs = warmStartSweepRuns(base, fractions);
        QCOMPARE(runs.size(), size_t(names.size()));
        for (size_t i = 0; i < runs.size(); ++i) {
            QCOMPARE(qs(runs[i].name), names[int(i)]);
            const bool reference = warmStartSteps[i] < 0;
            QCOMPARE(qs(runs[i].method.kind), qs(reference ? Method::FullRank : Method::ReLoRA));
            QCOMPARE(runs[i].relora.warmStartSteps, reference ? 0 : warmStartSteps[i]);
            QCOMPARE(switchFraction(runs[i]), reference ? 1.0 : double(warmStartSteps[i]) / steps);
            QCOMPARE(withoutExperimentFields(runs[i]), withoutExperimentFields(base));
        }
    }

    void sweepRejectsBadFractions_data() {
        QTest::addColumn<std::vector<double>>("fractions");
        QTest::newRow("none") << std::vector<double>{};
        QTest::newRow("above 1") << std::vector<double>{0, 1.5};
        QTest::newRow("negative") << std::vector<double>{-0.1};
        QTest::newRow("NaN") << std::vector<double>{0.25, kNaN};
    }
    void sweepRejectsBadFractions() {
        QFETCH(std::vector<double>, fractions);
        QVERIFY_THROWS_EXCEPTION(std::invalid_argument, warmStartSweepRuns(sweepBase(100), fractions));
    }

    void fractionsAreParsed_data() {
        QTest::addColumn<QString>("text");
        QTest::addColumn<bool>("barePercent");
        QTest::addColumn<std::vector<double>>("expected");   // empty: rejected
        QTest::newRow("GUI list") << "0, 10, 25, 50 %" << true << std::vector<double>{0, 0.1, 0.25, 0.5};
        QTest::newRow("spaces only") << " 7.5  100 " << true << std::vector<double>{0.075, 1};
        QTest::newRow("CLI list") << "0,0.1,25%" << false << std::vector<double>{0, 0.1, 0.25};
        QTest::newRow("CLI spaced percent") << "50 %" << false << std::vector<double>{0.5};
        QTest::newRow("empty") << "" << true << std::vector<double>{};
        QTest::newRow("only commas") << " , ," << false << std::vector<double>{};
        QTest::newRow("a word") << "10, abc" << true << std::vector<double>{};
        QTest::newRow("over 100 %") << "150" << true << std::vector<double>{};
        QTest::newRow("fraction over 1") << "1.5" << false << std::vector<double>{};
        QTest::newRow("negative") << "-5" << true << std::vector<double>{};
        QTest::newRow("trailing junk") << "5x" << true << std::vector<double>{};
        QTest::newRow("lone percent") << "%" << true << std::vector<double>{};
    }
    void fractionsAreParsed() {
        QFETCH(QString, text);
        QFETCH(bool, barePercent);
        QFETCH(std::vector<double>, expected);
        if (expected.empty()) {
            QVERIFY_THROWS_EXCEPTION(std::invalid_argument, parseFractions(text.toStdString(), barePercent));
            return;
        }
        const auto got = parseFractions(text.toStdString(), barePercent);
        QCOMPARE(got.size(), expected.size());
        for (size_t i = 0; i < got.size(); ++i) QCOMPARE(got[i], expected[i]);
    }

    void stemDropsOneExperimentSuffix_data() {
        QTest::addColumn<QString>("name");
        QTest::addColumn<QString>("stem");
        QTest::newRow("plain") << "mine" << "mine";
        QTest::newRow("method") << "mine-lora" << "mine";
        QTest::newRow("headline warm start") << "mine-relora-ws25" << "mine";
        QTest::newRow("sweep run") << "mine-sweep-ws10" << "mine";
        QTest::newRow("sweep reference") << "mine-sweep-full" << "mine";
        QTest::newRow("sweep") << "mine-sweep" << "mine";
        QTest::newRow("only a suffix") << "-full" << "-full";
        QTest::newRow("no number") << "mine-sweep-ws" << "mine-sweep-ws";
    }
    void stemDropsOneExperimentSuffix() {
        QFETCH(QString, name);
        QFETCH(QString, stem);
        QCOMPARE(qs(experimentStem(name.toStdString())), stem);
    }

    void sweepsAreFoundAgainFromTheirRuns() {
        const RunSpec base = sweepBase(40);
        const auto sweep = warmStartSweepRuns(base, {0, 0.25, 0.5, 1});
        std::vector<std::pair<int64_t, RunSpec>> runs;
        for (const auto& r : numbered(headlineRuns(base), 1)) runs.push_back(r);   // #1-#4: not a sweep
        for (const auto& r : numbered(sweep, 5)) runs.push_back(r);                // #5-#8
        RunSpec otherLr = base;
        otherLr.optim.lr *= 2;
        for (const auto& r : numbered(warmStartSweepRuns(otherLr, {0.75}), 9)) runs.push_back(r);   // #9: own base
        for (const auto& r : numbered(sweep, 10)) runs.push_back(r);               // #10-#13: queued again
        RunSpec lookalike = sweep[1];
        lookalike.method.kind = Method::LoRA;                                       // named like one, is not
        runs.emplace_back(14, lookalike);

        const auto found = findWarmStartSweeps(runs);
        QCOMPARE(found.size(), size_t(3));
        QCOMPARE(qs(found[0].stem), QString("study"));
        QCOMPARE(found[0].runs, (std::vector<int64_t>{5, 6, 7, 8}));
        QCOMPARE(found[1].runs, (std::vector<int64_t>{9}));
        QCOMPARE(found[2].runs, (std::vector<int64_t>{10, 11, 12, 13}));
    }
};

QTEST_GUILESS_MAIN(TestExperiments)
#include "test_experiments.moc"
