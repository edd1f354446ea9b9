// The run database (DESIGN §7): schema and pragmas, batched commits through
// the writer thread, incremental reads, the run lifecycle, crash recovery of
// a writer killed with SIGKILL, and clear errors (never damage) for files it
// cannot use: not SQLite, newer schema, read-only, locked, disk full.
#include "core/store/RunStore.h"

#include <QTemporaryDir>
#include <QtTest>

#include <sqlite3.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace relora;
using namespace relora::store;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// ---- raw SQLite, independent of the code under test -------------------------
struct Raw {
    sqlite3* db = nullptr;
    explicit Raw(const std::string& path, bool write = false) {
        const int rc = sqlite3_open_v2(path.c_str(), &db, write ? SQLITE_OPEN_READWRITE : SQLITE_OPEN_READONLY, nullptr);
        if (rc != SQLITE_OK) throw std::runtime_error("raw open failed: " + std::string(sqlite3_errstr(rc)));
        sqlite3_busy_timeout(db, 5000);
    }
    ~Raw() { sqlite3_close_v2(db); }
    int exec(const std::string& sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
    std::string text(const std::string& sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, sql.c_str(), -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("raw prepare failed: ") + sqlite3_errmsg(db));
        std::string out;
        if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0))
            out = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
        sqlite3_finalize(s);
        return out;
    }
    int64_t integer(const std::string& sql) { return std::stoll("0" + text(sql)); }
};

std::string readFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::string dbPath(const QTemporaryDir& dir, const char* name = "runs.sqlite") {
    return (fs::path(dir.path().toStdString()) / name).string();
}

std::vector<MetricPoint> stepPoints(int64_t step, int keys) {
    std::vector<MetricPoint> p;
    for (int k = 0; k < keys; ++k) p.push_back({"k" + std::to_string(k), step, step * 0.5 + k});
    return p;
}

// Runs `body` in a forked child; returns its exit code and what it wrote to
// the pipe it is given. The child never returns into the test framework.
struct ChildResult {
    int exitCode = -1;
    std::string output;
};
ChildResult inChild(const std::function<int(int fd)>& body) {
    int fds[2];
    if (::pipe(fds) != 0) return {};
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        int rc = 1;
        try {
            rc = body(fds[1]);
        } catch (const std::exception& e) {
            dprintf(fds[1], "exception: %s\n", e.what());
            rc = 90;
        }
        ::_exit(rc);
    }
    ::close(fds[1]);
    ChildResult r;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) r.output.append(buf, static_cast<size_t>(n));
    ::close(fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    r.exitCode = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

void say(int fd, const std::string& line) {
    const std::string l = line + "\n";
    (void)!::write(fd, l.data(), l.size());
}

// One run with some rows in every table.
int64_t populatedRun(const std::string& path, const std::string& name, int steps) {
    int64_t id;
    {
        RunStore store(path);
        id = store.createRun("{\"name\":\"" + name + "\"}", name, "lora");
    }
    StoreWriter w(path, id);
    w.runStarted("{}", "cpu", "test");
    for (int s = 1; s <= steps; ++s) w.metrics(stepPoints(s, 3), s * 0.1);
    w.spectrum(steps, "layers.0.wq", {3.f, 2.f, 1.f});
    w.event(steps, "restart", "merged");
    w.recordSnapshot(steps, "/tmp/" + name + ".h5");
    w.recordCheckpoint(steps, "/tmp/" + name + ".ckpt");
    w.runFinished("finished", "done");
    return id;
}

int64_t countRows(const std::string& path, const std::string& table, int64_t run) {
    Raw raw(path);
    return raw.integer("SELECT count(*) FROM " + table + " WHERE " + (table == "runs" ? "id" : "run_id") + " = " +
                       std::to_string(run));
}

}  // namespace

class TestStore : public QObject {
    Q_OBJECT
private slots:
    void schemaIsCreatedWithWalAndVersion();
    void writerCommits100kRowsInBatches();
    void rowsLandWithinTheCommitInterval();
    void seriesSinceStep_data();
    void seriesSinceStep();
    void dataVersionChangesOnCommit();
    void lifecycle_data();
    void lifecycle();
    void writerDrivesLifecycle();
    void killedWriterLeavesConsistentDatabase();
    void liveWriterIsNotInterrupted();
    void badFiles_data();
    void badFiles();
    void readOnly_data();
    void readOnly();
    void lockedByAnotherWriter();
    void diskFullKeepsCommittedRows();
    void fullQueueStallsInsteadOfDropping();
    void deleteRemovesEveryRow();
    void listRunsSummarises();
    void spectraEventsAndFiles();
    void csvExport();
};

void TestStore::schemaIsCreatedWithWalAndVersion() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    { RunStore store(path); }
    { RunStore again(path); }   // reopening must not migrate twice or fail
    Raw raw(path);
    QCOMPARE(raw.text("PRAGMA journal_mode"), std::string("wal"));
    QCOMPARE(raw.integer("PRAGMA user_version"), int64_t{kSchemaVersion});
    QCOMPARE(raw.integer("PRAGMA application_id"), int64_t{kApplicationId});
    for (const char* t : {"runs", "metrics", "spectra", "events", "snapshots", "checkpoints"})
        QVERIFY2(raw.integer(std::string("SELECT count(*) FROM sqlite_master WHERE type='table' AND name='") + t + "'") == 1, t);
    QVERIFY(raw.text("SELECT sql FROM sqlite_master WHERE name='metrics'").find("WITHOUT ROWID") != std::string::npos);
    // foreign_keys is on for the store's connection: a record for a run that
    // does not exist is refused.
    RunStore store(path);
    QVERIFY_THROWS_EXCEPTION(StoreError, store.recordSnapshot(12345, 1, "/x.h5"));
}

void TestStore::writerCommits100kRowsInBatches() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "big", "full");
    WriterStats stats;
    {
        StoreWriter w(path, id);
        w.runStarted("{}", "cpu", "test");
        for (int s = 1; s <= 10000; ++s) w.metrics(stepPoints(s, 10), s * 0.01);
        QVERIFY(w.flush(60s));
        stats = w.stats();
        QVERIFY(!w.error());
    }
    QCOMPARE(countRows(path, "metrics", id), int64_t{100000});
    QCOMPARE(stats.rowsCommitted, stats.rowsQueued);
    QCOMPARE(stats.rowsDropped, uint64_t{0});
    // Batches, not a transaction per row (10k rows per batch at most by size;
    // a few more by time).
    QVERIFY2(stats.commits >= 1 && stats.commits <= 100, qPrintable(QString::number(stats.commits)));
    Raw raw(path);
    QCOMPARE(raw.text("SELECT value FROM metrics WHERE run_id=" + std::to_string(id) + " AND key='k3' AND step=5000"),
             std::string("2503.0"));
    QCOMPARE(raw.text("SELECT wall FROM metrics WHERE run_id=" + std::to_string(id) + " AND key='k3' AND step=5000"),
             std::string("50.0"));
}

void TestStore::rowsLandWithinTheCommitInterval() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "r", "full");
    StoreWriter w(path, id, WriterOptions{.commitInterval = 100ms});
    w.metrics(stepPoints(1, 4), 0);
    RunReader reader(path);
    const auto t0 = std::chrono::steady_clock::now();
    while (reader.series(id, "k0").empty() && std::chrono::steady_clock::now() - t0 < 5s)
        std::this_thread::sleep_for(10ms);
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    QCOMPARE(reader.series(id, "k0").size(), size_t{1});   // without flush()
    QVERIFY2(waited < 1.0, qPrintable(QString::number(waited)));
}

void TestStore::seriesSinceStep_data() {
    QTest::addColumn<qint64>("since");
    QTest::addColumn<int>("rows");
    QTest::addColumn<qint64>("first");
    QTest::newRow("everything") << qint64(std::numeric_limits<int64_t>::min()) << 100 << qint64(1);
    QTest::newRow("since 0") << qint64(0) << 100 << qint64(1);
    QTest::newRow("since 50") << qint64(50) << 50 << qint64(51);
    QTest::newRow("since 99") << qint64(99) << 1 << qint64(100);
    QTest::newRow("since last") << qint64(100) << 0 << qint64(-1);
}

void TestStore::seriesSinceStep() {
    QFETCH(qint64, since);
    QFETCH(int, rows);
    QFETCH(qint64, first);
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    RunStore store(path);
    const int64_t a = store.createRun("{}", "a", "full"), b = store.createRun("{}", "b", "full");
    for (int64_t run : {a, b}) {
        StoreWriter w(path, run);
        for (int s = 1; s <= 100; ++s)
            w.metrics({{"train_loss", s, 10.0 - s * 0.01 + double(run)}, {"lr", s, 1e-3}}, s);
        QVERIFY(w.flush());
    }
    RunReader reader(path);
    const auto got = reader.series(a, "train_loss", since);
    QCOMPARE(int(got.size()), rows);
    if (rows > 0) {
        QCOMPARE(qint64(got.front().step), first);
        QCOMPARE(qint64(got.back().step), qint64(100));
        QCOMPARE(got.front().value, 10.0 - first * 0.01 + double(a));   // run a's rows, not b's
        for (size_t i = 1; i < got.size(); ++i) QVERIFY(got[i].step == got[i - 1].step + 1);
    }
    QCOMPARE(reader.latest(a, "train_loss")->step, int64_t{100});
    QVERIFY(!reader.latest(a, "nope"));
    QCOMPARE(reader.metricKeys(a), (std::vector<std::string>{"lr", "train_loss"}));
}

void TestStore::dataVersionChangesOnCommit() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    RunStore store(path);
    const int64_t id = store.createRun("{}", "a", "full");
    RunReader reader(path);
    const int64_t v0 = reader.dataVersion();
    QCOMPARE(reader.dataVersion(), v0);   // nothing happened
    reader.listRuns();
    QCOMPARE(reader.dataVersion(), v0);   // reading is not a change
    store.createRun("{}", "b", "full");   // another connection commits
    const int64_t v1 = reader.dataVersion();
    QVERIFY(v1 != v0);
    {
        StoreWriter w(path, id);
        w.metrics(stepPoints(1, 2), 0);
        QVERIFY(w.flush());
    }
    const int64_t v2 = reader.dataVersion();
    QVERIFY(v2 != v1);
    reader.deleteRun(id);                 // this reader's own write counts too
    QVERIFY(reader.dataVersion() != v2);
}

void TestStore::lifecycle_data() {
    QTest::addColumn<QStringList>("ops");
    QTest::addColumn<QString>("expected");   // final status
    QTest::addColumn<bool>("lastThrows");
    QTest::newRow("queued") << QStringList{} << "queued" << false;
    QTest::newRow("running -> finished") << QStringList{"run", "finished"} << "finished" << false;
    QTest::newRow("running -> failed") << QStringList{"run", "failed"} << "failed" << false;
    QTest::newRow("running -> stopped") << QStringList{"run", "stopped"} << "stopped" << false;
    QTest::newRow("queued -> failed (never started)") << QStringList{"failed"} << "failed" << false;
    QTest::newRow("queued -> stopped (cancelled)") << QStringList{"stopped"} << "stopped" << false;
    QTest::newRow("stopped -> running (resume)") << QStringList{"run", "stopped", "run"} << "running" << false;
    QTest::newRow("interrupted -> running (resume)") << QStringList{"run", "interrupted", "run"} << "running" << false;
    QTest::newRow("queued -> finished refused") << QStringList{"finished"} << "queued" << true;
    QTest::newRow("finished -> running refused") << QStringList{"run", "finished", "run"} << "finished" << true;
    QTest::newRow("finished twice refused") << QStringList{"run", "finished", "failed"} << "finished" << true;
    QTest::newRow("queued is not final") << QStringList{"run", "queued"} << "running" << true;
    QTest::newRow("unknown status") << QStringList{"run", "exploded"} << "running" << true;
}

void TestStore::lifecycle() {
    QFETCH(QStringList, ops);
    QFETCH(QString, expected);
    QFETCH(bool, lastThrows);
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    RunStore store(path);
    const int64_t id = store.createRun("{\"x\":1}", "life", "relora");
    bool threw = false;
    for (int i = 0; i < ops.size(); ++i) {
        try {
            if (ops[i] == "run")
                store.markRunning(id, "cpu", "2 threads");
            else
                store.finish(id, ops[i].toStdString(), "message " + std::to_string(i));
        } catch (const StoreError& e) {
            QVERIFY2(i == ops.size() - 1, e.what());   // only the last op may fail
            QCOMPARE(int(e.kind), int(StoreError::Kind::InvalidState));
            QVERIFY2(std::string(e.what()).find(path) == 0, e.what());
            threw = true;
        }
    }
    QCOMPARE(threw, lastThrows);
    RunReader reader(path);
    const auto r = reader.run(id);
    QVERIFY(r);
    QCOMPARE(QString::fromStdString(r->status), expected);
    QCOMPARE(r->name, std::string("life"));
    QCOMPARE(*reader.spec(id), std::string("{\"x\":1}"));
    if (expected == "running") {
        QVERIFY(r->live);                      // this process holds the lock
        QVERIFY(r->startedAt && !r->finishedAt);
        QCOMPARE(r->backend, std::string("cpu"));
    }
    if (expected != "queued" && expected != "running") QVERIFY(r->finishedAt);
}

void TestStore::writerDrivesLifecycle() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    RunStore store(path);
    const int64_t a = store.createRun("{}", "a", "lora"), b = store.createRun("{}", "b", "lora");
    {
        StoreWriter w(path, a);
        QVERIFY(fs::exists(runLockPath(path, a)));
        w.runStarted("{\"canonical\":true}", "cpu", "EPYC");
        QVERIFY(w.flush());
        RunReader reader(path);
        QCOMPARE(reader.run(a)->status, std::string("running"));
        QVERIFY(reader.run(a)->live);
        QCOMPARE(*reader.spec(a), std::string("{\"canonical\":true}"));   // the trainer's spec is kept
        w.runFinished("stopped", "stopped at step 3");
        QCOMPARE(reader.run(a)->status, std::string("stopped"));           // runFinished flushes
        QCOMPARE(reader.run(a)->message, std::string("stopped at step 3"));
        QVERIFY(!fs::exists(runLockPath(path, a)));
    }
    {
        StoreWriter w(path, b);
        w.runStarted("{}", "cpu", "EPYC");
    }   // destroyed without runFinished
    RunReader reader(path);
    QCOMPARE(reader.run(b)->status, std::string("interrupted"));
    QVERIFY(reader.run(b)->message.find("closed before the run ended") != std::string::npos);
    // A finished run takes no writer.
    store.markRunning(a, "cpu", "x");
    store.finish(a, RunStatus::Finished, "ok");
    try {
        StoreWriter w(path, a);
        QFAIL("a writer for a finished run must be refused");
    } catch (const StoreError& e) {
        QCOMPARE(int(e.kind), int(StoreError::Kind::InvalidState));
    }
}

void TestStore::killedWriterLeavesConsistentDatabase() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "doomed", "relora");
    int fds[2];
    QVERIFY(::pipe(fds) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(fds[0]);
        try {
            StoreWriter w(path, id, WriterOptions{.commitInterval = 20ms});
            w.runStarted("{}", "cpu", "child");
            for (int64_t step = 1;; ++step) {
                w.metrics(stepPoints(step, 10), step * 0.001);
                if (step % 100 == 0) {
                    w.spectrum(step, "layers.0.wq", {1.f, 0.5f});
                    w.event(step, "tick", "step " + std::to_string(step));
                    if (!w.flush()) ::_exit(3);
                    say(fds[1], std::to_string(step));   // committed up to here
                }
                if (step % 10 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
            }
        } catch (...) {
            ::_exit(2);
        }
    }
    ::close(fds[1]);
    // Wait until the child has committed at least 5 batches, then kill it
    // mid-flight (it keeps writing unflushed rows).
    int64_t committed = 0;
    std::string buffer;
    const auto t0 = std::chrono::steady_clock::now();
    while (committed < 500 && std::chrono::steady_clock::now() - t0 < 30s) {
        pollfd p{fds[0], POLLIN, 0};
        if (::poll(&p, 1, 100) <= 0) continue;
        char buf[256];
        const ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        buffer.append(buf, static_cast<size_t>(n));
        size_t nl;
        while ((nl = buffer.find('\n')) != std::string::npos) {
            committed = std::stoll(buffer.substr(0, nl));
            buffer.erase(0, nl + 1);
        }
    }
    std::this_thread::sleep_for(30ms);   // let it queue and commit some more
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(fds[0]);
    QVERIFY2(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child must die by SIGKILL, not exit");
    QVERIFY2(committed >= 500, qPrintable(QString("child committed only %1 steps").arg(committed)));

    const std::string run = std::to_string(id);
    {
        Raw raw(path);
        QCOMPARE(raw.text("PRAGMA integrity_check"), std::string("ok"));
        QCOMPARE(raw.text("SELECT status FROM runs WHERE id=" + run), std::string("running"));   // as the crash left it
    }
    // A reader shows it as interrupted without writing...
    QCOMPARE(RunReader(path).run(id)->status, std::string("interrupted"));
    // ...and the next writer to open the database records it.
    { RunStore store(path); }
    Raw raw(path);
    QCOMPARE(raw.text("SELECT status FROM runs WHERE id=" + run), std::string("interrupted"));
    QVERIFY(raw.text("SELECT message FROM runs WHERE id=" + run).find("ended without finishing") != std::string::npos);
    QVERIFY(!fs::exists(runLockPath(path, id)));
    // Everything flushed before the kill is there, for every key...
    for (int k = 0; k < 10; ++k) {
        QCOMPARE(raw.integer("SELECT count(*) FROM metrics WHERE run_id=" + run + " AND key='k" + std::to_string(k) +
                             "' AND step<=" + std::to_string(committed)),
                 committed);
    }
    QVERIFY(raw.integer("SELECT count(*) FROM events WHERE run_id=" + run) >= committed / 100);
    // ...and batches are atomic: no step has only some of its ten keys.
    QCOMPARE(raw.integer("SELECT count(*) FROM (SELECT step FROM metrics WHERE run_id=" + run +
                         " GROUP BY step HAVING count(*) != 10)"),
             int64_t{0});
    const int64_t maxStep = raw.integer("SELECT max(step) FROM metrics WHERE run_id=" + run);
    QCOMPARE(raw.integer("SELECT count(DISTINCT step) FROM metrics WHERE run_id=" + run), maxStep);   // no gaps
}

void TestStore::liveWriterIsNotInterrupted() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "alive", "full");
    // The live writer runs in a child (a forked child would share a lock of
    // ours: flock belongs to the open file, which fork duplicates).
    int ready[2], release[2];
    QVERIFY(::pipe(ready) == 0 && ::pipe(release) == 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        ::close(ready[0]);
        ::close(release[1]);
        try {
            StoreWriter w(path, id);
            w.runStarted("{}", "cpu", "child");
            if (!w.flush()) ::_exit(2);
            say(ready[1], "ready");
            char c;
            (void)!::read(release[0], &c, 1);   // until the parent is done
            w.runFinished("finished", "ok");
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    ::close(ready[1]);
    ::close(release[0]);
    char buf[16] = {};
    QVERIFY(::read(ready[0], buf, sizeof buf) > 0);

    { RunStore store(path); }   // recovery must leave a live run alone
    {
        Raw raw(path);
        QCOMPARE(raw.text("SELECT status FROM runs WHERE id=" + std::to_string(id)), std::string("running"));
    }
    QVERIFY(runIsLive(path, id));
    const auto r = RunReader(path).run(id);
    QCOMPARE(r->status, std::string("running"));
    QVERIFY(r->live);
    try {
        StoreWriter second(path, id);
        QFAIL("a second writer for a live run must be refused");
    } catch (const StoreError& e) {
        QCOMPARE(int(e.kind), int(StoreError::Kind::Locked));
        QVERIFY2(std::string(e.what()).find("being written by another process") != std::string::npos, e.what());
    }
    QVERIFY_THROWS_EXCEPTION(StoreError, RunStore(path).deleteRun(id));

    (void)!::write(release[1], "x", 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ::close(ready[0]);
    ::close(release[1]);
    QVERIFY(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    QCOMPARE(RunReader(path).run(id)->status, std::string("finished"));
    QVERIFY(!runIsLive(path, id));
}

void TestStore::badFiles_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<int>("errorKind");
    QTest::addColumn<QString>("phrase");
    QTest::newRow("text file named .sqlite") << "text" << int(StoreError::Kind::NotADatabase) << "not a SQLite database";
    QTest::newRow("newer schema") << "newer" << int(StoreError::Kind::NewerSchema)
                                  << "schema version 99 is newer than this program supports (1); upgrade ReLoRA Workbench";
    QTest::newRow("another program's database") << "foreign" << int(StoreError::Kind::NotADatabase) << "another program";
    QTest::newRow("a folder") << "folder" << int(StoreError::Kind::NotADatabase) << "is a folder";
    QTest::newRow("missing folder") << "nodir" << int(StoreError::Kind::NotFound) << "does not exist";
}

void TestStore::badFiles() {
    QFETCH(QString, kind);
    QFETCH(int, errorKind);
    QFETCH(QString, phrase);
    QTemporaryDir dir;
    std::string path = dbPath(dir);
    if (kind == "text") {
        std::ofstream(path) << std::string(200, 'x') << "\nthis is a text file, not a database\n";
    } else if (kind == "newer") {
        { RunStore store(path); store.createRun("{}", "precious", "full"); }
        Raw(path, true).exec("PRAGMA user_version = 99");
    } else if (kind == "foreign") {
        sqlite3* db = nullptr;
        sqlite3_open(path.c_str(), &db);
        sqlite3_exec(db, "CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES(1, 9.5);",
                     nullptr, nullptr, nullptr);
        sqlite3_close(db);
    } else if (kind == "folder") {
        fs::create_directory(path);
    } else if (kind == "nodir") {
        path = dbPath(dir, "missing/runs.sqlite");
    }
    const std::string before = fs::is_regular_file(path) ? readFile(path) : std::string();
    const auto expectError = [&](const std::function<void()>& f, bool reader) {
        try {
            f();
            QFAIL("expected a StoreError");
        } catch (const StoreError& e) {
            const std::string what = e.what();
            QVERIFY2(what.find(path) == 0, e.what());   // names the file
            if (reader && kind == "nodir") {
                QCOMPARE(int(e.kind), int(StoreError::Kind::NotFound));
            } else {
                QVERIFY2(what.find(phrase.toStdString()) != std::string::npos, e.what());
                QCOMPARE(int(e.kind), errorKind);
            }
        }
    };
    expectError([&] { RunStore store(path); }, false);
    expectError([&] { RunReader reader(path); }, true);
    expectError([&] { StoreWriter w(path, 1); }, false);
    // Nothing was written: not the file, and no -wal or lock files beside it.
    if (!before.empty()) QVERIFY(readFile(path) == before);
    if (kind != "newer") QVERIFY(!fs::exists(path + "-wal"));
    if (kind == "newer") {
        Raw raw(path);
        QCOMPARE(raw.text("SELECT name FROM runs"), std::string("precious"));
        QCOMPARE(raw.integer("PRAGMA user_version"), int64_t{99});
    }
}

void TestStore::readOnly_data() {
    QTest::addColumn<bool>("folderReadOnly");
    QTest::newRow("read-only file") << false;
    QTest::newRow("read-only folder") << true;
}

void TestStore::readOnly() {
    QFETCH(bool, folderReadOnly);
    QTemporaryDir dir;
    const fs::path sub = fs::path(dir.path().toStdString()) / "db";
    fs::create_directory(sub);
    const std::string path = (sub / "runs.sqlite").string();
    const int64_t id = populatedRun(path, "kept", 5);
    const std::string before = readFile(path);
    // root ignores permissions: check as "nobody" in a child process.
    const bool root = ::geteuid() == 0;
    ::chmod(dir.path().toLocal8Bit().constData(), 0755);
    ::chmod(path.c_str(), folderReadOnly ? 0666 : 0444);
    ::chmod(sub.c_str(), folderReadOnly ? 0555 : 0777);
    const ChildResult r = inChild([&](int fd) {
        if (root && (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0)) return 77;
        try {
            RunStore store(path);
            say(fd, "writer accepted");
            return 1;
        } catch (const StoreError& e) {
            say(fd, std::string("writer: ") + e.what());
            if (e.kind != StoreError::Kind::ReadOnly) return 2;
        }
        try {
            StoreWriter w(path, id);
            return 3;
        } catch (const StoreError& e) {
            if (e.kind != StoreError::Kind::ReadOnly) return 4;
        }
        // Reading still works.
        RunReader reader(path);
        const auto runs = reader.listRuns();
        say(fd, "reader: " + std::to_string(runs.size()) + " runs, " +
                    std::to_string(reader.series(id, "k0").size()) + " rows");
        try {
            reader.deleteRun(id);
            return 5;
        } catch (const StoreError& e) {
            say(fd, std::string("delete: ") + e.what());
        }
        return runs.size() == 1 ? 0 : 6;
    });
    ::chmod(sub.c_str(), 0755);
    ::chmod(path.c_str(), 0644);
    if (r.exitCode == 77) QSKIP("running as root and cannot switch to 'nobody' to test permissions");
    QVERIFY2(r.exitCode == 0, qPrintable(QString("exit %1: %2").arg(r.exitCode).arg(r.output.c_str())));
    qInfo("%s", r.output.c_str());
    QVERIFY2(r.output.find("read-only") != std::string::npos, r.output.c_str());
    QVERIFY2(r.output.find("reader: 1 runs, 5 rows") != std::string::npos, r.output.c_str());
    QVERIFY(readFile(path) == before);
}

void TestStore::lockedByAnotherWriter() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "waits", "full");
    Raw other(path, true);
    QCOMPARE(other.exec("BEGIN EXCLUSIVE"), SQLITE_OK);

    // Management calls wait busy_timeout, then say so.
    {
        RunStore store(path, StoreOptions{300ms});
        const auto t0 = std::chrono::steady_clock::now();
        try {
            store.createRun("{}", "x", "full");
            QFAIL("createRun must fail while another connection holds the write lock");
        } catch (const StoreError& e) {
            const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            QCOMPARE(int(e.kind), int(StoreError::Kind::Locked));
            QVERIFY2(std::string(e.what()).find("locked by another program") != std::string::npos, e.what());
            QVERIFY2(waited >= 0.25, qPrintable(QString::number(waited)));
        }
    }
    // The writer never throws into the trainer: it reports, keeps the rows and retries.
    StoreWriter w(path, id, WriterOptions{.commitInterval = 20ms, .busyTimeout = 200ms, .retryInterval = 50ms});
    w.runStarted("{}", "cpu", "test");
    for (int s = 1; s <= 100; ++s) w.metrics(stepPoints(s, 1), s);
    QVERIFY(!w.flush(3s));
    QVERIFY(w.error());
    QVERIFY2(w.error()->find("locked by another program") != std::string::npos, w.error()->c_str());
    QVERIFY(w.stats().failedCommits >= 1);
    QCOMPARE(other.exec("COMMIT"), SQLITE_OK);
    QVERIFY(w.flush(5s));
    QCOMPARE(countRows(path, "metrics", id), int64_t{100});
    QCOMPARE(w.stats().rowsDropped, uint64_t{0});
    QCOMPARE(RunReader(path).run(id)->status, std::string("running"));
}

void TestStore::diskFullKeepsCommittedRows() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "full disk", "full");
    // A file size limit stands in for a full disk: writes past it fail with
    // EFBIG exactly where ENOSPC would.
    const ChildResult r = inChild([&](int fd) {
        std::signal(SIGXFSZ, SIG_IGN);
        StoreWriter w(path, id, WriterOptions{.queueCapacity = 50'000, .commitInterval = 20ms, .retryInterval = 20ms});
        w.runStarted("{}", "cpu", "child");
        for (int s = 1; s <= 1000; ++s) w.metrics(stepPoints(s, 5), s);
        if (!w.flush()) return 2;
        say(fd, "committed 1000");
        off_t biggest = 0;
        for (const char* suffix : {"", "-wal"}) {
            struct stat st {};
            if (::stat((path + suffix).c_str(), &st) == 0) biggest = std::max(biggest, st.st_size);
        }
        const rlimit limit{rlim_t(biggest + 64 * 1024), rlim_t(biggest + 64 * 1024)};
        if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) return 3;
        const auto t0 = std::chrono::steady_clock::now();
        for (int s = 1001; !w.error() && std::chrono::steady_clock::now() - t0 < 20s; ++s)
            w.metrics(stepPoints(s, 5), s);   // never throws, whatever the disk does
        if (!w.error()) return 4;
        say(fd, "error: " + *w.error());
        return 0;
    });
    QVERIFY2(r.exitCode == 0, qPrintable(QString("exit %1: %2").arg(r.exitCode).arg(r.output.c_str())));
    qInfo("%s", r.output.c_str());
    QVERIFY2(r.output.find("disk is full") != std::string::npos, r.output.c_str());
    QVERIFY2(r.output.find(path) != std::string::npos, r.output.c_str());
    Raw raw(path);
    QCOMPARE(raw.text("PRAGMA integrity_check"), std::string("ok"));
    QCOMPARE(raw.integer("SELECT count(*) FROM metrics WHERE run_id=" + std::to_string(id) + " AND step<=1000"),
             int64_t{5000});
}

void TestStore::fullQueueStallsInsteadOfDropping() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "slow", "full");
    WriterStats stats;
    {
        StoreWriter w(path, id, WriterOptions{.queueCapacity = 50, .commitInterval = 10s, .commitRows = 1'000'000});
        w.runStarted("{}", "cpu", "test");
        const auto t0 = std::chrono::steady_clock::now();
        for (int s = 1; s <= 200; ++s) w.metrics(stepPoints(s, 10), s);
        const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        QVERIFY2(took < 5.0, qPrintable(QString::number(took)));   // a full queue wakes the writer at once
        w.runFinished("finished", "ok");
        stats = w.stats();
    }
    QVERIFY(stats.stalls > 0);
    QCOMPARE(stats.rowsDropped, uint64_t{0});
    QCOMPARE(countRows(path, "metrics", id), int64_t{2000});
    RunReader reader(path);
    bool reported = false;
    for (const auto& e : reader.events(id))
        reported = reported || (e.kind == "writer_stall" && e.detail.find("fell behind") != std::string::npos);
    QVERIFY2(reported, "the run must say that the writer fell behind");
}

void TestStore::deleteRemovesEveryRow() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t a = populatedRun(path, "a", 20), b = populatedRun(path, "b", 30);
    const char* tables[] = {"runs", "metrics", "spectra", "events", "snapshots", "checkpoints"};
    std::map<std::string, int64_t> bBefore;
    for (const char* t : tables) {
        QVERIFY2(countRows(path, t, a) > 0, t);
        bBefore[t] = countRows(path, t, b);
    }
    const DeletedRun d = RunStore(path).deleteRun(a);
    QCOMPARE(d.snapshotPaths, (std::vector<std::string>{"/tmp/a.h5"}));
    QCOMPARE(d.checkpointPaths, (std::vector<std::string>{"/tmp/a.ckpt"}));
    for (const char* t : tables) {
        QVERIFY2(countRows(path, t, a) == 0, t);
        QVERIFY2(countRows(path, t, b) == bBefore[t], t);
    }
    try {
        RunStore(path).deleteRun(a);
        QFAIL("deleting a deleted run must fail");
    } catch (const StoreError& e) {
        QCOMPARE(int(e.kind), int(StoreError::Kind::NotFound));
    }
    // The GUI's delete, through the reader; a live run is refused.
    RunStore store(path);
    const int64_t c = store.createRun("{}", "c", "full");
    store.markRunning(c, "cpu", "x");
    RunReader reader(path);
    QVERIFY_THROWS_EXCEPTION(StoreError, reader.deleteRun(c));
    reader.deleteRun(b);
    QCOMPARE(countRows(path, "metrics", b), int64_t{0});
    QCOMPARE(reader.listRuns().size(), size_t{1});
}

void TestStore::listRunsSummarises() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    RunStore store(path);
    const int64_t a = store.createRun("{}", "alpha", "relora"), b = store.createRun("{}", "beta", "full");
    {
        StoreWriter w(path, a);
        w.runStarted("{}", "cuda", "H100");
        for (int s = 1; s <= 50; ++s) w.metrics({{"train_loss", s, 5.0 - s * 0.01}}, s);
        w.metrics({{"val_loss", 10, 3.0}}, 0);
        w.metrics({{"val_loss", 20, 2.0}}, 0);
        w.metrics({{"val_loss", 30, 2.5}}, 0);
        w.metrics({{"train_loss", 51, std::nan("")}}, 51);   // a diverged step
        w.runFinished("failed", "diverged at step 51");
    }
    {
        StoreWriter w(path, b);
        w.metrics({{"lr", 7, 1e-3}}, 0);
    }
    const auto runs = RunReader(path).listRuns();
    QCOMPARE(runs.size(), size_t{2});
    const RunSummary& r = runs[0];
    QCOMPARE(r.id, a);
    QCOMPARE(r.name, std::string("alpha"));
    QCOMPARE(r.method, std::string("relora"));
    QCOMPARE(r.status, std::string("failed"));
    QCOMPARE(r.message, std::string("diverged at step 51"));
    QCOMPARE(r.backend, std::string("cuda"));
    QCOMPARE(r.device, std::string("H100"));
    QCOMPARE(*r.lastStep, int64_t{51});
    QVERIFY(std::isnan(*r.trainLoss));   // NaN is kept as NaN (stored as NULL)
    QCOMPARE(*r.valLoss, 2.5);
    QCOMPARE(*r.bestValLoss, 2.0);
    QVERIFY(r.createdAt > 1.6e9 && r.startedAt && r.finishedAt && *r.finishedAt >= *r.startedAt);
    QCOMPARE(runs[1].status, std::string("queued"));
    QCOMPARE(*runs[1].lastStep, int64_t{7});   // from any key when there is no train_loss
    QVERIFY(!runs[1].trainLoss && !runs[1].valLoss);
}

void TestStore::spectraEventsAndFiles() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    const int64_t id = RunStore(path).createRun("{}", "s", "relora");
    const std::vector<float> sigma = {4.5f, 1.25f, 0.1f, 1e-7f};
    {
        StoreWriter w(path, id);
        w.spectrum(10, "layers.0.wq", sigma);
        w.spectrum(10, "layers.1.wq", {1.f});
        w.spectrum(20, "layers.0.wq", {2.f, 1.f});
        w.event(5, "restart", "restart 1");
        w.event(9, "restart", "restart 2");
        w.recordSnapshot(20, "/data/s-20.h5");
        w.recordCheckpoint(20, "/data/s-20.ckpt");
        QVERIFY(w.flush());
    }
    RunReader reader(path);
    QCOMPARE(reader.spectrumSteps(id), (std::vector<int64_t>{10, 20}));
    QCOMPARE(reader.spectra(id).size(), size_t{3});
    const auto at10 = reader.spectra(id, 10);
    QCOMPARE(at10.size(), size_t{2});
    QCOMPARE(at10[1].matrix, std::string("layers.1.wq"));
    QCOMPARE(reader.spectra(id, std::nullopt, std::string("layers.0.wq")).size(), size_t{2});
    const auto one = reader.spectra(id, 10, std::string("layers.0.wq"));
    QCOMPARE(one.size(), size_t{1});
    QCOMPARE(one[0].sigma, sigma);   // bit-exact
    // The blob is plain little-endian float32, readable without this program.
    {
        Raw raw(path);
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(raw.db, "SELECT sigma FROM spectra WHERE step=10 AND matrix='layers.0.wq'", -1, &st, nullptr);
        QCOMPARE(sqlite3_step(st), SQLITE_ROW);
        QCOMPARE(sqlite3_column_bytes(st, 0), 16);
        const auto* bytes = static_cast<const unsigned char*>(sqlite3_column_blob(st, 0));
        uint32_t first = bytes[0] | bytes[1] << 8 | bytes[2] << 16 | uint32_t(bytes[3]) << 24;
        QCOMPARE(std::bit_cast<float>(first), 4.5f);
        sqlite3_finalize(st);
    }
    const auto events = reader.events(id);
    QCOMPARE(events.size(), size_t{2});
    QCOMPARE(events[0].kind, std::string("restart"));
    QCOMPARE(events[1].detail, std::string("restart 2"));
    QCOMPARE(events[1].step, int64_t{9});
    QVERIFY(events[1].wall > 1.6e9);
    const auto later = reader.events(id, events[0].id);   // incremental
    QCOMPARE(later.size(), size_t{1});
    QCOMPARE(later[0].id, events[1].id);
    QCOMPARE(reader.snapshots(id).size(), size_t{1});
    QCOMPARE(reader.snapshots(id)[0].path, std::string("/data/s-20.h5"));
    QCOMPARE(reader.checkpoints(id)[0].step, int64_t{20});
    RunStore(path).recordSnapshot(id, 40, "/data/s-40.h5");
    QCOMPARE(reader.snapshots(id).size(), size_t{2});
}

void TestStore::csvExport() {
    QTemporaryDir dir;
    const std::string path = dbPath(dir);
    RunStore store(path);
    const int64_t a = store.createRun("{}", "first", "full"), b = store.createRun("{}", "second, with comma", "lora");
    {
        StoreWriter w(path, a);
        w.metrics({{"a", 1, 0.5}, {"b", 2, 7}}, 0);
        w.metrics({{"a", 2, 0.25}, {"a", 3, 1e-9}}, 0);
        w.metrics({{"b", 4, -3}}, 0);
    }
    {
        StoreWriter w(path, b);
        w.metrics({{"a", 2, 9}}, 0);
    }
    RunReader reader(path);
    std::ostringstream one, cmp;
    reader.writeMetricsCsv(one, a);
    QCOMPARE(one.str(), std::string("step,a,b\n1,0.5,\n2,0.25,7\n3,1e-09,\n4,,-3\n"));
    reader.writeCompareCsv(cmp, {a, b}, "a");
    QCOMPARE(cmp.str(), std::string("step,first#1,\"second, with comma#2\"\n1,0.5,\n2,0.25,9\n3,1e-09,\n"));
}

QTEST_GUILESS_MAIN(TestStore)
#include "test_store.moc"
