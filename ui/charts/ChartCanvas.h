// A QChartView with what every chart of the workbench needs: a linear or
// logarithmic y axis, zoom (drag a rectangle, turn the wheel) and pan
// (middle button, or Shift + drag) with a reset (double-click), a hover
// read-out of every curve at the cursor, vertical markers (ReLoRA restarts),
// and export as PNG or SVG. It knows nothing about runs or metrics.
#pragma once

#include <QChartView>
#include <QColor>
#include <QPointer>
#include <QString>

#include <optional>
#include <utility>
#include <vector>

class QAbstractAxis;
class QValueAxis;
class QXYSeries;

namespace relora::ui {

class ChartCanvas : public QChartView {
    Q_OBJECT
public:
    struct Marker {
        double x = 0;
        QColor color;
        QString label;
    };

    explicit ChartCanvas(const QString& title, QWidget* parent = nullptr);

    void setTitle(const QString& title);
    void setAxisTitles(const QString& x, const QString& y);
    void setXTitle(const QString& x);
    void setLogY(bool on);
    bool logY() const { return logY_; }

    // Adds a series on both axes. Its objectName labels it in the hover
    // read-out; a series without one is left out of the read-out.
    void addSeries(QXYSeries* series, bool inLegend);
    void removeSeries(QXYSeries* series);

    // Shows these data bounds (padded), unless the user zoomed or panned.
    void setAutoRange(double xMin, double xMax, double yMin, double yMax);
    // For an x domain known in advance (percentages): this x range, ticks
    // every `tickInterval` from 0, whatever setAutoRange is given.
    void setFixedXRange(double xMin, double xMax, double tickInterval);
    bool isZoomed() const { return zoomed_; }
    // The x range shown now, and the plot's width in pixels: what curves are
    // decimated for.
    std::pair<double, double> visibleX() const;
    int plotWidth() const;

    void setMarkers(std::vector<Marker> markers);
    const std::vector<Marker>& markers() const { return markers_; }

    // PNG or SVG, by the file's suffix. False with `error` set on failure.
    bool exportTo(const QString& path, QString* error = nullptr);

public slots:
    void resetZoom();

signals:
    // The visible range or the plot's width changed: curves need rebuilding.
    void viewChanged();
    void logYChanged(bool on);

protected:
    void mousePressEvent(QMouseEvent* event) override;
    void mouseMoveEvent(QMouseEvent* event) override;
    void mouseReleaseEvent(QMouseEvent* event) override;
    void mouseDoubleClickEvent(QMouseEvent* event) override;
    void wheelEvent(QWheelEvent* event) override;
    void leaveEvent(QEvent* event) override;
    void resizeEvent(QResizeEvent* event) override;
    void contextMenuEvent(QContextMenuEvent* event) override;
    void drawForeground(QPainter* painter, const QRectF& rect) override;

private:
    void attachY(QAbstractAxis* axis);
    // The user zoomed or panned: stop following the data, rebuild the curves.
    void userChangedRange();
    void drawMarkers(QPainter& painter, const QRectF& plot);
    void drawReadout(QPainter& painter, const QRectF& plot);
    double xToPixel(double x, const QRectF& plot) const;

    QValueAxis* x_ = nullptr;
    QAbstractAxis* y_ = nullptr;
    QString yTitle_;
    bool logY_ = false;
    std::optional<std::pair<double, double>> fixedX_;
    bool zoomed_ = false;
    bool viewChangePending_ = false;
    bool panning_ = false;
    QPoint lastPan_;
    QPoint hover_{-1, -1};
    std::vector<QPointer<QXYSeries>> series_;
    std::vector<Marker> markers_;
};

}  // namespace relora::ui
