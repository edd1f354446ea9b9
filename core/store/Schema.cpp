// SQLite plumbing of the run database: error translation, statements,
// opening with the sanity checks, and the schema with its migrations.
#include "core/store/StoreInternal.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>

#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

namespace relora::store {

std::string toString(RunStatus s) {
    switch (s) {
    case RunStatus::Queued: return "queued";
    case RunStatus::Running: return "running";
    case RunStatus::Finished: return "finished";
    case RunStatus::Failed: return "failed";
    case RunStatus::Stopped: return "stopped";
    case RunStatus::Interrupted: return "interrupted";
    }
    return "";
}

std::optional<RunStatus> parseRunStatus(const std::string& s) {
    for (RunStatus r : {RunStatus::Queued, RunStatus::Running, RunStatus::Finished, RunStatus::Failed,
                        RunStatus::Stopped, RunStatus::Interrupted})
        if (toString(r) == s) return r;
    return std::nullopt;
}

namespace detail {
namespace fs = std::filesystem;

// ---- schema -----------------------------------------------------------------
namespace {

// Version 1. Every table is keyed for the queries the readers make:
// metrics' primary key (run_id, key, step) serves "one key since step S",
// "latest value of a key" (descending scan) and the key list (skip scan).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE runs (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    method       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN
                     ('queued','running','finished','failed','stopped','interrupted')),
    spec         TEXT NOT NULL,
    backend      TEXT NOT NULL DEFAULT '',
    device       TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    created_at   REAL NOT NULL,
    started_at   REAL,
    finished_at  REAL,
    heartbeat_at REAL
);
CREATE INDEX runs_by_status ON runs(status);
CREATE TABLE metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    step   INTEGER NOT NULL,
    value  REAL,
    wall   REAL,
    PRIMARY KEY (run_id, key, step)
) WITHOUT ROWID;
CREATE TABLE spectra (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    matrix TEXT NOT NULL,
    sigma  BLOB NOT NULL,
    PRIMARY KEY (run_id, step, matrix)
);
CREATE TABLE events (
    id     INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step   INTEGER NOT NULL,
    kind   TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    wall   REAL
);
CREATE INDEX events_by_run ON events(run_id, id);
CREATE TABLE snapshots (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,
    path       TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
CREATE TABLE checkpoints (
    run_id     INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step       INTEGER NOT NULL,
    path       TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (run_id, step)
);
)sql";

// Migration N takes a database at version N-1 to version N. To change the
// schema: append {2, "ALTER TABLE ...; CREATE INDEX ...;"} (or give `apply`
// for a data migration) and raise kSchemaVersion in RunStore.h. Each step runs
// inside the one transaction that also sets user_version, so a failure leaves
// the file at its old version.
struct Migration {
    int version;
    const char* sql;
    void (*apply)(sqlite3* db, const std::string& path);
};
constexpr Migration kMigrations[] = {
    {1, kSchemaV1, nullptr},
};
static_assert(std::size(kMigrations) > 0 &&
                  kMigrations[std::size(kMigrations) - 1].version == kSchemaVersion,
              "the last migration must bring the schema to kSchemaVersion");

int64_t pragmaInt(sqlite3* db, const std::string& path, const char* sql) {
    Stmt s(db, path, sql);
    auto scope = s.scope();
    return s.step() ? s.int64(0) : 0;
}

std::string pragmaText(sqlite3* db, const std::string& path, const char* sql) {
    Stmt s(db, path, sql);
    auto scope = s.scope();
    return s.step() ? s.text(0) : std::string();
}

// Why writing near `path` may have failed for lack of space, or "".
std::string diagnoseNoSpace(const std::string& path) {
    fs::path dir = fs::path(path).parent_path();
    if (dir.empty()) dir = ".";
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) == 0 &&
        static_cast<unsigned long long>(vfs.f_bavail) * vfs.f_frsize < (1ull << 20))
        return "the disk is full: free some space";
    rlimit limit {};
    if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
        uintmax_t biggest = 0;
        std::error_code ec;
        for (const char* suffix : {"", "-wal", "-journal"}) {
            const auto size = fs::file_size(path + suffix, ec);
            if (!ec) biggest = std::max<uintmax_t>(biggest, size);
        }
        if (biggest + (1u << 16) >= limit.rlim_cur)
            return "the disk is full for this process: its file size limit (ulimit -f) of " +
                   std::to_string(static_cast<unsigned long long>(limit.rlim_cur)) + " bytes was reached";
    }
    return {};
}

std::string sqlAction(sqlite3_stmt* stmt) {
    const char* sql = stmt ? sqlite3_sql(stmt) : nullptr;
    if (!sql) return "a query";
    while (*sql == ' ' || *sql == '\n') ++sql;
    if (!strncasecmp(sql, "SELECT", 6) || !strncasecmp(sql, "PRAGMA", 6) || !strncasecmp(sql, "WITH", 4))
        return "reading";
    return "writing";
}

// A path as the path part of a "file:" URI (RFC 3986 percent-encoding).
std::string uriPath(const std::string& path) {
    std::string out;
    for (unsigned char c : path) {
        if (std::isalnum(c) || std::strchr("/-._~", c)) {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

}  // namespace

StoreError sqliteError(sqlite3* db, int rc, const std::string& path, const std::string& action) {
    using K = StoreError::Kind;
    const int primary = rc & 0xff;
    const std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    const int sys = db ? sqlite3_system_errno(db) : 0;
    const std::string sysText = sys ? std::string(", ") + std::strerror(sys) : std::string();
    switch (primary) {
    case SQLITE_NOTADB:
        return {K::NotADatabase, path + ": not a SQLite database (" + msg +
                                     "); it was left untouched: choose another file"};
    case SQLITE_CORRUPT:
        return {K::Io, path + ": the database file is damaged (" + msg +
                           "); restore it from a backup or move it away"};
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return {K::Locked, path + ": the database is locked by another program (" + action +
                               " waited for it and gave up: " + msg +
                               "); close the program that holds it and try again"};
    case SQLITE_READONLY:
        return {K::ReadOnly, path + ": cannot write: the database or its folder is read-only (" + msg +
                                 sysText + "); check the permissions"};
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return {K::ReadOnly, path + ": permission denied (" + msg + sysText + ")"};
    case SQLITE_CANTOPEN:
        return {K::Io, path + ": cannot open the database file (" + msg + sysText +
                           "); check that its folder exists and is writable"};
    case SQLITE_FULL:
        return {K::DiskFull, path + ": the disk is full (" + action + " failed: " + msg + sysText +
                                 "); free some space: rows committed before are safe"};
    case SQLITE_IOERR:
        if (sys == ENOSPC || sys == EFBIG || sys == EDQUOT)
            return {K::DiskFull, path + ": the disk is full (" + action + " failed: " + msg + sysText +
                                     "); free some space: rows committed before are safe"};
        // SQLite reports EFBIG and some ENOSPC cases as a plain I/O error and
        // its saved errno is not reliable: look at the disk and the limits.
        if (const std::string why = diagnoseNoSpace(path); !why.empty())
            return {K::DiskFull, path + ": " + why + " (" + action + " failed: " + msg +
                                     "); rows committed before are safe"};
        return {K::Io, path + ": disk I/O error while " + action + " (" + msg + sysText + ")"};
    default:
        return {K::Other, path + ": " + action + " failed: " + msg};
    }
}

double unixNow() {
    using namespace std::chrono;
    return duration<double>(system_clock::now().time_since_epoch()).count();
}

// ---- Stmt -------------------------------------------------------------------
Stmt::Stmt(sqlite3* db, const std::string& path, const char* sql) : db_(db), path_(path) {
    const int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
    if (rc != SQLITE_OK) {
        std::string what = std::string(sql).substr(0, 6);
        throw sqliteError(db, rc, path, !strncasecmp(what.c_str(), "SELECT", 6) ? "reading" : "preparing a statement");
    }
}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
    if (this != &o) {
        sqlite3_finalize(stmt_);
        db_ = o.db_;
        path_ = std::move(o.path_);
        stmt_ = o.stmt_;
        o.stmt_ = nullptr;
    }
    return *this;
}

void Stmt::check(int rc) {
    if (rc != SQLITE_OK) throw sqliteError(db_, rc, path_, "binding a value");
}

bool Stmt::step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
        sqlite3_reset(stmt_);
        return false;
    }
    StoreError e = sqliteError(db_, rc, path_, sqlAction(stmt_));
    sqlite3_reset(stmt_);
    throw e;
}

void Stmt::run() {
    auto s = scope();
    while (step()) {
    }
}

double Stmt::real(int c) const {
    if (isNull(c)) return std::numeric_limits<double>::quiet_NaN();
    return sqlite3_column_double(stmt_, c);
}

std::string Stmt::text(int c) const {
    const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, c))) : std::string();
}

std::vector<float> Stmt::floats(int c) const {
    const void* p = sqlite3_column_blob(stmt_, c);
    const size_t bytes = static_cast<size_t>(sqlite3_column_bytes(stmt_, c));
    std::vector<float> out(bytes / sizeof(float));
    if (p && !out.empty()) std::memcpy(out.data(), p, out.size() * sizeof(float));
    if constexpr (std::endian::native == std::endian::big)
        for (float& f : out) f = std::bit_cast<float>(__builtin_bswap32(std::bit_cast<uint32_t>(f)));
    return out;
}

std::string floatsToBlob(const std::vector<float>& v) {
    std::string out(v.size() * sizeof(float), '\0');
    if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());
    if constexpr (std::endian::native == std::endian::big) {
        for (size_t i = 0; i < v.size(); ++i) {
            const uint32_t b = __builtin_bswap32(std::bit_cast<uint32_t>(v[i]));
            std::memcpy(out.data() + i * 4, &b, 4);
        }
    }
    return out;
}

void exec(sqlite3* db, const std::string& path, const char* sql) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) {
        const bool read = !strncasecmp(sql, "SELECT", 6);
        throw sqliteError(db, rc, path, read ? "reading" : "writing");
    }
}

// ---- opening ------------------------------------------------------------------
void migrate(sqlite3* db, const std::string& path) {
    inTransaction(db, path, [&] {
        // Read again inside the write transaction: another process may have
        // migrated meanwhile.
        const int64_t version = pragmaInt(db, path, "PRAGMA user_version");
        if (version > kSchemaVersion)
            throw StoreError(StoreError::Kind::NewerSchema,
                             path + ": schema version " + std::to_string(version) +
                                 " is newer than this program supports (" +
                                 std::to_string(kSchemaVersion) + "); upgrade ReLoRA Workbench");
        for (const Migration& m : kMigrations) {
            if (m.version <= version) continue;
            if (m.sql) exec(db, path, m.sql);
            if (m.apply) m.apply(db, path);
        }
        exec(db, path, ("PRAGMA application_id = " + std::to_string(kApplicationId)).c_str());
        exec(db, path, ("PRAGMA user_version = " + std::to_string(kSchemaVersion)).c_str());
    });
}

Opened openDatabase(const std::string& path, OpenMode mode, std::chrono::milliseconds busyTimeout) {
    using K = StoreError::Kind;
    std::error_code ec;
    const fs::path file(path);
    fs::path dir = file.parent_path();
    if (dir.empty()) dir = ".";
    const auto status = fs::status(file, ec);
    const bool exists = fs::exists(status);
    if (exists && fs::is_directory(status))
        throw StoreError(K::NotADatabase, path + ": is a folder, not a run database file");
    if (!exists) {
        if (mode == OpenMode::Reader)
            throw StoreError(K::NotFound, path + ": no such run database (it is created by the first run)");
        if (!fs::is_directory(dir, ec))
            throw StoreError(K::NotFound, path + ": cannot create the run database: the folder '" +
                                              dir.string() + "' does not exist");
    }
    const bool fileWritable = !exists || ::access(path.c_str(), W_OK) == 0;
    const int fileErrno = errno;
    const bool dirWritable = ::access(dir.c_str(), W_OK) == 0;
    if (mode == OpenMode::Writer) {
        if (!fileWritable)
            throw StoreError(K::ReadOnly, path + ": the file is read-only (" + std::strerror(fileErrno) +
                                              "); writing runs needs write permission on it");
        if (!dirWritable)
            throw StoreError(K::ReadOnly, path + ": its folder '" + dir.string() +
                                              "' is read-only; writing runs needs to create the "
                                              "database's -wal/-shm files and run lock files there");
    }
    const bool readOnly = mode == OpenMode::Reader && !(fileWritable && dirWritable);
    int flags = SQLITE_OPEN_NOMUTEX |
                (readOnly ? SQLITE_OPEN_READONLY
                          : SQLITE_OPEN_READWRITE | (mode == OpenMode::Writer ? SQLITE_OPEN_CREATE : 0));
    std::string name = path;
    if (readOnly && !dirWritable && !fs::exists(path + "-shm", ec)) {
        // A WAL database can be read without its -shm file only as immutable,
        // which is right only when no -wal file holds rows: nobody can write
        // to a read-only folder, so nothing changes while we read.
        if (fs::exists(path + "-wal", ec) && fs::file_size(path + "-wal", ec) > 0)
            throw StoreError(K::ReadOnly, path + ": cannot read it: its -wal file holds rows that were never "
                                                 "checkpointed and its folder '" + dir.string() +
                                                 "' is read-only; open it once where it is writable");
        name = "file:" + uriPath(fs::absolute(file, ec).string()) + "?immutable=1";
        flags |= SQLITE_OPEN_URI;
    }
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2(name.c_str(), &raw, flags, nullptr);
    DbPtr db(raw);
    if (rc != SQLITE_OK) throw sqliteError(raw, rc, path, "opening");
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, static_cast<int>(busyTimeout.count()));

    // Look before writing anything: SQLite opens lazily, so a file that is not
    // a database fails here, on the first read, with nothing written.
    const int64_t appId = pragmaInt(raw, path, "PRAGMA application_id");
    const int64_t version = pragmaInt(raw, path, "PRAGMA user_version");
    const int64_t objects = pragmaInt(raw, path, "SELECT count(*) FROM sqlite_master");
    const bool ours = appId == kApplicationId || (appId == 0 && objects == 0);
    if (ours && version > kSchemaVersion)
        throw StoreError(K::NewerSchema, path + ": schema version " + std::to_string(version) +
                                             " is newer than this program supports (" +
                                             std::to_string(kSchemaVersion) + "); upgrade ReLoRA Workbench");
    if (!ours) {
        throw StoreError(K::NotADatabase,
                         path + ": a SQLite database of another program (application_id " +
                             std::to_string(appId) + ", " + std::to_string(objects) +
                             " schema objects), not a ReLoRA Workbench run database; it was left untouched");
    }
    const bool effectivelyReadOnly = readOnly || sqlite3_db_readonly(raw, "main") == 1;
    if (mode == OpenMode::Writer && effectivelyReadOnly)
        throw StoreError(K::ReadOnly, path + ": the database opened read-only; writing runs needs write permission");

    if (!effectivelyReadOnly) {
        const std::string journal = pragmaText(raw, path, "PRAGMA journal_mode = WAL");
        if (journal != "wal")
            throw StoreError(K::Other, path + ": cannot switch the database to WAL mode (it stays in '" +
                                           journal + "' mode)");
        exec(raw, path, "PRAGMA journal_size_limit = 67108864");
    }
    exec(raw, path, "PRAGMA synchronous = NORMAL");
    exec(raw, path, "PRAGMA foreign_keys = ON");

    if (version < kSchemaVersion) {
        if (effectivelyReadOnly) {
            throw StoreError(K::ReadOnly, path + ": schema version " + std::to_string(version) +
                                              " is older than this program's (" + std::to_string(kSchemaVersion) +
                                              ") and the file is read-only, so it cannot be upgraded");
        }
        migrate(raw, path);
    }
    return {std::move(db), effectivelyReadOnly};
}

}  // namespace detail
}  // namespace relora::store
