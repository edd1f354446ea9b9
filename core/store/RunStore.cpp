// RunStore (management connection), the run lifecycle as SQL, and the
// per-run flock that tells a live writer from a dead one.
#include "core/store/StoreInternal.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace relora::store {

std::string runLockPath(const std::string& dbPath, int64_t runId) {
    return dbPath + ".run-" + std::to_string(runId) + ".lock";
}

namespace detail {
namespace fs = std::filesystem;
using K = StoreError::Kind;

// ---- RunLock ----------------------------------------------------------------
namespace {

// flock conflicts between two descriptors of one process too, so locks this
// process holds are shared through a registry instead of being taken twice.
std::mutex gLocksMutex;
std::map<std::string, std::weak_ptr<RunLock>> gLocks;

std::string registryKey(const std::string& lockPath) {
    std::error_code ec;
    const fs::path p = fs::weakly_canonical(fs::absolute(lockPath, ec), ec);
    return ec ? lockPath : p.string();
}

std::shared_ptr<RunLock> liveInProcess(const std::string& key) {
    const auto it = gLocks.find(key);
    return it == gLocks.end() ? nullptr : it->second.lock();
}

// One attempt; the caller holds gLocksMutex. nullptr when another process
// holds the lock.
std::shared_ptr<RunLock> tryLockOnce(const std::string& path, const std::string& key) {
    for (;;) {
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            const int err = errno;
            throw StoreError(err == EACCES || err == EROFS || err == EPERM ? K::ReadOnly : K::Io,
                             path + ": cannot create the run lock file: " + std::strerror(err));
        }
        if (::flock(fd, LOCK_EX | LOCK_NB) == 0) {
            // Someone may have removed the file between our open and flock
            // (a finished run's writer does): then the lock guards nothing.
            struct stat held {}, now {};
            if (::fstat(fd, &held) == 0 && ::stat(path.c_str(), &now) == 0 &&
                held.st_ino == now.st_ino && held.st_dev == now.st_dev) {
                auto lock = std::make_shared<RunLock>(fd, path, key);
                gLocks[key] = lock;
                return lock;
            }
            ::close(fd);
            continue;
        }
        const int err = errno;
        ::close(fd);
        if (err == EINTR) continue;
        if (err != EWOULDBLOCK)
            throw StoreError(K::Io, path + ": cannot lock the run lock file: " + std::strerror(err));
        return nullptr;
    }
}

}  // namespace

std::shared_ptr<RunLock> RunLock::acquire(const std::string& dbPath, int64_t runId,
                                          std::chrono::milliseconds wait) {
    const std::string path = runLockPath(dbPath, runId), key = registryKey(path);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        {
            // Not held while sleeping: runIsLive() of other threads needs it.
            std::lock_guard guard(gLocksMutex);
            if (auto held = liveInProcess(key)) return held;
            if (auto lock = tryLockOnce(path, key)) return lock;
        }
        if (std::chrono::steady_clock::now() >= deadline) return nullptr;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
}

std::shared_ptr<RunLock> RunLock::acquireIfFree(const std::string& dbPath, int64_t runId) {
    const std::string path = runLockPath(dbPath, runId), key = registryKey(path);
    std::lock_guard guard(gLocksMutex);
    if (liveInProcess(key)) return nullptr;
    return tryLockOnce(path, key);
}

RunLock::~RunLock() {
    std::lock_guard guard(gLocksMutex);
    const auto it = gLocks.find(key_);
    if (it != gLocks.end() && it->second.expired()) gLocks.erase(it);
    if (fd_ >= 0) ::close(fd_);
}

void RunLock::removeFile() { ::unlink(path_.c_str()); }

// ---- lifecycle --------------------------------------------------------------
std::optional<std::string> runStatus(sqlite3* db, const std::string& path, int64_t id) {
    Stmt s(db, path, "SELECT status FROM runs WHERE id = ?");
    auto scope = s.scope();
    s.bind(1, id);
    if (!s.step()) return std::nullopt;
    return s.text(0);
}

std::optional<std::string> markRunningSql(sqlite3* db, const std::string& path, int64_t id,
                                          const std::string& backend, const std::string& device,
                                          const std::string* specJson) {
    const auto status = runStatus(db, path, id);
    if (!status) return "run " + std::to_string(id) + " does not exist";
    // 'running' here means: its writer died and the caller now holds the lock.
    if (*status == "finished")
        return "run " + std::to_string(id) + " is finished; it cannot run again";
    const double now = unixNow();
    Stmt s(db, path,
           specJson ? "UPDATE runs SET status = 'running', backend = ?1, device = ?2, started_at = ?3, "
                      "heartbeat_at = ?3, finished_at = NULL, message = '', spec = ?5 WHERE id = ?4"
                    : "UPDATE runs SET status = 'running', backend = ?1, device = ?2, started_at = ?3, "
                      "heartbeat_at = ?3, finished_at = NULL, message = '' WHERE id = ?4");
    s.bind(1, backend).bind(2, device).bind(3, now).bind(4, id);
    if (specJson) s.bind(5, *specJson);
    s.run();
    return std::nullopt;
}

std::optional<std::string> finishSql(sqlite3* db, const std::string& path, int64_t id,
                                     RunStatus status, const std::string& message) {
    if (status == RunStatus::Queued || status == RunStatus::Running)
        return "'" + toString(status) + "' is not a final status";
    const auto current = runStatus(db, path, id);
    if (!current) return "run " + std::to_string(id) + " does not exist";
    const bool fromRunning = *current == "running";
    const bool cancelled = *current == "queued" && (status == RunStatus::Failed || status == RunStatus::Stopped);
    if (!fromRunning && !cancelled)
        return "run " + std::to_string(id) + " is " + *current + "; it cannot become " + toString(status);
    Stmt s(db, path, "UPDATE runs SET status = ?1, message = ?2, finished_at = ?3 WHERE id = ?4");
    const std::string statusText = toString(status);
    s.bind(1, statusText).bind(2, message).bind(3, unixNow()).bind(4, id);
    s.run();
    return std::nullopt;
}

void recordFileSql(sqlite3* db, const std::string& path, const char* table, int64_t id, int64_t step,
                   const std::string& file) {
    const std::string sql = std::string("INSERT OR REPLACE INTO ") + table +
                            " (run_id, step, path, created_at) VALUES (?, ?, ?, ?)";
    Stmt s(db, path, sql.c_str());
    s.bind(1, id).bind(2, step).bind(3, file).bind(4, unixNow());
    s.run();
}

std::vector<int64_t> recoverInterruptedSql(sqlite3* db, const std::string& path) {
    std::vector<int64_t> candidates, recovered;
    {
        Stmt s(db, path, "SELECT id FROM runs WHERE status = 'running'");
        auto scope = s.scope();
        while (s.step()) candidates.push_back(s.int64(0));
    }
    for (int64_t id : candidates) {
        // Free lock = no process is writing it (the kernel released the lock
        // of a process that died, however it died).
        const auto lock = RunLock::acquireIfFree(path, id);
        if (!lock) continue;
        int64_t lastStep = -1;
        {
            Stmt s(db, path, "SELECT max(step) FROM metrics WHERE run_id = ?");
            auto scope = s.scope();
            s.bind(1, id);
            if (s.step() && !s.isNull(0)) lastStep = s.int64(0);
        }
        std::string message = "interrupted: the process writing this run ended without finishing it";
        if (lastStep >= 0) message += " (last recorded step " + std::to_string(lastStep) + ")";
        Stmt s(db, path,
               "UPDATE runs SET status = 'interrupted', message = ?1, "
               "finished_at = coalesce(heartbeat_at, started_at, ?2) WHERE id = ?3 AND status = 'running'");
        s.bind(1, message).bind(2, unixNow()).bind(3, id);
        s.run();
        if (sqlite3_changes(db) > 0) recovered.push_back(id);
        lock->removeFile();
    }
    return recovered;
}

DeletedRun deleteRunSql(sqlite3* db, const std::string& path, int64_t id) {
    DeletedRun out = inTransaction(db, path, [&] {
        const auto status = runStatus(db, path, id);
        if (!status) throw StoreError(K::NotFound, path + ": run " + std::to_string(id) + " does not exist");
        if (*status == "running" && runIsLive(path, id))
            throw StoreError(K::InvalidState, path + ": run " + std::to_string(id) +
                                                  " is running (a live process is writing it); stop it first");
        DeletedRun d;
        for (auto [table, into] : {std::pair{"snapshots", &d.snapshotPaths}, std::pair{"checkpoints", &d.checkpointPaths}}) {
            Stmt s(db, path, (std::string("SELECT path FROM ") + table + " WHERE run_id = ? ORDER BY step").c_str());
            auto scope = s.scope();
            s.bind(1, id);
            while (s.step()) into->push_back(s.text(0));
        }
        for (const char* table : {"metrics", "spectra", "events", "snapshots", "checkpoints"}) {
            Stmt s(db, path, (std::string("DELETE FROM ") + table + " WHERE run_id = ?").c_str());
            s.bind(1, id);
            s.run();
        }
        Stmt s(db, path, "DELETE FROM runs WHERE id = ?");
        s.bind(1, id);
        s.run();
        return d;
    });
    if (auto lock = RunLock::acquireIfFree(path, id)) lock->removeFile();
    return out;
}

}  // namespace detail

bool runIsLive(const std::string& dbPath, int64_t runId) {
    const std::string path = runLockPath(dbPath, runId);
    {
        std::lock_guard guard(detail::gLocksMutex);
        if (detail::liveInProcess(detail::registryKey(path))) return true;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;   // a writer creates the file before it marks the run running
    bool live = false;
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0)
        live = errno == EWOULDBLOCK;
    else
        ::flock(fd, LOCK_UN);
    ::close(fd);
    return live;
}

// ---- RunStore -----------------------------------------------------------------
struct RunStore::Impl {
    std::string path;
    StoreOptions options;
    detail::DbPtr db;
    std::map<int64_t, std::shared_ptr<detail::RunLock>> locks;   // runs marked running here

    void require(const std::optional<std::string>& error) const {
        if (error) throw StoreError(StoreError::Kind::InvalidState, path + ": " + *error);
    }
};

RunStore::RunStore(const std::string& path, StoreOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    impl_->options = options;
    impl_->db = detail::openDatabase(path, detail::OpenMode::Writer, options.busyTimeout).db;
    detail::recoverInterruptedSql(impl_->db.get(), path);
}

RunStore::~RunStore() = default;

const std::string& RunStore::path() const { return impl_->path; }

int64_t RunStore::createRun(const std::string& specJson, const std::string& name, const std::string& method) {
    Impl& s = *impl_;
    detail::Stmt q(s.db.get(), s.path,
                   "INSERT INTO runs (name, method, status, spec, created_at) VALUES (?, ?, 'queued', ?, ?)");
    q.bind(1, name).bind(2, method).bind(3, specJson).bind(4, detail::unixNow());
    q.run();
    return sqlite3_last_insert_rowid(s.db.get());
}

void RunStore::markRunning(int64_t id, const std::string& backend, const std::string& device) {
    Impl& s = *impl_;
    auto lock = detail::RunLock::acquire(s.path, id, std::chrono::seconds(2));
    if (!lock)
        throw StoreError(StoreError::Kind::Locked,
                         s.path + ": run " + std::to_string(id) + " is being written by another process");
    s.require(detail::inTransaction(s.db.get(), s.path, [&] {
        return detail::markRunningSql(s.db.get(), s.path, id, backend, device, nullptr);
    }));
    s.locks[id] = std::move(lock);
}

void RunStore::finish(int64_t id, RunStatus status, const std::string& message) {
    Impl& s = *impl_;
    s.require(detail::inTransaction(s.db.get(), s.path,
                                    [&] { return detail::finishSql(s.db.get(), s.path, id, status, message); }));
    if (auto it = s.locks.find(id); it != s.locks.end()) {
        it->second->removeFile();
        s.locks.erase(it);
    }
}

void RunStore::finish(int64_t id, const std::string& status, const std::string& message) {
    const auto parsed = parseRunStatus(status);
    if (!parsed) throw StoreError(StoreError::Kind::InvalidState, impl_->path + ": unknown run status '" + status + "'");
    finish(id, *parsed, message);
}

void RunStore::recordSnapshot(int64_t id, int64_t step, const std::string& path) {
    detail::recordFileSql(impl_->db.get(), impl_->path, "snapshots", id, step, path);
}

void RunStore::recordCheckpoint(int64_t id, int64_t step, const std::string& path) {
    detail::recordFileSql(impl_->db.get(), impl_->path, "checkpoints", id, step, path);
}

std::vector<int64_t> RunStore::recoverInterrupted() {
    return detail::recoverInterruptedSql(impl_->db.get(), impl_->path);
}

DeletedRun RunStore::deleteRun(int64_t id) {
    return detail::deleteRunSql(impl_->db.get(), impl_->path, id);
}

}  // namespace relora::store
