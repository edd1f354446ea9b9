// ConsoleSink: prints evaluations and events of a run as readable lines.
#pragma once

#include "core/MetricsSink.h"

#include <cstdio>

namespace relora::cli {

class ConsoleSink : public MetricsSink {
public:
    explicit ConsoleSink(std::FILE* out) : out_(out) {}
    void runStarted(const std::string& specJson, const std::string& backend,
                    const std::string& device) override;
    void metrics(const std::vector<MetricPoint>& points, double wallSeconds) override;
    void spectrum(int64_t, const std::string&, const std::vector<float>&) override {}
    void event(int64_t step, const std::string& kind, const std::string& detail) override;
    void runFinished(const std::string& status, const std::string& message) override;

private:
    std::FILE* out_;
};

}  // namespace relora::cli
