// MetricsSink: where a run's measurements go (DESIGN §3). The trainer calls
// these from its own thread; a sink must not block it for long.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace relora {

struct MetricPoint {
    std::string key;    // "train_loss", "lr", "rank_eff/wq", ...
    int64_t step;
    double value;
};

class MetricsSink {
public:
    virtual ~MetricsSink() = default;
    virtual void runStarted(const std::string& specJson, const std::string& backend,
                            const std::string& device) = 0;
    virtual void metrics(const std::vector<MetricPoint>& points, double wallSeconds) = 0;
    // Singular values of ΔW for one matrix ("layers.3.wq") at one step.
    virtual void spectrum(int64_t step, const std::string& matrix, const std::vector<float>& sigma) = 0;
    // kind: "restart", "warm_start_switch", "diverged", "stopped", ...
    virtual void event(int64_t step, const std::string& kind, const std::string& detail) = 0;
    // status: "finished", "failed", "stopped"
    virtual void runFinished(const std::string& status, const std::string& message) = 0;
};

// Writes one JSON object per line: {"type":"metric","key":..,"step":..,"value":..,"t":..}
// (also "run_started", "spectrum", "event", "run_finished"; non-finite
// numbers are written as null). Metrics are flushed at most every ~0.5 s,
// everything else at once. Truncates an existing file.
class JsonLinesSink : public MetricsSink {
public:
    explicit JsonLinesSink(const std::string& path);   // throws if it cannot open
    ~JsonLinesSink() override;
    void runStarted(const std::string& specJson, const std::string& backend,
                    const std::string& device) override;
    void metrics(const std::vector<MetricPoint>& points, double wallSeconds) override;
    void spectrum(int64_t step, const std::string& matrix, const std::vector<float>& sigma) override;
    void event(int64_t step, const std::string& kind, const std::string& detail) override;
    void runFinished(const std::string& status, const std::string& message) override;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// Forwards to several sinks.
class FanOutSink : public MetricsSink {
public:
    void add(MetricsSink* sink) { sinks_.push_back(sink); }
    void runStarted(const std::string& s, const std::string& b, const std::string& d) override {
        for (auto* k : sinks_) k->runStarted(s, b, d);
    }
    void metrics(const std::vector<MetricPoint>& p, double t) override {
        for (auto* k : sinks_) k->metrics(p, t);
    }
    void spectrum(int64_t step, const std::string& m, const std::vector<float>& s) override {
        for (auto* k : sinks_) k->spectrum(step, m, s);
    }
    void event(int64_t step, const std::string& kind, const std::string& d) override {
        for (auto* k : sinks_) k->event(step, kind, d);
    }
    void runFinished(const std::string& s, const std::string& m) override {
        for (auto* k : sinks_) k->runFinished(s, m);
    }

private:
    std::vector<MetricsSink*> sinks_;
};

}  // namespace relora
