// The run database (DESIGN §7): one SQLite file in WAL mode holding every
// run's spec, status, metrics, ΔW spectra, events and the paths of its
// snapshots and checkpoints.
//
// Three classes, one per role:
//   RunStore    — management: creates/migrates the file, creates runs, moves
//                 them through their lifecycle, records files, deletes runs.
//                 Short transactions on the calling thread. CLI and GUI.
//   StoreWriter — the MetricsSink of one run: the trainer's calls only enqueue;
//                 one writer connection on its own thread commits in batches.
//   RunReader   — queries for the CLI and for the GUI's incremental polling,
//                 on its own connection (one reader per thread).
//
// Liveness: a process writing a run holds an exclusive flock on
// "<db>.run-<id>.lock" (StoreWriter from construction, RunStore from
// markRunning to finish). The kernel drops the lock when the process dies,
// even by SIGKILL, so a run still 'running' whose lock is free belongs to a
// dead process: the next writer to open the database marks it 'interrupted'
// (RunReader already reports it so, without writing). The lock file is opened
// O_CLOEXEC, so programs the writer starts (fork + exec) do not keep it; a
// child forked WITHOUT exec shares it (flock belongs to the open file) and
// keeps the run looking live while it runs.
//
// Every failure is a StoreError (a std::runtime_error) whose what() names the
// file and says what to do; none of them writes to a file it could not
// recognise or damages committed rows.
#pragma once

#include "core/MetricsSink.h"

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace relora::store {

// The schema version this program writes (PRAGMA user_version).
inline constexpr int kSchemaVersion = 1;
// PRAGMA application_id of a run database ("RLRW").
inline constexpr int32_t kApplicationId = 0x524C5257;

enum class RunStatus { Queued, Running, Finished, Failed, Stopped, Interrupted };
std::string toString(RunStatus s);              // "queued", "running", ...
std::optional<RunStatus> parseRunStatus(const std::string& s);

struct StoreError : std::runtime_error {
    enum class Kind {
        NotFound,        // no such file, or no such run
        NotADatabase,    // not SQLite, or SQLite but not a run database
        NewerSchema,     // written by a newer program
        ReadOnly,        // file or folder not writable
        Locked,          // another program holds the database or the run
        DiskFull,
        Io,              // other I/O errors, damaged file
        InvalidState,    // lifecycle transition not allowed
        Other,
    };
    StoreError(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
    Kind kind;
};

struct StoreOptions {
    // How long a statement waits for another connection's write lock.
    std::chrono::milliseconds busyTimeout{5000};
};

// One row of listRuns()/run(). Times are Unix seconds.
struct RunSummary {
    int64_t id = 0;
    std::string name, method;
    std::string status;      // effective: a 'running' run whose writer is gone reads "interrupted"
    bool live = false;       // a process holds the run's lock now
    std::string backend, device, message;
    double createdAt = 0;
    std::optional<double> startedAt, finishedAt, heartbeatAt;
    std::optional<double> trainLoss, valLoss, bestValLoss;   // latest / latest / minimum
    std::optional<int64_t> lastStep;                         // newest train_loss step (else any key)
};

struct SeriesPoint {
    int64_t step = 0;
    double value = 0;        // NaN where the trainer reported a non-finite value
    double wall = 0;         // seconds since the run started, as the trainer reported it
};

struct SpectrumRecord {
    int64_t step = 0;
    std::string matrix;      // "layers.3.wq"
    std::vector<float> sigma;
};

struct EventRecord {
    int64_t id = 0;          // increasing: poll with events(run, lastSeenId)
    int64_t step = 0;
    std::string kind, detail;
    double wall = 0;         // Unix seconds when the writer received it
};

struct FileRecord {
    int64_t step = 0;
    std::string path;
    double createdAt = 0;
};

// What deleteRun removed from the database; the files are the caller's to delete.
struct DeletedRun {
    std::vector<std::string> snapshotPaths, checkpointPaths;
};

// ---------------------------------------------------------------------------
class RunStore {
public:
    // Opens (creating when missing) and migrates the database, then marks
    // runs left 'running' by dead processes as 'interrupted'.
    explicit RunStore(const std::string& path, StoreOptions options = {});
    ~RunStore();
    RunStore(const RunStore&) = delete;
    RunStore& operator=(const RunStore&) = delete;

    const std::string& path() const;

    // A new run in status 'queued'; returns its id.
    int64_t createRun(const std::string& specJson, const std::string& name, const std::string& method);
    // queued | stopped | interrupted -> running; takes the run's lock (held by
    // this object until finish()). Not needed when a StoreWriter writes the run.
    void markRunning(int64_t id, const std::string& backend, const std::string& device);
    // running -> finished | failed | stopped | interrupted;
    // queued -> failed | stopped (never started).
    void finish(int64_t id, RunStatus status, const std::string& message);
    void finish(int64_t id, const std::string& status, const std::string& message);
    // Records a file (replacing the record of the same step).
    void recordSnapshot(int64_t id, int64_t step, const std::string& path);
    void recordCheckpoint(int64_t id, int64_t step, const std::string& path);
    // Marks 'running' runs without a live writer 'interrupted'; returns their ids.
    std::vector<int64_t> recoverInterrupted();
    // Removes the run's rows from every table in one transaction. Refuses a
    // run that a live process is writing.
    DeletedRun deleteRun(int64_t id);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
struct WriterOptions {
    size_t queueCapacity = 1'000'000;                   // rows not yet committed
    std::chrono::milliseconds commitInterval{200};      // commit at least this often...
    size_t commitRows = 10'000;                         // ...or when this many rows wait
    std::chrono::milliseconds busyTimeout{5000};
    std::chrono::milliseconds retryInterval{1000};      // after a failed commit
    std::chrono::milliseconds heartbeatInterval{10000}; // heartbeat_at while idle
    std::chrono::milliseconds finishTimeout{30000};     // runFinished waits this long at most
};

struct WriterStats {
    uint64_t rowsQueued = 0;      // everything accepted (metrics, spectra, events, status)
    uint64_t rowsCommitted = 0;
    uint64_t rowsDropped = 0;     // only while the database fails and the queue is full
    uint64_t commits = 0;         // transactions
    uint64_t failedCommits = 0;
    uint64_t stalls = 0;          // sink calls that waited for queue space
    double stallSeconds = 0;
    size_t pendingRows = 0;       // queued or in flight
};

// The MetricsSink of one run. Every sink call copies its rows into a bounded
// queue and returns (microseconds); a thread owning the one writer connection
// commits them in batches. A full queue makes the call wait for space (a
// "stall", counted and reported to the run as a "writer_stall" event) rather
// than dropping rows. Database failures (disk full, locked, read-only) never
// throw from sink calls: they set error(), the batch is kept and retried; rows
// are dropped (and counted) only if the queue fills while it keeps failing.
class StoreWriter final : public MetricsSink {
public:
    // Opens the database (throws StoreError), recovers dead runs and takes
    // run `runId`'s lock. The run must exist and not be finished or live.
    StoreWriter(const std::string& dbPath, int64_t runId, WriterOptions options = {});
    // Flushes; a run started but never finished is marked 'interrupted'.
    ~StoreWriter() override;
    StoreWriter(const StoreWriter&) = delete;
    StoreWriter& operator=(const StoreWriter&) = delete;

    // MetricsSink. runStarted marks the run 'running' (and stores the spec
    // the trainer reports); runFinished records the status and flushes.
    void runStarted(const std::string& specJson, const std::string& backend,
                    const std::string& device) override;
    void metrics(const std::vector<MetricPoint>& points, double wallSeconds) override;
    void spectrum(int64_t step, const std::string& matrix, const std::vector<float>& sigma) override;
    void event(int64_t step, const std::string& kind, const std::string& detail) override;
    void runFinished(const std::string& status, const std::string& message) override;

    // File records, committed in order with the rows around them.
    void recordSnapshot(int64_t step, const std::string& path);
    void recordCheckpoint(int64_t step, const std::string& path);

    // Waits until everything queued before the call is committed. False on
    // timeout or when a commit attempt fails meanwhile (see error()).
    bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(30));

    // The first database error this writer met ("runs.sqlite: the disk is
    // full ..."), if any. Sticky: stats() says whether rows were lost.
    std::optional<std::string> error() const;
    WriterStats stats() const;
    int64_t runId() const;
    const std::string& path() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------
// A metric table merged on step: one column per (run, key); NaN where a
// column has no row at that step.
struct MetricTable {
    struct Column {
        int64_t run = 0;
        std::string key;
        std::string label;       // CSV header
    };
    std::vector<Column> columns;
    std::vector<int64_t> steps;                 // ascending
    std::vector<std::vector<double>> values;    // [row][column]
    std::vector<std::vector<bool>> present;     // [row][column]
};

// Read access. Opens an existing database (throws StoreError when missing or
// unusable; migrates an older schema when the file is writable). Calls are
// serialised by a mutex, so sharing one between threads is safe, but each
// thread (GUI, CLI) is better off with its own. Cheap to keep open: reads
// never block the writer (WAL) and hold no transaction between calls.
class RunReader {
public:
    explicit RunReader(const std::string& path, StoreOptions options = {});
    ~RunReader();
    RunReader(const RunReader&) = delete;
    RunReader& operator=(const RunReader&) = delete;

    const std::string& path() const;

    // Changes whenever any connection commits to the database (PRAGMA
    // data_version) or this reader deletes a run: the GUI's cheap poll.
    int64_t dataVersion();

    std::vector<RunSummary> listRuns();                 // by id
    std::optional<RunSummary> run(int64_t id);
    std::optional<std::string> spec(int64_t id);
    std::vector<std::string> metricKeys(int64_t run);   // sorted
    // Rows with step > sinceStep, ascending (incremental polling).
    std::vector<SeriesPoint> series(int64_t run, const std::string& key,
                                    int64_t sinceStep = std::numeric_limits<int64_t>::min());
    std::optional<SeriesPoint> latest(int64_t run, const std::string& key);
    std::vector<int64_t> spectrumSteps(int64_t run);
    std::vector<SpectrumRecord> spectra(int64_t run, std::optional<int64_t> step = {},
                                        const std::optional<std::string>& matrix = {});
    // Events with id > afterId, by id.
    std::vector<EventRecord> events(int64_t run, int64_t afterId = 0);
    std::vector<FileRecord> snapshots(int64_t run);
    std::vector<FileRecord> checkpoints(int64_t run);

    // Columns (run, key) merged on step; keys empty = every key of each run.
    MetricTable table(const std::vector<std::pair<int64_t, std::string>>& columns);
    // "step,<key>,..." for one run (keys empty = all of them).
    void writeMetricsCsv(std::ostream& out, int64_t run, const std::vector<std::string>& keys = {});
    // "step,<name>#<id>,..." : one key across runs, for compare.
    void writeCompareCsv(std::ostream& out, const std::vector<int64_t>& runs, const std::string& key);

    // As RunStore::deleteRun, on this reader's connection (the GUI's delete).
    DeletedRun deleteRun(int64_t id);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// "<db>.run-<id>.lock": the file whose flock marks a run's writer as alive.
std::string runLockPath(const std::string& dbPath, int64_t runId);
// True when some process (this one included) holds the run's lock.
bool runIsLive(const std::string& dbPath, int64_t runId);

}  // namespace relora::store
