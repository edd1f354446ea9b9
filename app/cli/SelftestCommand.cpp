// `relora selftest`: checks a backend against the CPU reference on a small
// model (core/SelfTest.h) and prints the table, ending with "N passed, M
// failed". Exit code 0 only when every check passed.
#include "app/cli/Arguments.h"
#include "core/SelfTest.h"

#include <cstdio>
#include <string>
#include <vector>

namespace relora::cli {

int selftestCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {}, {"backend", "steps"});
    if (!a.positionals().empty()) throw UsageError("relora selftest takes no positional arguments");
    SelfTestOptions options;
    options.backend = a.valueOr("backend", "auto");
    if (options.backend != "auto" && options.backend != "cpu" && options.backend != "cuda")
        throw UsageError("--backend must be auto, cpu or cuda, got '" + options.backend + "'");
    options.trainSteps = a.intValue("steps", options.trainSteps);
    if (options.trainSteps < 30) throw UsageError("--steps must be at least 30 (ReLoRA restarts every 25 steps)");
    options.onStart = [](const SelfTestReport& r) {
        std::printf("%s\n%s\n", selfTestTitle(r).c_str(), selfTestHeader().c_str());
        std::fflush(stdout);
    };
    options.onCheck = [](const SelfTestCheck& c) {
        std::printf("%s\n", selfTestRow(c).c_str());
        std::fflush(stdout);
    };
    const SelfTestReport report = runSelfTest(options);
    std::printf("%s\n", selfTestSummary(report).c_str());
    return report.failed() == 0 ? 0 : 1;
}

}  // namespace relora::cli
