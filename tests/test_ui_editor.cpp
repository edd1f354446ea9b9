// The run editor: the engine's validation shown at the field with its
// reason and on the disabled Launch button; text that is no number; the
// live LR preview with markers at restarts and at the warm-start switch;
// derived figures from the engine's closed forms; the headline button;
// the bundled presets; specs in and out unchanged.
#include "core/Experiments.h"
#include "core/LearningRateSchedule.h"
#include "core/ParameterCounts.h"
#include "support/UiTestSupport.h"
#include "ui/app/Resources.h"
#include "ui/charts/ChartCanvas.h"
#include "ui/editor/DerivedFigures.h"
#include "ui/editor/FieldErrors.h"
#include "ui/editor/PresetLibrary.h"
#include "ui/editor/RunEditor.h"
#include "ui/editor/ScheduleEditor.h"
#include "ui/editor/SchedulePreview.h"

#include <QComboBox>
#include <QLabel>
#include <QLineEdit>
#include <QLineSeries>
#include <QPushButton>
#include <QSignalSpy>
#include <QSpinBox>
#include <QtTest>

#include <filesystem>

using namespace relora;
using namespace relora::ui;

namespace {

RunSpec reloraSpec() {
    RunSpec s = defaultSpec(Method::ReLoRA, "tiny");
    s.train.steps = 1000;
    s.optim.warmup = 50;
    s.relora.resetInterval = 250;
    s.relora.warmStartSteps = 100;
    s.relora.restartWarmup = 20;
    s.data.synthetic = !std::filesystem::exists(s.data.corpus);
    return s;
}

template <class W>
W* field(RunEditor& editor, const char* path) {
    auto* w = qobject_cast<W*>(editor.fieldErrors()->field(QString::fromLatin1(path)));
    if (!w) qFatal("no %s field for %s", W::staticMetaObject.className(), path);
    return w;
}

}  // namespace

class TestEditor : public QObject {
    Q_OBJECT

private slots:
    void initTestCase() { initWorkbenchResources(); }

    void aValidSpecCanLaunchOnceADatabaseIsOpen() {
        RunEditor editor;
        editor.setSpec(reloraSpec());
        QVERIFY(editor.problems().empty());
        QVERIFY(!editor.launchButton()->isEnabled());
        QVERIFY(editor.launchButton()->toolTip().contains("database"));
        editor.setDatabaseReady(true);
        QVERIFY(editor.launchButton()->isEnabled());
        QVERIFY(editor.headlineButton()->isEnabled());
        QSignalSpy launched(&editor, &RunEditor::launchRequested);
        editor.launchButton()->click();
        QCOMPARE(launched.count(), 1);
        QCOMPARE(toJson(launched.at(0).at(0).value<RunSpec>()), toJson(editor.spec()));
    }

    void aBadValueIsMarkedAtItsFieldWithTheEnginesReason() {
        RunEditor editor;
        editor.setDatabaseReady(true);
        editor.setSpec(reloraSpec());
        field<QSpinBox>(editor, "method.rank")->setValue(300);   // the matrices are 256 wide
        const QString reason = editor.fieldErrors()->message("method.rank");
        QVERIFY2(reason.contains("must be between 1 and 256"), qPrintable(reason));
        QVERIFY(!editor.launchButton()->isEnabled());
        QVERIFY(editor.launchButton()->toolTip().startsWith("Cannot launch: method.rank must be between 1 and 256"));
        QVERIFY(editor.fieldErrors()->field("method.rank")->toolTip().contains("must be between"));
        field<QSpinBox>(editor, "method.rank")->setValue(64);
        QVERIFY(editor.fieldErrors()->message("method.rank").isEmpty());
        QVERIFY(editor.launchButton()->isEnabled());

        field<QSpinBox>(editor, "model.heads")->setValue(3);
        QVERIFY(editor.fieldErrors()->message("model.heads").contains("must divide d_model"));
        QCOMPARE(field<QComboBox>(editor, "model.preset")->currentText(), QString("custom"));
    }

    void textThatIsNoNumberIsAProblemOfItsField() {
        RunEditor editor;
        editor.setDatabaseReady(true);
        editor.setSpec(reloraSpec());
        field<QLineEdit>(editor, "optim.lr")->setText("fast");
        QVERIFY(editor.fieldErrors()->message("optim.lr").contains("'fast' is not a number"));
        QVERIFY(!editor.launchButton()->isEnabled());
        field<QLineEdit>(editor, "optim.lr")->setText("3e-4");
        QVERIFY(editor.launchButton()->isEnabled());
        QCOMPARE(editor.spec().optim.lr, 3e-4f);
        field<QLineEdit>(editor, "relora.restart_steps");   // present, hidden in interval mode
    }

    void aMissingCorpusIsNamed() {
        RunEditor editor;
        editor.setDatabaseReady(true);
        RunSpec s = reloraSpec();
        s.data.synthetic = false;
        s.data.corpus = "/nonexistent/texts";
        editor.setSpec(s);
        QVERIFY(editor.fieldErrors()->message("data.corpus").contains("does not exist"));
        QVERIFY(!editor.launchButton()->isEnabled());
    }

    void schedulePreviewFollowsTheTrainersSchedule() {
        RunEditor editor;
        const RunSpec s = reloraSpec();
        editor.setSpec(s);
        const QLineSeries* lr = editor.scheduleEditor()->previewSeries();
        QVERIFY(lr->count() > 100);
        QCOMPARE(lr->at(lr->count() - 1).x(), 999.0);
        const auto schedule = scheduleFor(s);
        for (int i = 0; i < lr->count(); i += 7)
            QCOMPARE(lr->at(i).y(), schedule->at(static_cast<int>(lr->at(i).x())));
        // Every trough is drawn at its step: the warm-start switch and the restarts.
        const auto points = lr->points();
        for (int trough : {100, 350, 600, 850}) {
            const auto at = std::find_if(points.begin(), points.end(), [&](const QPointF& p) { return p.x() == trough; });
            QVERIFY2(at != points.end(), qPrintable(QString("no point at step %1").arg(trough)));
            QCOMPARE(at->y(), 0.0);
        }

        const SchedulePreview p = previewSchedule(s);
        QCOMPARE(p.restarts, (std::vector<int>{350, 600, 850}));
        QCOMPARE(p.warmStartSwitch.value_or(-1), 100);
        QVERIFY(editor.scheduleEditor()->preview()->chart()->title().contains("3 restarts"));

        // Edited live: a shorter interval, more restarts.
        field<QSpinBox>(editor, "relora.reset_interval")->setValue(100);
        QCOMPARE(previewSchedule(editor.spec()).restarts.size(), size_t(8));
        QVERIFY(editor.scheduleEditor()->preview()->chart()->title().contains("8 restarts"));

        // Full-rank follows one cosine: no restarts, restart fields disabled.
        field<QComboBox>(editor, "method.kind")->setCurrentIndex(0);
        QVERIFY(previewSchedule(editor.spec()).restarts.empty());
        QVERIFY(!field<QSpinBox>(editor, "relora.reset_interval")->isEnabled());
        QVERIFY(!field<QSpinBox>(editor, "method.rank")->isEnabled());
    }

    void explicitRestartStepsAreReadAndChecked() {
        RunEditor editor;
        editor.setDatabaseReady(true);
        RunSpec s = reloraSpec();
        s.relora.restartSteps = {300, 700};
        editor.setSpec(s);
        QCOMPARE(editor.spec().relora.restartSteps, (std::vector<int>{300, 700}));
        QCOMPARE(previewSchedule(editor.spec()).restarts, (std::vector<int>{300, 700}));
        field<QLineEdit>(editor, "relora.restart_steps")->setText("700, 300");
        QVERIFY(editor.fieldErrors()->message("relora.restart_steps").contains("strictly increasing"));
        field<QLineEdit>(editor, "relora.restart_steps")->setText("300, x");
        QVERIFY(editor.fieldErrors()->message("relora.restart_steps").contains("'x' is not a step number"));
    }

    void derivedFiguresUseTheEnginesCounts() {
        const RunSpec s = reloraSpec();
        const DerivedFigures f = deriveFigures(s, 1e10);
        const ParameterCounts lowRank = expectedCounts(s, true), full = expectedCounts(s, false);
        QCOMPARE(f.counts.total, lowRank.total);
        QCOMPARE(f.counts.trainable, lowRank.trainable);
        QVERIFY(f.warmStart.has_value());
        QCOMPARE(f.warmStart->trainable, full.trainable);
        QCOMPARE(f.optimizerBytes, 2.0 * 4 * full.trainable);   // the larger phase
        QVERIFY(f.memoryBytes > 4.0 * full.total);
        QVERIFY(f.seconds > 0);
        // LoRA steps cost less than full-rank ones (no weight gradient for frozen W).
        RunSpec lora = s;
        lora.method.kind = Method::LoRA;
        RunSpec fullRank = s;
        fullRank.method.kind = Method::FullRank;
        QVERIFY(deriveFigures(lora, 1e10).flopsPerStep < deriveFigures(fullRank, 1e10).flopsPerStep);
        QVERIFY(!deriveFigures(lora, 1e10).warmStart);
    }

    // The peak-memory estimate against the CUDA backend's measured high-water
    // mark (bench/RESULTS.md, H100, fifth session): 60m full-rank, batch
    // 32 × 512, vocabulary 32000, bf16 mode: 3,610 MiB. Within 15 %.
    void memoryEstimateMatchesTheMeasuredPeak() {
        RunSpec s = defaultSpec(Method::FullRank, "60m");
        s.train.batch = 32;
        s.model.context = 512;
        s.model.vocab = 32000;
        const double measured = 3610.0 * 1024 * 1024;
        const double estimate = deriveFigures(s, 1e10, true).memoryBytes;
        QVERIFY2(std::abs(estimate / measured - 1) < 0.15, qPrintable(QString::number(estimate / measured)));
        // fp32 operand buffers (the CPU backend) take more.
        QVERIFY(deriveFigures(s, 1e10, false).memoryBytes > estimate * 1.3);
    }

    void derivedFiguresShowInTheEditor() {
        const RunSpec s = reloraSpec();
        const ParameterCounts lowRank = expectedCounts(s, true);

        RunEditor editor;
        editor.setSpec(s);
        const QString text = editor.derivedLabel()->text();
        QVERIFY2(text.contains(QString::number(lowRank.total / 1e6, 'f', 2) + " M"), qPrintable(text));
        QVERIFY(text.contains("full-rank warm start"));
        editor.setMeasuredSpeed("cpu", 5e9);
        QVERIFY(editor.derivedLabel()->text().contains("measured"));
    }

    // Which specs the four runs get is core's (test_experiments); the
    // editor offers the button only when every one of them can run.
    void headlineButtonQueuesTheSpecWhenAllFourRunsCan() {
        RunEditor editor;
        editor.setDatabaseReady(true);
        RunSpec s = reloraSpec();
        s.name = "study-relora";
        s.relora.warmStartSteps = 0;
        s.relora.resetInterval = 800;   // a restart fits into 1000 steps, not into the 750 after a 25 % warm start
        editor.setSpec(s);
        QVERIFY(editor.launchButton()->isEnabled());
        QVERIFY(!editor.headlineButton()->isEnabled());
        const QString why = editor.headlineButton()->toolTip();
        QVERIFY2(why.contains("study-relora-ws25") && why.contains("relora.reset_interval"), qPrintable(why));

        s.relora.resetInterval = 250;
        editor.setSpec(s);
        QVERIFY(editor.headlineButton()->isEnabled());
        QSignalSpy requested(&editor, &RunEditor::headlineRequested);
        editor.headlineButton()->click();
        QCOMPARE(requested.count(), 1);
        QCOMPARE(toJson(requested.at(0).at(0).value<RunSpec>()), toJson(editor.spec()));
    }

    void presetsReadAndEditUnchanged() {
        QStringList problems;
        const auto presets = bundledPresets(&problems);
        QVERIFY2(problems.isEmpty(), qPrintable(problems.join("\n")));
        QVERIFY(presets.size() >= 3);
        RunEditor editor;
        for (const Preset& p : presets) {
            const auto errors = validate(p.spec, false);
            QVERIFY2(errors.empty(), qPrintable(p.title + ": " + QString::fromStdString(errors.empty() ? "" : errors[0].message)));
            for (const RunSpec& run : experiments::headlineRuns(p.spec)) QVERIFY(validate(run, false).empty());
            editor.setSpec(p.spec);
            QCOMPARE(toJson(editor.spec()), toJson(p.spec));   // nothing lost through the fields
        }
        RunSpec unusual = reloraSpec();
        unusual.train.seed = (uint64_t{1} << 63) + 12345;   // past what a spin box holds
        unusual.relora.restartSteps = {300, 700};
        unusual.precision = "fp32";                          // not shown, kept
        unusual.method.rankStabilised = true;
        unusual.method.targets = {TargetMatrix::Wq, TargetMatrix::Down};
        editor.setSpec(unusual);
        QCOMPARE(toJson(editor.spec()), toJson(unusual));
    }
};

QTEST_MAIN(TestEditor)
#include "test_ui_editor.moc"
