// StoreWriter: the trainer-facing sink. Sink calls append to an in-memory
// queue under a mutex (no SQLite, no syscalls in the common case); one thread
// owns the writer connection and commits what has accumulated every
// commitInterval or commitRows rows, one transaction per batch, with
// statements prepared once.
#include "core/store/StoreInternal.h"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

namespace relora::store {

using detail::Stmt;
using Clock = std::chrono::steady_clock;

struct StoreWriter::Impl {
    struct MetricRow {
        std::string key;
        int64_t step;
        double value;
        double wall;
    };
    struct Item {
        enum Kind { Started, Spectrum, Event, Finished, Snapshot, Checkpoint } kind;
        explicit Item(Kind k) : kind(k) {}
        int64_t step = 0;
        std::string a, b, c;       // started: backend, device, spec; event: kind, detail; files: path
        std::vector<float> sigma;
        double wall = 0;
        RunStatus status = RunStatus::Finished;
    };

    std::string path;
    int64_t runId = 0;
    WriterOptions opt;
    detail::DbPtr db;
    std::shared_ptr<detail::RunLock> lock;   // released by the thread once 'finished' is committed
    Stmt begin, commit, insMetric, insSpectrum, insEvent, heartbeat;

    // ---- shared with the sink callers, under `m` --------------------------
    mutable std::mutex m;
    std::condition_variable wake;    // -> writer thread
    std::condition_variable space;   // -> callers waiting for queue space
    std::condition_variable done_;   // -> flush()
    // A vector, swapped with the writer's in-flight vector each round, so its
    // capacity is recycled and the trainer's push_back rarely allocates.
    std::vector<MetricRow> queue;
    std::vector<Item> items;
    size_t pending = 0;              // queued + in flight, the capacity bound
    uint64_t accepted = 0, committed = 0, abandoned = 0, dropped = 0;
    uint64_t commits = 0, failedCommits = 0, stalls = 0;
    double stallSeconds = 0;
    bool failing = false, stop = false, flushWanted = false;
    int waitingForSpace = 0;
    bool started = false, finished = false;   // what the trainer said
    int64_t lastStep = 0;                     // writer thread only
    std::optional<std::string> error;
    uint64_t droppedReported = 0;

    std::thread thread;

    size_t queued() const { return queue.size() + items.size(); }

    // Waits for room for n rows. False when the rows must be dropped (the
    // database keeps failing and the queue is full).
    bool reserve(std::unique_lock<std::mutex>& lk, size_t n) {
        const auto fits = [&] { return pending == 0 || pending + n <= opt.queueCapacity; };
        if (fits()) return true;
        if (!failing) {
            ++stalls;
            const auto t0 = Clock::now();
            ++waitingForSpace;   // the writer commits at once instead of at its next round
            wake.notify_one();
            space.wait(lk, [&] { return fits() || failing || stop; });
            --waitingForSpace;
            stallSeconds += std::chrono::duration<double>(Clock::now() - t0).count();
            if (fits()) return true;
        }
        dropped += n;
        return false;
    }

    void pushed(size_t n) {
        const size_t before = queued() - n;
        pending += n;
        accepted += n;
        if (before < opt.commitRows && queued() >= opt.commitRows) wake.notify_one();
    }

    void enqueue(Item item) {
        std::unique_lock lk(m);
        if (!reserve(lk, 1)) return;
        items.push_back(std::move(item));
        pushed(1);
        if (items.back().kind == Item::Finished || items.back().kind == Item::Started) wake.notify_one();
    }

    void loop();
    bool commitBatch(const std::vector<MetricRow>& rows, size_t first, size_t last, const std::vector<Item>& batch,
                     const std::string& stallNote, const std::string& dropNote, bool& finishedCommitted,
                     std::string& err);
};

StoreWriter::StoreWriter(const std::string& dbPath, int64_t runId, WriterOptions options)
    : impl_(std::make_unique<Impl>()) {
    Impl& s = *impl_;
    s.path = dbPath;
    s.runId = runId;
    s.opt = options;
    s.opt.commitRows = std::max<size_t>(1, s.opt.commitRows);
    s.opt.queueCapacity = std::max<size_t>(1, s.opt.queueCapacity);
    s.db = detail::openDatabase(dbPath, detail::OpenMode::Writer, options.busyTimeout).db;
    sqlite3* db = s.db.get();
    detail::recoverInterruptedSql(db, dbPath);
    const auto status = detail::runStatus(db, dbPath, runId);
    const std::string run = "run " + std::to_string(runId);
    if (!status) throw StoreError(StoreError::Kind::NotFound, dbPath + ": " + run + " does not exist");
    if (*status == "finished")
        throw StoreError(StoreError::Kind::InvalidState, dbPath + ": " + run + " is finished; it takes no more rows");
    s.lock = detail::RunLock::acquire(dbPath, runId, std::chrono::seconds(2));
    if (!s.lock)
        throw StoreError(StoreError::Kind::Locked, dbPath + ": " + run + " is being written by another process (" +
                                                       runLockPath(dbPath, runId) + " is locked)");
    s.begin = Stmt(db, dbPath, "BEGIN IMMEDIATE");
    s.commit = Stmt(db, dbPath, "COMMIT");
    s.insMetric = Stmt(db, dbPath, "INSERT OR REPLACE INTO metrics (run_id, key, step, value, wall) VALUES (?, ?, ?, ?, ?)");
    s.insSpectrum = Stmt(db, dbPath, "INSERT OR REPLACE INTO spectra (run_id, step, matrix, sigma) VALUES (?, ?, ?, ?)");
    s.insEvent = Stmt(db, dbPath, "INSERT INTO events (run_id, step, kind, detail, wall) VALUES (?, ?, ?, ?, ?)");
    s.heartbeat = Stmt(db, dbPath, "UPDATE runs SET heartbeat_at = ? WHERE id = ? AND status = 'running'");
    s.thread = std::thread([this] { impl_->loop(); });
}

StoreWriter::~StoreWriter() {
    Impl& s = *impl_;
    {
        std::unique_lock lk(s.m);
        if (s.started && !s.finished) {
            s.finished = true;
            Impl::Item item(Impl::Item::Finished);
            item.status = RunStatus::Interrupted;
            item.a = "interrupted: the run's database writer was closed before the run ended";
            s.items.push_back(std::move(item));
            s.pending += 1;
            s.accepted += 1;
        }
        s.stop = true;
    }
    s.wake.notify_all();
    s.space.notify_all();
    s.thread.join();
    if (s.lock) {
        s.lock->removeFile();
        s.lock.reset();
    }
}

bool StoreWriter::Impl::commitBatch(const std::vector<MetricRow>& rows, size_t first, size_t last,
                                    const std::vector<Item>& batch,
                                    const std::string& stallNote, const std::string& dropNote,
                                    bool& finishedCommitted, std::string& err) {
    sqlite3* conn = db.get();
    finishedCommitted = false;
    bool finishedHere = false;
    std::optional<std::string> lifecycleError;
    try {
        begin.run();
        for (auto r = rows.begin() + static_cast<std::ptrdiff_t>(first), end = rows.begin() + static_cast<std::ptrdiff_t>(last);
             r != end; ++r) {
            insMetric.bind(1, runId).bind(2, r->key).bind(3, r->step).bind(4, r->value).bind(5, r->wall);
            insMetric.run();
        }
        const double now = detail::unixNow();
        for (const Item& it : batch) {
            switch (it.kind) {
            case Item::Started:
                if (auto e = detail::markRunningSql(conn, path, runId, it.a, it.b, &it.c)) lifecycleError = e;
                break;
            case Item::Finished:
                if (auto e = detail::finishSql(conn, path, runId, it.status, it.a)) lifecycleError = e;
                finishedHere = true;
                break;
            case Item::Spectrum: {
                const std::string blob = detail::floatsToBlob(it.sigma);
                insSpectrum.bind(1, runId).bind(2, it.step).bind(3, it.a).bindBlob(4, blob.data(), blob.size());
                insSpectrum.run();
                break;
            }
            case Item::Event:
                insEvent.bind(1, runId).bind(2, it.step).bind(3, it.a).bind(4, it.b).bind(5, it.wall);
                insEvent.run();
                break;
            case Item::Snapshot: detail::recordFileSql(conn, path, "snapshots", runId, it.step, it.a); break;
            case Item::Checkpoint: detail::recordFileSql(conn, path, "checkpoints", runId, it.step, it.a); break;
            }
        }
        for (const std::string* note : {&stallNote, &dropNote}) {
            if (note->empty()) continue;
            const char* kind = note == &stallNote ? "writer_stall" : "writer_error";
            std::string detailText = *note;
            insEvent.bind(1, runId).bind(2, lastStep).bind(3, kind).bind(4, detailText).bind(5, now);
            insEvent.run();
        }
        heartbeat.bind(1, now).bind(2, runId);
        heartbeat.run();
        commit.run();
    } catch (const StoreError& e) {
        if (!sqlite3_get_autocommit(conn)) sqlite3_exec(conn, "ROLLBACK", nullptr, nullptr, nullptr);
        err = e.what();
        return false;
    }
    if (lifecycleError) {
        std::lock_guard lk(m);
        if (!error) error = path + ": " + *lifecycleError;
    }
    finishedCommitted = finishedHere;
    return true;
}

void StoreWriter::Impl::loop() {
    std::vector<MetricRow> rows;       // in flight: kept across failed attempts
    std::vector<Item> batch;
    uint64_t stallsReported = 0;
    auto lastRound = Clock::now(), lastHeartbeat = Clock::now();
    auto lastFailure = Clock::time_point{}, lastStallNote = Clock::time_point{};
    int attemptsAfterStop = 0;

    std::unique_lock lk(m);
    for (;;) {
        // A round every commitInterval (sooner when commitRows rows wait, on
        // flush or stop); after a failure, the next attempt waits retryInterval.
        const auto deadline = failing ? lastFailure + opt.retryInterval : lastRound + opt.commitInterval;
        wake.wait_until(lk, deadline, [&] {
            return stop || (!failing && (flushWanted || (waitingForSpace > 0 && queued() > 0) || queued() >= opt.commitRows));
        });
        if (failing && !stop && Clock::now() < deadline) continue;
        lastRound = Clock::now();
        if (rows.empty()) {
            rows.swap(queue);
        } else {
            rows.insert(rows.end(), std::make_move_iterator(queue.begin()), std::make_move_iterator(queue.end()));
            queue.clear();
        }
        batch.insert(batch.end(), std::make_move_iterator(items.begin()), std::make_move_iterator(items.end()));
        items.clear();
        flushWanted = false;
        const bool stopping = stop;
        const size_t n = rows.size() + batch.size();
        // Tell the run when the trainer had to wait for us (at most every 5 s).
        std::string stallNote;
        if (stalls > stallsReported && (stopping || lastRound - lastStallNote >= std::chrono::seconds(5))) {
            char text[256];
            std::snprintf(text, sizeof text,
                          "the run database writer fell behind: the trainer waited for queue space %llu "
                          "times (%.3f s in all; queue capacity %zu rows)",
                          static_cast<unsigned long long>(stalls), stallSeconds, opt.queueCapacity);
            stallNote = text;
        }
        std::string dropNote;
        if (dropped > droppedReported && error)
            dropNote = *error + "; " + std::to_string(dropped) + " rows could not be written";
        const uint64_t stallsNow = stalls, droppedNow = dropped;
        const bool heartbeatDue = started && !finished && lastRound - lastHeartbeat >= opt.heartbeatInterval;
        lk.unlock();
        for (const MetricRow& r : rows) lastStep = std::max(lastStep, r.step);   // for the notes' step

        // One transaction per commitRows rows at most, so that a backlog
        // becomes visible to readers (and frees queue space) in steps; the
        // other items and notes go with the last one.
        bool ok = true, finishedCommitted = false, wrote = false;
        std::string err;
        size_t done = 0;
        const bool work = n > 0 || !stallNote.empty() || !dropNote.empty() || heartbeatDue;
        while (work) {
            const size_t end = std::min(rows.size(), done + opt.commitRows);
            const bool last = end == rows.size();
            static const std::vector<Item> kNone;
            static const std::string kNoNote;
            ok = commitBatch(rows, done, end, last ? batch : kNone, last ? stallNote : kNoNote,
                             last ? dropNote : kNoNote, finishedCommitted, err);
            if (!ok) break;
            wrote = true;
            if (finishedCommitted && lock) {
                // Before flush() callers hear of the commit: once runFinished
                // returns, the run is over and nobody needs to probe it.
                lock->removeFile();
                lock.reset();
            }
            const size_t landed = end - done + (last ? batch.size() : 0);
            done = end;
            lk.lock();
            committed += landed;
            pending -= landed;
            ++commits;
            space.notify_all();
            done_.notify_all();
            lk.unlock();
            if (last) break;
        }

        // Destroying rows costs time: not under the lock the trainer takes.
        rows.erase(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(done));
        if (ok) batch.clear();
        lk.lock();
        if (ok) {
            if (wrote) lastHeartbeat = Clock::now();
            failing = false;
            if (!stallNote.empty()) {
                stallsReported = stallsNow;
                lastStallNote = lastRound;
            }
            if (!dropNote.empty()) droppedReported = droppedNow;
        } else {
            ++failedCommits;
            failing = true;
            lastFailure = Clock::now();
            if (!error) error = err;
        }
        space.notify_all();
        done_.notify_all();
        if (stopping) {
            if (queued() == 0 && rows.empty() && batch.empty()) break;
            if (!ok && ++attemptsAfterStop >= 2) {
                // Give up: nothing more can be committed. What was committed stays.
                abandoned += pending;
                dropped += pending;
                pending = 0;
                queue.clear();
                items.clear();
                done_.notify_all();
                break;
            }
        }
    }
}

void StoreWriter::runStarted(const std::string& specJson, const std::string& backend, const std::string& device) {
    Impl::Item item(Impl::Item::Started);
    item.a = backend;
    item.b = device;
    item.c = specJson;
    {
        std::lock_guard lk(impl_->m);
        impl_->started = true;
        impl_->finished = false;
    }
    impl_->enqueue(std::move(item));
}

void StoreWriter::metrics(const std::vector<MetricPoint>& points, double wallSeconds) {
    if (points.empty()) return;
    Impl& s = *impl_;
    std::unique_lock lk(s.m);
    if (!s.reserve(lk, points.size())) return;
    for (const MetricPoint& p : points) s.queue.push_back({p.key, p.step, p.value, wallSeconds});
    s.pushed(points.size());
}

void StoreWriter::spectrum(int64_t step, const std::string& matrix, const std::vector<float>& sigma) {
    Impl::Item item(Impl::Item::Spectrum);
    item.step = step;
    item.a = matrix;
    item.sigma = sigma;
    impl_->enqueue(std::move(item));
}

void StoreWriter::event(int64_t step, const std::string& kind, const std::string& detail) {
    Impl::Item item(Impl::Item::Event);
    item.step = step;
    item.a = kind;
    item.b = detail;
    item.wall = detail::unixNow();
    impl_->enqueue(std::move(item));
}

void StoreWriter::runFinished(const std::string& status, const std::string& message) {
    Impl& s = *impl_;
    Impl::Item item(Impl::Item::Finished);
    const auto parsed = parseRunStatus(status);
    item.status = parsed.value_or(RunStatus::Failed);
    item.a = parsed ? message : "finished with unknown status '" + status + "': " + message;
    {
        std::lock_guard lk(s.m);
        s.finished = true;
    }
    s.enqueue(std::move(item));
    flush(s.opt.finishTimeout);
}

void StoreWriter::recordSnapshot(int64_t step, const std::string& path) {
    Impl::Item item(Impl::Item::Snapshot);
    item.step = step;
    item.a = path;
    impl_->enqueue(std::move(item));
}

void StoreWriter::recordCheckpoint(int64_t step, const std::string& path) {
    Impl::Item item(Impl::Item::Checkpoint);
    item.step = step;
    item.a = path;
    impl_->enqueue(std::move(item));
}

bool StoreWriter::flush(std::chrono::milliseconds timeout) {
    Impl& s = *impl_;
    std::unique_lock lk(s.m);
    const uint64_t target = s.accepted, failuresBefore = s.failedCommits;
    const auto resolved = [&] { return s.committed + s.abandoned >= target; };
    if (resolved()) return true;
    s.flushWanted = true;
    s.wake.notify_one();
    s.done_.wait_for(lk, timeout, [&] { return resolved() || s.failedCommits > failuresBefore; });
    return s.committed >= target;
}

std::optional<std::string> StoreWriter::error() const {
    std::lock_guard lk(impl_->m);
    return impl_->error;
}

WriterStats StoreWriter::stats() const {
    const Impl& s = *impl_;
    std::lock_guard lk(s.m);
    WriterStats out;
    out.rowsQueued = s.accepted;
    out.rowsCommitted = s.committed;
    out.rowsDropped = s.dropped;
    out.commits = s.commits;
    out.failedCommits = s.failedCommits;
    out.stalls = s.stalls;
    out.stallSeconds = s.stallSeconds;
    out.pendingRows = s.pending;
    return out;
}

int64_t StoreWriter::runId() const { return impl_->runId; }
const std::string& StoreWriter::path() const { return impl_->path; }

}  // namespace relora::store
