#include "ui/charts/ChartCanvas.h"

#include <QContextMenuEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QLegendMarker>
#include <QLogValueAxis>
#include <QMenu>
#include <QMessageBox>
#include <QMouseEvent>
#include <QPainter>
#include <QSvgGenerator>
#include <QTimer>
#include <QValueAxis>
#include <QWheelEvent>
#include <QXYSeries>

#include <algorithm>
#include <cmath>

namespace relora::ui {
namespace {

// The point of `points` (x ascending) nearest to x.
const QPointF* nearest(const QList<QPointF>& points, double x) {
    if (points.isEmpty()) return nullptr;
    const auto after = std::lower_bound(points.begin(), points.end(), x,
                                        [](const QPointF& p, double v) { return p.x() < v; });
    if (after == points.end()) return &points.back();
    if (after == points.begin()) return &*after;
    const auto before = after - 1;
    return x - before->x() <= after->x() - x ? &*before : &*after;
}

QString formatValue(double v) { return QString::number(v, 'g', 5); }

}  // namespace

ChartCanvas::ChartCanvas(const QString& title, QWidget* parent) : QChartView(new QChart, parent) {
    QChart* c = chart();
    QFont titleFont = c->titleFont();
    titleFont.setBold(true);
    c->setTitleFont(titleFont);
    c->setTitle(title);
    c->setMargins(QMargins(2, 2, 2, 2));
    c->setBackgroundRoundness(0);
    c->legend()->setAlignment(Qt::AlignBottom);
    c->legend()->setShowToolTips(true);
    setRenderHint(QPainter::Antialiasing);
    setRubberBand(QChartView::RectangleRubberBand);
    setMouseTracking(true);
    setMinimumSize(240, 180);

    x_ = new QValueAxis;
    x_->setLabelFormat(QStringLiteral("%.4g"));
    c->addAxis(x_, Qt::AlignBottom);
    attachY(new QValueAxis);
}

void ChartCanvas::setTitle(const QString& title) { chart()->setTitle(title); }

void ChartCanvas::setAxisTitles(const QString& x, const QString& y) {
    x_->setTitleText(x);
    yTitle_ = y;
    y_->setTitleText(y);
}

void ChartCanvas::setXTitle(const QString& x) { x_->setTitleText(x); }

void ChartCanvas::attachY(QAbstractAxis* axis) {
    if (y_) {
        for (const auto& s : series_)
            if (s) s->detachAxis(y_);
        chart()->removeAxis(y_);
        delete y_;
    }
    y_ = axis;
    y_->setTitleText(yTitle_);
    chart()->addAxis(y_, Qt::AlignLeft);
    for (const auto& s : series_)
        if (s) s->attachAxis(y_);
    if (auto* log = qobject_cast<QLogValueAxis*>(y_)) {
        log->setBase(10);
        log->setLabelFormat(QStringLiteral("%g"));
        log->setMinorTickCount(-1);
    } else if (auto* linear = qobject_cast<QValueAxis*>(y_)) {
        linear->setLabelFormat(QStringLiteral("%.4g"));
    }
}

void ChartCanvas::setLogY(bool on) {
    if (on == logY_) return;
    logY_ = on;
    attachY(on ? static_cast<QAbstractAxis*>(new QLogValueAxis) : new QValueAxis);
    zoomed_ = false;
    emit logYChanged(on);
    emit viewChanged();
}

void ChartCanvas::addSeries(QXYSeries* series, bool inLegend) {
    chart()->addSeries(series);
    series->attachAxis(x_);
    series->attachAxis(y_);
    for (QLegendMarker* marker : chart()->legend()->markers(series)) marker->setVisible(inLegend);
    series_.emplace_back(series);
}

void ChartCanvas::removeSeries(QXYSeries* series) {
    std::erase_if(series_, [&](const QPointer<QXYSeries>& s) { return !s || s == series; });
    chart()->removeSeries(series);
    delete series;
}

namespace {

// The range rounded out to ticks of 1, 2 or 5 × 10ᵏ (about five of them).
// Data growing inside it leaves the axis alone: a changed range makes Qt
// Charts recompute the geometry of every curve.
constexpr double kLogDecades = 6;

struct NiceRange {
    double lo, hi;
    int ticks;
};

NiceRange niceRange(double lo, double hi) {
    const double raw = (hi - lo) / 5;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    double step = magnitude;
    for (double m : {1.0, 2.0, 2.5, 5.0, 10.0}) {
        step = m * magnitude;
        if (step >= raw) break;
    }
    const double a = std::floor(lo / step) * step, b = std::ceil(hi / step) * step;
    return {a, b, static_cast<int>(std::lround((b - a) / step)) + 1};
}

void setRangeIfChanged(QAbstractAxis* axis, double lo, double hi) {
    const auto* linear = qobject_cast<QValueAxis*>(axis);
    const auto* log = qobject_cast<QLogValueAxis*>(axis);
    const double min = linear ? linear->min() : log ? log->min() : 0;
    const double max = linear ? linear->max() : log ? log->max() : 0;
    if (min != lo || max != hi) axis->setRange(lo, hi);
}

void setNiceRange(QValueAxis* axis, double lo, double hi) {
    const NiceRange r = niceRange(lo, hi);
    if (axis->tickCount() != r.ticks) axis->setTickCount(r.ticks);
    setRangeIfChanged(axis, r.lo, r.hi);
}

}  // namespace

void ChartCanvas::setFixedXRange(double xMin, double xMax, double tickInterval) {
    fixedX_ = {xMin, xMax};
    x_->setTickType(QValueAxis::TicksDynamic);
    x_->setTickAnchor(0);
    x_->setTickInterval(tickInterval);
    if (!zoomed_) setRangeIfChanged(x_, xMin, xMax);
}

void ChartCanvas::setAutoRange(double xMin, double xMax, double yMin, double yMax) {
    if (zoomed_) return;
    if (fixedX_) setRangeIfChanged(x_, fixedX_->first, fixedX_->second);
    if (!std::isfinite(xMin) || !std::isfinite(yMin)) return;
    if (xMax <= xMin) xMax = xMin + 1;
    if (!fixedX_) setNiceRange(x_, xMin, xMax);
    if (logY_) {
        // Whole decades, so the range changes only when the data crosses one;
        // at most kLogDecades of them, below which values are numerically zero
        // (a LoRA update's singular values past its rank) and would only
        // crowd the axis.
        yMax = std::max(yMax, 1e-300);
        yMin = std::clamp(yMin, yMax * std::pow(10.0, -kLogDecades), yMax / 1.01);
        setRangeIfChanged(y_, std::pow(10.0, std::floor(std::log10(yMin))), std::pow(10.0, std::ceil(std::log10(yMax))));
        return;
    }
    double span = yMax - yMin;
    if (span <= 0) span = std::max(std::abs(yMax) * 0.1, 1e-9);
    // Counts, ranks and rates start at zero: no padding below it.
    const double low = yMin >= 0 ? std::max(0.0, yMin - 0.05 * span) : yMin - 0.05 * span;
    setNiceRange(static_cast<QValueAxis*>(y_), low, yMax + 0.05 * span);
}

std::pair<double, double> ChartCanvas::visibleX() const { return {x_->min(), x_->max()}; }

int ChartCanvas::plotWidth() const { return std::max(50, static_cast<int>(chart()->plotArea().width())); }

void ChartCanvas::setMarkers(std::vector<Marker> markers) {
    markers_ = std::move(markers);
    viewport()->update();
}

void ChartCanvas::resetZoom() {
    zoomed_ = false;
    emit viewChanged();
}

void ChartCanvas::userChangedRange() {
    // Known from the user's gestures, not from the axes' signals: Qt Charts
    // also moves the axes itself when series are added.
    zoomed_ = true;
    if (viewChangePending_) return;   // a drag pans many times per frame: one rebuild
    viewChangePending_ = true;
    QTimer::singleShot(0, this, [this] {
        viewChangePending_ = false;
        emit viewChanged();
    });
}

bool ChartCanvas::exportTo(const QString& path, QString* error) {
    hover_ = {-1, -1};
    const QFileInfo info(path);
    bool ok = false;
    if (info.suffix().compare(QLatin1String("svg"), Qt::CaseInsensitive) == 0) {
        QSvgGenerator svg;
        svg.setFileName(path);
        svg.setSize(size());
        svg.setViewBox(QRect(QPoint(0, 0), size()));
        svg.setTitle(chart()->title());
        QPainter painter;
        ok = painter.begin(&svg);
        if (ok) {
            render(&painter);
            ok = painter.end();
        }
        ok = ok && QFileInfo(path).size() > 0;
    } else {
        ok = grab().save(path);
    }
    if (!ok && error) *error = QStringLiteral("could not write '%1' (check the folder and the file type)").arg(path);
    return ok;
}

// ---- mouse ------------------------------------------------------------------

void ChartCanvas::mousePressEvent(QMouseEvent* event) {
    const bool pan = event->button() == Qt::MiddleButton ||
                     (event->button() == Qt::LeftButton && (event->modifiers() & Qt::ShiftModifier));
    if (pan) {
        panning_ = true;
        lastPan_ = event->pos();
        setCursor(Qt::ClosedHandCursor);
        event->accept();
        return;
    }
    if (event->button() == Qt::RightButton) {   // the context menu, not QChartView's zoom-out
        event->accept();
        return;
    }
    QChartView::mousePressEvent(event);
}

void ChartCanvas::mouseMoveEvent(QMouseEvent* event) {
    if (panning_) {
        const QPoint delta = event->pos() - lastPan_;
        lastPan_ = event->pos();
        chart()->scroll(-delta.x(), delta.y());
        userChangedRange();
        event->accept();
        return;
    }
    hover_ = event->pos();
    viewport()->update();
    QChartView::mouseMoveEvent(event);
}

void ChartCanvas::mouseReleaseEvent(QMouseEvent* event) {
    if (panning_) {
        panning_ = false;
        unsetCursor();
        event->accept();
        return;
    }
    if (event->button() == Qt::RightButton) {
        event->accept();
        return;
    }
    const auto before = visibleX();
    QChartView::mouseReleaseEvent(event);   // zooms into a dragged rectangle
    if (visibleX() != before) userChangedRange();
}

void ChartCanvas::mouseDoubleClickEvent(QMouseEvent* event) {
    if (event->button() == Qt::LeftButton) {
        resetZoom();
        event->accept();
        return;
    }
    QChartView::mouseDoubleClickEvent(event);
}

void ChartCanvas::wheelEvent(QWheelEvent* event) {
    const QRectF plot = chart()->plotArea();
    const QPointF at = chart()->mapFromScene(mapToScene(event->position().toPoint()));
    if (!plot.contains(at) || event->angleDelta().y() == 0) {
        QChartView::wheelEvent(event);
        return;
    }
    const double factor = event->angleDelta().y() > 0 ? 0.8 : 1.25;
    const auto [lo, hi] = visibleX();
    const double x = lo + (at.x() - plot.left()) / plot.width() * (hi - lo);
    x_->setRange(x - (x - lo) * factor, x + (hi - x) * factor);
    userChangedRange();
    event->accept();
}

void ChartCanvas::leaveEvent(QEvent* event) {
    hover_ = {-1, -1};
    viewport()->update();
    QChartView::leaveEvent(event);
}

void ChartCanvas::resizeEvent(QResizeEvent* event) {
    QChartView::resizeEvent(event);
    emit viewChanged();   // more or fewer pixels: decimate again
}

void ChartCanvas::contextMenuEvent(QContextMenuEvent* event) {
    QMenu menu(this);
    QAction* log = menu.addAction(tr("Logarithmic y axis"));
    log->setCheckable(true);
    log->setChecked(logY_);
    connect(log, &QAction::toggled, this, &ChartCanvas::setLogY);
    menu.addAction(tr("Reset zoom"), this, &ChartCanvas::resetZoom);
    menu.addSeparator();
    for (const QString& suffix : {QStringLiteral("png"), QStringLiteral("svg")}) {
        menu.addAction(tr("Export as %1…").arg(suffix.toUpper()), this, [this, suffix] {
            const QString path = QFileDialog::getSaveFileName(
                this, tr("Export chart"), chart()->title().section(QLatin1Char(' '), 0, 0) + "." + suffix,
                suffix.toUpper() + " (*." + suffix + ")");
            QString error;
            if (!path.isEmpty() && !exportTo(path, &error)) QMessageBox::warning(this, tr("Export failed"), error);
        });
    }
    menu.exec(event->globalPos());
}

// ---- overlay ----------------------------------------------------------------

double ChartCanvas::xToPixel(double x, const QRectF& plot) const {
    const auto [lo, hi] = visibleX();
    return plot.left() + (x - lo) / (hi - lo) * plot.width();
}

void ChartCanvas::drawForeground(QPainter* painter, const QRectF& rect) {
    QChartView::drawForeground(painter, rect);
    const QRectF plot = chart()->mapRectToScene(chart()->plotArea());
    painter->save();
    painter->setClipRect(plot.adjusted(-1, -1, 1, 1));
    drawMarkers(*painter, plot);
    painter->restore();
    painter->save();
    drawReadout(*painter, plot);
    painter->restore();
}

void ChartCanvas::drawMarkers(QPainter& painter, const QRectF& plot) {
    QFont small = painter.font();
    small.setPointSizeF(small.pointSizeF() * 0.8);
    painter.setFont(small);
    const QFontMetrics fm = painter.fontMetrics();
    std::vector<double> rowEnds;   // per line of labels, where its last label ends
    for (const Marker& m : markers_) {
        const double px = xToPixel(m.x, plot);
        if (px < plot.left() || px > plot.right()) continue;
        QColor color = m.color;
        color.setAlpha(150);
        painter.setPen(QPen(color, 1, Qt::DashLine));
        painter.drawLine(QPointF(px, plot.top()), QPointF(px, plot.bottom()));
        if (m.label.isEmpty()) continue;
        // Right of the line, or left of it where the plot ends first; in the
        // first line of labels where it overlaps none.
        const int width = fm.horizontalAdvance(m.label);
        const double left = px + 3 + width > plot.right() ? px - 3 - width : px + 3;
        size_t row = 0;
        while (row < rowEnds.size() && left < rowEnds[row] + 4) ++row;
        if (row == rowEnds.size()) rowEnds.push_back(0);
        rowEnds[row] = left + width;
        painter.setPen(m.color);
        painter.drawText(QPointF(left, plot.top() + fm.ascent() + 1 + row * fm.height()), m.label);
    }
}

void ChartCanvas::drawReadout(QPainter& painter, const QRectF& plot) {
    if (hover_.x() < 0) return;
    const QPointF cursor = mapToScene(hover_);
    if (!plot.contains(cursor)) return;
    const auto [lo, hi] = visibleX();
    const double x = lo + (cursor.x() - plot.left()) / plot.width() * (hi - lo);

    struct Line {
        QString text;
        QColor color;
    };
    std::vector<Line> lines{{QStringLiteral("%1 = %2").arg(x_->titleText(), formatValue(x)), palette().text().color()}};
    painter.setPen(QPen(QColor(120, 120, 120, 160), 1));
    painter.drawLine(QPointF(cursor.x(), plot.top()), QPointF(cursor.x(), plot.bottom()));
    for (const auto& s : series_) {
        if (!s || !s->isVisible() || s->objectName().isEmpty()) continue;
        const QList<QPointF> points = s->points();
        const QPointF* p = nearest(points, x);
        if (!p) continue;
        const QPointF at = chart()->mapToScene(chart()->mapToPosition(*p, s));
        painter.setPen(Qt::NoPen);
        painter.setBrush(s->color());
        painter.drawEllipse(at, 3, 3);
        lines.push_back({s->objectName() + ": " + formatValue(p->y()), s->color().darker(120)});
    }
    const QFontMetrics fm = painter.fontMetrics();
    int width = 0;
    for (const Line& l : lines) width = std::max(width, fm.horizontalAdvance(l.text));
    const QSizeF box(width + 12, lines.size() * fm.height() + 8);
    QPointF corner(cursor.x() + 12, plot.top() + 6);
    if (corner.x() + box.width() > plot.right()) corner.setX(cursor.x() - 12 - box.width());
    painter.setPen(QPen(QColor(0, 0, 0, 60)));
    painter.setBrush(QColor(255, 255, 255, 225));
    painter.drawRect(QRectF(corner, box));
    for (size_t i = 0; i < lines.size(); ++i) {
        painter.setPen(lines[i].color);
        painter.drawText(QPointF(corner.x() + 6, corner.y() + 4 + fm.ascent() + i * fm.height()), lines[i].text);
    }
}

}  // namespace relora::ui
