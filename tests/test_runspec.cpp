// Run spec: names, presets, JSON round trip, parse errors, overrides,
// validation rules and the ReLoRA restart schedule.
#include "core/RunSpec.h"

#include "core/Corpus.h"

#include <nlohmann/json.hpp>

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>

using namespace relora;

using Mutation = std::function<void(RunSpec&)>;
Q_DECLARE_METATYPE(Mutation)

namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
const char* const kMethods[] = {"full", "lora", "relora"};
const char* const kPresets[] = {"tiny", "60m", "130m"};

Method method(const QString& name) { return parseMethod(name.toStdString()).value(); }

QString qs(const std::string& s) { return QString::fromStdString(s); }

QString describe(const std::vector<SpecError>& errors) {
    QStringList lines;
    for (const SpecError& e : errors) lines << qs(e.field + ": " + e.message);
    return lines.join("; ");
}

bool hasField(const std::vector<SpecError>& errors, const QString& field) {
    return std::any_of(errors.begin(), errors.end(), [&](const SpecError& e) { return qs(e.field) == field; });
}

QStringList targetNames(const std::vector<TargetMatrix>& targets) {
    QStringList names;
    for (TargetMatrix t : targets) names << qs(toString(t));
    return names;
}

QList<int> toList(const std::vector<int>& v) { return QList<int>(v.begin(), v.end()); }

// Floats must come back bit for bit: QCOMPARE on floats is fuzzy.
#define COMPARE_EXACT(a, b)                                                                     \
    QVERIFY2((a) == (b), qPrintable(QStringLiteral(#a " = %1, expected %2")                     \
                                        .arg(double(a), 0, 'g', 10)                             \
                                        .arg(double(b), 0, 'g', 10)))

void compareSpecs(const RunSpec& a, const RunSpec& b) {
    QCOMPARE(a.schemaVersion, b.schemaVersion);
    QCOMPARE(qs(a.name), qs(b.name));
    QCOMPARE(qs(a.backend), qs(b.backend));
    QCOMPARE(qs(a.model.preset), qs(b.model.preset));
    QCOMPARE(a.model.dModel, b.model.dModel);
    QCOMPARE(a.model.dFF, b.model.dFF);
    QCOMPARE(a.model.heads, b.model.heads);
    QCOMPARE(a.model.layers, b.model.layers);
    QCOMPARE(a.model.context, b.model.context);
    QCOMPARE(a.model.vocab, b.model.vocab);
    COMPARE_EXACT(a.model.ropeTheta, b.model.ropeTheta);
    COMPARE_EXACT(a.model.normEps, b.model.normEps);
    COMPARE_EXACT(a.model.initStd, b.model.initStd);
    QCOMPARE(qs(a.data.corpus), qs(b.data.corpus));
    QCOMPARE(a.data.synthetic, b.data.synthetic);
    COMPARE_EXACT(a.data.validationFraction, b.data.validationFraction);
    QCOMPARE(qs(toString(a.method.kind)), qs(toString(b.method.kind)));
    QCOMPARE(targetNames(a.method.targets), targetNames(b.method.targets));
    QCOMPARE(a.method.rank, b.method.rank);
    COMPARE_EXACT(a.method.alpha, b.method.alpha);
    QCOMPARE(a.method.rankStabilised, b.method.rankStabilised);
    COMPARE_EXACT(a.method.dropout, b.method.dropout);
    QCOMPARE(a.relora.resetInterval, b.relora.resetInterval);
    QCOMPARE(toList(a.relora.restartSteps), toList(b.relora.restartSteps));
    QCOMPARE(a.relora.restartWarmup, b.relora.restartWarmup);
    QCOMPARE(qs(toString(a.relora.prune)), qs(toString(b.relora.prune)));
    COMPARE_EXACT(a.relora.pruneRatio, b.relora.pruneRatio);
    QCOMPARE(a.relora.warmStartSteps, b.relora.warmStartSteps);
    COMPARE_EXACT(a.optim.lr, b.optim.lr);
    COMPARE_EXACT(a.optim.minLrRatio, b.optim.minLrRatio);
    QCOMPARE(a.optim.warmup, b.optim.warmup);
    COMPARE_EXACT(a.optim.weightDecay, b.optim.weightDecay);
    COMPARE_EXACT(a.optim.beta1, b.optim.beta1);
    COMPARE_EXACT(a.optim.beta2, b.optim.beta2);
    COMPARE_EXACT(a.optim.eps, b.optim.eps);
    COMPARE_EXACT(a.optim.clip, b.optim.clip);
    QCOMPARE(a.train.batch, b.train.batch);
    QCOMPARE(a.train.steps, b.train.steps);
    QCOMPARE(a.train.seed, b.train.seed);
    QCOMPARE(a.train.evalInterval, b.train.evalInterval);
    QCOMPARE(a.train.evalBatches, b.train.evalBatches);
    QCOMPARE(a.train.logInterval, b.train.logInterval);
    COMPARE_EXACT(a.train.rankThreshold, b.train.rankThreshold);
    QCOMPARE(a.train.snapshotInterval, b.train.snapshotInterval);
    QCOMPARE(a.train.checkpointInterval, b.train.checkpointInterval);
    QCOMPARE(a.train.threads, b.train.threads);
}

// Every field away from its default, so a field that is not written or not
// read back shows up.
void changeEveryField(RunSpec& s) {
    s.name = "ünïcode \"quoted\" run";
    s.backend = "cpu";
    s.model.vocab = 300;
    s.model.ropeTheta = 500000.0f;
    s.model.normEps = 1e-5f;
    s.model.initStd = 0.013f;
    s.data.corpus = "/tmp/some corpus.txt";
    s.data.synthetic = true;
    s.data.validationFraction = 0.1;
    s.method.targets = {TargetMatrix::Wv, TargetMatrix::Wq, TargetMatrix::Down};
    s.method.rank = 8;
    s.method.alpha = 16.5f;
    s.method.rankStabilised = true;
    s.method.dropout = 0.05f;
    s.relora.resetInterval = 333;
    s.relora.restartSteps = {300, 700, 1100};
    s.relora.restartWarmup = 25;
    s.relora.prune = PruneMode::Random;
    s.relora.pruneRatio = 0.33f;
    s.relora.warmStartSteps = 200;
    s.optim.lr = 3.3e-4f;
    s.optim.minLrRatio = 0.05f;
    s.optim.warmup = 37;
    s.optim.weightDecay = 0.01f;
    s.optim.beta1 = 0.85f;
    s.optim.beta2 = 0.95f;
    s.optim.eps = 1e-7f;
    s.optim.clip = 0.5f;
    s.train.batch = 3;
    s.train.steps = 1234;
    s.train.seed = std::numeric_limits<uint64_t>::max();
    s.train.evalInterval = 50;
    s.train.evalBatches = 2;
    s.train.logInterval = 5;
    s.train.rankThreshold = 0.05f;
    s.train.snapshotInterval = 100;
    s.train.checkpointInterval = 200;
    s.train.threads = 2;
}

void leafPaths(const nlohmann::json& j, const std::string& prefix, QStringList& out) {
    if (!j.is_object()) {
        out << qs(prefix);
        return;
    }
    for (const auto& item : j.items()) leafPaths(item.value(), prefix.empty() ? item.key() : prefix + "." + item.key(), out);
}

void writeFile(const QString& path, const QByteArray& bytes) {
    QVERIFY(QDir().mkpath(QFileInfo(path).path()));
    QFile f(path);
    QVERIFY2(f.open(QIODevice::WriteOnly), qPrintable(path));
    QCOMPARE(f.write(bytes), bytes.size());
}

// Whether the corpus loader accepts the path, at the largest validation
// fraction validation allows, so that small test files have tokens to split.
// A spec that validates must load, and one the loader rejects must not validate.
bool loads(const QString& path) {
    try {
        Corpus::load(path.toStdString(), 0.5);
        return true;
    } catch (const std::runtime_error&) {
        return false;
    }
}

}  // namespace

class TestRunSpec : public QObject {
    Q_OBJECT

private slots:
    void enumNamesRoundTrip();
    void targetsLookup();
    void parseAliases_data();
    void parseAliases();
    void presets_data();
    void presets();
    void unknownPreset();
    void defaultSpecsAreValid_data();
    void defaultSpecsAreValid();
    void defaultCorpusValidates();
    void jsonHasDocumentedKeys();
    void roundTrip_data();
    void roundTrip();
    void partialSpecKeepsDefaults_data();
    void partialSpecKeepsDefaults();
    void lenientValues();
    void parseErrors_data();
    void parseErrors();
    void validationRules_data();
    void validationRules();
    void validationIgnoresUnusedFields_data();
    void validationIgnoresUnusedFields();
    void validationReportsEveryProblem();
    void rankBoundNamesSmallestMatrix_data();
    void rankBoundNamesSmallestMatrix();
    void corpusFile_data();
    void corpusFile();
    void corpusFolder_data();
    void corpusFolder();
    void corpusFolderLinkNotFollowed();
    void corpusMissingOrUnreadable();
    void overrides_data();
    void overrides();
    void overridesChainAndCreateSections();
    void overrideErrors_data();
    void overrideErrors();
    void restartSchedule_data();
    void restartSchedule();
};

void TestRunSpec::enumNamesRoundTrip() {
    for (Method m : {Method::FullRank, Method::LoRA, Method::ReLoRA})
        QVERIFY2(parseMethod(toString(m)) == m, toString(m).c_str());
    for (PruneMode p : {PruneMode::Reset, PruneMode::Random, PruneMode::Magnitude})
        QVERIFY2(parsePruneMode(toString(p)) == p, toString(p).c_str());
    QStringList names;
    for (int i = 0; i < kTargetCount; ++i) {
        const auto t = static_cast<TargetMatrix>(i);
        QVERIFY2(parseTarget(toString(t)) == t, toString(t).c_str());
        names << qs(toString(t));
    }
    QCOMPARE(names, QStringList({"wq", "wk", "wv", "wo", "gate", "up", "down"}));
    QCOMPARE(qs(toString(Method::FullRank)), QString("full"));
    QCOMPARE(qs(toString(PruneMode::Magnitude)), QString("magnitude"));
}

void TestRunSpec::targetsLookup() {
    RunSpec s = defaultSpec(Method::LoRA, "tiny");
    for (int i = 0; i < kTargetCount; ++i) QVERIFY(s.targets(static_cast<TargetMatrix>(i)));
    s.method.targets = {TargetMatrix::Wq, TargetMatrix::Down};
    QVERIFY(s.targets(TargetMatrix::Wq));
    QVERIFY(s.targets(TargetMatrix::Down));
    QVERIFY(!s.targets(TargetMatrix::Wk));
    QVERIFY(!s.targets(TargetMatrix::Up));
    QVERIFY(s.isLowRank());
    QVERIFY(!defaultSpec(Method::FullRank, "tiny").isLowRank());
}

void TestRunSpec::parseAliases_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("expected");   // empty: must not parse

    QTest::newRow("full-rank") << "method" << "full-rank" << "full";
    QTest::newRow("fullrank") << "method" << "FullRank" << "full";
    QTest::newRow("LoRA") << "method" << "LoRA" << "lora";
    QTest::newRow("RELORA") << "method" << "RELORA" << "relora";
    QTest::newRow("galore") << "method" << "galore" << "";
    QTest::newRow("empty method") << "method" << "" << "";
    QTest::newRow("Magnitude") << "prune" << "Magnitude" << "magnitude";
    QTest::newRow("half") << "prune" << "half" << "";
    QTest::newRow("q") << "target" << "q" << "wq";
    QTest::newRow("K") << "target" << "K" << "wk";
    QTest::newRow("v") << "target" << "v" << "wv";
    QTest::newRow("O") << "target" << "O" << "wo";
    QTest::newRow("WQ") << "target" << "WQ" << "wq";
    QTest::newRow("Gate") << "target" << "Gate" << "gate";
    QTest::newRow("wz") << "target" << "wz" << "";
    QTest::newRow("g") << "target" << "g" << "";
}

void TestRunSpec::parseAliases() {
    QFETCH(QString, kind);
    QFETCH(QString, text);
    QFETCH(QString, expected);
    const std::string s = text.toStdString();
    std::optional<std::string> parsed;
    if (kind == "method") {
        if (auto m = parseMethod(s)) parsed = toString(*m);
    } else if (kind == "prune") {
        if (auto p = parsePruneMode(s)) parsed = toString(*p);
    } else if (auto t = parseTarget(s)) {
        parsed = toString(*t);
    }
    QCOMPARE(parsed.has_value(), !expected.isEmpty());
    if (parsed) QCOMPARE(qs(*parsed), expected);
}

void TestRunSpec::presets_data() {
    QTest::addColumn<QString>("preset");
    QTest::addColumn<int>("dModel");
    QTest::addColumn<int>("dFF");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("layers");
    QTest::addColumn<int>("context");
    QTest::addColumn<int>("rank");
    QTest::addColumn<int>("batch");
    QTest::addColumn<float>("lr");

    QTest::newRow("tiny") << "tiny" << 256 << 688 << 4 << 4 << 256 << 32 << 8 << 1e-3f;
    QTest::newRow("60m") << "60m" << 512 << 1376 << 8 << 8 << 512 << 128 << 32 << 5e-4f;
    QTest::newRow("130m") << "130m" << 768 << 2048 << 12 << 12 << 512 << 128 << 32 << 3e-4f;
}

void TestRunSpec::presets() {
    QFETCH(QString, preset);
    QFETCH(int, dModel);
    QFETCH(int, dFF);
    QFETCH(int, heads);
    QFETCH(int, layers);
    QFETCH(int, context);
    QFETCH(int, rank);
    QFETCH(int, batch);
    QFETCH(float, lr);

    const RunSpec s = defaultSpec(Method::ReLoRA, preset.toStdString());
    QCOMPARE(qs(s.name), preset + "-relora");
    QCOMPARE(qs(s.model.preset), preset);
    QCOMPARE(s.model.dModel, dModel);
    QCOMPARE(s.model.dFF, dFF);
    QCOMPARE(s.model.heads, heads);
    QCOMPARE(s.model.layers, layers);
    QCOMPARE(s.model.context, context);
    QCOMPARE(s.model.vocab, 256);
    QCOMPARE(s.method.rank, rank);
    QCOMPARE(s.train.batch, batch);
    COMPARE_EXACT(s.optim.lr, lr);
    QCOMPARE(qs(toString(s.method.kind)), QString("relora"));
    QCOMPARE(int(s.method.targets.size()), kTargetCount);
    COMPARE_EXACT(s.method.alpha, 32.0f);
    QCOMPARE(s.optim.warmup, 100);
    QCOMPARE(s.train.steps, 2000);
    QCOMPARE(s.train.evalInterval, 100);
    QCOMPARE(s.relora.resetInterval, 500);
    QCOMPARE(s.relora.restartWarmup, 50);
    QCOMPARE(qs(toString(s.relora.prune)), QString("magnitude"));
    COMPARE_EXACT(s.relora.pruneRatio, 0.9f);

    // applyModelPreset moves a spec of another size onto the preset's sizes and rank.
    RunSpec other = defaultSpec(Method::LoRA, preset == "tiny" ? "130m" : "tiny");
    QVERIFY(applyModelPreset(other, preset.toStdString()));
    QCOMPARE(qs(other.model.preset), preset);
    QCOMPARE(other.model.dModel, dModel);
    QCOMPARE(other.model.dFF, dFF);
    QCOMPARE(other.model.heads, heads);
    QCOMPARE(other.model.layers, layers);
    QCOMPARE(other.model.context, context);
    QCOMPARE(other.method.rank, rank);
}

void TestRunSpec::unknownPreset() {
    QVERIFY_THROWS_EXCEPTION(std::invalid_argument, defaultSpec(Method::LoRA, "7b"));
    RunSpec s = defaultSpec(Method::LoRA, "tiny");
    QVERIFY(!applyModelPreset(s, "7b"));
    QVERIFY(!applyModelPreset(s, "custom"));
    QCOMPARE(s.model.dModel, 256);
    QCOMPARE(qs(s.model.preset), QString("tiny"));
}

void TestRunSpec::defaultSpecsAreValid_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<QString>("preset");
    for (const char* m : kMethods)
        for (const char* p : kPresets) QTest::addRow("%s %s", m, p) << QString(m) << QString(p);
}

void TestRunSpec::defaultSpecsAreValid() {
    QFETCH(QString, method);
    QFETCH(QString, preset);
    RunSpec s = defaultSpec(::method(method), preset.toStdString());
    s.data.synthetic = true;
    const auto errors = validate(s, true);
    QVERIFY2(errors.empty(), qPrintable(describe(errors)));
    QCOMPARE(qs(s.name), preset + "-" + method);
    QCOMPARE(qs(toString(s.method.kind)), method);
}

void TestRunSpec::defaultCorpusValidates() {
    const RunSpec s = defaultSpec(Method::ReLoRA, "tiny");
    if (!std::filesystem::exists(s.data.corpus)) QSKIP("Debian's fortunes package is not installed");
    const auto errors = validate(s, true);
    QVERIFY2(errors.empty(), qPrintable(describe(errors)));
}

void TestRunSpec::jsonHasDocumentedKeys() {
    const auto j = nlohmann::json::parse(toJson(defaultSpec(Method::ReLoRA, "tiny")));
    QStringList paths;
    leafPaths(j, "", paths);
    paths.sort();
    QStringList expected = {
        "schema_version", "name", "backend", "precision",
        "model.preset", "model.d_model", "model.d_ff", "model.heads", "model.layers", "model.context",
        "model.vocab", "model.rope_theta", "model.norm_eps", "model.init_std",
        "data.corpus", "data.synthetic", "data.validation_fraction",
        "method.kind", "method.targets", "method.rank", "method.alpha", "method.rank_stabilised",
        "method.dropout",
        "relora.reset_interval", "relora.restart_steps", "relora.restart_warmup", "relora.prune",
        "relora.prune_ratio", "relora.warm_start_steps",
        "optim.lr", "optim.min_lr_ratio", "optim.warmup", "optim.weight_decay", "optim.beta1",
        "optim.beta2", "optim.eps", "optim.clip",
        "train.batch", "train.steps", "train.seed", "train.eval_interval", "train.eval_batches",
        "train.log_interval", "train.rank_threshold", "train.snapshot_interval",
        "train.checkpoint_interval", "train.threads"};
    expected.sort();
    QCOMPARE(paths, expected);
    QCOMPARE(j["schema_version"].get<int>(), kRunSpecSchemaVersion);
    QCOMPARE(j["method"]["targets"].size(), size_t(kTargetCount));
    QVERIFY(j["relora"]["restart_steps"].is_array());
    // Floats are written as their shortest decimal, not as widened doubles.
    QCOMPARE(j["optim"]["lr"].get<double>(), 0.001);
    QCOMPARE(j["relora"]["prune_ratio"].get<double>(), 0.9);
}

void TestRunSpec::roundTrip_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<QString>("preset");
    QTest::addColumn<bool>("changeAll");
    for (const char* m : kMethods) {
        for (const char* p : kPresets) {
            QTest::addRow("%s %s defaults", m, p) << QString(m) << QString(p) << false;
            QTest::addRow("%s %s every field changed", m, p) << QString(m) << QString(p) << true;
        }
    }
}

void TestRunSpec::roundTrip() {
    QFETCH(QString, method);
    QFETCH(QString, preset);
    QFETCH(bool, changeAll);
    RunSpec spec = defaultSpec(::method(method), preset.toStdString());
    if (changeAll) changeEveryField(spec);
    RunSpec back;
    try {
        back = fromJson(toJson(spec));
    } catch (const SpecParseError& e) {
        QFAIL(e.what());
    }
    compareSpecs(back, spec);
    if (QTest::currentTestFailed()) return;
    QCOMPARE(qs(toJson(back, 0)), qs(toJson(spec, 0)));
}

void TestRunSpec::partialSpecKeepsDefaults_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<QString>("preset");
    for (const char* m : kMethods)
        for (const char* p : kPresets) QTest::addRow("%s %s", m, p) << QString(m) << QString(p);
}

void TestRunSpec::partialSpecKeepsDefaults() {
    QFETCH(QString, method);
    QFETCH(QString, preset);
    const std::string json = QStringLiteral(R"({"method": {"kind": "%1"}, "model": {"preset": "%2"}})")
                                 .arg(method, preset)
                                 .toStdString();
    compareSpecs(fromJson(json), defaultSpec(::method(method), preset.toStdString()));
}

void TestRunSpec::lenientValues() {
    compareSpecs(fromJson("{}"), defaultSpec(Method::FullRank, "tiny"));
    if (QTest::currentTestFailed()) return;

    // Floats take integers, integers take whole numbers in any notation.
    RunSpec s = fromJson(R"({"optim": {"lr": 1, "weight_decay": 0}, "train": {"steps": 2e3},
                             "data": {"validation_fraction": 0}})");
    COMPARE_EXACT(s.optim.lr, 1.0f);
    COMPARE_EXACT(s.optim.weightDecay, 0.0f);
    QCOMPARE(s.train.steps, 2000);
    COMPARE_EXACT(s.data.validationFraction, 0.0);

    // Enum names are case-insensitive, with the short target names.
    s = fromJson(R"({"method": {"kind": "ReLoRA", "targets": ["Q", "wV", "Gate"]}, "relora": {"prune": "RANDOM"}})");
    QCOMPARE(qs(toString(s.method.kind)), QString("relora"));
    QCOMPARE(targetNames(s.method.targets), QStringList({"wq", "wv", "gate"}));
    QCOMPARE(qs(toString(s.relora.prune)), QString("random"));

    // A custom model starts from tiny and keeps what it sets.
    s = fromJson(R"({"model": {"preset": "custom", "d_model": 384, "heads": 6}})");
    QCOMPARE(qs(s.model.preset), QString("custom"));
    QCOMPARE(s.model.dModel, 384);
    QCOMPARE(s.model.heads, 6);
    QCOMPARE(s.model.dFF, 688);
    const auto errors = validate(s, false);
    QVERIFY2(errors.empty(), qPrintable(describe(errors)));

    QCOMPARE(fromJson(R"({"schema_version": 1})").schemaVersion, 1);
}

void TestRunSpec::parseErrors_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("messagePart");

    QTest::newRow("bad syntax") << R"({"name": })" << "" << "column";
    QTest::newRow("trailing comma") << R"({"name": "x",})" << "" << "line 1";
    QTest::newRow("not an object") << "[1, 2]" << "" << "object";
    QTest::newRow("string for int") << R"({"model": {"d_model": "big"}})" << "model.d_model"
                                    << "expected an integer, got string";
    QTest::newRow("fraction for int") << R"({"train": {"steps": 10.5}})" << "train.steps" << "integer";
    QTest::newRow("int out of range") << R"({"train": {"steps": 1e12}})" << "train.steps" << "range";
    QTest::newRow("string for float") << R"({"optim": {"lr": "fast"}})" << "optim.lr"
                                      << "expected a number, got string";
    QTest::newRow("number for bool") << R"({"method": {"rank_stabilised": 1}})" << "method.rank_stabilised"
                                     << "got number";
    QTest::newRow("number for string") << R"({"name": 5})" << "name" << "expected a string";
    QTest::newRow("null for float") << R"({"optim": {"eps": null}})" << "optim.eps" << "got null";
    QTest::newRow("section not object") << R"({"model": 5})" << "model" << "expected an object";
    QTest::newRow("targets not array") << R"({"method": {"targets": "wq"}})" << "method.targets"
                                       << "expected an array";
    QTest::newRow("unknown top key") << R"({"nmae": "x"})" << "nmae" << "unknown field";
    QTest::newRow("unknown nested key") << R"({"optim": {"learning_rate": 0.1}})" << "optim.learning_rate"
                                        << "unknown field";
    QTest::newRow("bad method") << R"({"method": {"kind": "galore"}})" << "method.kind" << "galore";
    QTest::newRow("bad target") << R"({"method": {"targets": ["wq", "wz"]}})" << "method.targets[1]" << "wz";
    QTest::newRow("bad prune") << R"({"relora": {"prune": "half"}})" << "relora.prune" << "half";
    QTest::newRow("bad preset") << R"({"model": {"preset": "7b"}})" << "model.preset" << "7b";
    QTest::newRow("bad restart step") << R"({"relora": {"restart_steps": [500, "x"]}})"
                                      << "relora.restart_steps[1]" << "integer";
    QTest::newRow("future schema") << R"({"schema_version": 2})" << "schema_version" << "newer";
    QTest::newRow("schema zero") << R"({"schema_version": 0})" << "schema_version" << "between 1";
    QTest::newRow("negative seed") << R"({"train": {"seed": -1}})" << "train.seed" << "negative";
}

void TestRunSpec::parseErrors() {
    QFETCH(QString, json);
    QFETCH(QString, field);
    QFETCH(QString, messagePart);
    try {
        fromJson(json.toStdString());
        QFAIL("fromJson accepted a bad spec");
    } catch (const SpecParseError& e) {
        QCOMPARE(qs(e.field), field);
        QVERIFY2(QString(e.what()).startsWith(field), e.what());
        QVERIFY2(QString(e.what()).contains(messagePart), e.what());
    }
}

void TestRunSpec::validationRules_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<Mutation>("mutate");
    QTest::addColumn<QString>("field");
    const auto row = [](const char* name, const char* method, Mutation m, const char* field) {
        QTest::newRow(name) << QString(method) << m << QString(field);
    };

    row("schema version", "full", [](RunSpec& s) { s.schemaVersion = 2; }, "schema_version");
    row("empty name", "full", [](RunSpec& s) { s.name.clear(); }, "name");
    row("backend gpu", "full", [](RunSpec& s) { s.backend = "gpu"; }, "backend");
    row("precision fp16", "full", [](RunSpec& s) { s.precision = "fp16"; }, "precision");
    row("unknown preset", "full", [](RunSpec& s) { s.model.preset = "7b"; }, "model.preset");
    row("d_model 0", "full", [](RunSpec& s) { s.model.dModel = 0; }, "model.d_model");
    row("d_ff -1", "full", [](RunSpec& s) { s.model.dFF = -1; }, "model.d_ff");
    row("heads 0", "full", [](RunSpec& s) { s.model.heads = 0; }, "model.heads");
    row("layers 0", "full", [](RunSpec& s) { s.model.layers = 0; }, "model.layers");
    row("context 0", "full", [](RunSpec& s) { s.model.context = 0; }, "model.context");
    row("heads do not divide", "full", [](RunSpec& s) { s.model.heads = 6; }, "model.heads");
    row("odd head size", "full", [](RunSpec& s) { s.model.dModel = 132; }, "model.heads");
    row("vocab 255", "full", [](RunSpec& s) { s.model.vocab = 255; }, "model.vocab");
    row("vocab 0", "full", [](RunSpec& s) { s.model.vocab = 0; }, "model.vocab");
    row("rope_theta 0", "full", [](RunSpec& s) { s.model.ropeTheta = 0; }, "model.rope_theta");
    row("norm_eps negative", "full", [](RunSpec& s) { s.model.normEps = -1e-6f; }, "model.norm_eps");
    row("init_std 0", "full", [](RunSpec& s) { s.model.initStd = 0; }, "model.init_std");
    row("init_std NaN", "full", [](RunSpec& s) { s.model.initStd = kNaN; }, "model.init_std");
    row("corpus empty", "full", [](RunSpec& s) { s.data.corpus.clear(); }, "data.corpus");
    row("validation 0", "full", [](RunSpec& s) { s.data.validationFraction = 0; }, "data.validation_fraction");
    row("validation 0.6", "full", [](RunSpec& s) { s.data.validationFraction = 0.6; }, "data.validation_fraction");

    row("lora targets empty", "lora", [](RunSpec& s) { s.method.targets.clear(); }, "method.targets");
    row("relora targets empty", "relora", [](RunSpec& s) { s.method.targets.clear(); }, "method.targets");
    row("duplicate target", "lora",
        [](RunSpec& s) { s.method.targets = {TargetMatrix::Wq, TargetMatrix::Wv, TargetMatrix::Wq}; },
        "method.targets");
    row("rank 0", "lora", [](RunSpec& s) { s.method.rank = 0; }, "method.rank");
    row("relora rank 0", "relora", [](RunSpec& s) { s.method.rank = 0; }, "method.rank");
    row("rank above d_model", "lora", [](RunSpec& s) { s.method.rank = 257; }, "method.rank");
    row("rank above small d_ff", "lora",
        [](RunSpec& s) {
            s.model.dFF = 64;
            s.method.rank = 100;
        },
        "method.rank");
    row("alpha 0", "lora", [](RunSpec& s) { s.method.alpha = 0; }, "method.alpha");
    row("alpha negative", "relora", [](RunSpec& s) { s.method.alpha = -1; }, "method.alpha");
    row("dropout 1", "lora", [](RunSpec& s) { s.method.dropout = 1; }, "method.dropout");
    row("dropout negative", "lora", [](RunSpec& s) { s.method.dropout = -0.1f; }, "method.dropout");

    row("reset_interval 0", "relora", [](RunSpec& s) { s.relora.resetInterval = 0; }, "relora.reset_interval");
    row("reset_interval = steps", "relora", [](RunSpec& s) { s.relora.resetInterval = 2000; },
        "relora.reset_interval");
    row("no restart after warm start", "relora",
        [](RunSpec& s) {
            s.relora.warmStartSteps = 1600;
            s.relora.resetInterval = 400;
        },
        "relora.reset_interval");
    row("restart_steps decreasing", "relora", [](RunSpec& s) { s.relora.restartSteps = {900, 500}; },
        "relora.restart_steps");
    row("restart_steps repeated", "relora", [](RunSpec& s) { s.relora.restartSteps = {500, 500}; },
        "relora.restart_steps");
    row("restart at step 0", "relora", [](RunSpec& s) { s.relora.restartSteps = {0, 500}; },
        "relora.restart_steps");
    row("restart at the end", "relora", [](RunSpec& s) { s.relora.restartSteps = {500, 2000}; },
        "relora.restart_steps");
    row("restart during warm start", "relora",
        [](RunSpec& s) {
            s.relora.warmStartSteps = 600;
            s.relora.restartSteps = {500, 1000};
        },
        "relora.restart_steps");
    row("restart_warmup negative", "relora", [](RunSpec& s) { s.relora.restartWarmup = -1; },
        "relora.restart_warmup");
    row("restart_warmup = interval", "relora", [](RunSpec& s) { s.relora.restartWarmup = 500; },
        "relora.restart_warmup");
    row("restart_warmup >= listed gap", "relora",
        [](RunSpec& s) { s.relora.restartSteps = {500, 550, 1500}; }, "relora.restart_warmup");
    row("magnitude ratio 1.5", "relora", [](RunSpec& s) { s.relora.pruneRatio = 1.5f; }, "relora.prune_ratio");
    row("magnitude ratio NaN", "relora", [](RunSpec& s) { s.relora.pruneRatio = kNaN; }, "relora.prune_ratio");
    row("random ratio negative", "relora",
        [](RunSpec& s) {
            s.relora.prune = PruneMode::Random;
            s.relora.pruneRatio = -0.1f;
        },
        "relora.prune_ratio");
    row("warm start negative", "relora", [](RunSpec& s) { s.relora.warmStartSteps = -1; },
        "relora.warm_start_steps");
    row("warm start = steps", "relora", [](RunSpec& s) { s.relora.warmStartSteps = 2000; },
        "relora.warm_start_steps");

    row("lr 0", "full", [](RunSpec& s) { s.optim.lr = 0; }, "optim.lr");
    row("lr negative", "full", [](RunSpec& s) { s.optim.lr = -1e-3f; }, "optim.lr");
    row("lr NaN", "full", [](RunSpec& s) { s.optim.lr = kNaN; }, "optim.lr");
    row("lr inf", "full", [](RunSpec& s) { s.optim.lr = kInf; }, "optim.lr");
    row("min_lr_ratio negative", "full", [](RunSpec& s) { s.optim.minLrRatio = -0.1f; }, "optim.min_lr_ratio");
    row("min_lr_ratio 1.5", "full", [](RunSpec& s) { s.optim.minLrRatio = 1.5f; }, "optim.min_lr_ratio");
    row("warmup negative", "full", [](RunSpec& s) { s.optim.warmup = -1; }, "optim.warmup");
    row("warmup = steps", "full", [](RunSpec& s) { s.optim.warmup = 2000; }, "optim.warmup");
    row("weight_decay negative", "full", [](RunSpec& s) { s.optim.weightDecay = -0.01f; }, "optim.weight_decay");
    row("beta1 1", "full", [](RunSpec& s) { s.optim.beta1 = 1; }, "optim.beta1");
    row("beta1 negative", "full", [](RunSpec& s) { s.optim.beta1 = -0.1f; }, "optim.beta1");
    row("beta2 1", "full", [](RunSpec& s) { s.optim.beta2 = 1; }, "optim.beta2");
    row("eps 0", "full", [](RunSpec& s) { s.optim.eps = 0; }, "optim.eps");
    row("clip inf", "full", [](RunSpec& s) { s.optim.clip = kInf; }, "optim.clip");

    row("batch 0", "full", [](RunSpec& s) { s.train.batch = 0; }, "train.batch");
    row("zero steps", "full", [](RunSpec& s) { s.train.steps = 0; }, "train.steps");
    row("eval_interval 0", "full", [](RunSpec& s) { s.train.evalInterval = 0; }, "train.eval_interval");
    row("eval_batches 0", "full", [](RunSpec& s) { s.train.evalBatches = 0; }, "train.eval_batches");
    row("log_interval 0", "full", [](RunSpec& s) { s.train.logInterval = 0; }, "train.log_interval");
    row("rank_threshold negative", "full", [](RunSpec& s) { s.train.rankThreshold = -0.1f; },
        "train.rank_threshold");
    row("snapshot_interval negative", "full", [](RunSpec& s) { s.train.snapshotInterval = -1; },
        "train.snapshot_interval");
    row("checkpoint_interval negative", "full", [](RunSpec& s) { s.train.checkpointInterval = -1; },
        "train.checkpoint_interval");
    row("threads negative", "full", [](RunSpec& s) { s.train.threads = -1; }, "train.threads");
}

void TestRunSpec::validationRules() {
    QFETCH(QString, method);
    QFETCH(Mutation, mutate);
    QFETCH(QString, field);

    RunSpec s = defaultSpec(::method(method), "tiny");
    const auto before = validate(s, false);
    QVERIFY2(before.empty(), qPrintable(describe(before)));
    mutate(s);
    const auto errors = validate(s, false);
    QVERIFY2(hasField(errors, field), qPrintable("expected an error for " + field + ", got: " + describe(errors)));
    for (const SpecError& e : errors) QVERIFY2(!e.message.empty(), e.field.c_str());
    // The field is named as in the JSON form, so the GUI and --set can point at it.
    QVERIFY_THROWS_NO_EXCEPTION(applyOverride(toJson(s), field.toStdString() + "=0"));
}

void TestRunSpec::validationIgnoresUnusedFields_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<Mutation>("mutate");

    QTest::newRow("full ignores rank and targets")
        << "full" << Mutation([](RunSpec& s) {
               s.method.rank = 0;
               s.method.targets.clear();
               s.method.dropout = 5;
           });
    QTest::newRow("lora ignores relora") << "lora" << Mutation([](RunSpec& s) {
        s.relora.resetInterval = 0;
        s.relora.restartWarmup = -1;
        s.relora.pruneRatio = 7;
    });
    QTest::newRow("reset ignores prune ratio") << "relora" << Mutation([](RunSpec& s) {
        s.relora.prune = PruneMode::Reset;
        s.relora.pruneRatio = 5;
    });
    QTest::newRow("explicit list ignores interval") << "relora" << Mutation([](RunSpec& s) {
        s.relora.resetInterval = 0;
        s.relora.restartSteps = {700, 1500};
    });
    QTest::newRow("rank at the bound") << "lora" << Mutation([](RunSpec& s) { s.method.rank = 256; });
    QTest::newRow("synthetic needs no corpus")
        << "full" << Mutation([](RunSpec& s) { s.data.corpus = "/nonexistent/corpus"; });
    QTest::newRow("zero intervals and threads") << "full" << Mutation([](RunSpec& s) {
        s.train.snapshotInterval = 0;
        s.train.checkpointInterval = 0;
        s.train.threads = 0;
        s.optim.clip = -1;   // disables clipping
    });
}

void TestRunSpec::validationIgnoresUnusedFields() {
    QFETCH(QString, method);
    QFETCH(Mutation, mutate);
    RunSpec s = defaultSpec(::method(method), "tiny");
    s.data.synthetic = true;
    mutate(s);
    const auto errors = validate(s, true);
    QVERIFY2(errors.empty(), qPrintable(describe(errors)));
}

void TestRunSpec::validationReportsEveryProblem() {
    RunSpec s = defaultSpec(Method::ReLoRA, "tiny");
    s.name.clear();
    s.method.rank = 0;
    s.optim.lr = -1;
    s.train.threads = -2;
    const auto errors = validate(s, false);
    QCOMPARE(int(errors.size()), 4);
    for (const char* field : {"name", "method.rank", "optim.lr", "train.threads"})
        QVERIFY2(hasField(errors, field), qPrintable(describe(errors)));
}

void TestRunSpec::rankBoundNamesSmallestMatrix_data() {
    QTest::addColumn<int>("dFF");
    QTest::addColumn<QStringList>("targets");
    QTest::addColumn<QString>("expected");

    QTest::newRow("attention") << 688 << QStringList{"wq", "gate"} << "between 1 and 256 (the smallest targeted matrix, wq, is 256x256)";
    QTest::newRow("gate when d_ff is small") << 128 << QStringList{"wq", "gate"}
                                             << "between 1 and 128 (the smallest targeted matrix, gate, is 128x256)";
    QTest::newRow("down when d_ff is small") << 128 << QStringList{"down", "wo"}
                                             << "between 1 and 128 (the smallest targeted matrix, down, is 256x128)";
}

void TestRunSpec::rankBoundNamesSmallestMatrix() {
    QFETCH(int, dFF);
    QFETCH(QStringList, targets);
    QFETCH(QString, expected);
    RunSpec s = defaultSpec(Method::LoRA, "tiny");
    s.model.dFF = dFF;
    s.method.targets.clear();
    for (const QString& t : targets) s.method.targets.push_back(parseTarget(t.toStdString()).value());
    s.method.rank = 300;
    const auto errors = validate(s, false);
    QCOMPARE(int(errors.size()), 1);
    QCOMPARE(qs(errors[0].field), QString("method.rank"));
    QVERIFY2(qs(errors[0].message).contains(expected), errors[0].message.c_str());
}

void TestRunSpec::corpusFile_data() {
    QTest::addColumn<QByteArray>("content");
    QTest::addColumn<bool>("valid");

    QTest::newRow("ascii") << QByteArray("Hello, world.\n") << true;
    QTest::newRow("utf-8") << QByteArray("naïve café — ∑ 😀\n") << true;
    QTest::newRow("utf-8 cut at 64 KiB") << QByteArray(65535, 'a') + "\xE2\x82\xAC" "tail" << true;
    QTest::newRow("empty") << QByteArray() << false;
    QTest::newRow("NUL byte") << QByteArray("text\0more", 9) << false;
    QTest::newRow("latin-1") << QByteArray("caf\xE9 au lait") << false;
    QTest::newRow("overlong slash") << QByteArray("a\xC0\xAF" "b") << false;
    QTest::newRow("surrogate") << QByteArray("a\xED\xA0\x80" "b") << false;
    QTest::newRow("truncated at end of file") << QByteArray("abc\xE2\x82") << false;
    // The head's cut-off character is judged by the bytes it has: E0 80 is overlong already.
    QTest::newRow("overlong form cut at 64 KiB") << QByteArray(65534, 'a') + "\xE0\x80\x80" "tail" << false;
    // The loader's control-character rule: a few are tolerated, more than 1% are not.
    QTest::newRow("rare backspace overstrike") << QByteArray(200, 'a') + "_\b\n" << true;
    QTest::newRow("many control characters") << QByteArray("ab\x01\x02\x03\x04" "cd") << false;
}

void TestRunSpec::corpusFile() {
    QFETCH(QByteArray, content);
    QFETCH(bool, valid);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    const QString path = dir.filePath("corpus.txt");
    writeFile(path, content);
    if (QTest::currentTestFailed()) return;

    RunSpec s = defaultSpec(Method::FullRank, "tiny");
    s.data.corpus = path.toStdString();
    const auto errors = validate(s, true);
    QCOMPARE(int(errors.size()), valid ? 0 : 1);
    if (!valid) {
        QCOMPARE(qs(errors[0].field), QString("data.corpus"));
        QVERIFY2(qs(errors[0].message).contains(path), errors[0].message.c_str());
    }
    QCOMPARE(loads(path), valid);
}

void TestRunSpec::corpusFolder_data() {
    QTest::addColumn<QStringList>("names");   // relative paths, one per file
    QTest::addColumn<QByteArrayList>("files");
    QTest::addColumn<bool>("valid");

    const QByteArray binary("\x00\x01\x02", 3);
    const QByteArray text("some text\n");
    QTest::newRow("empty folder") << QStringList{} << QByteArrayList{} << false;
    QTest::newRow("only binary and empty files") << QStringList{"f0", "f1"} << QByteArrayList{binary, QByteArray()}
                                                 << false;
    QTest::newRow("text among binary") << QStringList{"f0", "f1"} << QByteArrayList{binary, text} << true;
    // Corpus::load walks subfolders, so validation does too.
    QTest::newRow("text only in a subfolder") << QStringList{"f0", "sub/deeper/notes.txt"}
                                              << QByteArrayList{binary, text} << true;
    QTest::newRow("only binary in a subfolder") << QStringList{"sub/f0"} << QByteArrayList{binary} << false;
}

void TestRunSpec::corpusFolder() {
    QFETCH(QStringList, names);
    QFETCH(QByteArrayList, files);
    QFETCH(bool, valid);
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    for (int i = 0; i < files.size(); ++i) writeFile(dir.filePath(names[i]), files[i]);
    if (QTest::currentTestFailed()) return;

    RunSpec s = defaultSpec(Method::FullRank, "tiny");
    s.data.corpus = dir.path().toStdString();
    const auto errors = validate(s, true);
    QVERIFY2(int(errors.size()) == (valid ? 0 : 1), qPrintable(describe(errors)));
    if (!valid) QCOMPARE(qs(errors[0].field), QString("data.corpus"));
    QCOMPARE(loads(dir.path()), valid);
}

// The loader does not follow links to folders (they could form cycles), so
// text reached only through one does not make a corpus.
void TestRunSpec::corpusFolderLinkNotFollowed() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    writeFile(dir.filePath("elsewhere/notes.txt"), "some text\n");
    QVERIFY(QDir().mkpath(dir.filePath("corpus")));
    QVERIFY(QFile::link(dir.filePath("elsewhere"), dir.filePath("corpus/linked")));

    RunSpec s = defaultSpec(Method::FullRank, "tiny");
    s.data.corpus = dir.filePath("corpus").toStdString();
    const auto errors = validate(s, true);
    QVERIFY2(int(errors.size()) == 1, qPrintable(describe(errors)));
    QCOMPARE(qs(errors[0].field), QString("data.corpus"));
    QVERIFY(!loads(dir.filePath("corpus")));
}

void TestRunSpec::corpusMissingOrUnreadable() {
    QTemporaryDir dir;
    QVERIFY(dir.isValid());
    RunSpec s = defaultSpec(Method::FullRank, "tiny");
    s.data.corpus = dir.filePath("missing.txt").toStdString();
    auto errors = validate(s, true);
    QCOMPARE(int(errors.size()), 1);
    QVERIFY2(qs(errors[0].message).contains("does not exist"), errors[0].message.c_str());
    QVERIFY2(validate(s, false).empty(), "checkCorpus=false must not look at the disk");

    const QString path = dir.filePath("locked.txt");
    writeFile(path, "text\n");
    QVERIFY(QFile::setPermissions(path, QFileDevice::Permissions()));
    if (QFile f(path); f.open(QIODevice::ReadOnly))
        QSKIP("running with rights that read any file (root?): cannot make an unreadable file");
    s.data.corpus = path.toStdString();
    errors = validate(s, true);
    QCOMPARE(int(errors.size()), 1);
    QCOMPARE(qs(errors[0].field), QString("data.corpus"));
    QVERIFY2(qs(errors[0].message).contains("cannot be read"), errors[0].message.c_str());
}

void TestRunSpec::overrides_data() {
    QTest::addColumn<QString>("assignment");
    QTest::addColumn<QString>("pointer");
    QTest::addColumn<QString>("expected");   // JSON

    QTest::newRow("int") << "method.rank=64" << "/method/rank" << "64";
    QTest::newRow("float") << "optim.lr=3e-4" << "/optim/lr" << "3e-4";
    QTest::newRow("bool") << "method.rank_stabilised=true" << "/method/rank_stabilised" << "true";
    QTest::newRow("enum") << "method.kind=lora" << "/method/kind" << R"("lora")";
    QTest::newRow("string with space") << "name=my run" << "/name" << R"("my run")";
    QTest::newRow("string that looks numeric") << "name=123" << "/name" << R"("123")";
    QTest::newRow("quoted string") << R"(name="quoted")" << "/name" << R"("quoted")";
    QTest::newRow("preset 60m") << "model.preset=60m" << "/model/preset" << R"("60m")";
    QTest::newRow("spaces around") << " train.steps = 100" << "/train/steps" << "100";
    QTest::newRow("target list") << "method.targets=wq,wv" << "/method/targets" << R"(["wq", "wv"])";
    QTest::newRow("target list spaced") << "method.targets=wq, up ,down" << "/method/targets"
                                        << R"(["wq", "up", "down"])";
    QTest::newRow("trailing comma") << "method.targets=wq,wv," << "/method/targets" << R"(["wq", "wv"])";
    QTest::newRow("single target") << "method.targets=wq" << "/method/targets" << R"(["wq"])";
    QTest::newRow("restart list") << "relora.restart_steps=500,900" << "/relora/restart_steps" << "[500, 900]";
    QTest::newRow("restart JSON array") << "relora.restart_steps=[500,900]" << "/relora/restart_steps"
                                        << "[500, 900]";
    QTest::newRow("clear restart list") << "relora.restart_steps=" << "/relora/restart_steps" << "[]";
}

void TestRunSpec::overrides() {
    QFETCH(QString, assignment);
    QFETCH(QString, pointer);
    QFETCH(QString, expected);
    const std::string base = toJson(defaultSpec(Method::ReLoRA, "tiny"));
    const std::string result = applyOverride(base, assignment.toStdString());
    const auto j = nlohmann::json::parse(result);
    const auto& value = j.at(nlohmann::json::json_pointer(pointer.toStdString()));
    QCOMPARE(qs(value.dump()), qs(nlohmann::json::parse(expected.toStdString()).dump()));
    QVERIFY_THROWS_NO_EXCEPTION(fromJson(result));   // still a loadable spec
}

void TestRunSpec::overridesChainAndCreateSections() {
    std::string json = toJson(defaultSpec(Method::ReLoRA, "tiny"));
    json = applyOverride(json, "method.rank=8");
    json = applyOverride(json, "optim.lr=0.002");
    json = applyOverride(json, "method.targets=q,v");
    RunSpec s = fromJson(json);
    QCOMPARE(s.method.rank, 8);
    COMPARE_EXACT(s.optim.lr, 0.002f);
    QCOMPARE(targetNames(s.method.targets), QStringList({"wq", "wv"}));

    s = fromJson(applyOverride("{}", "model.d_model=512"));
    QCOMPARE(s.model.dModel, 512);
    QCOMPARE(s.model.dFF, 688);

    // A value of the wrong kind passes through and is caught, by name, on load.
    try {
        fromJson(applyOverride("{}", "method.rank=abc"));
        QFAIL("a string rank was accepted");
    } catch (const SpecParseError& e) {
        QCOMPARE(qs(e.field), QString("method.rank"));
    }
}

void TestRunSpec::overrideErrors_data() {
    QTest::addColumn<QString>("json");
    QTest::addColumn<QString>("assignment");
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("messagePart");

    const QString spec = qs(toJson(defaultSpec(Method::LoRA, "tiny")));
    QTest::newRow("typo in field") << spec << "method.rnak=3" << "method.rnak" << "unknown field";
    QTest::newRow("unknown section") << spec << "foo=1" << "foo" << "unknown field";
    QTest::newRow("path through a value") << spec << "method.rank.x=1" << "method.rank.x" << "unknown field";
    QTest::newRow("trailing dot") << spec << "method.=1" << "method." << "unknown field";
    QTest::newRow("missing =") << spec << "method.rank 64" << "" << "FIELD=VALUE";
    QTest::newRow("no field") << spec << "=5" << "" << "FIELD=VALUE";
    QTest::newRow("bad spec JSON") << "{" << "name=x" << "" << "invalid JSON";
}

void TestRunSpec::overrideErrors() {
    QFETCH(QString, json);
    QFETCH(QString, assignment);
    QFETCH(QString, field);
    QFETCH(QString, messagePart);
    try {
        applyOverride(json.toStdString(), assignment.toStdString());
        QFAIL("applyOverride accepted a bad assignment");
    } catch (const SpecParseError& e) {
        QCOMPARE(qs(e.field), field);
        QVERIFY2(QString(e.what()).contains(messagePart), e.what());
    }
}

void TestRunSpec::restartSchedule_data() {
    QTest::addColumn<QString>("method");
    QTest::addColumn<int>("steps");
    QTest::addColumn<int>("interval");
    QTest::addColumn<int>("warmStart");
    QTest::addColumn<QList<int>>("explicitSteps");
    QTest::addColumn<QList<int>>("expected");

    QTest::newRow("interval") << "relora" << 2000 << 500 << 0 << QList<int>{} << QList<int>{500, 1000, 1500};
    QTest::newRow("uneven interval") << "relora" << 2000 << 600 << 0 << QList<int>{} << QList<int>{600, 1200, 1800};
    QTest::newRow("warm start") << "relora" << 2000 << 500 << 500 << QList<int>{} << QList<int>{1000, 1500};
    QTest::newRow("warm start off grid") << "relora" << 2000 << 500 << 300 << QList<int>{}
                                         << QList<int>{800, 1300, 1800};
    QTest::newRow("explicit list") << "relora" << 2000 << 500 << 0 << QList<int>{300, 1200} << QList<int>{300, 1200};
    QTest::newRow("interval reaches the end") << "relora" << 2000 << 2000 << 0 << QList<int>{} << QList<int>{};
    QTest::newRow("invalid interval") << "relora" << 2000 << 0 << 0 << QList<int>{} << QList<int>{};
    QTest::newRow("lora never restarts") << "lora" << 2000 << 500 << 0 << QList<int>{300} << QList<int>{};
    QTest::newRow("full never restarts") << "full" << 2000 << 500 << 0 << QList<int>{} << QList<int>{};
}

void TestRunSpec::restartSchedule() {
    QFETCH(QString, method);
    QFETCH(int, steps);
    QFETCH(int, interval);
    QFETCH(int, warmStart);
    QFETCH(QList<int>, explicitSteps);
    QFETCH(QList<int>, expected);
    RunSpec s = defaultSpec(::method(method), "tiny");
    s.train.steps = steps;
    s.relora.resetInterval = interval;
    s.relora.warmStartSteps = warmStart;
    s.relora.restartSteps.assign(explicitSteps.begin(), explicitSteps.end());
    QCOMPARE(toList(s.restartSchedule()), expected);
}

QTEST_GUILESS_MAIN(TestRunSpec)
#include "test_runspec.moc"
