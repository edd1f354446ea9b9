// store_bench: throughput and latency of the run database (DESIGN §7).
//
//   1. sustained metric rows/s through StoreWriter (enqueue as fast as
//      possible, until flush() returns: everything committed)
//   2. cost of the trainer-side sink call, one step of 10 metrics
//   3. the GUI's incremental poll over 8 runs x 100k steps: dataVersion()
//      plus series(run, key, lastSeenStep) for every run and key
//
// Usage: store_bench [--dir DIR] [--rows N] [--runs R] [--steps S] [--keep]
#include "core/store/RunStore.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

using namespace relora;
using namespace relora::store;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

const std::vector<std::string> kStepKeys = {"train_loss", "lr", "grad_norm", "tokens_per_s", "step_ms"};

std::vector<MetricPoint> stepPoints(int64_t step, size_t keys) {
    static const std::vector<std::string> names = {"train_loss", "lr", "grad_norm", "tokens_per_s", "step_ms",
                                                   "rank_eff/wq", "rank_eff/wk", "rank_eff/wv", "rank_eff/wo",
                                                   "rank_eff/gate", "rank_eff/up", "rank_eff/down"};
    std::vector<MetricPoint> p;
    for (size_t k = 0; k < keys; ++k) p.push_back({names[k % names.size()], step, 3.0 - 1e-6 * double(step) + double(k)});
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    std::string dirArg;
    int64_t sustainedRows = 2'000'000;
    int runs = 8;
    int64_t steps = 100'000;
    bool keep = false;
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--dir" && i + 1 < argc) dirArg = argv[++i];
        else if (a == "--rows" && i + 1 < argc) sustainedRows = std::atoll(argv[++i]);
        else if (a == "--runs" && i + 1 < argc) runs = std::atoi(argv[++i]);
        else if (a == "--steps" && i + 1 < argc) steps = std::atoll(argv[++i]);
        else if (a == "--keep") keep = true;
        else {
            std::fprintf(stderr, "usage: %s [--dir DIR] [--rows N] [--runs R] [--steps S] [--keep]\n", argv[0]);
            return 2;
        }
    }
    fs::path dir;
    if (dirArg.empty()) {
        char tmpl[] = "/tmp/store-bench-XXXXXX";
        if (!::mkdtemp(tmpl)) {
            std::perror("mkdtemp");
            return 1;
        }
        dir = tmpl;
    } else {
        dir = dirArg;
        fs::create_directories(dir);
    }
    try {
        // ---- 1. sustained rows/s --------------------------------------------
        {
            const std::string path = (dir / "sustained.sqlite").string();
            const int64_t id = RunStore(path).createRun("{}", "sustained", "full");
            StoreWriter w(path, id);
            w.runStarted("{}", "cpu", "bench");
            const int64_t stepsNeeded = sustainedRows / 10;
            std::vector<std::vector<MetricPoint>> batches;
            for (int64_t s = 0; s < 1000; ++s) batches.push_back(stepPoints(s, 10));
            const auto t0 = Clock::now();
            for (int64_t s = 1; s <= stepsNeeded; ++s) {
                auto& b = batches[size_t(s % 1000)];
                for (auto& p : b) p.step = s;
                w.metrics(b, double(s));
            }
            const double enqueued = since(t0);
            const bool ok = w.flush(std::chrono::minutes(10));
            const double total = since(t0);
            const WriterStats st = w.stats();
            std::printf("1. sustained: %lld rows committed in %.2f s = %.0f rows/s "
                        "(enqueue done after %.2f s; %llu transactions; %llu stalls, %.2f s waiting)%s\n",
                        static_cast<long long>(stepsNeeded * 10), total, double(stepsNeeded * 10) / total, enqueued,
                        static_cast<unsigned long long>(st.commits), static_cast<unsigned long long>(st.stalls),
                        st.stallSeconds, ok ? "" : "  FLUSH FAILED");
            if (auto e = w.error()) std::printf("   error: %s\n", e->c_str());
            w.runFinished("finished", "bench");
        }

        // ---- 2. trainer-side cost of a sink call --------------------------------
        {
            const std::string path = (dir / "latency.sqlite").string();
            const int64_t id = RunStore(path).createRun("{}", "latency", "full");
            StoreWriter w(path, id);
            w.runStarted("{}", "cpu", "bench");
            const int n = 50'000;
            std::vector<double> us;
            us.reserve(n);
            std::vector<MetricPoint> points = stepPoints(0, 10);
            for (int s = 1; s <= n; ++s) {
                for (auto& p : points) p.step = s;
                const auto t0 = Clock::now();
                w.metrics(points, double(s));
                us.push_back(since(t0) * 1e6);
            }
            // Paced like a fast trainer: one step per millisecond, so the
            // writer is never flooded (busy wait: sleeps are too coarse).
            std::vector<double> paced;
            for (int s = n + 1; s <= n + 2000; ++s) {
                const auto next = Clock::now() + std::chrono::microseconds(1000);
                for (auto& p : points) p.step = s;
                const auto t0 = Clock::now();
                w.metrics(points, double(s));
                paced.push_back(since(t0) * 1e6);
                while (Clock::now() < next) {
                }
            }
            std::sort(paced.begin(), paced.end());
            w.runFinished("finished", "bench");
            std::sort(us.begin(), us.end());
            double mean = 0;
            for (double u : us) mean += u;
            mean /= double(us.size());
            const auto over = [&](double limit) { return us.end() - std::upper_bound(us.begin(), us.end(), limit); };
            std::printf("2. sink call, 10 metrics/step, %d steps back to back: mean %.2f us, median %.2f us, "
                        "p99 %.2f us, p99.9 %.1f us, max %.0f us (%ld calls > 100 us, %ld > 1 ms)\n",
                        n, mean, us[us.size() / 2], us[us.size() * 99 / 100], us[us.size() * 999 / 1000], us.back(),
                        long(over(100)), long(over(1000)));
            std::printf("   paced at 1 step/ms, 2000 steps: median %.2f us, p99 %.2f us, max %.0f us\n",
                        paced[paced.size() / 2], paced[paced.size() * 99 / 100], paced.back());
        }

        // ---- 3. incremental poll --------------------------------------------------
        {
            const std::string path = (dir / "poll.sqlite").string();
            std::vector<int64_t> ids;
            {
                RunStore store(path);
                for (int r = 0; r < runs; ++r)
                    ids.push_back(store.createRun("{}", "run" + std::to_string(r), r % 3 == 0 ? "full" : "relora"));
            }
            const auto tFill = Clock::now();
            for (int64_t id : ids) {
                StoreWriter w(path, id);   // runs stay 'queued': more rows come later
                for (int64_t s = 1; s <= steps; ++s) w.metrics(stepPoints(s, kStepKeys.size()), double(s));
                w.flush(std::chrono::minutes(10));
            }
            const int64_t rowsTotal = int64_t(runs) * steps * int64_t(kStepKeys.size());
            std::printf("3. poll database: %d runs x %lld steps x %zu keys = %lld rows, written in %.1f s, %.0f MB\n",
                        runs, static_cast<long long>(steps), kStepKeys.size(), static_cast<long long>(rowsTotal),
                        since(tFill), double(fs::file_size(path)) / 1e6);

            RunReader reader(path);
            std::vector<std::vector<int64_t>> last(ids.size(), std::vector<int64_t>(kStepKeys.size(), INT64_MIN));
            const auto poll = [&](size_t& rows) {
                rows = 0;
                for (size_t r = 0; r < ids.size(); ++r)
                    for (size_t k = 0; k < kStepKeys.size(); ++k) {
                        const auto pts = reader.series(ids[r], kStepKeys[k], last[r][k]);
                        if (!pts.empty()) last[r][k] = pts.back().step;
                        rows += pts.size();
                    }
            };
            size_t rows = 0;
            auto t0 = Clock::now();
            poll(rows);
            std::printf("   first load (all rows of every run and key): %zu rows in %.1f ms\n", rows, since(t0) * 1e3);

            int64_t version = reader.dataVersion();
            t0 = Clock::now();
            const int64_t v2 = reader.dataVersion();
            std::printf("   dataVersion() alone: %.3f ms (unchanged: %s)\n", since(t0) * 1e3, v2 == version ? "yes" : "no");

            t0 = Clock::now();
            reader.dataVersion();
            poll(rows);
            std::printf("   incremental poll, nothing new (dataVersion + %zu series queries): %.3f ms, %zu rows\n",
                        ids.size() * kStepKeys.size(), since(t0) * 1e3, rows);

            // 10 new steps per run, as a live GUI would see between two polls.
            for (int64_t id : ids) {
                StoreWriter w(path, id);
                for (int64_t s = steps + 1; s <= steps + 10; ++s) w.metrics(stepPoints(s, kStepKeys.size()), double(s));
                w.flush();
            }
            t0 = Clock::now();
            const int64_t v3 = reader.dataVersion();
            poll(rows);
            const double pollMs = since(t0) * 1e3;
            std::printf("   incremental poll, 10 new steps per run (dataVersion changed: %s): %.3f ms, %zu rows%s\n",
                        v3 != version ? "yes" : "no", pollMs, rows, pollMs < 50 ? "" : "  (over the 50 ms target)");
            version = v3;

            t0 = Clock::now();
            const auto list = reader.listRuns();
            std::printf("   listRuns() with %zu runs: %.3f ms\n", list.size(), since(t0) * 1e3);
            t0 = Clock::now();
            const auto keys = reader.metricKeys(ids[0]);
            std::printf("   metricKeys() of a %lld-row run: %.3f ms (%zu keys)\n",
                        static_cast<long long>(steps * int64_t(kStepKeys.size())), since(t0) * 1e3, keys.size());
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "store_bench: %s\n", e.what());
        if (!keep && dirArg.empty()) fs::remove_all(dir);
        return 1;
    }
    if (!keep && dirArg.empty()) fs::remove_all(dir);
    else std::printf("databases kept in %s\n", dir.c_str());
    return 0;
}
