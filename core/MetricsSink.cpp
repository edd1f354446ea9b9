#include "core/MetricsSink.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>

namespace relora {

namespace {

// Ordered, so "type" leads every line as written.
using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// Metrics arrive every step; flushing each would cost a syscall per step.
constexpr auto kMetricFlushInterval = std::chrono::milliseconds(500);

// A float widened to double prints as 0.30000001192092896; its shortest float
// form "0.3" reads back as the same float and keeps spectrum lines short.
double shortest(float v) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    double value = 0;
    std::from_chars(text, end, value);
    return value;
}

}  // namespace

struct JsonLinesSink::Impl {
    std::string path;
    std::ofstream out;
    std::mutex mutex;
    Clock::time_point lastFlush = Clock::now();

    void write(const Json& line, bool flushNow) {
        std::lock_guard lock(mutex);
        // JSON has no NaN or Infinity; dump writes them as null, so a diverged
        // loss still gives a readable line. Invalid UTF-8 (file names, error
        // texts) is replaced instead of thrown: a lost character beats a lost
        // record.
        out << line.dump(-1, ' ', false, Json::error_handler_t::replace) << '\n';
        const Clock::time_point now = Clock::now();
        if (flushNow || now - lastFlush >= kMetricFlushInterval) {
            out.flush();
            lastFlush = now;
        }
        if (!out) throw std::runtime_error("cannot write metrics file '" + path + "'");
    }
};

JsonLinesSink::JsonLinesSink(const std::string& path) : impl_(std::make_unique<Impl>()) {
    impl_->path = path;
    impl_->out.open(path, std::ios::out | std::ios::trunc);
    if (!impl_->out) {
        throw std::runtime_error("cannot open metrics file '" + path +
                                 "' for writing: " + std::strerror(errno));
    }
}

JsonLinesSink::~JsonLinesSink() = default;

void JsonLinesSink::runStarted(const std::string& specJson, const std::string& backend,
                               const std::string& device) {
    Json spec = Json::parse(specJson, nullptr, /*allow_exceptions=*/false);
    // Keep an unparsable spec as text rather than dropping the run's header.
    if (spec.is_discarded()) spec = specJson;
    impl_->write({{"type", "run_started"}, {"spec", spec}, {"backend", backend}, {"device", device}},
                 true);
}

void JsonLinesSink::metrics(const std::vector<MetricPoint>& points, double wallSeconds) {
    for (const MetricPoint& p : points) {
        impl_->write({{"type", "metric"},
                      {"key", p.key},
                      {"step", p.step},
                      {"value", p.value},
                      {"t", wallSeconds}},
                     false);
    }
}

void JsonLinesSink::spectrum(int64_t step, const std::string& matrix,
                             const std::vector<float>& sigma) {
    Json values = Json::array();
    for (const float s : sigma) values.push_back(shortest(s));
    impl_->write({{"type", "spectrum"}, {"step", step}, {"matrix", matrix}, {"sigma", values}},
                 false);
}

void JsonLinesSink::event(int64_t step, const std::string& kind, const std::string& detail) {
    impl_->write({{"type", "event"}, {"step", step}, {"kind", kind}, {"detail", detail}}, true);
}

void JsonLinesSink::runFinished(const std::string& status, const std::string& message) {
    impl_->write({{"type", "run_finished"}, {"status", status}, {"message", message}}, true);
}

}  // namespace relora
