#include "ui/charts/Decimation.h"

#include <algorithm>
#include <cmath>

namespace relora::ui {

QList<QPointF> decimateMinMax(const std::vector<double>& x, const std::vector<double>& y,
                              const DecimationRange& range, bool positiveOnly) {
    const size_t n = std::min(x.size(), y.size());
    const auto usable = [&](size_t i) { return std::isfinite(y[i]) && (!positiveOnly || y[i] > 0); };

    // [first, last): the visible points plus one neighbour on each side.
    size_t first = static_cast<size_t>(std::lower_bound(x.begin(), x.begin() + n, range.xMin) - x.begin());
    size_t last = static_cast<size_t>(std::upper_bound(x.begin(), x.begin() + n, range.xMax) - x.begin());
    first = first > 0 ? first - 1 : 0;
    last = std::min(n, last + 1);

    QList<QPointF> out;
    const int buckets = std::max(1, range.buckets);
    if (last - first <= static_cast<size_t>(2 * buckets)) {
        out.reserve(static_cast<qsizetype>(last - first));
        for (size_t i = first; i < last; ++i)
            if (usable(i)) out.append(QPointF(x[i], y[i]));
        return out;
    }

    out.reserve(2 * buckets + 4);
    const double width = range.xMax > range.xMin ? (range.xMax - range.xMin) / buckets : 1.0;
    const auto bucketOf = [&](size_t i) {
        const double b = std::floor((x[i] - range.xMin) / width);
        return static_cast<long>(std::clamp(b, -1.0, static_cast<double>(buckets)));
    };
    long current = 0;
    size_t lowest = 0, highest = 0;
    bool open = false;
    const auto flush = [&] {
        if (!open) return;
        out.append(QPointF(x[std::min(lowest, highest)], y[std::min(lowest, highest)]));
        if (lowest != highest) out.append(QPointF(x[std::max(lowest, highest)], y[std::max(lowest, highest)]));
        open = false;
    };
    for (size_t i = first; i < last; ++i) {
        if (!usable(i)) continue;
        const long b = bucketOf(i);
        if (!open || b != current) {
            flush();
            current = b;
            lowest = highest = i;
            open = true;
            continue;
        }
        if (y[i] < y[lowest]) lowest = i;
        if (y[i] > y[highest]) highest = i;
    }
    flush();
    return out;
}

}  // namespace relora::ui
