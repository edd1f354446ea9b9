// relora-workbench: the GUI. Edit a run, launch it, watch it live, compare runs.
#include "core/Experiments.h"
#include "core/RunSpec.h"
#include "ui/app/MainWindow.h"
#include "ui/controller/RunController.h"
#include "ui/editor/RunEditor.h"

#ifdef RELORA_WITH_CUDA
#include "gpu/CudaBackend.h"
#endif

#include <QApplication>
#include <QCommandLineParser>
#include <QFile>
#include <QTimer>

#include <cstdio>

namespace {

// --compare SPEC: a spec file, or a bundled preset such as :/presets/quick-demo.json.
bool queueComparison(relora::ui::MainWindow& window, const QString& path) {
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly)) {
        std::fprintf(stderr, "relora-workbench: cannot read %s: %s\n", qPrintable(path), qPrintable(file.errorString()));
        return false;
    }
    try {
        const relora::RunSpec spec = relora::fromJson(file.readAll().toStdString());
        window.editor()->setSpec(spec);   // what the runs were made from, to edit next
        return !window.queueRuns(relora::experiments::headlineRuns(spec)).empty();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "relora-workbench: %s: %s\n", qPrintable(path), e.what());
        return false;
    }
}

}  // namespace

int main(int argc, char** argv) {
#ifdef RELORA_WITH_CUDA
    relora::gpu::registerCudaBackend();
#endif
    QApplication app(argc, argv);
    QApplication::setOrganizationName(QStringLiteral("relora"));
    QApplication::setApplicationName(QStringLiteral("relora-workbench"));
    QApplication::setApplicationDisplayName(QStringLiteral("ReLoRA Workbench"));

    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral("Train small LLaMA-style models full-rank, with LoRA and with ReLoRA, "
                                                    "and compare them live."));
    parser.addHelpOption();
    const QCommandLineOption database(QStringLiteral("database"), QStringLiteral("Run database to open."), QStringLiteral("FILE"));
    const QCommandLineOption compare(QStringLiteral("compare"),
                                     QStringLiteral("Queue the headline runs of this spec at start: full-rank, LoRA, "
                                                    "ReLoRA and ReLoRA with a full-rank warm start "
                                                    "(a file, or e.g. :/presets/quick-demo.json)."),
                                     QStringLiteral("SPEC"));
    const QCommandLineOption screenshot(QStringLiteral("screenshot"),
                                        QStringLiteral("Save a picture of the window to FILE, then quit."), QStringLiteral("FILE"));
    const QCommandLineOption after(QStringLiteral("after"), QStringLiteral("Seconds to wait before the screenshot (default 10)."),
                                   QStringLiteral("SECONDS"), QStringLiteral("10"));
    parser.addOptions({database, compare, screenshot, after});
    parser.process(app);

    relora::ui::MainWindow window(parser.value(database));
    if (parser.isSet(compare) && !queueComparison(window, parser.value(compare))) return 1;
    if (parser.isSet(screenshot)) {
        window.resize(1600, 1000);
        QTimer::singleShot(static_cast<int>(parser.value(after).toDouble() * 1000), &window, [&] {
            const bool saved = window.grab().save(parser.value(screenshot));
            if (!saved) std::fprintf(stderr, "relora-workbench: cannot write %s\n", qPrintable(parser.value(screenshot)));
            window.controller()->shutdown(-1);
            QApplication::exit(saved ? 0 : 1);
        });
    }
    window.show();
    return app.exec();
}
