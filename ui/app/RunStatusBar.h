// The status bar's account of training: the current run, step of total,
// ETA, tokens per second and the device; or how many runs wait.
#pragma once

#include <QString>
#include <QWidget>

class QLabel;
class QProgressBar;

namespace relora::ui {

class RunStatusBar : public QWidget {
    Q_OBJECT
public:
    explicit RunStatusBar(QWidget* parent = nullptr);

    void showProgress(const QString& run, int step, int total, double tokensPerSecond, double etaSeconds,
                      const QString& device, bool paused);
    void showIdle(int queued);
    QString text() const;   // all of it, for tests and tooltips

private:
    QLabel* run_;
    QProgressBar* bar_;
    QLabel* eta_;
    QLabel* speed_;
    QLabel* device_;
};

}  // namespace relora::ui
