#include "core/SelfTest.h"

#include "core/Backend.h"
#include "core/Checkpoint.h"
#include "core/CounterRng.h"
#include "core/ReLoRA.h"
#include "core/Trainer.h"
#include "core/cpu/CpuBackend.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <tuple>

namespace relora {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ReLoRA's pruning in the bf16 curve check (b): the default, magnitude.
constexpr PruneMode kCurvePrune = PruneMode::Magnitude;

// ---- tolerances (stated in the table) ---------------------------------------
constexpr double kOpTolerance = 1e-5;        // fp32 op vs reference, relative to max |ref|
constexpr double kModelTolerance = 1e-4;     // (a) fp32 logits/loss/gradients, relative to max |ref|
constexpr double kCurveStepTolerance = 0.05; // (b) |Δloss| at every step
constexpr double kCurveFinalTolerance = 0.02;// (b) |Δloss| at the last step
constexpr double kMergeTolerance = 1e-3;     // (c) max |Δlogit| across a merge (fp32)

// ---- backends ---------------------------------------------------------------
// Backends are made fresh for each use and used one at a time: CpuBackend
// sets the OpenMP/OpenBLAS thread count when it is constructed, so a 1-thread
// and an all-cores CPU backend must not be interleaved.
struct Backends {
    std::string kind;                                                   // "cpu" | "cuda"
    std::function<std::unique_ptr<Backend>(bool bf16)> test;
    std::function<std::unique_ptr<Backend>()> reference;
};

Backends chooseBackends(const std::string& requested) {
    std::string kind = requested;
    if (kind == "auto") kind = cudaAvailable() ? "cuda" : "cpu";
    Backends b;
    b.kind = kind;
    b.reference = [] { return std::make_unique<CpuBackend>(0); };
    if (kind == "cpu") {
        b.test = [](bool) { return std::make_unique<CpuBackend>(1); };
    } else if (kind == "cuda") {
        b.test = [](bool bf16) { return createBackend("cuda", {0, bf16}); };
    } else {
        throw std::runtime_error("unknown backend '" + requested + "' (expected auto, cpu or cuda)");
    }
    return b;
}

// ---- host data --------------------------------------------------------------

std::vector<float> normalHost(size_t n, uint64_t seed, float stddev = 1.0f) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = stddev * standardNormal(seed, i);
    return v;
}

std::vector<float> uniformHost(size_t n, uint64_t seed, float lo, float hi) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * uniform01(seed, i);
    return v;
}

std::vector<int32_t> tokensHost(size_t n, int vocab, uint64_t seed) {
    std::vector<int32_t> v(n);
    for (size_t i = 0; i < n; ++i)
        v[i] = std::min(vocab - 1, static_cast<int>(uniform01(seed, i) * static_cast<float>(vocab)));
    return v;
}

// A learnable token stream: 64 symbols (printable bytes 32..95), each with
// four successors chosen once; the first follows with probability 0.7, the
// others with 0.1 each. The loss falls from ln 256 towards ~1.
class TokenStream {
public:
    TokenStream(size_t length, uint64_t seed) : seed_(seed) {
        constexpr int kSymbols = 64;
        std::vector<int> next(kSymbols * 4);
        for (size_t i = 0; i < next.size(); ++i)
            next[i] = static_cast<int>(uniform01(mixSeed(seed, 1), i) * kSymbols) % kSymbols;
        tokens_.resize(length);
        int cur = 0;
        for (size_t i = 0; i < length; ++i) {
            tokens_[i] = 32 + cur;
            const float u = uniform01(mixSeed(seed, 2), i);
            const int k = u < 0.7f ? 0 : std::min(3, 1 + static_cast<int>((u - 0.7f) / 0.1f));
            cur = next[static_cast<size_t>(cur) * 4 + static_cast<size_t>(k)];
        }
    }
    // Batch `index`: B windows at seeded offsets; inputs and targets (B*T).
    void batch(size_t index, size_t B, size_t T, std::vector<int32_t>& inputs,
               std::vector<int32_t>& targets) const {
        inputs.resize(B * T);
        targets.resize(B * T);
        for (size_t b = 0; b < B; ++b) {
            const size_t span = tokens_.size() - T - 1;
            const size_t off = static_cast<size_t>(uniform01(mixSeed(seed_, 3), index * B + b) * static_cast<float>(span));
            for (size_t t = 0; t < T; ++t) {
                inputs[b * T + t] = tokens_[off + t];
                targets[b * T + t] = tokens_[off + t + 1];
            }
        }
    }

private:
    uint64_t seed_;
    std::vector<int32_t> tokens_;
};

// ---- comparisons --------------------------------------------------------------

double maxAbs(const std::vector<float>& v) {
    double m = 0;
    for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
    return m;
}

// max |a − b| / max |ref| (NaN anywhere gives NaN: such a check fails).
double relativeError(const std::vector<float>& test, const std::vector<float>& ref) {
    if (test.size() != ref.size()) return kNaN;
    double d = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
        const double e = std::fabs(static_cast<double>(test[i]) - static_cast<double>(ref[i]));
        if (!std::isfinite(e)) return kNaN;
        d = std::max(d, e);
    }
    const double scale = maxAbs(ref);
    return scale > 0 ? d / scale : d;
}

double maxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return kNaN;
    double d = 0;
    for (size_t i = 0; i < a.size(); ++i) {
        const double e = std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i]));
        if (!std::isfinite(e)) return kNaN;
        d = std::max(d, e);
    }
    return d;
}

std::string sci(double v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2e", v);
    return buf;
}

// ---- device buffers for the op checks -------------------------------------------

class Buffers {
public:
    explicit Buffers(Backend& be) : be_(be) {}
    ~Buffers() {
        for (void* p : owned_) be_.release(p);
    }
    float* put(const std::vector<float>& host) {
        float* p = be_.allocate(host.size());
        owned_.push_back(p);
        be_.upload(p, host.data(), host.size());
        return p;
    }
    int32_t* put(const std::vector<int32_t>& host) {
        int32_t* p = be_.allocateInts(host.size());
        owned_.push_back(p);
        be_.uploadInts(p, host.data(), host.size());
        return p;
    }
    float* zeros(size_t n) {
        float* p = be_.allocate(n);
        owned_.push_back(p);
        return p;
    }
    float* operand(size_t n) {  // Backend::allocateOperand
        float* p = be_.allocateOperand(n);
        owned_.push_back(p);
        return p;
    }
    float* operand(const std::vector<float>& host) {  // an operand buffer holding these values
        float* p = operand(host.size());
        be_.copy(p, put(host), host.size());
        return p;
    }
    std::vector<float> get(const float* p, size_t n) {
        std::vector<float> h(n);
        be_.download(h.data(), p, n);
        return h;
    }

private:
    Backend& be_;
    std::vector<void*> owned_;
};

using Outputs = std::vector<std::pair<std::string, std::vector<float>>>;
using OpFunction = std::function<Outputs(Backend&)>;

// ---- model helpers -------------------------------------------------------------

using Weights = std::vector<std::pair<std::string, std::vector<float>>>;

Weights readWeights(LlamaModel& model) {
    Weights w;
    for (auto& p : model.parameters()) w.emplace_back(p.name, model.read(p));
    return w;
}

void writeWeights(LlamaModel& model, const Weights& weights) {
    for (const auto& [name, values] : weights) {
        Parameter* p = model.find(name);
        if (!p) throw std::runtime_error("self-test: no parameter " + name);
        model.write(*p, values);
    }
}

// Gives every LoRA B factor small random values, so A gets gradients and a
// merge has something to move.
void perturbAdapters(LlamaModel& model, uint64_t seed, float stddev) {
    uint64_t salt = 0;
    for (auto& p : model.parameters())
        if (p.name.ends_with("lora_B.weight"))
            model.write(p, normalHost(p.count(), mixSeed(seed, ++salt), stddev));
}

struct Batch {
    std::vector<int32_t> inputs, targets;
};

// Eval-mode logits and mean loss of one batch.
std::pair<std::vector<float>, double> evalLogits(Trainer& t, const Batch& batch) {
    Backend& be = t.backend();
    LlamaModel& model = t.model();
    const size_t N = batch.inputs.size();
    const size_t B = static_cast<size_t>(t.spec().train.batch);
    Buffers buf(be);
    int32_t* tokens = buf.put(batch.inputs);
    int32_t* targets = buf.put(batch.targets);
    model.forward(tokens, targets, B, false, 0);
    std::vector<float> logits(N * static_cast<size_t>(t.spec().model.vocab));
    be.download(logits.data(), model.logits(), logits.size());
    float lossSum = 0;
    be.download(&lossSum, model.lossSum(), 1);
    return {std::move(logits), lossSum / static_cast<double>(N)};
}

// Gradients (trainable tensors) of the mean loss of one batch.
Weights gradients(Trainer& t, const Batch& batch) {
    Backend& be = t.backend();
    LlamaModel& model = t.model();
    const size_t B = static_cast<size_t>(t.spec().train.batch);
    Buffers buf(be);
    int32_t* tokens = buf.put(batch.inputs);
    int32_t* targets = buf.put(batch.targets);
    model.forward(tokens, targets, B, true, 0);
    model.backward();
    Weights g;
    for (auto& p : model.parameters()) {
        if (!p.trainable) continue;
        std::vector<float> h(p.count());
        be.download(h.data(), p.grad, h.size());
        g.emplace_back(p.name, std::move(h));
    }
    return g;
}

struct CurveResult {
    std::vector<double> losses, norms;
};

CurveResult trainCurve(Backend& be, const RunSpec& spec, const TokenStream& stream, const Weights* start,
                       Weights* startOut) {
    Trainer t(spec, be);
    if (start) writeWeights(t.model(), *start);
    if (startOut) *startOut = readWeights(t.model());
    CurveResult c;
    Batch b;
    const size_t B = static_cast<size_t>(spec.train.batch), T = static_cast<size_t>(spec.model.context);
    for (int s = 0; s < spec.train.steps; ++s) {
        stream.batch(static_cast<size_t>(s), B, T, b.inputs, b.targets);
        const StepResult r = t.step(b.inputs, b.targets);
        c.losses.push_back(r.diverged ? kNaN : r.loss);
        c.norms.push_back(r.gradNorm);
    }
    return c;
}

// ---- the self-test -------------------------------------------------------------

class Runner {
public:
    Runner(const SelfTestOptions& options, Backends backends)
        : options_(options), be_(std::move(backends)), stream_(1 << 16, 0x5e1f7e57ull) {}

    void run(SelfTestReport& report) {
        report_ = &report;
        opChecks();
        modelParity(Method::FullRank);
        modelParity(Method::LoRA);
        curve(Method::FullRank);
        curve(Method::LoRA);
        curve(Method::ReLoRA);
        mergeInvariance();
        pruning(PruneMode::Reset, 0.0f);
        pruning(PruneMode::Random, 0.9f);
        pruning(PruneMode::Magnitude, 0.9f);
        determinism(Method::FullRank);
        determinism(Method::ReLoRA);
        resumeFromCheckpoint();
        loraStartsAsBase();
    }

    RunSpec spec(Method method, int steps) const {
        RunSpec s = syntheticSpec(method, 128, 344, 4, 2, 64);
        s.name = "selftest-" + toString(method);
        s.method.rank = 16;
        s.method.alpha = 32.0f;
        s.method.dropout = 0.0f;
        s.train.batch = 4;
        s.train.steps = steps;
        s.train.evalBatches = 1;
        s.train.seed = 1234;
        s.optim.lr = 3e-3f;
        s.optim.warmup = std::min(10, steps - 1);
        s.optim.weightDecay = 0.01f;
        s.relora.resetInterval = std::min(25, steps / 2);
        s.relora.restartSteps.clear();
        s.relora.restartWarmup = 5;
        s.relora.prune = PruneMode::Magnitude;
        s.relora.pruneRatio = 0.9f;
        s.relora.warmStartSteps = 0;
        return s;
    }

private:
    // Runs `body`, which fills error/passed/detail; an exception fails the row.
    void check(const std::string& name, double tolerance, const std::function<void(SelfTestCheck&)>& body) {
        SelfTestCheck c;
        c.name = name;
        c.tolerance = tolerance;
        try {
            body(c);
        } catch (const std::exception& e) {
            c.passed = false;
            c.error = kNaN;
            c.detail = e.what();
        }
        const auto now = std::chrono::steady_clock::now();
        c.seconds = std::chrono::duration<double>(now - last_).count();
        last_ = now;
        report_->checks.push_back(c);
        if (options_.onCheck) options_.onCheck(c);
    }

    static void judge(SelfTestCheck& c, double error, const std::string& detail = {}) {
        c.error = error;
        c.passed = std::isfinite(error) && error <= c.tolerance;
        if (!detail.empty()) c.detail = detail;
    }

    Batch batch(size_t index, const RunSpec& s) const {
        Batch b;
        stream_.batch(index, static_cast<size_t>(s.train.batch), static_cast<size_t>(s.model.context), b.inputs,
                      b.targets);
        return b;
    }

    // ---- op checks: each Backend operation on random inputs, fp32 ----------
    void opCheck(const std::string& name, double tolerance, const OpFunction& op, bool bf16 = false) {
        check("op: " + name, tolerance, [&](SelfTestCheck& c) {
            Outputs ref, test;
            {
                auto be = be_.reference();
                ref = op(*be);
            }
            {
                auto be = be_.test(bf16);
                test = op(*be);
            }
            double worst = 0;
            std::string worstName;
            for (size_t i = 0; i < ref.size(); ++i) {
                const double e = relativeError(test[i].second, ref[i].second);
                if (!(e <= worst)) {
                    worst = e;
                    worstName = ref[i].first;
                }
                if (std::isnan(e)) break;
            }
            judge(c, worst, worstName.empty() ? std::string() : "worst: " + worstName);
        });
    }

    void opChecks() {
        // A product onto a residual stream (cuBLASLt's separate addend in bf16
        // mode; a copy first in fp32 mode), also into a column block.
        for (const bool bf16 : {false, true}) {
            opCheck(std::string("gemmAdd, ") + (bf16 ? "bf16 mode" : "fp32"), bf16 ? 1e-2 : kOpTolerance,
                    [](Backend& be) {
                Buffers b(be);
                const size_t N = 700, C = 1536, n = 96;
                const float* x = b.put(normalHost(N * C, 91));
                const float* w = b.put(normalHost(n * C, 92, 0.05f));
                const float* resid = b.put(normalHost(N * n, 93));
                float* out = b.zeros(N * n);
                be.gemmAdd(false, true, N, n, C, 1.0f, x, C, w, C, resid, out, n);
                float* wide = b.put(normalHost(N * 2 * n, 94));
                be.gemmAdd(false, true, N, n, C, 0.5f, x, C, w, C, wide + n, wide + n, 2 * n);
                return Outputs{{"resid + x·wᵀ", b.get(out, N * n)}, {"column block += x·wᵀ", b.get(wide, N * 2 * n)}};
            }, bf16);
        }
        opCheck("gemm, 4 transposes, padded rows", kOpTolerance, [](Backend& be) {
            Buffers b(be);
            const size_t M = 37, N = 53, K = 29, pad = 3;
            Outputs out;
            int k = 0;
            for (bool ta : {false, true})
                for (bool tb : {false, true}) {
                    const size_t ar = ta ? K : M, ac = ta ? M : K, br = tb ? N : K, bc = tb ? K : N;
                    const float* A = b.put(normalHost(ar * (ac + pad), 10 + k));
                    const float* B = b.put(normalHost(br * (bc + pad), 20 + k));
                    float* C = b.put(normalHost(M * (N + pad), 30 + k));
                    be.gemm(ta, tb, M, N, K, 0.7f, A, ac + pad, B, bc + pad, 0.3f, C, N + pad);
                    out.emplace_back(std::string(ta ? "T" : "N") + (tb ? "T" : "N"), b.get(C, M * (N + pad)));
                    ++k;
                }
            // a linear layer's shape: y(N,out) = x(N,in)·Wᵀ
            const size_t n = 256, in = 192, o = 384;
            const float* x = b.put(normalHost(n * in, 40));
            const float* W = b.put(normalHost(o * in, 41, 0.05f));
            float* y = b.zeros(n * o);
            be.gemm(false, true, n, o, in, 1.0f, x, in, W, in, 0.0f, y, o);
            out.emplace_back("linear", b.get(y, n * o));
            return out;
        });
        // The CUDA backend converts large operands to bf16 once and reuses the
        // copy while no op writes memory: products sharing an operand, one
        // using a column block of it, one after the operand changed.
        opCheck("bf16 mode: products reusing an operand, a column block, after a write", 2e-2, [](Backend& be) {
            Buffers b(be);
            const size_t n = 1024, k = 1100, m = 48;  // x(n,k) is above the backend's 1 Mi-element threshold
            float* x = b.put(normalHost(n * k, 45));
            float* w = b.put(normalHost(m * k, 46, 0.05f));
            const float* g = b.put(normalHost(n * m, 47));
            float* y = b.zeros(n * m);
            float* dw = b.zeros(m * k);
            float* part = b.zeros(n * m);
            Outputs out;
            be.gemm(false, true, n, m, k, 1.0f, x, k, w, k, 0.0f, y, m);
            out.emplace_back("x·wᵀ", b.get(y, n * m));
            be.gemm(true, false, m, k, n, 1.0f, g, m, x, k, 0.0f, dw, k);
            out.emplace_back("gᵀ·x (x reused)", b.get(dw, m * k));
            be.gemm(false, true, n, m, k / 2, 1.0f, x + k / 2, k, w, k, 0.0f, part, m);
            out.emplace_back("x[:, k/2:]·w[:, :k/2]ᵀ (column block)", b.get(part, n * m));
            be.scale(x, -2.0f, n * k);
            be.gemm(false, true, n, m, k, 1.0f, x, k, w, k, 0.0f, y, m);
            out.emplace_back("x·wᵀ after x changed", b.get(y, n * m));
            be.scale(w, 3.0f, m * k);  // w's copy is one the backend keeps longer (a weight's size)
            be.gemm(false, true, n, m, k, 1.0f, x, k, w, k, 0.0f, y, m);
            out.emplace_back("x·wᵀ after w changed", b.get(y, n * m));
            return out;
        }, true);
        // Operand buffers (bf16 on the CUDA backend): written by the norm,
        // SwiGLU and the cross entropy's gradient, read by products (as A
        // and as B, also below the size where fp32 operands are converted),
        // by the dropout mask's multiply and by the norm's backward.
        opCheck("bf16 mode: operand buffers written by norm, SwiGLU, cross entropy, read by products", 2e-2,
                [](Backend& be) {
            Buffers b(be);
            const size_t N = 1024, C = 256, F = 1100, V = 300, n = 48;
            const float* x = b.put(normalHost(N * C, 48));
            const float* w = b.put(uniformHost(C, 49, 0.5f, 1.5f));
            float* h = b.operand(N * C);
            float* rstd = b.zeros(N);
            be.rmsnormForward(h, rstd, x, w, N, C, 1e-6f);
            const float* gu = b.put(normalHost(N * 2 * F, 54, 2.0f));
            float* act = b.operand(N * F);
            be.swigluForward(act, gu, N, F);
            const float* logits = b.put(normalHost(N * V, 55, 3.0f));
            const int32_t* targets = b.put(tokensHost(N, static_cast<int>(V), 56));
            float* losses = b.zeros(N);
            float* dlogits = b.operand(N * V);
            be.crossEntropy(dlogits, losses, logits, targets, N, V, 1.0f);
            // Logits in an operand buffer, as the output head writes them (at
            // the scale of a model's logits: bf16 keeps them to ~1e-2).
            float* logitsOp = b.operand(normalHost(N * V, 67));
            float* lossesOp = b.zeros(N);
            float* dlogitsOp = b.operand(N * V);
            be.crossEntropy(dlogitsOp, lossesOp, logitsOp, targets, N, V, 1.0f);
            const float* wh = b.put(normalHost(n * C, 57, 0.05f));
            const float* wf = b.put(normalHost(n * F, 58, 0.05f));
            const float* g = b.put(normalHost(N * n, 59));
            float* y = b.zeros(N * n);
            float* dwh = b.zeros(n * C);
            float* yf = b.zeros(N * n);
            float* dv = b.zeros(n * V);
            float* masked = b.zeros(N * C);
            be.gemm(false, true, N, n, C, 1.0f, h, C, wh, C, 0.0f, y, n);
            be.gemm(true, false, n, C, N, 1.0f, g, n, h, C, 0.0f, dwh, C);
            be.gemm(false, true, N, n, F, 1.0f, act, F, wf, F, 0.0f, yf, n);
            be.gemm(true, false, n, V, N, 1.0f, g, n, dlogits, V, 0.0f, dv, V);
            be.multiply(masked, h, x, N * C);
            // A product into an operand buffer, one adding into a column
            // block of it, SwiGLU from it into another and back.
            float* gu2 = b.operand(N * 2 * F);
            const float* wgu = b.put(normalHost(2 * F * C, 65, 0.05f));
            be.gemm(false, true, N, 2 * F, C, 1.0f, h, C, wgu, C, 0.0f, gu2, 2 * F);
            be.gemm(false, true, N, n, C, 0.5f, h, C, wh, C, 1.0f, gu2 + F, 2 * F);
            float* act2 = b.zeros(N * F);
            be.swigluForward(act2, gu2, N, F);
            float* dgu = b.operand(N * 2 * F);
            const float* dact = b.put(normalHost(N * F, 66));
            float* actAgain = b.operand(N * F);
            be.swigluBackward(dgu, dact, gu2, N, F, actAgain);
            float* dwUp = b.zeros(n * C);
            be.gemm(true, false, n, C, N, 1.0f, dgu + F, 2 * F, h, C, 0.0f, dwUp, C);
            // The norm's backward from an incoming gradient in an operand buffer.
            float* dh = b.operand(normalHost(N * C, 68));
            float* dxNorm = b.put(normalHost(N * C, 69));
            float* dwNorm = b.zeros(C);
            be.rmsnormBackward(dxNorm, dwNorm, dh, x, w, rstd, N, C);
            // Products reading the norm's dx next (the CUDA backend's norm
            // leaves its bf16 copy for them), the whole and a column block.
            float* dxTh = b.zeros(C * C);
            float* blockTh = b.zeros(64 * C);
            be.gemm(true, false, C, C, N, 1.0f, dxNorm, C, h, C, 0.0f, dxTh, C);
            be.gemm(true, false, 64, C, N, 1.0f, dxNorm + 64, C, h, C, 0.0f, blockTh, C);
            return Outputs{{"norm", b.get(h, N * C)},      {"swiglu", b.get(act, N * F)},
                           {"dlogits", b.get(dlogits, N * V)}, {"losses", b.get(losses, N)},
                           {"dlogits of operand logits", b.get(dlogitsOp, N * V)},
                           {"losses of operand logits", b.get(lossesOp, N)},
                           {"h·wᵀ", b.get(y, N * n)},        {"gᵀ·h", b.get(dwh, n * C)},
                           {"act·wᵀ", b.get(yf, N * n)},     {"gᵀ·dlogits", b.get(dv, n * V)},
                           {"norm backward of operand dout: dx", b.get(dxNorm, N * C)},
                           {"norm backward of operand dout: dw", b.get(dwNorm, C)},
                           {"norm's dxᵀ·h", b.get(dxTh, C * C)}, {"norm's dx column blockᵀ·h", b.get(blockTh, 64 * C)},
                           {"h ⊙ x", b.get(masked, N * C)},  {"product into gate|up", b.get(gu2, N * 2 * F)},
                           {"swiglu of it", b.get(act2, N * F)}, {"swiglu backward", b.get(dgu, N * 2 * F)},
                           {"swiglu backward's activation", b.get(actAgain, N * F)},
                           {"dup block ᵀ·h", b.get(dwUp, n * C)}};
        }, true);
        // A strided batch as LoRA's dB of q|k|v: dyᵀ·u per part, column
        // blocks of two operand buffers into gradients one after the other
        // (the CUDA backend's cuBLASLt batch), then the same from fp32
        // operands (cuBLAS's strided batch) and with one operand in fp32
        // (product by product).
        opCheck("bf16 mode: strided batches of products", 2e-2, [](Backend& be) {
            Buffers b(be);
            const size_t N = 300, out = 40, r = 8, parts = 3;
            float* dy = b.operand(normalHost(N * parts * out, 190));
            float* u = b.operand(normalHost(N * parts * r, 191));
            float* dB = b.zeros(parts * out * r);
            be.gemmStridedBatched(true, false, out, r, N, 0.5f, dy, parts * out, out, u, parts * r, r, 0.0f, dB, r,
                                  out * r, parts);
            const float* dy32 = b.put(normalHost(N * parts * out, 192));
            const float* u32 = b.put(normalHost(N * parts * r, 193));
            float* dB32 = b.put(normalHost(parts * out * r, 194));
            be.gemmStridedBatched(true, false, out, r, N, 0.5f, dy32, parts * out, out, u32, parts * r, r, 1.0f, dB32,
                                  r, out * r, parts);
            float* mixed = b.zeros(parts * out * r);
            be.gemmStridedBatched(true, false, out, r, N, 0.5f, dy, parts * out, out, u32, parts * r, r, 0.0f, mixed,
                                  r, out * r, parts);
            return Outputs{{"operand buffers", b.get(dB, parts * out * r)},
                           {"fp32, accumulating", b.get(dB32, parts * out * r)},
                           {"one operand buffer", b.get(mixed, parts * out * r)}};
        }, true);
        // Deferred products (weight gradients, and one into an operand
        // buffer as LoRA's u), which the CUDA backend runs on a second
        // stream: the ops after them overwrite their operands (an operand
        // buffer, and an fp32 matrix whose bf16 copy they read) and read
        // their output; the results must be those of one stream.
        opCheck("bf16 mode: deferred products beside the ops after them", 2e-2, [](Backend& be) {
            Buffers b(be);
            const size_t N = 4096, in = 512, out = 384;
            float* x = b.operand(normalHost(N * in, 220));
            float* dy = b.put(normalHost(N * out, 221));
            const float* w = b.put(normalHost(out * in, 222, 0.05f));
            float* dx = b.operand(N * in);
            be.gemm(false, false, N, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);  // leaves dy's bf16 copy
            float* dw = b.zeros(out * in);
            float* dw2 = b.zeros(out * in);
            float* u = b.operand(N * out);  // as LoRA's u: an operand buffer, from w's cached bf16 copy
            {
                const DeferredProducts scope(be);
                be.gemm(true, false, out, in, N, 1.0f, dy, out, x, in, 0.0f, dw, in);
                be.gemm(true, false, out, in, N, 0.5f, dy, out, x, in, 1.0f, dw, in);
                be.gemm(false, true, N, out, in, 1.0f, x, in, w, in, 0.0f, u, out);
            }
            be.copy(x, b.put(normalHost(N * in, 223)), N * in);
            be.scale(dy, -2.0f, N * out);
            be.gemm(false, false, N, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
            {
                const DeferredProducts scope(be);
                be.gemm(true, false, out, in, N, 1.0f, dy, out, x, in, 0.0f, dw2, in);
            }
            // The optimizer's sum over gradients that deferred products may
            // still be making (the CUDA backend's sum waits for them).
            float* sumAll = b.zeros(1);
            float* unused = b.zeros(out * in);  // the sum reads the gradients only
            std::vector<OptimizerTensor> grads;
            for (float* g : {dw, dw + out * in / 2, dw2, dw2 + out * in / 2})
                grads.push_back({unused, g, unused, unused, out * in / 2, 0.0f, 1});
            be.sumSquaresAccumulateAll(sumAll, grads);
            float* sum = b.zeros(1);
            be.sumSquaresAccumulate(sum, dw2, out * in);
            be.axpy(dw2, 1.0f, dw, out * in);
            return Outputs{{"dW", b.get(dw, out * in)}, {"dW after the operands changed", b.get(dw2, out * in)},
                           {"its sum of squares", b.get(sum, 1)},
                           {"sum of squares of both, the optimizer's", b.get(sumAll, 1)},
                           {"dX", b.get(dx, N * in)}, {"x·wᵀ into an operand buffer", b.get(u, N * out)}};
        }, true);
        // Products with weights AdamW has just updated: the CUDA backend's
        // AdamW writes their bf16 copies into the operand cache when every
        // part of a (fused) weight trains; a weight with a frozen part is
        // converted again; a skipped step leaves weights and copies alone.
        opCheck("bf16 mode: products with the weights AdamW just updated", 2e-2, [](Backend& be) {
            Buffers b(be);
            const size_t N = 64, in = 96, out = 40;
            float* x = b.operand(normalHost(N * in, 200));
            float* fused = b.put(normalHost(3 * out * in, 201, 0.1f));   // three parts, all trained
            float* partly = b.put(normalHost(2 * out * in, 202, 0.1f));  // the second part frozen
            std::vector<OptimizerTensor> tensors;
            uint64_t seed = 210;
            for (float* w : {fused, fused + out * in, fused + 2 * out * in, partly})
                tensors.push_back({w, b.put(normalHost(out * in, seed++)), b.zeros(out * in), b.zeros(out * in),
                                   out * in, 0.01f, 1});
            float* y = b.zeros(N * 3 * out);
            float* z = b.zeros(N * 2 * out);
            Outputs o;
            const auto products = [&](const std::string& when) {
                be.gemm(false, true, N, 3 * out, in, 1.0f, x, in, fused, in, 0.0f, y, 3 * out);
                be.gemm(false, true, N, 2 * out, in, 1.0f, x, in, partly, in, 0.0f, z, 2 * out);
                o.emplace_back(when + ": fused weight", b.get(y, N * 3 * out));
                o.emplace_back(when + ": partly frozen weight", b.get(z, N * 2 * out));
            };
            float* acc = b.zeros(1);
            float* state = b.zeros(3);
            float* loss = b.zeros(1);
            const auto step = [&](int64_t count) {
                be.fill(acc, 0.0f, 1);
                be.sumSquaresAccumulateAll(acc, tensors);
                be.finishGradNorm(state, acc, loss, 0.0f);
                for (OptimizerTensor& t : tensors) t.step = count;
                be.adamwAll(tensors, {0.05f, 0.9f, 0.999f, 1e-8f}, state);
                products("after step " + std::to_string(count));
            };
            products("before");
            step(1);
            step(2);
            be.fill(loss, std::numeric_limits<float>::infinity(), 1);
            step(3);  // skipped
            o.emplace_back("weights", b.get(fused, 3 * out * in));
            return o;
        }, true);
        // LoRA's effective weights, every group at once: bf16 targets (the
        // CUDA backend's fold kernel takes every adapter's rows in one
        // launch, in tiles of 128 × 128), a group whose middle part has no
        // adapter, a group whose rank and width are no multiple of 8, a
        // second fold after a factor changed (the tables are reused),
        // products reading the factors after it, and fp32 targets (fold by
        // fold).
        opCheck("bf16 mode: LoRA fold of several groups in one pass", 2e-2, [](Backend& be) {
            Buffers b(be);
            const size_t in = 136, out = 40, wide = 200, r = 8;
            uint64_t seed = 170;
            const auto random = [&](size_t n) { return b.put(normalHost(n, seed++, 0.3f)); };
            std::vector<LowRankFold> folds, fp32Folds;
            const auto group = [&](std::vector<LowRankFold>& into, float* target, size_t rows, size_t cols,
                                   std::vector<LowRankTerm> terms) {
                into.push_back({target, random(rows * cols), rows, cols, std::move(terms)});
            };
            float* stackedA = random(2 * r * in);  // q|k|v's adapters on q and v
            float* qB = random(out * r);
            group(folds, b.operand(3 * out * in), 3 * out, in,
                  {{qB, stackedA, 0, out, r, 0.5f}, {random(out * r), stackedA + r * in, 2 * out, out, r, 0.5f}});
            group(folds, b.operand(wide * in), wide, in, {{random(wide * r), random(r * in), 0, wide, r, 0.5f}});
            group(folds, b.operand(out * in), out, in, {{random(out * r), random(r * in), 0, out, r, 0.25f}});
            group(folds, b.operand(out * in), out, in, {{random(out * r), random(r * in), 0, out, r, 0.5f}});
            const size_t oddCols = 37, oddRank = 5;
            group(folds, b.operand(wide * oddCols), wide, oddCols,
                  {{random(wide * oddRank), random(oddRank * oddCols), 0, wide, oddRank, 0.5f}});
            group(fp32Folds, b.zeros(out * in), out, in, {{random(out * r), random(r * in), 0, out, r, 0.5f}});
            Outputs o;
            const auto take = [&](const std::string& when) {
                for (size_t i = 0; i < folds.size(); ++i)
                    o.emplace_back(when + ": group " + std::to_string(i),
                                   b.get(folds[i].target, folds[i].rows * folds[i].cols));
            };
            be.foldLowRank(folds);
            take("first fold");
            be.scale(qB, -3.0f, out * r);
            be.scale(stackedA + r * in, 2.0f, r * in);
            const size_t N = 64;
            float* x = b.operand(N * in);
            be.copy(x, random(N * in), N * in);
            be.foldLowRank(folds);
            // A product with an effective weight right after its fold.
            float* y = b.zeros(N * wide);
            be.gemm(false, true, N, wide, in, 1.0f, x, in, folds[1].target, in, 0.0f, y, wide);
            o.emplace_back("x·Wᵀ right after the fold", b.get(y, N * wide));
            take("after the factors changed");
            // The adapters' products after a fold, x·Aᵀ of the stacked A and
            // dy·B (the CUDA backend reuses the fold's bf16 factors for them).
            float* u = b.zeros(N * 2 * r);
            be.gemm(false, true, N, 2 * r, in, 1.0f, x, in, stackedA, in, 0.0f, u, 2 * r);
            float* dy = b.operand(N * out);
            be.copy(dy, random(N * out), N * out);
            float* du = b.zeros(N * r);
            be.gemm(false, false, N, r, out, 1.0f, dy, out, qB, r, 0.0f, du, r);
            o.emplace_back("x·Aᵀ after the fold", b.get(u, N * 2 * r));
            o.emplace_back("dy·B after the fold", b.get(du, N * r));
            be.foldLowRank(fp32Folds);
            o.emplace_back("fp32 target", b.get(fp32Folds[0].target, out * in));
            return o;
        }, true);
        // qkv and the attention output as operand buffers: flash kernels, whose
        // backward rotates dq and dk back (D = 64 and 32), and the
        // strided-product path (D = 16).
        for (const size_t D : {size_t{64}, size_t{32}, size_t{16}}) {
            opCheck("bf16 mode: attention with rope on operand buffers, D=" + std::to_string(D), 3e-2, [D](Backend& be) {
                Buffers b(be);
                const size_t B = 2, T = 150, H = 2, C = H * D, N = B * T;
                float* qkv = b.operand(normalHost(N * 3 * C, 86));
                float* out = b.operand(N * C);
                float* state = b.zeros(be.attentionStateSize(B, T, H, D));
                be.attentionForward(out, state, qkv, B, T, H, D, 10000.0f);
                float* dqkv = b.zeros(N * 3 * C);
                const float* dout = b.put(normalHost(N * C, 87));
                be.attentionBackward(dqkv, dout, out, state, qkv, B, T, H, D, 10000.0f);
                // dout and dqkv as operand buffers too (the model's case).
                float* doutOp = b.operand(N * C);
                be.copy(doutOp, dout, N * C);
                float* dqkvOp = b.operand(N * 3 * C);
                be.attentionBackward(dqkvOp, doutOp, out, state, qkv, B, T, H, D, 10000.0f);
                return Outputs{{"rotated qkv", b.get(qkv, N * 3 * C)}, {"out", b.get(out, N * C)},
                               {"dqkv", b.get(dqkv, N * 3 * C)}, {"dqkv, all operands", b.get(dqkvOp, N * 3 * C)}};
            }, true);
        }
        // Rows copied four values an access (C = 40) and one (37).
        for (const size_t C : {size_t{40}, size_t{37}}) {
            opCheck("embedding forward/backward, C=" + std::to_string(C), 0.0, [C](Backend& be) {
                Buffers b(be);
                const size_t V = 50, N = 300;
                const int32_t* tok = b.put(tokensHost(N, static_cast<int>(V), 50));
                const float* table = b.put(normalHost(V * C, 51));
                float* out = b.zeros(N * C);
                be.embeddingForward(out, tok, table, N, C);
                float* dtable = b.put(normalHost(V * C, 52));
                const float* dout = b.put(normalHost(N * C, 53));
                be.embeddingBackward(dtable, dout, tok, N, C, V);
                return Outputs{{"out", b.get(out, N * C)}, {"dtable", b.get(dtable, V * C)}};
            });
        }
        // float4 rows held in registers by CUDA's kernels (200: four float4
        // a lane, 700: six), float4 rows read from memory (1000), the scalar
        // fallback (203).
        for (const size_t C : {size_t{200}, size_t{700}, size_t{1000}, size_t{203}}) {
            opCheck("rmsnorm forward/backward, C=" + std::to_string(C), kOpTolerance, [C](Backend& be) {
                Buffers b(be);
                const size_t N = 300;
                const float* x = b.put(normalHost(N * C, 60));
                const float* w = b.put(uniformHost(C, 61, 0.5f, 1.5f));
                float* out = b.zeros(N * C);
                float* rstd = b.zeros(N);
                be.rmsnormForward(out, rstd, x, w, N, C, 1e-6f);
                float* dx = b.put(normalHost(N * C, 62));
                float* dw = b.put(normalHost(C, 63));
                const float* dout = b.put(normalHost(N * C, 64));
                be.rmsnormBackward(dx, dw, dout, x, w, rstd, N, C);
                return Outputs{{"out", b.get(out, N * C)}, {"rstd", b.get(rstd, N)},
                               {"dx", b.get(dx, N * C)}, {"dw", b.get(dw, C)}};
            });
        }
        // fp32 attention: the rotation four pairs a thread (D = 8, 16) and its
        // scalar fallback (D = 6); a second base checks the tables are rebuilt.
        for (const auto& [B, T, H, D] : std::vector<std::array<size_t, 4>>{{3, 20, 2, 8}, {2, 33, 4, 16}, {2, 17, 3, 6}}) {
            for (const float theta : {10000.0f, 500000.0f}) {
                const std::string name = "attention with rope forward/backward, B=" + std::to_string(B) + " T=" +
                                         std::to_string(T) + " H=" + std::to_string(H) + " D=" + std::to_string(D) +
                                         " theta=" + std::to_string(static_cast<int>(theta));
                opCheck(name, kOpTolerance, [B = B, T = T, H = H, D = D, theta](Backend& be) {
                    Buffers b(be);
                    const size_t C = H * D, N = B * T;
                    float* qkv = b.put(normalHost(N * 3 * C, 80));
                    float* out = b.zeros(N * C);
                    float* probs = b.zeros(B * H * T * T);
                    be.attentionForward(out, probs, qkv, B, T, H, D, theta);
                    float* dqkv = b.put(normalHost(N * 3 * C, 81));  // overwritten
                    const float* dout = b.put(normalHost(N * C, 82));
                    be.attentionBackward(dqkv, dout, out, probs, qkv, B, T, H, D, theta);
                    return Outputs{{"rotated qkv", b.get(qkv, N * 3 * C)}, {"out", b.get(out, N * C)},
                                   {"probs", b.get(probs, B * H * T * T)}, {"dqkv", b.get(dqkv, N * 3 * C)}};
                });
            }
        }
        // The test backend's bf16 mode: a flash-style backend takes its own
        // path there (several 64-row tiles, partial last tile, D = 64).
        opCheck("attention bf16 mode, B=2 T=150 H=2 D=64", 3e-2, [](Backend& be) {
            Buffers b(be);
            const size_t B = 2, T = 150, H = 2, D = 64, C = H * D, N = B * T;
            float* qkv = b.put(normalHost(N * 3 * C, 83));
            float* out = b.zeros(N * C);
            float* state = b.zeros(be.attentionStateSize(B, T, H, D));
            be.attentionForward(out, state, qkv, B, T, H, D, 10000.0f);
            float* dqkv = b.put(normalHost(N * 3 * C, 84));  // overwritten
            const float* dout = b.put(normalHost(N * C, 85));
            be.attentionBackward(dqkv, dout, out, state, qkv, B, T, H, D, 10000.0f);
            return Outputs{{"out", b.get(out, N * C)}, {"dqkv", b.get(dqkv, N * 3 * C)}};
        }, true);
        for (const size_t F : {size_t{80}, size_t{77}}) {  // float4 rows and the scalar fallback
            opCheck("swiglu forward/backward, F=" + std::to_string(F), kOpTolerance, [F](Backend& be) {
                Buffers b(be);
                const size_t N = 50;
                const float* gu = b.put(normalHost(N * 2 * F, 90, 2.0f));
                float* out = b.zeros(N * F);
                be.swigluForward(out, gu, N, F);
                float* dgu = b.put(normalHost(N * 2 * F, 91));
                const float* dout = b.put(normalHost(N * F, 92));
                be.swigluBackward(dgu, dout, gu, N, F, nullptr);
                float* dgu2 = b.zeros(N * 2 * F);
                float* again = b.put(normalHost(N * F, 93));
                be.swigluBackward(dgu2, dout, gu, N, F, again);
                return Outputs{{"out", b.get(out, N * F)}, {"dgu", b.get(dgu, N * 2 * F)},
                               {"dgu, making out too", b.get(dgu2, N * 2 * F)}, {"out again", b.get(again, N * F)}};
            });
        }
        // Rows held in registers (by one block; the output head's 32000 by
        // two blocks of a cluster), float4 rows too long for that, the scalar
        // fallback. A 40000-term sum of exponentials in fp32 is good to about
        // sqrt(40000)·6e-8 ≈ 1e-5 relative, in either summation order: 1e-4 there.
        for (const size_t V : {size_t{300}, size_t{32000}, size_t{40000}, size_t{301}}) {
            opCheck("cross entropy (separate and in-place gradient), V=" + std::to_string(V),
                    V > 1000 ? 1e-4 : kOpTolerance,
                    [V](Backend& be) {
                Buffers b(be);
                const size_t N = 64;
                const auto logitsHost = normalHost(N * V, 100, 3.0f);
                const float* logits = b.put(logitsHost);
                const int32_t* targets = b.put(tokensHost(N, static_cast<int>(V), 101));
                float* losses = b.zeros(N);
                float* dlogits = b.zeros(N * V);
                be.crossEntropy(dlogits, losses, logits, targets, N, V, 1.0f / N);
                Outputs out{{"losses", b.get(losses, N)}, {"dlogits", b.get(dlogits, N * V)}};
                float* inPlace = b.put(logitsHost);
                float* losses2 = b.zeros(N);
                be.crossEntropy(inPlace, losses2, inPlace, targets, N, V, 0.5f);
                out.emplace_back("in-place dlogits", b.get(inPlace, N * V));
                out.emplace_back("in-place losses", b.get(losses2, N));
                be.crossEntropy(nullptr, losses2, logits, targets, N, V, 1.0f);
                out.emplace_back("losses only", b.get(losses2, N));
                return out;
            });
        }
        opCheck("sum, sum of squares, gradient norm", kOpTolerance, [](Backend& be) {
            Buffers b(be);
            Outputs out;
            for (size_t n : {size_t(1), size_t(1000), size_t(100003), size_t(3000000)}) {
                const float* x = b.put(normalHost(n, 110 + n));
                float* s = b.zeros(1);
                be.sum(s, x, n);
                float* acc = b.put(std::vector<float>{1.5f});
                be.sumSquaresAccumulate(acc, x, n);
                out.emplace_back("sum n=" + std::to_string(n), b.get(s, 1));
                out.emplace_back("sumsq n=" + std::to_string(n), b.get(acc, 1));
            }
            const float inf = std::numeric_limits<float>::infinity();
            const std::vector<std::array<float, 3>> cases = {  // acc, loss, maxNorm
                {16.0f, 2.0f, 1.0f}, {0.25f, 2.0f, 1.0f}, {16.0f, 2.0f, 0.0f}, {inf, 2.0f, 1.0f}, {4.0f, inf, 1.0f}};
            for (const auto& [accValue, lossValue, maxNorm] : cases) {
                const float* acc = b.put(std::vector<float>{accValue});
                const float* loss = b.put(std::vector<float>{lossValue});
                float* state = b.zeros(3);
                be.finishGradNorm(state, acc, loss, maxNorm);
                auto h = b.get(state, 3);
                for (float& v : h) if (std::isinf(v)) v = 12345.0f;  // compare infinities as equal
                out.emplace_back("grad norm state", h);
            }
            return out;
        });
        opCheck("adamw (clipped step, skipped step)", kOpTolerance, [](Backend& be) {
            Buffers b(be);
            const size_t n = 1000;
            float* param = b.put(normalHost(n, 120));
            const float* grad = b.put(normalHost(n, 121));
            float* m = b.put(normalHost(n, 122, 0.1f));
            float* v = b.put(uniformHost(n, 123, 0.0f, 0.1f));
            const float* state = b.put(std::vector<float>{2.0f, 0.5f, 0.0f});
            be.adamw(param, grad, m, v, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 3, state);
            const float* skip = b.put(std::vector<float>{std::numeric_limits<float>::quiet_NaN(), 1.0f, 1.0f});
            be.adamw(param, grad, m, v, n, 1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 4, skip);
            return Outputs{{"param", b.get(param, n)}, {"m", b.get(m, n)}, {"v", b.get(v, n)}};
        });
        opCheck("sum of squares and adamw over many tensors", kOpTolerance, [](Backend& be) {
            Buffers b(be);
            // Sizes across chunk boundaries (32768 elements a chunk on CUDA)
            // with ragged tails; offsets that leave a tensor's arrays off
            // 16-byte alignment (one element in) test the element-wise path.
            const std::vector<std::pair<size_t, size_t>> shapes = {  // n, offset
                {70001, 0}, {3, 0}, {65536, 1}, {1000, 2}, {32768, 0}};
            std::vector<OptimizerTensor> tensors;
            uint64_t seed = 160;
            for (const auto& [n, offset] : shapes) {
                OptimizerTensor t;
                t.param = b.put(normalHost(n + offset, seed++)) + offset;
                t.grad = b.put(normalHost(n + offset, seed++)) + offset;
                t.m = b.put(normalHost(n + offset, seed++, 0.1f)) + offset;
                t.v = b.put(uniformHost(n + offset, seed++, 0.0f, 0.1f)) + offset;
                t.n = n;
                t.weightDecay = tensors.size() % 2 ? 0.0f : 0.1f;
                t.step = 3 + static_cast<int64_t>(tensors.size());
                tensors.push_back(t);
            }
            float* acc = b.put(std::vector<float>{0.5f});
            be.sumSquaresAccumulateAll(acc, tensors);
            const float* state = b.put(std::vector<float>{2.0f, 0.5f, 0.0f});
            be.adamwAll(tensors, {1e-2f, 0.9f, 0.999f, 1e-8f}, state);
            Outputs out{{"sum of squares", b.get(acc, 1)}};
            for (const OptimizerTensor& t : tensors) {
                const std::string name = " n=" + std::to_string(t.n);
                out.emplace_back("param" + name, b.get(t.param, t.n));
                out.emplace_back("m" + name, b.get(t.m, t.n));
                out.emplace_back("v" + name, b.get(t.v, t.n));
            }
            return out;
        });
        opCheck("uniform, dropout mask, random prune (bit-exact)", 0.0, [](Backend& be) {
            Buffers b(be);
            const size_t n = 10007;
            float* u = b.zeros(n);
            be.fillUniform(u, n, 0.3f, 130);
            float* mask = b.zeros(n);
            be.dropoutMask(mask, n, 0.25f, 131);
            float* x = b.put(normalHost(n, 132));
            be.pruneRandom(x, n, 0.9f, 133);
            return Outputs{{"uniform", b.get(u, n)}, {"mask", b.get(mask, n)}, {"pruned", b.get(x, n)}};
        });
        opCheck("normal draws", kOpTolerance, [](Backend& be) {
            Buffers b(be);
            const size_t n = 10007;
            float* x = b.zeros(n);
            be.fillNormal(x, n, 0.02f, 140);
            return Outputs{{"normal", b.get(x, n)}};
        });
        opCheck("magnitude prune (bit-exact)", 0.0, [](Backend& be) {
            Buffers b(be);
            Outputs out;
            for (const auto& [n, p] : std::vector<std::pair<size_t, float>>{{10007, 0.9f}, {4096, 0.5f}, {1, 0.9f}, {333, 0.99f}}) {
                float* x = b.put(normalHost(n, 150 + n));
                be.pruneMagnitude(x, n, p);
                out.emplace_back("n=" + std::to_string(n), b.get(x, n));
            }
            return out;
        });
        opCheck("axpy, scale, multiply, fill, copy", kOpTolerance, [](Backend& be) {
            Buffers b(be);
            const size_t n = 5000;
            float* y = b.put(normalHost(n, 160));
            const float* x = b.put(normalHost(n, 161));
            be.axpy(y, -0.37f, x, n);
            be.scale(y, 1.7f, n);
            float* z = b.zeros(n);
            be.multiply(z, y, x, n);
            be.multiply(y, y, x, n);  // in place
            float* f = b.zeros(n);
            be.fill(f, 0.25f, n / 2);
            float* c = b.zeros(n);
            be.copy(c, x, n);
            return Outputs{{"axpy·scale·multiply", b.get(z, n)}, {"in-place multiply", b.get(y, n)},
                           {"fill", b.get(f, n)}, {"copy", b.get(c, n)}};
        });
        opCheck("singular values (40x70, 70x40, 256x256)", 1e-4, [](Backend& be) {
            Buffers b(be);
            Outputs out;
            for (const auto& [r, c] : std::vector<std::pair<size_t, size_t>>{{40, 70}, {70, 40}, {256, 256}}) {
                const float* a = b.put(normalHost(r * c, 170 + r));
                out.emplace_back(std::to_string(r) + "x" + std::to_string(c), be.singularValues(a, r, c));
            }
            return out;
        });
        opCheck("singular values queued in two batches (40x70, 70x40 | 40x40, 256x256, 96x256)", 1e-4, [](Backend& be) {
            Buffers b(be);
            std::vector<MatrixRef> matrices;
            for (const auto& [r, c] : std::vector<std::pair<size_t, size_t>>{
                     {40, 70}, {70, 40}, {40, 40}, {256, 256}, {96, 256}})
                matrices.push_back({b.put(normalHost(r * c, 180 + r + c)), r, c});
            Outputs out;
            be.queueSingularValues({matrices.begin(), matrices.begin() + 2});
            be.queueSingularValues({matrices.begin() + 2, matrices.end()});
            const auto spectra = *be.takeSingularValues(true);
            for (size_t i = 0; i < matrices.size(); ++i)
                out.emplace_back(std::to_string(matrices[i].rows) + "x" + std::to_string(matrices[i].cols),
                                 spectra[i]);
            return out;
        });
    }

    // ---- (a) fp32 parity of logits, loss and gradients ------------------------
    void modelParity(Method method) {
        const std::string label = "(a) fp32 " + toString(method) + ": ";
        const RunSpec s = spec(method, 10);
        const Batch b = batch(1000, s);
        struct Result {
            std::vector<float> logits;
            double loss = 0;
            Weights grads;
        };
        const auto compute = [&](Backend& be, Weights* start, bool isReference) {
            Trainer t(s, be);
            if (isReference) {
                perturbAdapters(t.model(), 77, 0.02f);
                *start = readWeights(t.model());
            } else {
                writeWeights(t.model(), *start);
            }
            Result r;
            std::tie(r.logits, r.loss) = evalLogits(t, b);
            r.grads = gradients(t, b);
            return r;
        };
        Result ref, test;
        std::string failure;
        try {
            Weights start;
            {
                auto be = be_.reference();
                ref = compute(*be, &start, true);
            }
            {
                auto be = be_.test(false);
                test = compute(*be, &start, false);
            }
        } catch (const std::exception& e) {
            failure = e.what();
        }
        const auto fail = [&](SelfTestCheck&) { throw std::runtime_error(failure); };
        if (!failure.empty()) {
            check(label + "logits", kModelTolerance, fail);
            return;
        }
        check(label + "logits", kModelTolerance, [&](SelfTestCheck& c) { judge(c, relativeError(test.logits, ref.logits)); });
        check(label + "loss", kModelTolerance, [&](SelfTestCheck& c) {
            judge(c, std::fabs(test.loss - ref.loss) / std::fabs(ref.loss),
                  "loss " + std::to_string(ref.loss));
        });
        check(label + "gradients", kModelTolerance, [&](SelfTestCheck& c) {
            if (test.grads.size() != ref.grads.size()) throw std::runtime_error("different trainable tensors");
            double worst = 0;
            std::string worstName;
            for (size_t i = 0; i < ref.grads.size(); ++i) {
                const double e = relativeError(test.grads[i].second, ref.grads[i].second);
                if (!(e <= worst)) {
                    worst = e;
                    worstName = ref.grads[i].first;
                }
            }
            judge(c, worst, std::to_string(ref.grads.size()) + " tensors; worst: " + worstName);
        });
    }

    // ---- (b) bf16 loss curves -------------------------------------------------
    void curve(Method method) {
        RunSpec s = spec(method, options_.trainSteps);
        std::string label = "(b) bf16 " + toString(method);
        if (method == Method::ReLoRA) {
            s.relora.prune = kCurvePrune;
            label += " (restart/25, " + toString(kCurvePrune) + ")";
        }
        CurveResult ref, test;
        std::string failure;
        try {
            Weights start;
            {
                auto be = be_.reference();
                ref = trainCurve(*be, s, stream_, nullptr, &start);
            }
            {
                auto be = be_.test(true);
                test = trainCurve(*be, s, stream_, &start, nullptr);
            }
        } catch (const std::exception& e) {
            failure = e.what();
        }
        const auto stepLabel = label + ": every step";
        if (!failure.empty()) {
            check(stepLabel, kCurveStepTolerance, [&](SelfTestCheck&) { throw std::runtime_error(failure); });
            return;
        }
        check(stepLabel, kCurveStepTolerance, [&](SelfTestCheck& c) {
            double worst = 0;
            size_t at = 0;
            for (size_t i = 0; i < ref.losses.size(); ++i) {
                const double d = std::fabs(test.losses[i] - ref.losses[i]);
                if (!(d <= worst)) {
                    worst = d;
                    at = i;
                }
            }
            judge(c, worst, "worst at step " + std::to_string(at + 1) + "; loss " + sci(ref.losses.front()) +
                                " -> " + sci(ref.losses.back()));
        });
        check(label + ": final", kCurveFinalTolerance, [&](SelfTestCheck& c) {
            judge(c, std::fabs(test.losses.back() - ref.losses.back()),
                  "reference " + std::to_string(ref.losses.back()) + ", tested " +
                      std::to_string(test.losses.back()));
        });
    }

    // ---- (c) a merge keeps the logits -------------------------------------------
    void mergeInvariance() {
        check("(c) fp32 relora merge keeps logits (max |dlogit|)", kMergeTolerance, [&](SelfTestCheck& c) {
            auto be = be_.test(false);
            const RunSpec s = spec(Method::ReLoRA, 10);
            Trainer t(s, *be);
            perturbAdapters(t.model(), 91, 0.05f);
            const Batch b = batch(2000, s);
            const auto before = evalLogits(t, b).first;
            restartAll(*be, t.model().parts(), {PruneMode::Reset, 0.0f}, 99, 0);
            const auto after = evalLogits(t, b).first;
            double d = maxAbsDiff(before, after);
            std::string detail = "max |logit| " + sci(maxAbs(before));
            for (auto& p : t.model().parameters())
                if (p.name.ends_with("lora_B.weight") && maxAbs(t.model().read(p)) != 0.0) {
                    d = kNaN;
                    detail = p.name + " is not zero after the restart";
                }
            judge(c, d, detail);
        });
    }

    // ---- (d) pruning of the factors' moments --------------------------------------
    void pruning(PruneMode mode, float ratio) {
        std::string name = "(d) prune " + toString(mode);
        if (mode != PruneMode::Reset) name += " " + std::to_string(ratio).substr(0, 4);
        // Tolerance of the zero fraction: reset exact; random 5 binomial
        // standard deviations and magnitude one entry, of the smallest
        // factor tensor (set once the tensors are known).
        check(name + ": zero fraction", 0.0, [&](SelfTestCheck& c) {
            const RunSpec s = spec(Method::ReLoRA, 10);
            struct State {
                std::map<std::string, std::pair<std::vector<float>, std::vector<float>>> before, after;
                Weights weightsBefore, weightsAfter;
            };
            const auto runOn = [&](Backend& be) {
                State st;
                Trainer t(s, be);
                uint64_t salt = 0;
                for (auto& p : t.model().parameters()) {
                    if (!p.m) continue;
                    auto m = normalHost(p.count(), mixSeed(555, ++salt));
                    auto v = uniformHost(p.count(), mixSeed(555, ++salt), 0.0f, 1.0f);
                    be.upload(p.m, m.data(), m.size());
                    be.upload(p.v, v.data(), v.size());
                    st.before[p.name] = {std::move(m), std::move(v)};
                }
                st.weightsBefore = readWeights(t.model());
                uint64_t partSalt = 0;
                for (LinearPart* part : t.model().parts())
                    if (part->lora) pruneOptimizerState(be, *part->lora, {mode, ratio}, mixSeed(777, ++partSalt));
                for (auto& p : t.model().parameters()) {
                    if (!p.m) continue;
                    std::vector<float> m(p.count()), v(p.count());
                    be.download(m.data(), p.m, m.size());
                    be.download(v.data(), p.v, v.size());
                    st.after[p.name] = {std::move(m), std::move(v)};
                }
                st.weightsAfter = readWeights(t.model());
                return st;
            };
            State ref, test;
            {
                auto be = be_.reference();
                ref = runOn(*be);
            }
            {
                auto be = be_.test(true);
                test = runOn(*be);
            }
            std::vector<std::string> problems;
            double worst = 0;
            size_t smallest = std::numeric_limits<size_t>::max();
            for (const auto& [pname, moments] : test.after) {
                const bool factor = pname.find(".lora_") != std::string::npos;
                for (int which = 0; which < 2; ++which) {
                    const auto& now = which ? moments.second : moments.first;
                    const auto& old = which ? test.before[pname].second : test.before[pname].first;
                    const auto& refNow = which ? ref.after[pname].second : ref.after[pname].first;
                    size_t zeros = 0, changed = 0, differ = 0;
                    for (size_t i = 0; i < now.size(); ++i) {
                        if (now[i] == 0.0f) ++zeros;
                        else if (now[i] != old[i]) ++changed;
                        if (now[i] != refNow[i]) ++differ;
                    }
                    if (changed) problems.push_back(pname + ": " + std::to_string(changed) + " survivors changed");
                    if (differ) problems.push_back(pname + ": " + std::to_string(differ) + " entries differ from the reference");
                    if (!factor) {
                        if (zeros) problems.push_back(pname + ": a non-factor moment was pruned");
                        continue;
                    }
                    // The first moment also loses the entries whose second
                    // moment was pruned; its own rule is covered bit-exactly
                    // against the reference above, the fraction is judged on v.
                    if (which == 0) {
                        for (size_t i = 0; i < now.size(); ++i)
                            if (moments.second[i] == 0.0f && now[i] != 0.0f) {
                                problems.push_back(pname + ": a first moment kept where the second was pruned");
                                break;
                            }
                        continue;
                    }
                    const double n = static_cast<double>(now.size());
                    smallest = std::min(smallest, now.size());
                    const double fraction = static_cast<double>(zeros) / n;
                    double expected = 1.0;
                    if (mode == PruneMode::Random) expected = ratio;
                    if (mode == PruneMode::Magnitude) expected = std::floor(ratio * (n - 1) + 1) / n;
                    worst = std::max(worst, std::fabs(fraction - expected));
                }
            }
            if (test.weightsBefore != test.weightsAfter) problems.push_back("weights changed");
            if (smallest == std::numeric_limits<size_t>::max()) problems.push_back("no factor moments found");
            else if (mode == PruneMode::Random)
                c.tolerance = 5 * std::sqrt(ratio * (1 - ratio) / static_cast<double>(smallest));
            else if (mode == PruneMode::Magnitude)
                c.tolerance = 1.0 / static_cast<double>(smallest) + 1e-12;
            std::string detail = problems.empty() ? "only factor moments pruned; same entries as the reference"
                                                  : problems.front();
            if (problems.size() > 1) detail += " (+" + std::to_string(problems.size() - 1) + " more)";
            judge(c, problems.empty() ? worst : kNaN, detail);
        });
    }

    // ---- (e) determinism ---------------------------------------------------------
    void determinism(Method method) {
        const std::string name = "(e) bf16 " + toString(method) + ": two 20-step runs bit-identical";
        check(name, 0.0, [&](SelfTestCheck& c) {
            RunSpec s = spec(method, 20);
            s.relora.resetInterval = 10;
            CurveResult first, second;
            {
                auto be = be_.test(true);
                first = trainCurve(*be, s, stream_, nullptr, nullptr);
            }
            {
                auto be = be_.test(true);
                second = trainCurve(*be, s, stream_, nullptr, nullptr);
            }
            double worst = 0;
            size_t differing = 0;
            for (size_t i = 0; i < first.losses.size(); ++i) {
                const bool same = std::memcmp(&first.losses[i], &second.losses[i], sizeof(double)) == 0 &&
                                  std::memcmp(&first.norms[i], &second.norms[i], sizeof(double)) == 0;
                if (!same) {
                    ++differing;
                    worst = std::max(worst, std::fabs(first.losses[i] - second.losses[i]));
                    if (worst == 0) worst = std::numeric_limits<double>::min();  // differs only in the norm
                }
            }
            if (!std::isfinite(first.losses.back())) worst = kNaN;
            judge(c, worst, std::to_string(differing) + " of " + std::to_string(first.losses.size()) +
                                " steps differ (loss and gradient norm compared bitwise)");
        });
    }

    // A checkpoint taken by one backend and restored into another continues
    // the run bit for bit (ReLoRA across a restart), and the backend takes
    // its own product choices back but refuses those of another GPU model.
    void resumeFromCheckpoint() {
        check("(e) bf16 relora: resumed from a checkpoint, bit-identical", 0.0, [&](SelfTestCheck& c) {
            RunSpec s = spec(Method::ReLoRA, 20);
            s.relora.resetInterval = 8;
            constexpr int kStopAt = 10;
            std::vector<double> straight, resumed;
            {
                auto be = be_.test(true);
                Trainer t(s, *be);
                while (t.currentStep() < s.train.steps) straight.push_back(t.step().loss);
            }
            CheckpointData saved;
            {
                auto be = be_.test(true);
                Trainer t(s, *be);
                while (t.currentStep() < kStopAt) resumed.push_back(t.step().loss);
                saved = t.checkpoint();
            }
            auto be = be_.test(true);
            if (const std::string why = be->adoptProductChoices(saved.productChoices); !why.empty())
                throw std::runtime_error("own product choices refused: " + why);
            if (const size_t eol = saved.productChoices.find('\n'); eol != std::string::npos) {
                const std::string foreign = "cublaslt-choices 1 0 sm_00 another GPU" + saved.productChoices.substr(eol);
                if (be->adoptProductChoices(foreign).empty())
                    throw std::runtime_error("product choices made on another GPU model were taken");
            }
            Trainer t(s, *be);
            t.restore(saved);
            while (t.currentStep() < s.train.steps) resumed.push_back(t.step().loss);
            size_t differing = 0;
            double worst = 0;
            for (size_t i = 0; i < straight.size(); ++i)
                if (std::memcmp(&straight[i], &resumed[i], sizeof(double)) != 0) {
                    ++differing;
                    worst = std::max({worst, std::fabs(straight[i] - resumed[i]), std::numeric_limits<double>::min()});
                }
            judge(c, std::isfinite(straight.back()) ? worst : kNaN,
                  std::to_string(differing) + " of " + std::to_string(straight.size()) + " losses differ (stopped at step " +
                      std::to_string(kStopAt) + ", compared bitwise)");
        });
    }

    // ---- (f) LoRA at step 0 is the base model ---------------------------------------
    void loraStartsAsBase() {
        check("(f) bf16 lora at step 0 equals the base model", 0.0, [&](SelfTestCheck& c) {
            auto be = be_.test(true);
            Trainer full(spec(Method::FullRank, 10), *be);
            Trainer lora(spec(Method::LoRA, 10), *be);  // same seed: same base weights
            const Batch b = batch(3000, full.spec());
            judge(c, maxAbsDiff(evalLogits(full, b).first, evalLogits(lora, b).first),
                  "max |dlogit|, B = 0 makes the adapter term exactly zero");
        });
    }

    const SelfTestOptions& options_;
    Backends be_;
    TokenStream stream_;
    SelfTestReport* report_ = nullptr;
    std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace

int SelfTestReport::passed() const {
    return static_cast<int>(std::count_if(checks.begin(), checks.end(), [](const auto& c) { return c.passed; }));
}

int SelfTestReport::failed() const { return static_cast<int>(checks.size()) - passed(); }

SelfTestReport runSelfTest(const SelfTestOptions& options) {
    Backends backends = chooseBackends(options.backend);
    SelfTestReport report;
    {
        auto test = backends.test(true);  // throws when the backend is not usable
        report.backend = test->name();
        report.device = test->deviceName();
    }
    {
        auto ref = backends.reference();
        report.reference = ref->name();
        report.referenceDevice = ref->deviceName();
    }
    if (options.onStart) options.onStart(report);
    Runner runner(options, std::move(backends));
    runner.run(report);
    return report;
}

std::string selfTestTitle(const SelfTestReport& r) {
    return "selftest: " + r.backend + " (" + r.device + ") against the " + r.reference + " reference (" +
           r.referenceDevice + ")";
}

std::string selfTestHeader() {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-58s %-6s %10s %10s %7s  %s", "check", "result", "error", "tolerance", "time",
                  "detail");
    return buf;
}

std::string selfTestRow(const SelfTestCheck& c) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "%-58s %-6s %10s %10s %6.1fs  ", c.name.c_str(), c.passed ? "pass" : "FAIL",
                  std::isnan(c.error) ? "-" : sci(c.error).c_str(), sci(c.tolerance).c_str(), c.seconds);
    return buf + c.detail;
}

std::string selfTestSummary(const SelfTestReport& r) {
    return std::to_string(r.passed()) + " passed, " + std::to_string(r.failed()) + " failed";
}

std::string formatSelfTest(const SelfTestReport& r) {
    std::ostringstream out;
    out << selfTestTitle(r) << "\n" << selfTestHeader() << "\n";
    for (const auto& c : r.checks) out << selfTestRow(c) << "\n";
    out << selfTestSummary(r) << "\n";
    return out.str();
}

}  // namespace relora
