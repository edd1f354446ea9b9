// RunReader: the read side (CLI list/show/metrics/compare/delete, GUI polling).
// Every query is an index range scan on a primary key, so the cost of a poll
// is proportional to the rows it returns, not to the size of the database.
#include "core/store/StoreInternal.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <mutex>
#include <ostream>

namespace relora::store {

using detail::Stmt;

struct RunReader::Impl {
    std::string path;
    detail::DbPtr db;
    bool readOnly = false;
    int64_t localEpoch = 0;              // own deletes: data_version ignores them
    std::mutex m;
    std::map<const char*, Stmt> cache;   // keyed by the SQL literal's address

    Stmt& q(const char* sql) {
        auto it = cache.find(sql);
        if (it == cache.end()) it = cache.emplace(sql, Stmt(db.get(), path, sql)).first;
        return it->second;
    }

    std::optional<SeriesPoint> latest(int64_t run, const std::string& key) {
        Stmt& s = q("SELECT step, value, wall FROM metrics WHERE run_id = ? AND key = ? ORDER BY step DESC LIMIT 1");
        auto scope = s.scope();
        s.bind(1, run).bind(2, key);
        if (!s.step()) return std::nullopt;
        return SeriesPoint{s.int64(0), s.real(1), s.real(2)};
    }

    std::vector<SeriesPoint> series(int64_t run, const std::string& key, int64_t since) {
        Stmt& s = q("SELECT step, value, wall FROM metrics WHERE run_id = ? AND key = ? AND step > ? ORDER BY step");
        auto scope = s.scope();
        s.bind(1, run).bind(2, key).bind(3, since);
        std::vector<SeriesPoint> out;
        while (s.step()) out.push_back({s.int64(0), s.real(1), s.real(2)});
        return out;
    }

    std::vector<std::string> keys(int64_t run) {
        // A skip scan: one index seek per distinct key instead of a scan of
        // every row of the run.
        Stmt& s = q(R"sql(
            WITH RECURSIVE k(key) AS (
                SELECT (SELECT min(key) FROM metrics WHERE run_id = ?1)
                UNION ALL
                SELECT (SELECT min(key) FROM metrics WHERE run_id = ?1 AND key > k.key)
                FROM k WHERE k.key IS NOT NULL)
            SELECT key FROM k WHERE key IS NOT NULL)sql");
        auto scope = s.scope();
        s.bind(1, run);
        std::vector<std::string> out;
        while (s.step()) out.push_back(s.text(0));
        return out;
    }

    RunSummary summary(Stmt& s) {
        RunSummary r;
        r.id = s.int64(0);
        r.name = s.text(1);
        r.method = s.text(2);
        r.status = s.text(3);
        r.backend = s.text(4);
        r.device = s.text(5);
        r.message = s.text(6);
        r.createdAt = s.real(7);
        r.startedAt = s.optReal(8);
        r.finishedAt = s.optReal(9);
        r.heartbeatAt = s.optReal(10);
        return r;
    }

    void complete(RunSummary& r) {
        if (r.status == "running") {
            r.live = runIsLive(path, r.id);
            if (!r.live) {
                r.status = "interrupted";
                if (r.message.empty()) r.message = "interrupted: the process writing this run is gone";
            }
        }
        if (auto p = latest(r.id, "train_loss")) {
            r.trainLoss = p->value;
            r.lastStep = p->step;
        }
        if (auto p = latest(r.id, "val_loss")) r.valLoss = p->value;
        {
            Stmt& s = q("SELECT min(value) FROM metrics WHERE run_id = ? AND key = 'val_loss'");
            auto scope = s.scope();
            s.bind(1, r.id);
            if (s.step() && !s.isNull(0)) r.bestValLoss = s.real(0);
        }
        if (!r.lastStep) {
            for (const std::string& key : keys(r.id)) {
                if (auto p = latest(r.id, key); p && (!r.lastStep || p->step > *r.lastStep)) r.lastStep = p->step;
            }
        }
    }

    // One read transaction: the rows of several queries from one snapshot.
    template <typename F>
    auto snapshot(F&& body) {
        detail::exec(db.get(), path, "BEGIN");
        try {
            auto out = body();
            detail::exec(db.get(), path, "COMMIT");
            return out;
        } catch (...) {
            if (!sqlite3_get_autocommit(db.get())) sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    }

    std::vector<FileRecord> files(const char* sql, int64_t run) {
        Stmt& s = q(sql);
        auto scope = s.scope();
        s.bind(1, run);
        std::vector<FileRecord> out;
        while (s.step()) out.push_back({s.int64(0), s.text(1), s.real(2)});
        return out;
    }
};

namespace {

constexpr const char* kListRuns =
    "SELECT id, name, method, status, backend, device, message, created_at, started_at, finished_at, "
    "heartbeat_at FROM runs ORDER BY id";
constexpr const char* kRunById =
    "SELECT id, name, method, status, backend, device, message, created_at, started_at, finished_at, "
    "heartbeat_at FROM runs WHERE id = ?";

std::string csvField(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string formatNumber(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[64];
    const auto end = std::to_chars(buf, buf + sizeof buf, v).ptr;
    return std::string(buf, end);
}

void writeCsv(std::ostream& out, const MetricTable& t) {
    out << "step";
    for (const auto& c : t.columns) out << ',' << csvField(c.label);
    out << '\n';
    for (size_t r = 0; r < t.steps.size(); ++r) {
        out << t.steps[r];
        for (size_t c = 0; c < t.columns.size(); ++c) {
            out << ',';
            if (t.present[r][c]) out << formatNumber(t.values[r][c]);
        }
        out << '\n';
    }
}

}  // namespace

RunReader::RunReader(const std::string& path, StoreOptions options) : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    auto opened = detail::openDatabase(path, detail::OpenMode::Reader, options.busyTimeout);
    impl_->db = std::move(opened.db);
    impl_->readOnly = opened.readOnly;
}

RunReader::~RunReader() = default;

const std::string& RunReader::path() const { return impl_->path; }

int64_t RunReader::dataVersion() {
    std::lock_guard lk(impl_->m);
    Stmt& s = impl_->q("PRAGMA data_version");
    auto scope = s.scope();
    const int64_t v = s.step() ? s.int64(0) : 0;
    return v + impl_->localEpoch;
}

std::vector<RunSummary> RunReader::listRuns() {
    Impl& s = *impl_;
    std::lock_guard lk(s.m);
    return s.snapshot([&] {
        std::vector<RunSummary> out;
        {
            Stmt& q = s.q(kListRuns);
            auto scope = q.scope();
            while (q.step()) out.push_back(s.summary(q));
        }
        for (RunSummary& r : out) s.complete(r);
        return out;
    });
}

std::optional<RunSummary> RunReader::run(int64_t id) {
    Impl& s = *impl_;
    std::lock_guard lk(s.m);
    return s.snapshot([&]() -> std::optional<RunSummary> {
        std::optional<RunSummary> r;
        {
            Stmt& q = s.q(kRunById);
            auto scope = q.scope();
            q.bind(1, id);
            if (q.step()) r = s.summary(q);
        }
        if (r) s.complete(*r);
        return r;
    });
}

std::optional<std::string> RunReader::spec(int64_t id) {
    std::lock_guard lk(impl_->m);
    Stmt& q = impl_->q("SELECT spec FROM runs WHERE id = ?");
    auto scope = q.scope();
    q.bind(1, id);
    if (!q.step()) return std::nullopt;
    return q.text(0);
}

std::vector<std::string> RunReader::metricKeys(int64_t run) {
    std::lock_guard lk(impl_->m);
    return impl_->keys(run);
}

std::vector<SeriesPoint> RunReader::series(int64_t run, const std::string& key, int64_t sinceStep) {
    std::lock_guard lk(impl_->m);
    return impl_->series(run, key, sinceStep);
}

std::optional<SeriesPoint> RunReader::latest(int64_t run, const std::string& key) {
    std::lock_guard lk(impl_->m);
    return impl_->latest(run, key);
}

std::vector<int64_t> RunReader::spectrumSteps(int64_t run) {
    std::lock_guard lk(impl_->m);
    Stmt& q = impl_->q("SELECT DISTINCT step FROM spectra WHERE run_id = ? ORDER BY step");
    auto scope = q.scope();
    q.bind(1, run);
    std::vector<int64_t> out;
    while (q.step()) out.push_back(q.int64(0));
    return out;
}

std::vector<SpectrumRecord> RunReader::spectra(int64_t run, std::optional<int64_t> step,
                                               const std::optional<std::string>& matrix) {
    static constexpr const char* kAll = "SELECT step, matrix, sigma FROM spectra WHERE run_id = ?1 ORDER BY step, matrix";
    static constexpr const char* kStep =
        "SELECT step, matrix, sigma FROM spectra WHERE run_id = ?1 AND step = ?2 ORDER BY matrix";
    static constexpr const char* kMatrix =
        "SELECT step, matrix, sigma FROM spectra WHERE run_id = ?1 AND matrix = ?3 ORDER BY step";
    static constexpr const char* kBoth =
        "SELECT step, matrix, sigma FROM spectra WHERE run_id = ?1 AND step = ?2 AND matrix = ?3";
    std::lock_guard lk(impl_->m);
    Stmt& q = impl_->q(step ? (matrix ? kBoth : kStep) : (matrix ? kMatrix : kAll));
    auto scope = q.scope();
    q.bind(1, run);
    if (step) q.bind(2, *step);
    if (matrix) q.bind(3, *matrix);
    std::vector<SpectrumRecord> out;
    while (q.step()) out.push_back({q.int64(0), q.text(1), q.floats(2)});
    return out;
}

std::vector<EventRecord> RunReader::events(int64_t run, int64_t afterId) {
    std::lock_guard lk(impl_->m);
    Stmt& q = impl_->q("SELECT id, step, kind, detail, wall FROM events WHERE run_id = ? AND id > ? ORDER BY id");
    auto scope = q.scope();
    q.bind(1, run).bind(2, afterId);
    std::vector<EventRecord> out;
    while (q.step()) out.push_back({q.int64(0), q.int64(1), q.text(2), q.text(3), q.real(4)});
    return out;
}

std::vector<FileRecord> RunReader::snapshots(int64_t run) {
    std::lock_guard lk(impl_->m);
    return impl_->files("SELECT step, path, created_at FROM snapshots WHERE run_id = ? ORDER BY step", run);
}

std::vector<FileRecord> RunReader::checkpoints(int64_t run) {
    std::lock_guard lk(impl_->m);
    return impl_->files("SELECT step, path, created_at FROM checkpoints WHERE run_id = ? ORDER BY step", run);
}

MetricTable RunReader::table(const std::vector<std::pair<int64_t, std::string>>& columns) {
    Impl& s = *impl_;
    std::lock_guard lk(s.m);
    return s.snapshot([&] {
        MetricTable t;
        for (const auto& [run, key] : columns) {
            if (key.empty()) {
                for (const std::string& k : s.keys(run)) t.columns.push_back({run, k, {}});
            } else {
                t.columns.push_back({run, key, {}});
            }
        }
        // Labels: the key when one run, the run when one key, both otherwise.
        bool oneRun = true, oneKey = true;
        for (const auto& c : t.columns) {
            oneRun = oneRun && c.run == t.columns.front().run;
            oneKey = oneKey && c.key == t.columns.front().key;
        }
        std::map<int64_t, std::string> names;
        if (!oneRun) {
            Stmt& q = s.q("SELECT name FROM runs WHERE id = ?");
            for (const auto& c : t.columns) {
                if (names.count(c.run)) continue;
                auto scope = q.scope();
                q.bind(1, c.run);
                names[c.run] = (q.step() ? q.text(0) : std::string("run")) + "#" + std::to_string(c.run);
            }
        }
        for (auto& c : t.columns)
            c.label = oneRun ? c.key : oneKey ? names[c.run] : names[c.run] + ":" + c.key;

        std::vector<std::vector<SeriesPoint>> data;
        for (const auto& c : t.columns) {
            data.push_back(s.series(c.run, c.key, std::numeric_limits<int64_t>::min()));
            for (const auto& p : data.back()) t.steps.push_back(p.step);
        }
        std::sort(t.steps.begin(), t.steps.end());
        t.steps.erase(std::unique(t.steps.begin(), t.steps.end()), t.steps.end());
        t.values.assign(t.steps.size(), std::vector<double>(t.columns.size(), std::nan("")));
        t.present.assign(t.steps.size(), std::vector<bool>(t.columns.size(), false));
        for (size_t c = 0; c < data.size(); ++c) {
            for (const auto& p : data[c]) {
                const size_t row = static_cast<size_t>(
                    std::lower_bound(t.steps.begin(), t.steps.end(), p.step) - t.steps.begin());
                t.values[row][c] = p.value;
                t.present[row][c] = true;
            }
        }
        return t;
    });
}

void RunReader::writeMetricsCsv(std::ostream& out, int64_t run, const std::vector<std::string>& keys) {
    std::vector<std::pair<int64_t, std::string>> columns;
    if (keys.empty()) columns.emplace_back(run, std::string());
    for (const auto& k : keys) columns.emplace_back(run, k);
    writeCsv(out, table(columns));
}

void RunReader::writeCompareCsv(std::ostream& out, const std::vector<int64_t>& runs, const std::string& key) {
    std::vector<std::pair<int64_t, std::string>> columns;
    for (int64_t r : runs) columns.emplace_back(r, key);
    writeCsv(out, table(columns));
}

DeletedRun RunReader::deleteRun(int64_t id) {
    Impl& s = *impl_;
    std::lock_guard lk(s.m);
    if (s.readOnly)
        throw StoreError(StoreError::Kind::ReadOnly, s.path + ": cannot delete run " + std::to_string(id) +
                                                         ": the database is read-only");
    DeletedRun d = detail::deleteRunSql(s.db.get(), s.path, id);
    ++s.localEpoch;
    return d;
}

}  // namespace relora::store
