#include "ui/app/RunStatusBar.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QLocale>
#include <QProgressBar>

#include <cmath>

namespace relora::ui {
namespace {

QString clock(double seconds) {
    const long s = std::lround(std::max(0.0, seconds));
    if (s >= 3600) return QStringLiteral("%1:%2:%3").arg(s / 3600).arg(s / 60 % 60, 2, 10, QLatin1Char('0')).arg(s % 60, 2, 10, QLatin1Char('0'));
    return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}

}  // namespace

RunStatusBar::RunStatusBar(QWidget* parent) : QWidget(parent) {
    run_ = new QLabel;
    bar_ = new QProgressBar;
    bar_->setMaximumWidth(220);
    bar_->setFormat(QStringLiteral("%v / %m"));
    eta_ = new QLabel;
    speed_ = new QLabel;
    device_ = new QLabel;
    auto* layout = new QHBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(14);
    for (QWidget* w : {static_cast<QWidget*>(run_), static_cast<QWidget*>(bar_), static_cast<QWidget*>(eta_),
                       static_cast<QWidget*>(speed_), static_cast<QWidget*>(device_)})
        layout->addWidget(w);
    showIdle(0);
}

void RunStatusBar::showProgress(const QString& run, int step, int total, double tokensPerSecond, double etaSeconds,
                                const QString& device, bool paused) {
    run_->setText(paused ? tr("<b>%1</b> (paused)").arg(run.toHtmlEscaped()) : tr("<b>%1</b>").arg(run.toHtmlEscaped()));
    bar_->setRange(0, std::max(1, total));
    bar_->setValue(step);
    bar_->show();
    eta_->setText(tr("ETA %1").arg(clock(etaSeconds)));
    speed_->setText(tr("%1 tok/s").arg(QLocale().toString(tokensPerSecond, 'f', 0)));
    device_->setText(device);
    for (QLabel* l : {eta_, speed_, device_}) l->show();
}

void RunStatusBar::showIdle(int queued) {
    run_->setText(queued > 0 ? tr("%n run(s) queued", nullptr, queued) : tr("No run training"));
    bar_->hide();
    for (QLabel* l : {eta_, speed_, device_}) l->hide();
}

QString RunStatusBar::text() const {
    QString out = run_->text();
    if (bar_->isVisible()) out += QStringLiteral(" %1/%2").arg(bar_->value()).arg(bar_->maximum());
    for (QLabel* l : {eta_, speed_, device_})
        if (!l->isHidden()) out += " " + l->text();
    return out;
}

}  // namespace relora::ui
