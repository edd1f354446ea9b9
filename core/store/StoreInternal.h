// Internals shared by RunStore, StoreWriter and RunReader: thin RAII
// wrappers of the SQLite C API, error translation, opening + migration, the
// run lifecycle as SQL, and the per-run liveness lock. Not installed.
#pragma once

#include "core/store/RunStore.h"

#include <sqlite3.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace relora::store::detail {

struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

// The StoreError for a failed SQLite call on `db` (rc = its result code).
StoreError sqliteError(sqlite3* db, int rc, const std::string& path, const std::string& action);
// Unix seconds now.
double unixNow();

// A prepared statement, reset after each use. Methods throw StoreError.
class Stmt {
public:
    Stmt() = default;
    Stmt(sqlite3* db, const std::string& path, const char* sql);
    ~Stmt() { sqlite3_finalize(stmt_); }
    Stmt(Stmt&& o) noexcept : db_(o.db_), path_(std::move(o.path_)), stmt_(o.stmt_) { o.stmt_ = nullptr; }
    Stmt& operator=(Stmt&& o) noexcept;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;

    // Bindings are 1-based. Text and blobs must outlive step().
    Stmt& bind(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); return *this; }
    Stmt& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
    Stmt& bind(int i, double v) { check(sqlite3_bind_double(stmt_, i, v)); return *this; }
    Stmt& bind(int i, const std::string& v) {
        check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC));
        return *this;
    }
    Stmt& bind(int i, const char* v) { check(sqlite3_bind_text(stmt_, i, v, -1, SQLITE_STATIC)); return *this; }
    Stmt& bindBlob(int i, const void* data, size_t bytes) {
        check(sqlite3_bind_blob(stmt_, i, data, static_cast<int>(bytes), SQLITE_STATIC));
        return *this;
    }
    Stmt& bindNull(int i) { check(sqlite3_bind_null(stmt_, i)); return *this; }
    template <typename T>
    Stmt& bindOpt(int i, const std::optional<T>& v) { return v ? bind(i, *v) : bindNull(i); }

    bool step();             // true: a row is ready; false: done (statement reset)
    void run();              // step() to the end, then reset
    void reset() { sqlite3_reset(stmt_); sqlite3_clear_bindings(stmt_); }
    // Resets the statement when the scope ends, so that a query left after
    // its first row never holds a read transaction open (which in WAL mode
    // would pin an old snapshot).
    struct Scope {
        Stmt& s;
        ~Scope() { s.reset(); }
    };
    [[nodiscard]] Scope scope() { return Scope{*this}; }

    int64_t int64(int c) const { return sqlite3_column_int64(stmt_, c); }
    double real(int c) const;                    // NULL reads as NaN
    bool isNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
    std::string text(int c) const;               // NULL reads as ""
    std::optional<double> optReal(int c) const { return isNull(c) ? std::nullopt : std::optional(real(c)); }
    std::optional<int64_t> optInt(int c) const { return isNull(c) ? std::nullopt : std::optional(int64(c)); }
    std::vector<float> floats(int c) const;      // little-endian float32 blob

    sqlite3_stmt* get() const { return stmt_; }

private:
    void check(int rc);
    sqlite3* db_ = nullptr;
    std::string path_;
    sqlite3_stmt* stmt_ = nullptr;
};

// Runs SQL without results; throws StoreError.
void exec(sqlite3* db, const std::string& path, const char* sql);

enum class OpenMode {
    Writer,   // create if missing, migrate, must be writable
    Reader,   // must exist; read-write when possible (migrates), else read-only
};
struct Opened {
    DbPtr db;
    bool readOnly = false;
};
// Opens, checks (SQLite? ours? not newer?), sets WAL / synchronous=NORMAL /
// foreign_keys / busy_timeout, creates or migrates the schema. Never writes
// to a file it did not recognise.
Opened openDatabase(const std::string& path, OpenMode mode, std::chrono::milliseconds busyTimeout);
// Applies the migrations from the database's version up to kSchemaVersion.
void migrate(sqlite3* db, const std::string& path);

// Blob <-> floats (little-endian float32).
std::string floatsToBlob(const std::vector<float>& v);

// ---- lifecycle, as SQL on one connection (callers hold the run's lock) -----
std::optional<std::string> runStatus(sqlite3* db, const std::string& path, int64_t id);
// Returns an error text instead of writing when the transition is not allowed.
std::optional<std::string> markRunningSql(sqlite3* db, const std::string& path, int64_t id,
                                          const std::string& backend, const std::string& device,
                                          const std::string* specJson);
std::optional<std::string> finishSql(sqlite3* db, const std::string& path, int64_t id,
                                     RunStatus status, const std::string& message);
void recordFileSql(sqlite3* db, const std::string& path, const char* table, int64_t id,
                   int64_t step, const std::string& file);
std::vector<int64_t> recoverInterruptedSql(sqlite3* db, const std::string& path);
DeletedRun deleteRunSql(sqlite3* db, const std::string& path, int64_t id);
// BEGIN IMMEDIATE ... COMMIT, rolled back when `body` throws.
template <typename F>
auto inTransaction(sqlite3* db, const std::string& path, F&& body) {
    exec(db, path, "BEGIN IMMEDIATE");
    try {
        if constexpr (std::is_void_v<decltype(body())>) {
            body();
            exec(db, path, "COMMIT");
        } else {
            auto result = body();
            exec(db, path, "COMMIT");
            return result;
        }
    } catch (...) {
        if (!sqlite3_get_autocommit(db)) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
        throw;
    }
}

// ---- run lock: flock(LOCK_EX) on "<db>.run-<id>.lock" ------------------------
class RunLock {
public:
    // The lock, shared within this process; nullptr when another process holds
    // it for longer than `wait`. Throws StoreError when the file cannot be made.
    static std::shared_ptr<RunLock> acquire(const std::string& dbPath, int64_t runId,
                                            std::chrono::milliseconds wait);
    // Like acquire, but also nullptr when this process holds it.
    static std::shared_ptr<RunLock> acquireIfFree(const std::string& dbPath, int64_t runId);
    ~RunLock();
    // Removes the lock file while still holding the lock (the run is over).
    void removeFile();
    RunLock(int fd, std::string path, std::string key) : fd_(fd), path_(std::move(path)), key_(std::move(key)) {}

private:
    int fd_ = -1;
    std::string path_, key_;
};

}  // namespace relora::store::detail
