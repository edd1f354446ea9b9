#include "core/RankMetrics.h"

#include <lapacke.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <stdexcept>
#include <string>

namespace relora {

// Sums run in double: a 2048-wide spectrum of floats loses digits otherwise.

double effectiveRank(const std::vector<float>& sigma) {
    double total = 0;
    for (const float s : sigma) total += s;
    if (total <= 0) return 0;
    double entropy = 0;
    for (const float s : sigma) {
        const double p = s / total;
        if (p > 0) entropy -= p * std::log(p);
    }
    return std::exp(entropy);
}

double stableRank(const std::vector<float>& sigma) {
    double largest = 0;
    double squares = 0;
    for (const float s : sigma) {
        largest = std::max(largest, static_cast<double>(s));
        squares += static_cast<double>(s) * s;
    }
    return largest > 0 ? squares / (largest * largest) : 0;
}

int thresholdRank(const std::vector<float>& sigma, float tau) {
    // Zeros never count, so a τ ≤ 0 does not turn an all-zero spectrum into
    // "full rank".
    return static_cast<int>(
        std::count_if(sigma.begin(), sigma.end(), [tau](float s) { return s > 0 && s >= tau; }));
}

RankSummary summarizeSpectrum(const std::vector<float>& sigma, float tau) {
    return {effectiveRank(sigma), stableRank(sigma), thresholdRank(sigma, tau)};
}

std::vector<float> singularValuesHost(const float* a, size_t rows, size_t cols) {
    if (rows == 0 || cols == 0) return {};
    if (rows > INT_MAX || cols > INT_MAX) {
        throw std::runtime_error("matrix " + std::to_string(rows) + "x" + std::to_string(cols) +
                                 " is too large for LAPACK");
    }
    // gesdd overwrites its input. The row-major rows×cols matrix is the
    // column-major cols×rows transpose, which has the same singular values,
    // so LAPACK can work on it directly without LAPACKE's transposed copy.
    std::vector<float> work(a, a + rows * cols);
    if (!std::all_of(work.begin(), work.end(), [](float v) { return std::isfinite(v); })) {
        throw std::runtime_error("singular values: the " + std::to_string(rows) + "x" +
                                 std::to_string(cols) + " matrix has non-finite entries");
    }
    const auto m = static_cast<lapack_int>(cols);
    const auto n = static_cast<lapack_int>(rows);
    std::vector<float> sigma(std::min(rows, cols));
    const lapack_int info = LAPACKE_sgesdd(LAPACK_COL_MAJOR, 'N', m, n, work.data(), m,
                                           sigma.data(), nullptr, 1, nullptr, 1);
    if (info != 0) {
        throw std::runtime_error("LAPACK sgesdd failed on a " + std::to_string(rows) + "x" +
                                 std::to_string(cols) + " matrix (info = " +
                                 std::to_string(info) + ")");
    }
    return sigma;   // gesdd returns them descending
}

}  // namespace relora
