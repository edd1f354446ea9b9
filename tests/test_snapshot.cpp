// HDF5 snapshots (DESIGN §8): h5py reads exactly the engine's weights under
// Hugging Face names with the right shapes, dtype, filters and attributes;
// LoRA targets carry the merged weight under the base name, so an
// independent PyTorch Llama loads the file and reproduces the engine's loss;
// files appear only complete (temporary name, then rename), and failures
// leave nothing behind.
#include "core/Trainer.h"
#include "core/cpu/CpuBackend.h"
#include "core/snapshot/Snapshot.h"

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace relora;
namespace fs = std::filesystem;

namespace {

RunSpec tinySpec(Method method, int rank = 4, std::vector<TargetMatrix> targets = {}) {
    RunSpec s = syntheticSpec(method, 32, 48, 2, 2, 16);
    s.method.rank = rank;
    s.method.alpha = 8;
    if (!targets.empty()) s.method.targets = targets;
    s.train.batch = 2;
    s.train.steps = 4;
    s.train.evalBatches = 2;
    s.optim.lr = 1e-2f;
    s.optim.warmup = 0;
    s.relora.restartSteps = {1};   // a merge happens within the two steps taken
    s.relora.restartWarmup = 0;
    return s;
}

// A .npy (format 1.0) of little-endian float32 or int32, C order.
template <typename T>
void saveNpy(const fs::path& path, const std::vector<size_t>& shape, const std::vector<T>& data) {
    std::string dims;
    for (size_t d : shape) dims += std::to_string(d) + ",";
    if (shape.size() > 1) dims.pop_back();
    std::string header = std::string("{'descr': '") + (std::is_floating_point_v<T> ? "<f4" : "<i4") +
                         "', 'fortran_order': False, 'shape': (" + dims + "), }";
    while ((10 + header.size() + 1) % 64 != 0) header += ' ';
    header += '\n';
    std::ofstream out(path, std::ios::binary);
    out.write("\x93NUMPY\x01\x00", 8);
    const uint16_t len = static_cast<uint16_t>(header.size());
    out.put(static_cast<char>(len & 0xff));
    out.put(static_cast<char>(len >> 8));
    out << header;
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size() * sizeof(T)));
}

struct PyResult {
    int exitCode = -1;
    QString out, err;
};

PyResult python(const QString& script, const QStringList& args) {
    QProcess py;
    py.start(RELORA_PYTHON, QStringList{QString(RELORA_SOURCE_DIR) + "/tests/parity/" + script} + args);
    PyResult r;
    if (!py.waitForFinished(300000)) return r;
    r.exitCode = py.exitStatus() == QProcess::NormalExit ? py.exitCode() : -2;
    r.out = QString::fromUtf8(py.readAllStandardOutput());
    r.err = QString::fromUtf8(py.readAllStandardError());
    return r;
}

// Everything the engine holds, as the snapshot should hold it: a .npy per
// dataset (merged weights computed here in float64) and the manifest.
nlohmann::json writeExpected(LlamaModel& model, const fs::path& dir, const nlohmann::json& attributes) {
    nlohmann::json datasets = nlohmann::json::object();
    int index = 0;
    const auto add = [&](const std::string& name, std::vector<size_t> shape, const std::vector<float>& v, double atol) {
        const std::string file = "t" + std::to_string(index++) + ".npy";
        saveNpy(dir / file, shape, v);
        datasets[name] = {{"file", file}, {"atol", atol}};
    };
    for (Parameter& p : model.parameters()) {
        const bool factor = p.name.find(".lora_") != std::string::npos;
        std::vector<size_t> shape = (p.isMatrix() || factor) ? std::vector<size_t>{p.rows, p.cols}
                                                              : std::vector<size_t>{p.rows};
        add(p.name, shape, model.read(p), 0.0);
    }
    int merged = 0;
    for (LinearPart* part : model.parts()) {
        if (!part->lora) continue;
        const std::string base = modulePath(part->layer, part->kind);
        const auto W = model.read(*part->weight), A = model.read(*part->lora->A), B = model.read(*part->lora->B);
        const size_t out = part->out, in = part->weight->cols, r = part->lora->rank;
        std::vector<float> eff(out * in);
        for (size_t i = 0; i < out; ++i)
            for (size_t j = 0; j < in; ++j) {
                double acc = 0;
                for (size_t k = 0; k < r; ++k) acc += double(B[i * r + k]) * double(A[k * in + j]);
                eff[i * in + j] = static_cast<float>(double(W[i * in + j]) + double(part->lora->scale) * acc);
            }
        add(base + ".base_layer.weight", {out, in}, W, 0.0);
        add(base + ".weight", {out, in}, eff, 1e-6);
        ++merged;
    }
    const nlohmann::json manifest = {{"datasets", datasets}, {"attributes", attributes}, {"merged", merged}};
    std::ofstream(dir / "manifest.json") << manifest.dump(1);
    return manifest;
}

double engineLoss(Trainer& t, const std::vector<int32_t>& in, const std::vector<int32_t>& tg) {
    Backend& be = t.backend();
    const size_t N = in.size();
    int32_t* tok = be.allocateInts(N);
    int32_t* tgt = be.allocateInts(N);
    be.uploadInts(tok, in.data(), N);
    be.uploadInts(tgt, tg.data(), N);
    t.model().forward(tok, tgt, static_cast<size_t>(t.spec().train.batch), false, 0);
    float sum = 0;
    be.download(&sum, t.model().lossSum(), 1);
    be.release(tok);
    be.release(tgt);
    return double(sum) / double(N);
}

SnapshotContents smallContents(int64_t step, size_t n = 1000) {
    SnapshotContents c;
    SnapshotTensor t;
    t.shape = {n / 10, 10};
    uint64_t x = 0x9E3779B97F4A7C15ull + uint64_t(step);   // random-looking: compresses poorly, like weights
    for (size_t i = 0; i < n; ++i) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        t.values.push_back(float(x >> 40) * 1e-7f);
    }
    c.tensors["model.embed_tokens.weight"] = t;
    c.attributes["format_version"] = int64_t{kSnapshotFormatVersion};
    c.attributes["step"] = step;
    c.attributes["spec"] = std::string("{}");
    return c;
}

}  // namespace

class TestSnapshot : public QObject {
    Q_OBJECT
private slots:
    void initTestCase();
    void h5pyReadsTheEngineWeights_data();
    void h5pyReadsTheEngineWeights();
    void checkerCatchesAMismatch();
    void readBackRoundTrips();
    void writesThroughATemporaryFile();
    void missingFolderThrowsAndLeavesNothing();
    void diskFullLeavesTheOldFile();
    void readErrors_data();
    void readErrors();
};

void TestSnapshot::initTestCase() {
    QProcess probe;
    probe.start(RELORA_PYTHON, {"-c", "import h5py, numpy, torch"});
    if (!probe.waitForFinished(60000) || probe.exitCode() != 0)
        QFAIL("Debian's python3-h5py, -numpy and -torch are needed: run packaging/install-deps.sh");
}

void TestSnapshot::h5pyReadsTheEngineWeights_data() {
    QTest::addColumn<int>("method");
    QTest::addColumn<int>("rank");
    QTest::addColumn<bool>("subset");
    QTest::newRow("full") << int(Method::FullRank) << 4 << false;
    QTest::newRow("lora") << int(Method::LoRA) << 4 << false;
    QTest::newRow("relora") << int(Method::ReLoRA) << 4 << false;
    QTest::newRow("lora r=1 on wq,wv,down") << int(Method::LoRA) << 1 << true;
}

void TestSnapshot::h5pyReadsTheEngineWeights() {
    QFETCH(int, method);
    QFETCH(int, rank);
    QFETCH(bool, subset);
    const RunSpec spec = tinySpec(Method(method), rank,
                                  subset ? std::vector{TargetMatrix::Wq, TargetMatrix::Wv, TargetMatrix::Down}
                                         : std::vector<TargetMatrix>{});
    CpuBackend backend(2);
    Trainer trainer(spec, backend);
    for (int i = 0; i < 3; ++i) trainer.step();   // ReLoRA merges at step 1 (LR 0 there), B trains at step 2
    LlamaModel& model = trainer.model();
    for (LinearPart* part : model.parts()) {
        if (!part->lora) continue;
        const auto b = model.read(*part->lora->B);
        QVERIFY2(std::any_of(b.begin(), b.end(), [](float x) { return x != 0.0f; }), "B must have trained");
    }
    QCOMPARE(model.hasLoRA(), Method(method) != Method::FullRank);

    QTemporaryDir dir;
    const fs::path root(dir.path().toStdString());
    const std::string path = (root / snapshotFileName(7, 2)).string();
    const std::string specJson = toJson(spec);
    writeSnapshot(path, model, 7, 2, toString(Method(method)), specJson);
    QVERIFY(fs::exists(path));
    QVERIFY(!fs::exists(path + ".tmp"));

    nlohmann::json attributes = {{"format_version", 1}, {"run_id", 7}, {"step", 2},
                                 {"method", toString(Method(method))}, {"spec", specJson},
                                 {"d_model", 32}, {"d_ff", 48}, {"heads", 2}, {"layers", 2},
                                 {"context", 16}, {"vocab", 256}, {"rope_theta", 10000.0}, {"norm_eps", 1e-6}};
    if (model.hasLoRA()) {
        attributes["lora_rank"] = rank;
        attributes["lora_scale"] = 8.0 / rank;
        attributes["lora_targets"] = subset ? "wq,wv,down" : "wq,wk,wv,wo,gate,up,down";
    }
    const fs::path expected = root / "expected";
    fs::create_directory(expected);
    const nlohmann::json manifest = writeExpected(model, expected, attributes);
    const size_t datasets = manifest["datasets"].size();
    const int merged = manifest["merged"];
    QCOMPARE(merged, Method(method) == Method::FullRank ? 0 : subset ? 6 : 14);

    const PyResult check = python("check_snapshot.py", {QString::fromStdString(path), QString::fromStdString(expected.string())});
    QVERIFY2(check.exitCode == 0, qPrintable(check.out + check.err));
    QVERIFY2(check.out.contains(QString("OK: %1 datasets, %2 merged weights, %3 attributes")
                                    .arg(datasets).arg(merged).arg(attributes.size())),
             qPrintable(check.out));

    // An independent PyTorch Llama loads the base names and gets the engine's loss.
    const auto& val = trainer.corpus().validation();
    const size_t B = size_t(spec.train.batch), T = size_t(spec.model.context), N = B * T;
    QVERIFY(val.size() > N);
    const std::vector<int32_t> inputs(val.begin(), val.begin() + long(N)), targets(val.begin() + 1, val.begin() + long(N) + 1);
    saveNpy(root / "inputs.npy", {B, T}, inputs);
    saveNpy(root / "targets.npy", {B, T}, targets);
    const double engine = engineLoss(trainer, inputs, targets);
    const PyResult torch = python("snapshot_loss.py", {QString::fromStdString(path), QString::fromStdString((root / "inputs.npy").string()),
                                                       QString::fromStdString((root / "targets.npy").string())});
    QVERIFY2(torch.exitCode == 0, qPrintable(torch.out + torch.err));
    const QStringList lines = torch.out.split('\n');
    QVERIFY(lines.size() >= 2 && lines[0].startsWith("loss "));
    const double reference = lines[0].mid(5).toDouble();
    const double rel = std::fabs(engine - reference) / std::fabs(reference);
    qInfo("engine %.8f  pytorch(float64, merged weights) %.8f  rel %.2e", engine, reference, rel);
    QVERIFY2(rel < 1e-4, qPrintable(QString("engine %1 vs torch %2").arg(engine).arg(reference)));
    QCOMPARE(lines[1], QString("tensors %1").arg(3 + 9 * spec.model.layers));   // every plain-model tensor
}

void TestSnapshot::checkerCatchesAMismatch() {
    // The checker must be able to fail: one value off by 1e-3 in one tensor.
    const RunSpec spec = tinySpec(Method::LoRA);
    CpuBackend backend(2);
    Trainer trainer(spec, backend);
    trainer.step();
    QTemporaryDir dir;
    const fs::path root(dir.path().toStdString());
    const std::string path = (root / "s.h5").string();
    writeSnapshot(path, trainer.model(), 1, 1, "lora", toJson(spec));
    Parameter* p = trainer.model().find("model.layers.1.mlp.up_proj.lora_A.weight");
    QVERIFY(p);
    std::vector<float> v = trainer.model().read(*p);
    v[5] += 1e-3f;
    trainer.model().write(*p, v);
    fs::create_directory(root / "expected");
    writeExpected(trainer.model(), root / "expected", {{"method", "full"}});
    const PyResult check = python("check_snapshot.py", {QString::fromStdString(path), QString::fromStdString((root / "expected").string())});
    QCOMPARE(check.exitCode, 1);
    QVERIFY2(check.out.contains("FAIL: model.layers.1.mlp.up_proj.lora_A.weight: values differ"), qPrintable(check.out));
    QVERIFY2(check.out.contains("FAIL: model.layers.1.mlp.up_proj.weight: values differ"), qPrintable(check.out));
    QVERIFY2(check.out.contains("FAIL: attribute method: 'lora', expected 'full'"), qPrintable(check.out));
}

void TestSnapshot::readBackRoundTrips() {
    const RunSpec spec = tinySpec(Method::ReLoRA);
    CpuBackend backend(2);
    Trainer trainer(spec, backend);
    for (int i = 0; i < 3; ++i) trainer.step();
    QTemporaryDir dir;
    const std::string path = (fs::path(dir.path().toStdString()) / "r.h5").string();
    const SnapshotContents captured = captureSnapshot(trainer.model(), 3, 2, "relora", toJson(spec));
    writeSnapshot(path, captured);
    const SnapshotContents back = readSnapshot(path);
    QCOMPARE(back.tensors.size(), captured.tensors.size());
    for (const auto& [name, t] : captured.tensors) {
        const SnapshotTensor* b = back.find(name);
        QVERIFY2(b, name.c_str());
        QCOMPARE(b->shape, t.shape);
        QVERIFY2(b->values == t.values, name.c_str());   // lossless
    }
    QCOMPARE(back.intAttribute("format_version"), int64_t{1});
    QCOMPARE(back.intAttribute("run_id"), int64_t{3});
    QCOMPARE(back.textAttribute("method"), std::string("relora"));
    QCOMPARE(back.textAttribute("spec"), toJson(spec));
    QCOMPARE(back.realAttribute("lora_scale"), 2.0);
    // Plain tensors are the engine's, bit for bit; vectors are 1-D.
    Parameter* norm = trainer.model().find("model.norm.weight");
    QCOMPARE(back.find("model.norm.weight")->shape, std::vector<size_t>{32});
    QVERIFY(back.find("model.norm.weight")->values == trainer.model().read(*norm));
    Parameter* w = trainer.model().find("model.layers.0.self_attn.q_proj.weight");
    QVERIFY(back.find("model.layers.0.self_attn.q_proj.base_layer.weight")->values == trainer.model().read(*w));
    QVERIFY(back.find("model.layers.0.self_attn.q_proj.weight")->values != trainer.model().read(*w));   // merged: B != 0
}

void TestSnapshot::writesThroughATemporaryFile() {
    QTemporaryDir dir;
    const std::string path = (fs::path(dir.path().toStdString()) / "a.h5").string();
    std::ofstream(path + ".tmp") << "left over by a crash";
    writeSnapshot(path, smallContents(1));
    QVERIFY(!fs::exists(path + ".tmp"));
    QCOMPARE(readSnapshot(path).intAttribute("step"), int64_t{1});
    const auto inode = [&] {
        struct stat st {};
        ::stat(path.c_str(), &st);
        return st.st_ino;
    };
    const auto before = inode();
    writeSnapshot(path, smallContents(2));   // replaces the file, by rename
    QVERIFY(!fs::exists(path + ".tmp"));
    QCOMPARE(readSnapshot(path).intAttribute("step"), int64_t{2});
    QVERIFY(inode() != before);
    QCOMPARE(std::distance(fs::directory_iterator(dir.path().toStdString()), fs::directory_iterator{}), long(1));
}

void TestSnapshot::missingFolderThrowsAndLeavesNothing() {
    QTemporaryDir dir;
    const fs::path missing = fs::path(dir.path().toStdString()) / "no" / "such" / "dir";
    const std::string path = (missing / "s.h5").string();
    try {
        writeSnapshot(path, smallContents(1));
        QFAIL("writing into a missing folder must throw");
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        QVERIFY2(what.find(path) != std::string::npos, e.what());
        QVERIFY2(what.find("does not exist") != std::string::npos, e.what());
    }
    QVERIFY(!fs::exists(path));
    QVERIFY(!fs::exists(path + ".tmp"));
    QVERIFY(fs::is_empty(dir.path().toStdString()));
}

void TestSnapshot::diskFullLeavesTheOldFile() {
    QTemporaryDir dir;
    const std::string path = (fs::path(dir.path().toStdString()) / "s.h5").string();
    writeSnapshot(path, smallContents(1));
    const auto good = readSnapshot(path);
    const SnapshotContents big = smallContents(2, 4'000'000);   // 16 MB of noise: far past the limit even compressed
    int fds[2];
    QVERIFY(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        std::signal(SIGXFSZ, SIG_IGN);
        const rlimit limit{256 * 1024, 256 * 1024};   // stands in for a full disk (EFBIG where ENOSPC would be)
        ::setrlimit(RLIMIT_FSIZE, &limit);
        std::string msg = "no exception";
        try {
            writeSnapshot(path, big);
        } catch (const std::runtime_error& e) {
            msg = e.what();
        }
        (void)!::write(fds[1], msg.data(), msg.size());
        ::_exit(0);
    }
    ::close(fds[1]);
    std::string msg;
    char buf[512];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) msg.append(buf, size_t(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    QVERIFY(WIFEXITED(status));
    qInfo("%s", msg.c_str());
    QVERIFY2(msg.find("cannot write snapshot '" + path + "'") == 0, msg.c_str());
    QVERIFY2(msg.find("disk is full") != std::string::npos, msg.c_str());
    QVERIFY(!fs::exists(path + ".tmp"));
    const auto after = readSnapshot(path);   // the old snapshot, intact
    QCOMPARE(after.intAttribute("step"), int64_t{1});
    QVERIFY(after.find("model.embed_tokens.weight")->values == good.find("model.embed_tokens.weight")->values);
}

void TestSnapshot::readErrors_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QString>("phrase");
    QTest::newRow("missing") << "missing" << "no such file";
    QTest::newRow("text file") << "text" << "not an HDF5 file";
    QTest::newRow("newer format") << "newer" << "format version 2 is newer than this program supports (1)";
}

void TestSnapshot::readErrors() {
    QFETCH(QString, kind);
    QFETCH(QString, phrase);
    QTemporaryDir dir;
    const std::string path = (fs::path(dir.path().toStdString()) / "x.h5").string();
    if (kind == "text") std::ofstream(path) << "not hdf5 at all\n";
    if (kind == "newer") {
        SnapshotContents c = smallContents(1);
        c.attributes["format_version"] = int64_t{2};
        writeSnapshot(path, c);
    }
    try {
        readSnapshot(path);
        QFAIL("expected an error");
    } catch (const std::runtime_error& e) {
        QVERIFY2(std::string(e.what()).find(path) != std::string::npos, e.what());
        QVERIFY2(std::string(e.what()).find(phrase.toStdString()) != std::string::npos, e.what());
    }
}

QTEST_GUILESS_MAIN(TestSnapshot)
#include "test_snapshot.moc"
