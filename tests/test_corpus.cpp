// Corpus loading, the train/validation split and the batch samplers.
#include "core/Corpus.h"

#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace relora;
namespace fs = std::filesystem;

namespace {

const char* kFortunes = "/usr/share/games/fortunes";

void writeFile(const fs::path& path, const std::string& bytes) {
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
}

// Printable text whose bytes identify their offset, so a wrong cut shows.
std::string text(size_t n, char first = 'a') {
    std::string s(n, ' ');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(first + i % 26);
    return s;
}

std::vector<int32_t> tokensOf(const std::string& s) {
    return {s.begin(), s.end()};
}

std::vector<int32_t> iota(size_t n) {
    std::vector<int32_t> v(n);
    std::iota(v.begin(), v.end(), 0);
    return v;
}

QStringList toQt(const std::vector<std::string>& v) {
    QStringList list;
    for (const std::string& s : v) list << QString::fromStdString(s);
    return list;
}

bool anyContains(const std::vector<std::string>& lines, const std::string& a, const std::string& b) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) {
        return l.find(a) != std::string::npos && l.find(b) != std::string::npos;
    });
}

}  // namespace

class TestCorpus : public QObject {
    Q_OBJECT

private slots:
    void looksLikeTextClassifies_data() {
        QTest::addColumn<QByteArray>("bytes");
        QTest::addColumn<bool>("expected");
        QTest::newRow("ascii") << QByteArray("Hello, world.\n\tIndented line.\r\n") << true;
        QTest::newRow("utf8 multibyte")
            << QByteArray("Gr\xC3\xBC\xC3\x9F" "e \xE2\x80\x94 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x99\x82") << true;
        QTest::newRow("rare backspace overstrike")
            << QByteArray::fromStdString(text(200) + "_\b") << true;
        QTest::newRow("empty") << QByteArray() << true;
        QTest::newRow("lone continuation byte") << QByteArray("abc\x80" "def") << false;
        QTest::newRow("truncated sequence") << QByteArray("abc\xE6\x97") << false;
        QTest::newRow("overlong slash") << QByteArray("\xC0\xAF") << false;
        QTest::newRow("surrogate") << QByteArray("\xED\xA0\x80") << false;
        QTest::newRow("above U+10FFFF") << QByteArray("\xF4\x90\x80\x80") << false;
        QTest::newRow("latin-1 umlaut") << QByteArray("Gr\xFC\xDF" "e") << false;
        QTest::newRow("NUL") << QByteArray("abc\0def", 7) << false;
        QTest::newRow("many controls") << QByteArray("ab\x01\x02\x03\x04" "cd") << false;
    }
    void looksLikeTextClassifies() {
        QFETCH(QByteArray, bytes);
        QFETCH(bool, expected);
        QCOMPARE(looksLikeText(bytes.toStdString()), expected);
    }

    void folderSkipsBinaryLinksAndEmptyFiles() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const fs::path root = tmp.path().toStdString();
        writeFile(root / "a.txt", text(1000));
        writeFile(root / "sub" / "b.txt", text(400, 'A'));
        writeFile(root / "c.dat", std::string("\x00\x00\x00\x02\x00\x01", 6));
        writeFile(root / "empty.txt", "");
        fs::create_symlink("a.txt", root / "link.u8");
        // Sorts before its target, which is still the one read.
        fs::create_symlink("a.txt", root / "0-link");
        // Sorts after sub/b.txt, so the real entry with the smaller path is read.
        fs::create_hard_link(root / "sub" / "b.txt", root / "z-hard.txt");
        fs::create_symlink("missing", root / "broken");

        const Corpus c = Corpus::load(root.string(), 0.1);
        const CorpusReport& r = c.report();
        const std::vector<std::string> read = {(root / "a.txt").string(),
                                               (root / "sub" / "b.txt").string()};
        QCOMPARE(toQt(r.filesRead), toQt(read));
        QCOMPARE(r.skipped.size(), size_t(6));
        QVERIFY(anyContains(r.skipped, (root / "c.dat").string(), "NUL"));
        QVERIFY(anyContains(r.skipped, (root / "empty.txt").string(), "empty"));
        QVERIFY(anyContains(r.skipped, (root / "link.u8").string(), "link, same file as " + read[0]));
        QVERIFY(anyContains(r.skipped, (root / "0-link").string(), "link, same file as " + read[0]));
        QVERIFY(anyContains(r.skipped, (root / "z-hard.txt").string(), "same file as " + read[1]));
        QVERIFY(anyContains(r.skipped, (root / "broken").string(), "broken link"));
        QCOMPARE(r.trainTokens, size_t(900 + 360));
        QCOMPARE(r.validationTokens, size_t(100 + 40));
    }

    void splitTakesTheTailOfEveryFile_data() {
        QTest::addColumn<QList<int>>("sizes");
        QTest::addColumn<double>("fraction");
        QTest::addColumn<int>("validation");
        QTest::newRow("tenth of 1000") << QList<int>{1000} << 0.1 << 100;
        QTest::newRow("rounds down per file") << QList<int>{37, 1000, 19} << 0.25 << 9 + 250 + 4;
        QTest::newRow("0.29 of 100 is 29") << QList<int>{100} << 0.29 << 29;
        QTest::newRow("half") << QList<int>{10, 11} << 0.5 << 5 + 5;
    }
    void splitTakesTheTailOfEveryFile() {
        QFETCH(QList<int>, sizes);
        QFETCH(double, fraction);
        QFETCH(int, validation);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const fs::path root = tmp.path().toStdString();
        std::string train, held;
        for (int i = 0; i < sizes.size(); ++i) {
            const std::string body = text(sizes[i], static_cast<char>('a' + i));
            writeFile(root / ("f" + std::to_string(i) + ".txt"), body);
            const size_t cut = body.size() - static_cast<size_t>(body.size() * fraction + 1e-9);
            train += body.substr(0, cut);
            held += body.substr(cut);
        }
        const Corpus c = Corpus::load(root.string(), fraction);
        QCOMPARE(c.validation().size(), size_t(validation));
        QCOMPARE(c.train().size() + c.validation().size(),
                 size_t(std::accumulate(sizes.begin(), sizes.end(), 0)));
        QVERIFY(c.train() == tokensOf(train));
        QVERIFY(c.validation() == tokensOf(held));
        QCOMPARE(c.report().trainTokens, c.train().size());
        QCOMPARE(c.report().validationTokens, c.validation().size());
    }

    void singleFileSplitsLikeAFolderOfOne() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const fs::path file = fs::path(tmp.path().toStdString()) / "one.txt";
        const std::string body = text(503);
        writeFile(file, body);
        const Corpus c = Corpus::load(file.string(), 0.2);
        QCOMPARE(toQt(c.report().filesRead), toQt({file.string()}));
        QVERIFY(c.report().skipped.empty());
        QVERIFY(c.train() == tokensOf(body.substr(0, 503 - 100)));
        QVERIFY(c.validation() == tokensOf(body.substr(503 - 100)));
    }

    void loadIsDeterministicAndSorted() {
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const fs::path root = tmp.path().toStdString();
        // Created in reverse order, so a listing in creation order would differ.
        for (const char* name : {"z/9.txt", "m.txt", "b/2.txt", "a.txt"}) {
            writeFile(root / name, std::string(name) + text(50));
        }
        const Corpus first = Corpus::load(root.string(), 0.1);
        const Corpus second = Corpus::load(root.string(), 0.1);
        const std::vector<std::string> sorted = {(root / "a.txt").string(),
                                                 (root / "b/2.txt").string(),
                                                 (root / "m.txt").string(),
                                                 (root / "z/9.txt").string()};
        QCOMPARE(toQt(first.report().filesRead), toQt(sorted));
        QVERIFY(first.train() == second.train());
        QVERIFY(first.validation() == second.validation());
        QCOMPARE(char(first.train().front()), 'a');
    }

    void loadErrorsNameThePath_data() {
        QTest::addColumn<QString>("setup");
        QTest::addColumn<QString>("reason");
        QTest::newRow("missing path") << "missing" << "does not exist";
        QTest::newRow("empty file") << "empty file" << "empty";
        QTest::newRow("binary file") << "binary file" << "not text";
        QTest::newRow("invalid utf8 file") << "latin-1 file" << "UTF-8";
        QTest::newRow("empty folder") << "empty folder" << "no text file";
        QTest::newRow("folder of binaries") << "binary folder" << "no text file";
        QTest::newRow("too small to split") << "tiny file" << "too small";
    }
    void loadErrorsNameThePath() {
        QFETCH(QString, setup);
        QFETCH(QString, reason);
        QTemporaryDir tmp;
        QVERIFY(tmp.isValid());
        const fs::path root = tmp.path().toStdString();
        fs::path target = root / "corpus";
        if (setup == "empty file") writeFile(target, "");
        if (setup == "binary file") writeFile(target, std::string("\x7F" "ELF\x02\x01\x00\x00", 8));
        if (setup == "latin-1 file") writeFile(target, "caf\xE9 cr\xE8me");
        if (setup == "empty folder") fs::create_directory(target);
        if (setup == "binary folder") writeFile(target / "x.dat", std::string(64, '\0'));
        if (setup == "tiny file") writeFile(target, "ten bytes!");
        try {
            Corpus::load(target.string(), 0.1);
            QFAIL("load did not throw");
        } catch (const std::runtime_error& e) {
            const QString message = QString::fromStdString(e.what());
            QVERIFY2(message.contains(QString::fromStdString(target.string())), e.what());
            QVERIFY2(message.contains(reason), e.what());
        }
    }

    void defaultFortunesCorpusSkipsIndexesAndLinks() {
        if (!fs::is_directory(kFortunes)) QSKIP("the fortunes package is not installed");
        const Corpus c = Corpus::load(kFortunes, 0.05);
        const CorpusReport& r = c.report();
        size_t dats = 0, links = 0, texts = 0;
        for (const auto& entry : fs::directory_iterator(kFortunes)) {
            const std::string name = entry.path().string();
            const bool isDat = entry.path().extension() == ".dat";
            const bool isLink = entry.is_symlink();
            dats += isDat;
            links += isLink;
            if (isDat || isLink) {
                QVERIFY2(anyContains(r.skipped, name + ":", ""), name.c_str());
            } else if (entry.is_regular_file()) {
                ++texts;
                QVERIFY2(std::count(r.filesRead.begin(), r.filesRead.end(), name) == 1, name.c_str());
            }
        }
        QVERIFY(dats > 0);
        QVERIFY(links > 0);
        QCOMPARE(r.filesRead.size(), texts);
        QCOMPARE(r.skipped.size(), dats + links);
        for (const std::string& f : r.filesRead) {
            QVERIFY2(!f.ends_with(".dat") && !f.ends_with(".u8"), f.c_str());
        }
        QVERIFY(c.train().size() > 1'000'000);
        QVERIFY(c.validation().size() > 50'000);
        QVERIFY(std::all_of(c.train().begin(), c.train().end(),
                            [](int32_t t) { return t >= 0 && t < 256; }));
    }

    void syntheticIsSeededAndInRange() {
        const Corpus a = Corpus::synthetic(10'000, 50, 7);
        const Corpus b = Corpus::synthetic(10'000, 50, 7);
        const Corpus other = Corpus::synthetic(10'000, 50, 8);
        QCOMPARE(a.train().size(), size_t(9'000));
        QCOMPARE(a.validation().size(), size_t(1'000));
        QVERIFY(a.train() == b.train());
        QVERIFY(a.validation() == b.validation());
        QVERIFY(a.train() != other.train());
        std::vector<size_t> counts(50);
        for (const int32_t t : a.train()) {
            QVERIFY(t >= 0 && t < 50);
            ++counts[size_t(t)];
        }
        // 180 expected per symbol; ±60 is over 4 standard deviations.
        for (const size_t n : counts) QVERIFY2(n > 120 && n < 240, std::to_string(n).c_str());
    }

    void samplerIsDeterministicAndResumable() {
        const std::vector<int32_t> tokens = iota(5'000);
        const size_t B = 4, T = 16;
        BatchSampler first(tokens, B, T, 42);
        BatchSampler second(tokens, B, T, 42);
        BatchSampler otherSeed(tokens, B, T, 43);
        std::vector<std::vector<int32_t>> history;
        std::vector<int32_t> in, tg, in2, tg2;
        for (int k = 0; k < 20; ++k) {
            QCOMPARE(first.position(), uint64_t(k));
            first.next(in, tg);
            second.next(in2, tg2);
            QCOMPARE(in.size(), B * T);
            QCOMPARE(tg.size(), B * T);
            QVERIFY(in == in2);
            QVERIFY(tg == tg2);
            for (size_t b = 0; b < B; ++b) {
                for (size_t t = 0; t < T; ++t) {
                    // Windows of consecutive tokens; targets are inputs shifted by one.
                    QCOMPARE(in[b * T + t], in[b * T] + int32_t(t));
                    QCOMPARE(tg[b * T + t], in[b * T + t] + 1);
                }
            }
            history.push_back(in);
        }
        otherSeed.next(in, tg);
        QVERIFY(in != history[0]);
        QVERIFY(history[0] != history[1]);

        BatchSampler resumed(tokens, B, T, 42);
        resumed.setPosition(13);
        for (int k = 13; k < 20; ++k) {
            resumed.next(in, tg);
            QVERIFY2(in == history[size_t(k)], std::to_string(k).c_str());
        }
        QCOMPARE(resumed.position(), uint64_t(20));
    }

    void samplerReachesBothEndsOfTheCorpus() {
        const size_t T = 8;
        const std::vector<int32_t> tokens = iota(T + 3);   // windows may start at 0, 1, 2
        BatchSampler sampler(tokens, 8, T, 1);
        std::set<int32_t> starts;
        std::vector<int32_t> in, tg;
        for (int k = 0; k < 50; ++k) {
            sampler.next(in, tg);
            for (size_t b = 0; b < 8; ++b) starts.insert(in[b * T]);
        }
        QCOMPARE(starts, (std::set<int32_t>{0, 1, 2}));
    }

    void samplerRejectsTooShortCorpus() {
        const std::vector<int32_t> shortTokens = iota(16);
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, BatchSampler(shortTokens, 2, 16, 1));
        const std::vector<int32_t> justEnough = iota(17);
        BatchSampler ok(justEnough, 2, 16, 1);
        std::vector<int32_t> in, tg;
        ok.next(in, tg);
        QCOMPARE(in.front(), 0);
        QCOMPARE(tg.back(), 16);
        try {
            BatchSampler(shortTokens, 2, 16, 1);
            QFAIL("the sampler accepted 16 tokens for context 16");
        } catch (const std::runtime_error& e) {
            QVERIFY2(std::string(e.what()).find("16 training tokens") != std::string::npos, e.what());
            QVERIFY2(std::string(e.what()).find("context+1 = 17") != std::string::npos, e.what());
        }
    }

    void validationBatchesShapes_data() {
        QTest::addColumn<int>("tokens");
        QTest::addColumn<int>("batch");
        QTest::addColumn<int>("context");
        QTest::addColumn<int>("maxBatches");
        QTest::addColumn<int>("batches");
        QTest::addColumn<int>("windowsPerBatch");
        QTest::newRow("capped by maxBatches") << 1001 << 4 << 10 << 8 << 8 << 4;
        QTest::newRow("all full batches") << 1001 << 4 << 10 << 100 << 25 << 4;
        QTest::newRow("incomplete last dropped") << 100 << 4 << 10 << 8 << 2 << 4;
        QTest::newRow("exact fit needs T+1") << 81 << 4 << 10 << 8 << 2 << 4;
        QTest::newRow("one short of a window") << 80 << 4 << 10 << 8 << 1 << 4;
        QTest::newRow("partial single batch") << 35 << 4 << 10 << 8 << 1 << 3;
        QTest::newRow("single window") << 11 << 4 << 10 << 8 << 1 << 1;
    }
    void validationBatchesShapes() {
        QFETCH(int, tokens);
        QFETCH(int, batch);
        QFETCH(int, context);
        QFETCH(int, maxBatches);
        QFETCH(int, batches);
        QFETCH(int, windowsPerBatch);
        const std::vector<int32_t> v = iota(size_t(tokens));
        const auto result = validationBatches(v, size_t(batch), size_t(context), size_t(maxBatches));
        QCOMPARE(result.size(), size_t(batches));
        for (size_t k = 0; k < result.size(); ++k) {
            const auto& [in, tg] = result[k];
            QCOMPARE(in.size(), size_t(windowsPerBatch * context));
            QCOMPARE(tg.size(), in.size());
            for (size_t w = 0; w < size_t(windowsPerBatch); ++w) {
                const auto start = int32_t((k * size_t(batch) + w) * size_t(context));
                for (size_t t = 0; t < size_t(context); ++t) {
                    QCOMPARE(in[w * size_t(context) + t], start + int32_t(t));
                    QCOMPARE(tg[w * size_t(context) + t], start + int32_t(t) + 1);
                }
            }
        }
        QVERIFY(validationBatches(v, size_t(batch), size_t(context), size_t(maxBatches)) == result);
    }

    void validationBatchesNeedOneWindow() {
        const std::vector<int32_t> v = iota(10);
        QVERIFY_THROWS_EXCEPTION(std::runtime_error, validationBatches(v, 4, 10, 8));
    }
};

QTEST_GUILESS_MAIN(TestCorpus)
#include "test_corpus.moc"
