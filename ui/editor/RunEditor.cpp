#include "ui/editor/RunEditor.h"

#include "core/Experiments.h"
#include "ui/editor/DerivedFigures.h"
#include "ui/editor/Devices.h"
#include "ui/editor/FieldErrors.h"
#include "ui/editor/FormFields.h"
#include "ui/editor/ScheduleEditor.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QGridLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QToolButton>
#include <QVBoxLayout>

#include <algorithm>
#include <climits>
#include <cmath>

namespace relora::ui {
namespace {

QString formatCount(double n) {
    if (n >= 1e9) return QString::number(n / 1e9, 'f', 2) + " G";
    if (n >= 1e6) return QString::number(n / 1e6, 'f', 2) + " M";
    if (n >= 1e3) return QString::number(n / 1e3, 'f', 1) + " k";
    return QString::number(n, 'f', 0);
}

QString formatBytes(double bytes) {
    if (bytes >= 1 << 30) return QString::number(bytes / (1 << 30), 'f', 1) + " GB";
    if (bytes >= 1 << 20) return QString::number(bytes / (1 << 20), 'f', 0) + " MB";
    return QString::number(bytes / 1024, 'f', 0) + " kB";
}

QString formatDuration(double seconds) {
    if (seconds < 90) return QObject::tr("%1 s").arg(std::max(1.0, std::round(seconds)));
    if (seconds < 5400) return QObject::tr("%1 min").arg(std::round(seconds / 60));
    return QObject::tr("%1 h %2 min").arg(std::floor(seconds / 3600)).arg(std::round(std::fmod(seconds, 3600) / 60));
}

QGroupBox* group(const QString& title, QLayout* layout) {
    auto* box = new QGroupBox(title);
    box->setLayout(layout);
    return box;
}

QFormLayout* form() {
    auto* f = new QFormLayout;
    f->setFieldGrowthPolicy(QFormLayout::AllNonFixedFieldsGrow);
    return f;
}

}  // namespace

RunEditor::RunEditor(QWidget* parent) : QWidget(parent), errors_(new FieldErrors(this)) {
    auto* content = new QWidget;
    auto* column = new QVBoxLayout(content);
    column->setContentsMargins(4, 4, 4, 4);
    column->addWidget(buildRunGroup());
    column->addWidget(buildModelGroup());
    column->addWidget(buildDataGroup());
    column->addWidget(buildAdapterGroup());
    schedule_ = new ScheduleEditor(errors_);
    auto* scheduleLayout = new QVBoxLayout;
    scheduleLayout->addWidget(schedule_);
    column->addWidget(group(tr("Learning rate and restarts"), scheduleLayout));
    column->addWidget(buildOptimGroup());
    column->addWidget(buildTrainGroup());
    derived_ = new QLabel;
    derived_->setWordWrap(true);
    derived_->setTextFormat(Qt::RichText);
    auto* derivedLayout = new QVBoxLayout;
    derivedLayout->addWidget(derived_);
    column->addWidget(group(tr("Derived figures"), derivedLayout));
    column->addStretch();

    auto* scroll = new QScrollArea;
    scroll->setWidget(content);
    scroll->setWidgetResizable(true);
    scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
    auto* layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->addWidget(scroll, 1);
    layout->addWidget(buildLaunchBar());

    connectEdits();
    setSpec(defaultSpec(Method::ReLoRA, "tiny"));
}

// ---- layout -----------------------------------------------------------------

QWidget* RunEditor::buildRunGroup() {
    name_ = new QLineEdit;
    method_ = new QComboBox;
    method_->addItem(tr("full-rank"), static_cast<int>(Method::FullRank));
    method_->addItem(QStringLiteral("LoRA"), static_cast<int>(Method::LoRA));
    method_->addItem(QStringLiteral("ReLoRA"), static_cast<int>(Method::ReLoRA));
    backend_ = new QComboBox;
    backend_->addItem(tr("auto (CUDA if usable, else CPU)"), QStringLiteral("auto"));
    backend_->addItem(cpuDescription(), QStringLiteral("cpu"));
    const CudaDevice& cuda = cudaDevice();
    backend_->addItem(cuda.usable ? tr("CUDA: %1").arg(cuda.description) : tr("CUDA (not available)"),
                      QStringLiteral("cuda"));
    backend_->setItemData(2, cuda.description, Qt::ToolTipRole);
    auto* f = form();
    f->addRow(tr("Name"), errors_->attach("name", name_));
    f->addRow(tr("Method"), errors_->attach("method.kind", method_));
    f->addRow(tr("Backend"), errors_->attach("backend", backend_));
    return group(tr("Run"), f);
}

QWidget* RunEditor::buildModelGroup() {
    preset_ = new QComboBox;
    for (const char* p : {"tiny", "60m", "130m", "custom"}) preset_->addItem(QString::fromLatin1(p), QString::fromLatin1(p));
    dModel_ = makeIntField(0, 1 << 16);
    dFF_ = makeIntField(0, 1 << 18);
    heads_ = makeIntField(0, 1024);
    layers_ = makeIntField(0, 1024);
    context_ = makeIntField(0, 1 << 16);
    auto* f = form();
    f->addRow(tr("Preset"), errors_->attach("model.preset", preset_));
    f->addRow(tr("d_model"), errors_->attach("model.d_model", dModel_));
    f->addRow(tr("d_ff"), errors_->attach("model.d_ff", dFF_));
    f->addRow(tr("Heads"), errors_->attach("model.heads", heads_));
    f->addRow(tr("Layers"), errors_->attach("model.layers", layers_));
    f->addRow(tr("Context (tokens)"), errors_->attach("model.context", context_));
    return group(tr("Model"), f);
}

QWidget* RunEditor::buildDataGroup() {
    corpus_ = new QLineEdit;
    auto* file = new QToolButton;
    file->setText(tr("File…"));
    auto* folder = new QToolButton;
    folder->setText(tr("Folder…"));
    connect(file, &QToolButton::clicked, this, [this] {
        const QString path = QFileDialog::getOpenFileName(this, tr("Text corpus"), corpus_->text());
        if (!path.isEmpty()) corpus_->setText(path);
    });
    connect(folder, &QToolButton::clicked, this, [this] {
        const QString path = QFileDialog::getExistingDirectory(this, tr("Folder of text files"), corpus_->text());
        if (!path.isEmpty()) corpus_->setText(path);
    });
    auto* row = new QWidget;
    auto* rowLayout = new QHBoxLayout(row);
    rowLayout->setContentsMargins(0, 0, 0, 0);
    rowLayout->addWidget(corpus_, 1);
    rowLayout->addWidget(file);
    rowLayout->addWidget(folder);
    synthetic_ = new QCheckBox(tr("random tokens instead (benchmarks)"));
    auto* f = form();
    f->addRow(tr("Corpus"), errors_->attach("data.corpus", row));
    f->addRow(QString(), errors_->attach("data.synthetic", synthetic_));
    return group(tr("Data"), f);
}

QWidget* RunEditor::buildAdapterGroup() {
    rank_ = makeIntField(0, 1 << 16);
    alpha_ = makeNumberField();
    scaling_ = new QComboBox;
    scaling_->addItem(tr("alpha / r"), false);
    scaling_->addItem(tr("alpha / √r (rank-stabilised)"), true);
    dropout_ = makeNumberField();
    targetBox_ = new QWidget;
    auto* grid = new QGridLayout(targetBox_);
    grid->setContentsMargins(0, 0, 0, 0);
    const char* labels[kTargetCount] = {"Wq", "Wk", "Wv", "Wo", "gate", "up", "down"};
    for (int t = 0; t < kTargetCount; ++t) {
        auto* box = new QCheckBox(QString::fromLatin1(labels[t]));
        targets_.push_back(box);
        grid->addWidget(box, t / 4, t % 4);
    }
    auto* f = form();
    f->addRow(tr("Rank r"), errors_->attach("method.rank", rank_));
    f->addRow(tr("Alpha"), errors_->attach("method.alpha", alpha_));
    f->addRow(tr("Scaling"), errors_->attach("method.rank_stabilised", scaling_));
    f->addRow(tr("Dropout"), errors_->attach("method.dropout", dropout_));
    f->addRow(tr("Target matrices"), errors_->attach("method.targets", targetBox_));
    adapterFields_ = {rank_, alpha_, scaling_, dropout_};
    return group(tr("Low-rank adapters"), f);
}

QWidget* RunEditor::buildOptimGroup() {
    lr_ = makeNumberField();
    weightDecay_ = makeNumberField();
    clip_ = makeNumberField();
    clip_->setToolTip(tr("Global gradient-norm clipping; 0 turns it off."));
    auto* f = form();
    f->addRow(tr("Peak learning rate"), errors_->attach("optim.lr", lr_));
    f->addRow(tr("Weight decay"), errors_->attach("optim.weight_decay", weightDecay_));
    f->addRow(tr("Gradient clipping"), errors_->attach("optim.clip", clip_));
    return group(tr("Optimizer (AdamW)"), f);
}

QWidget* RunEditor::buildTrainGroup() {
    batch_ = makeIntField(0, 1 << 16);
    steps_ = makeIntField(0, INT_MAX);
    seed_ = makeNumberField();
    evalInterval_ = makeIntField(0, INT_MAX);
    snapshotInterval_ = makeIntField(0, INT_MAX);
    snapshotInterval_->setSpecialValueText(tr("at the end only"));
    auto* f = form();
    f->addRow(tr("Batch (sequences)"), errors_->attach("train.batch", batch_));
    f->addRow(tr("Steps"), errors_->attach("train.steps", steps_));
    f->addRow(tr("Seed"), errors_->attach("train.seed", seed_));
    f->addRow(tr("Evaluate every (steps)"), errors_->attach("train.eval_interval", evalInterval_));
    f->addRow(tr("Snapshot every (steps)"), errors_->attach("train.snapshot_interval", snapshotInterval_));
    return group(tr("Training"), f);
}

QWidget* RunEditor::buildLaunchBar() {
    launch_ = new QPushButton(QIcon(QStringLiteral(":/icons/launch.svg")), tr("Launch"));
    launch_->setObjectName(QStringLiteral("launchButton"));
    headline_ = new QPushButton(QIcon(QStringLiteral(":/icons/compare.svg")), tr("Headline: 4 methods"));
    headline_->setObjectName(QStringLiteral("headlineButton"));
    reason_ = new QLabel;
    reason_->setWordWrap(true);
    reason_->setStyleSheet(QStringLiteral("color: #c62828;"));
    connect(launch_, &QPushButton::clicked, this, [this] { emit launchRequested(spec()); });
    connect(headline_, &QPushButton::clicked, this, [this] { emit headlineRequested(spec()); });
    auto* bar = new QWidget;
    auto* layout = new QVBoxLayout(bar);
    layout->setContentsMargins(4, 2, 4, 4);
    auto* buttons = new QHBoxLayout;
    buttons->addWidget(launch_, 1);
    buttons->addWidget(headline_, 1);
    layout->addLayout(buttons);
    layout->addWidget(reason_);
    return bar;
}

void RunEditor::connectEdits() {
    const auto edited = [this] {
        revalidate();
        emit specEdited();
    };
    for (QLineEdit* field : {name_, corpus_, alpha_, dropout_, lr_, weightDecay_, clip_, seed_})
        connect(field, &QLineEdit::textChanged, this, edited);
    for (QSpinBox* box : {rank_, context_, batch_, steps_, evalInterval_, snapshotInterval_})
        connect(box, &QSpinBox::valueChanged, this, edited);
    for (QSpinBox* box : {dModel_, dFF_, heads_, layers_})
        connect(box, &QSpinBox::valueChanged, this, [this, edited] {
            sizesEdited();
            edited();
        });
    for (QComboBox* box : {method_, backend_, scaling_})
        connect(box, &QComboBox::currentIndexChanged, this, edited);
    for (QCheckBox* box : targets_) connect(box, &QCheckBox::toggled, this, edited);
    connect(synthetic_, &QCheckBox::toggled, this, edited);
    connect(schedule_, &ScheduleEditor::edited, this, edited);
    connect(preset_, &QComboBox::currentIndexChanged, this, [this, edited] {
        applyPreset(preset_->currentData().toString());
        edited();
    });
}

// ---- spec <-> fields ----------------------------------------------------------

void RunEditor::setSpec(const RunSpec& spec) {
    base_ = spec;
    QSignalBlocker block(this);
    std::vector<QSignalBlocker> blockers;
    for (QObject* o : std::initializer_list<QObject*>{name_, method_, backend_, preset_, dModel_, dFF_, heads_, layers_,
                                                      context_, corpus_, synthetic_, rank_, alpha_, scaling_, dropout_,
                                                      lr_, weightDecay_, clip_, batch_, steps_, seed_, evalInterval_,
                                                      snapshotInterval_, schedule_})
        blockers.emplace_back(o);
    for (QCheckBox* box : targets_) blockers.emplace_back(box);

    name_->setText(QString::fromStdString(spec.name));
    method_->setCurrentIndex(method_->findData(static_cast<int>(spec.method.kind)));
    const int backend = backend_->findData(QString::fromStdString(spec.backend));
    backend_->setCurrentIndex(backend >= 0 ? backend : 0);
    const int preset = preset_->findData(QString::fromStdString(spec.model.preset));
    preset_->setCurrentIndex(preset >= 0 ? preset : preset_->findData(QStringLiteral("custom")));
    dModel_->setValue(spec.model.dModel);
    dFF_->setValue(spec.model.dFF);
    heads_->setValue(spec.model.heads);
    layers_->setValue(spec.model.layers);
    context_->setValue(spec.model.context);
    corpus_->setText(QString::fromStdString(spec.data.corpus));
    synthetic_->setChecked(spec.data.synthetic);
    rank_->setValue(spec.method.rank);
    setNumber(alpha_, spec.method.alpha);
    scaling_->setCurrentIndex(spec.method.rankStabilised ? 1 : 0);
    setNumber(dropout_, spec.method.dropout);
    for (int t = 0; t < kTargetCount; ++t) targets_[static_cast<size_t>(t)]->setChecked(spec.targets(static_cast<TargetMatrix>(t)));
    schedule_->load(spec);
    setNumber(lr_, spec.optim.lr);
    setNumber(weightDecay_, spec.optim.weightDecay);
    setNumber(clip_, spec.optim.clip);
    batch_->setValue(spec.train.batch);
    steps_->setValue(spec.train.steps);
    seed_->setText(QString::number(static_cast<qulonglong>(spec.train.seed)));
    evalInterval_->setValue(spec.train.evalInterval);
    snapshotInterval_->setValue(spec.train.snapshotInterval);
    blockers.clear();
    revalidate();
    block.unblock();
    emit specEdited();
}

RunSpec RunEditor::spec() const {
    std::vector<SpecError> ignored;
    return readFields(ignored);
}

RunSpec RunEditor::readFields(std::vector<SpecError>& problems) const {
    RunSpec s = base_;
    s.name = name_->text().trimmed().toStdString();
    s.method.kind = static_cast<Method>(method_->currentData().toInt());
    s.backend = backend_->currentData().toString().toStdString();
    s.model.preset = preset_->currentData().toString().toStdString();
    s.model.dModel = dModel_->value();
    s.model.dFF = dFF_->value();
    s.model.heads = heads_->value();
    s.model.layers = layers_->value();
    s.model.context = context_->value();
    s.data.corpus = corpus_->text().trimmed().toStdString();
    s.data.synthetic = synthetic_->isChecked();
    s.method.rank = rank_->value();
    if (auto v = readNumber(alpha_, "method.alpha", problems)) s.method.alpha = static_cast<float>(*v);
    s.method.rankStabilised = scaling_->currentData().toBool();
    if (auto v = readNumber(dropout_, "method.dropout", problems)) s.method.dropout = static_cast<float>(*v);
    s.method.targets.clear();
    for (int t = 0; t < kTargetCount; ++t)
        if (targets_[static_cast<size_t>(t)]->isChecked()) s.method.targets.push_back(static_cast<TargetMatrix>(t));
    schedule_->store(s, problems);
    if (auto v = readNumber(lr_, "optim.lr", problems)) s.optim.lr = static_cast<float>(*v);
    if (auto v = readNumber(weightDecay_, "optim.weight_decay", problems)) s.optim.weightDecay = static_cast<float>(*v);
    if (auto v = readNumber(clip_, "optim.clip", problems)) s.optim.clip = static_cast<float>(*v);
    s.train.batch = batch_->value();
    s.train.steps = steps_->value();
    if (auto v = readUnsigned(seed_, "train.seed", problems)) s.train.seed = *v;
    s.train.evalInterval = evalInterval_->value();
    s.train.snapshotInterval = snapshotInterval_->value();
    return s;
}

void RunEditor::applyPreset(const QString& preset) {
    if (preset == QLatin1String("custom")) return;
    RunSpec s = spec();
    applyModelPreset(s, preset.toStdString());
    const QSignalBlocker blocks[] = {QSignalBlocker(dModel_), QSignalBlocker(dFF_), QSignalBlocker(heads_),
                                     QSignalBlocker(layers_), QSignalBlocker(context_), QSignalBlocker(rank_)};
    dModel_->setValue(s.model.dModel);
    dFF_->setValue(s.model.dFF);
    heads_->setValue(s.model.heads);
    layers_->setValue(s.model.layers);
    context_->setValue(s.model.context);
    rank_->setValue(s.method.rank);
}

void RunEditor::sizesEdited() {
    // Sizes that are no preset's are "custom", so that no run is filed
    // under a preset it does not match.
    const QSignalBlocker block(preset_);
    preset_->setCurrentIndex(preset_->findData(QStringLiteral("custom")));
}

// ---- validation and figures -----------------------------------------------------

void RunEditor::revalidate() {
    std::vector<SpecError> reading;
    const RunSpec s = readFields(reading);
    problems_ = reading;
    std::vector<std::string> unreadable;
    for (const SpecError& e : reading) unreadable.push_back(e.field);
    for (SpecError& e : validate(s, true))
        if (std::find(unreadable.begin(), unreadable.end(), e.field) == unreadable.end()) problems_.push_back(std::move(e));
    if (s.backend == "cuda" && !cudaDevice().usable)
        problems_.push_back({"backend", "no CUDA device can be used: " + cudaDevice().description.toStdString()});

    const std::vector<SpecError> elsewhere = errors_->show(problems_);
    const bool lowRank = s.isLowRank();
    for (QWidget* w : adapterFields_) w->setEnabled(lowRank);
    targetBox_->setToolTip(lowRank ? QString() : tr("Full-rank training measures the learned update of these matrices."));
    schedule_->showPreview(s);
    showDerived(s);

    const QString blocked = launchBlockedReason();
    launch_->setEnabled(blocked.isEmpty());
    launch_->setToolTip(blocked.isEmpty() ? tr("Queue this run") : tr("Cannot launch: %1").arg(blocked));
    const QString headlineBlocked = blocked.isEmpty() ? headlineBlockedReason(s) : blocked;
    headline_->setEnabled(headlineBlocked.isEmpty());
    headline_->setToolTip(headlineBlocked.isEmpty()
                              ? tr("Queue four matched runs of this spec: full-rank, LoRA, ReLoRA, and ReLoRA "
                                   "after a full-rank warm start of %1 of the steps")
                                    .arg(QString::fromStdString(experiments::percentText(experiments::kDefaultWarmStartFraction)))
                              : tr("Cannot run the headline experiment: %1").arg(headlineBlocked));
    QString shown = blocked.isEmpty() ? QString() : tr("Cannot launch: %1").arg(blocked);
    for (const SpecError& e : elsewhere)
        shown += QStringLiteral("\n%1: %2").arg(QString::fromStdString(e.field), QString::fromStdString(e.message));
    reason_->setText(shown.trimmed());
    reason_->setVisible(!shown.trimmed().isEmpty());
}

QString RunEditor::launchBlockedReason() const {
    if (!databaseReady_) return databaseWhy_.isEmpty() ? tr("no run database is open") : databaseWhy_;
    if (problems_.empty()) return {};
    const SpecError& first = problems_.front();
    QString text = QStringLiteral("%1 %2").arg(QString::fromStdString(first.field), QString::fromStdString(first.message));
    if (problems_.size() > 1) text += tr(" (and %n more problem(s), marked at their fields)", nullptr,
                                         static_cast<int>(problems_.size() - 1));
    return text;
}

QString RunEditor::headlineBlockedReason(const RunSpec& spec) const {
    for (const RunSpec& run : experiments::headlineRuns(spec)) {
        const auto errors = validate(run, false);
        if (!errors.empty())
            return tr("the %1 run would be invalid: %2 %3")
                .arg(QString::fromStdString(run.name), QString::fromStdString(errors.front().field),
                     QString::fromStdString(errors.front().message));
    }
    return {};
}

void RunEditor::setDatabaseReady(bool ready, const QString& why) {
    databaseReady_ = ready;
    databaseWhy_ = why;
    revalidate();
}

void RunEditor::setMeasuredSpeed(const QString& device, double flopsPerSecond) {
    if (flopsPerSecond <= 0) return;
    measuredSpeed_[device] = flopsPerSecond;
    revalidate();
}

void RunEditor::showDerived(const RunSpec& spec) {
    if (spec.model.dModel < 1 || spec.model.layers < 1 || spec.train.steps < 1) {
        derived_->setText(tr("<i>Complete the model and the training length to see its figures.</i>"));
        return;
    }
    const QString device = spec.backend == "auto" ? (cudaDevice().usable ? "cuda" : "cpu")
                                                  : QString::fromStdString(spec.backend);
    const bool measured = measuredSpeed_.contains(device);
    const double speed = measured ? measuredSpeed_[device] : assumedFlopsPerSecond(device.toLatin1().constData());
    const DerivedFigures f = deriveFigures(spec, speed, device == "cuda" && spec.precision == "bf16");
    const double share = f.counts.total ? 100.0 * f.counts.trainable / f.counts.total : 0;
    QString text = tr("<b>%1</b> parameters, <b>%2</b> trainable (%3 %)")
                       .arg(formatCount(f.counts.total), formatCount(f.counts.trainable))
                       .arg(share, 0, 'f', share < 10 ? 1 : 0);
    if (f.warmStart) text += tr("<br>full-rank warm start: %1 trainable").arg(formatCount(f.warmStart->trainable));
    text += tr("<br>optimizer state: %1 values (%2)")
                .arg(formatCount(f.optimizerBytes / 4), formatBytes(f.optimizerBytes));
    text += tr("<br>memory ≈ %1 · time ≈ %2 on %3")
                .arg(formatBytes(f.memoryBytes), formatDuration(f.seconds), device.toUpper());
    text += measured ? tr(" <span style='color:gray'>(at the speed last measured there)</span>")
                     : tr(" <span style='color:gray'>(rough: assumes %1 GFLOP/s)</span>").arg(speed / 1e9, 0, 'g', 3);
    derived_->setText(text);
}

}  // namespace relora::ui
