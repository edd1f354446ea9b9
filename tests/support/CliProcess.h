// Runs the `relora` binary under test (RELORA_CLI) and collects its exit code
// and output, for the CLI suites.
#pragma once

#include <QProcess>
#include <QStringList>

struct CliResult {
    int code;      // -1: timed out; -2: ended by a signal
    QString out, err;
};

inline CliResult runRelora(const QStringList& args,
                           const QProcessEnvironment& env = QProcessEnvironment::systemEnvironment(),
                           int timeoutMs = 180000) {
    QProcess p;
    p.setProcessEnvironment(env);
    p.start(RELORA_CLI, args);
    if (!p.waitForFinished(timeoutMs)) {
        p.kill();
        p.waitForFinished();
        return {-1, {}, "timed out"};
    }
    return {p.exitStatus() == QProcess::NormalExit ? p.exitCode() : -2,
            QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError())};
}
