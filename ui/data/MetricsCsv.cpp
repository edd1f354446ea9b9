#include "ui/data/MetricsCsv.h"

#include <charconv>
#include <cmath>

namespace relora::ui {
namespace {

std::string quoted(const std::string& s) {
    if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
    return out + "\"";
}

// Shortest round-trip text; "nan" for values the trainer reported as not finite.
std::string number(double v) {
    if (!std::isfinite(v)) return std::isnan(v) ? "nan" : (v > 0 ? "inf" : "-inf");
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

}  // namespace

void writeMetricsCsv(store::RunReader& reader, const std::vector<int64_t>& runs, std::ostream& out) {
    out << "run_id,run,method,key,step,value,wall_s\n";
    for (int64_t id : runs) {
        const auto summary = reader.run(id);
        if (!summary) continue;
        const std::string prefix = std::to_string(id) + "," + quoted(summary->name) + "," + quoted(summary->method) + ",";
        for (const std::string& key : reader.metricKeys(id))
            for (const store::SeriesPoint& p : reader.series(id, key))
                out << prefix << quoted(key) << ',' << p.step << ',' << number(p.value) << ',' << number(p.wall) << '\n';
    }
}

}  // namespace relora::ui
