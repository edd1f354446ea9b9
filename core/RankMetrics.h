// Rank metrics of a learned update ΔW from its singular values (DESIGN §6).
#pragma once

#include <cstddef>
#include <vector>

namespace relora {

struct RankSummary {
    double effectiveRank = 0;   // exp(-Σ p_i ln p_i), p_i = σ_i / Σσ  (Roy & Vetterli)
    double stableRank = 0;      // Σσ² / σ_max²
    int thresholdRank = 0;      // #σ ≥ τ (zeros never count)
};

// σ in any order, all ≥ 0. An all-zero spectrum has every rank 0.
double effectiveRank(const std::vector<float>& sigma);
double stableRank(const std::vector<float>& sigma);
int thresholdRank(const std::vector<float>& sigma, float tau);
RankSummary summarizeSpectrum(const std::vector<float>& sigma, float tau);

// Singular values (descending) of a row-major host matrix through LAPACK.
// Throws std::runtime_error for non-finite entries or a LAPACK failure.
std::vector<float> singularValuesHost(const float* a, size_t rows, size_t cols);

}  // namespace relora
