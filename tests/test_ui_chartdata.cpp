// The charts' data model, without widgets where it can be: min/max
// decimation, debiased EMA smoothing on the full data, the x axis by step,
// tokens or wall time, incremental reads from the run database (only new
// rows, idle polls skipped by data_version), and a chart that keeps 8 runs
// × 100k points smooth by drawing decimated data through replace().
#include "support/UiTestSupport.h"
#include "ui/charts/Decimation.h"
#include "ui/charts/MetricChart.h"
#include "ui/charts/MetricSeries.h"
#include "ui/charts/RunMetricCache.h"
#include "ui/charts/Smoothing.h"
#include "ui/charts/XAxis.h"
#include "ui/data/RunDataPoller.h"

#include <QApplication>
#include <QLineSeries>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <numeric>
#include <random>

using namespace relora;
using namespace relora::ui;

namespace {

std::vector<store::SeriesPoint> points(int from, int to, double (*f)(int)) {
    std::vector<store::SeriesPoint> out;
    for (int s = from; s <= to; ++s) out.push_back({s, f(s), s * 0.5});
    return out;
}

double noisy(int s) { return std::sin(s * 0.37) + (s % 97 == 0 ? 10.0 : 0.0); }

}  // namespace

class TestChartData : public QObject {
    Q_OBJECT

private slots:
    // ---- decimation -----------------------------------------------------------
    void decimationKeepsFewPointsPerPixelAndEveryExtreme() {
        const int n = 100000;
        std::vector<double> x(n), y(n);
        std::mt19937 rng(7);
        std::normal_distribution<double> noise;
        for (int i = 0; i < n; ++i) {
            x[i] = i;
            y[i] = noise(rng);
        }
        y[31337] = 50;    // a spike and a dip that must survive
        y[77777] = -50;
        const QList<QPointF> out = decimateMinMax(x, y, {0, double(n - 1), 800});
        QVERIFY(out.size() <= 2 * 800 + 2);
        QVERIFY(out.size() >= 2 * 800 - 2);
        const double width = (n - 1) / 800.0;
        QVERIFY(out.front().x() < width);
        QVERIFY(out.back().x() > n - 1 - width);
        QVERIFY(std::is_sorted(out.begin(), out.end(), [](const QPointF& a, const QPointF& b) { return a.x() < b.x(); }));
        QVERIFY(out.contains(QPointF(31337, 50)));
        QVERIFY(out.contains(QPointF(77777, -50)));
        // Per pixel column, the drawn range equals the data's range.
        for (int b = 0; b < 800; b += 37) {
            double lo = 1e9, hi = -1e9, dlo = 1e9, dhi = -1e9;
            for (int i = 0; i < n; ++i)
                if (std::floor(x[i] / width) == b) lo = std::min(lo, y[i]), hi = std::max(hi, y[i]);
            for (const QPointF& p : out)
                if (std::floor(p.x() / width) == b) dlo = std::min(dlo, p.y()), dhi = std::max(dhi, p.y());
            QCOMPARE(dlo, lo);
            QCOMPARE(dhi, hi);
        }
    }

    void decimationOfAZoomedRangeKeepsOneNeighbourEachSide() {
        std::vector<double> x(1000), y(1000);
        std::iota(x.begin(), x.end(), 0.0);
        std::iota(y.begin(), y.end(), 0.0);
        const QList<QPointF> out = decimateMinMax(x, y, {100.5, 200.5, 1000});
        QCOMPARE(out.front().x(), 100.0);
        QCOMPARE(out.back().x(), 201.0);
        QCOMPARE(out.size(), 102);   // few enough to keep every point
    }

    void decimationDropsValuesAPlotCannotShow() {
        const std::vector<double> x{0, 1, 2, 3, 4};
        const std::vector<double> y{1, std::nan(""), 0, -1, 2};
        QCOMPARE(decimateMinMax(x, y, {0, 4, 100}).size(), 4);
        QCOMPARE(decimateMinMax(x, y, {0, 4, 100}, /*positiveOnly=*/true).size(), 2);   // log axis
    }

    // ---- smoothing ------------------------------------------------------------
    void debiasedEmaStartsAtTheFirstValue() {
        DebiasedEma ema(0.9);
        QCOMPARE(ema.push(4.0), 4.0);            // no pull towards zero
        const double second = ema.push(2.0);      // (0.9·0.1·4 + 0.1·2) / (1 − 0.81)
        QVERIFY(std::abs(second - (0.09 * 4 + 0.1 * 2) / 0.19) < 1e-12);
        DebiasedEma constant(0.99);
        for (int i = 0; i < 100; ++i) QVERIFY(std::abs(constant.push(3.0) - 3.0) < 1e-12);
        DebiasedEma raw(0);
        QCOMPARE(raw.push(7.5), 7.5);
    }

    void nonFiniteValuesPassThroughWithoutPoisoningTheAverage() {
        DebiasedEma ema(0.5);
        ema.push(1.0);
        QVERIFY(std::isnan(ema.push(std::nan(""))));
        QCOMPARE(ema.push(1.0), 1.0);
    }

    void smoothingIsIncrementalAndEqualsAFullRecomputation() {
        MetricSeries grown, whole;
        grown.append(points(1, 500, noisy));
        (void)grown.smoothed(0.8);                 // cached now
        grown.append(points(501, 1000, noisy));    // extended on the next call
        whole.append(points(1, 1000, noisy));
        QCOMPARE(grown.smoothed(0.8), whole.smoothed(0.8));
        QCOMPARE(grown.smoothed(0.0), grown.values());
        const std::vector<double> lighter = grown.smoothed(0.3);   // a new weight recomputes
        QVERIFY(lighter != grown.smoothed(0.8));
    }

    void smoothingComesBeforeDecimation() {
        // A spike every 97 steps: the smoothed curve decimated must equal the
        // full smoothed data at the points it keeps.
        MetricSeries s;
        s.append(points(1, 20000, noisy));
        const auto& smooth = s.smoothed(0.9);
        const QList<QPointF> drawn = decimateMinMax(s.steps(), smooth, {1, 20000, 200});
        for (const QPointF& p : drawn) QCOMPARE(p.y(), smooth[static_cast<size_t>(p.x()) - 1]);
    }

    // ---- series and x axis ------------------------------------------------------
    void appendTakesOnlyNewerSteps() {
        MetricSeries s;
        QCOMPARE(s.append(points(1, 10, noisy)), size_t(10));
        QCOMPARE(s.append(points(5, 12, noisy)), size_t(2));
        QCOMPARE(s.lastStep().value(), int64_t(12));
    }

    void xAxisByStepTokensAndWallTime() {
        MetricSeries clock, eval;
        clock.append({{1, 5, 2.0}, {2, 4, 4.0}, {4, 3, 8.0}});
        eval.append({{0, 6, 0.0}, {2, 4.5, 0.0}, {3, 4.2, 0.0}});   // evaluations carry no time
        QCOMPARE(xValues(eval, XAxisKind::Step, 64, &clock), (std::vector<double>{0, 2, 3}));
        QCOMPARE(xValues(eval, XAxisKind::Tokens, 64, &clock), (std::vector<double>{0, 128, 192}));
        QCOMPARE(xValues(eval, XAxisKind::WallTime, 64, &clock), (std::vector<double>{0, 4, 6}));
        QCOMPARE(xValues(clock, XAxisKind::WallTime, 64, &clock), (std::vector<double>{2, 4, 8}));
        QCOMPARE(xAt(3, XAxisKind::WallTime, 64, &clock), 6.0);
        QCOMPARE(xAxisKindFromText(toSettingsText(XAxisKind::Tokens)), XAxisKind::Tokens);
    }

    // ---- incremental reads ------------------------------------------------------
    void cacheReadsOnlyNewRows() {
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        RunSpec spec = uitest::tinySpec(Method::LoRA, 100);
        const int64_t id = store::RunStore(db).createRun(toJson(spec), "live", "lora");
        store::StoreWriter writer(db, id);
        writer.runStarted(toJson(spec), "cpu", "test");
        for (int s = 1; s <= 40; ++s) writer.metrics({{"train_loss", s, 1.0 / s}}, s);
        writer.event(20, "restart", "r1");
        QVERIFY(writer.flush());

        store::RunReader reader(db);
        RunMetricCache cache;
        QVERIFY(cache.update(reader, id, {"train_loss", "val_loss"}, 64));
        QCOMPARE(cache.find(id)->find("train_loss")->size(), size_t(40));
        QCOMPARE(cache.find(id)->events.size(), size_t(1));
        QVERIFY(!cache.update(reader, id, {"train_loss", "val_loss"}, 64));   // nothing new

        for (int s = 41; s <= 70; ++s) writer.metrics({{"train_loss", s, 1.0 / s}}, s);
        QVERIFY(writer.flush());
        QVERIFY(cache.update(reader, id, {"train_loss", "val_loss"}, 64));
        const MetricSeries& grown = *cache.find(id)->find("train_loss");
        MetricSeries whole;
        whole.append(reader.series(id, "train_loss"));
        QCOMPARE(grown.steps(), whole.steps());
        QCOMPARE(grown.values(), whole.values());
        QCOMPARE(cache.find(id)->tokensPerStep, 64.0);
        cache.retainOnly({});
        QVERIFY(!cache.find(id));
        writer.runFinished("finished", "done");
    }

    void pollerSkipsIdlePollsAndReportsNewRows() {
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        const int64_t first = uitest::writeRun(db, "a", Method::FullRank, 30);
        RunDataPoller poller;
        poller.setInterval(20);
        QSignalSpy runs(&poller, &RunDataPoller::runsChanged);
        QSignalSpy data(&poller, &RunDataPoller::dataChanged);
        poller.open(QString::fromStdString(db));
        QCOMPARE(poller.runs().size(), size_t(1));
        poller.setWantedKeys("test", {"train_loss", "val_loss"});
        poller.setWatchedRuns({first});
        QTRY_VERIFY(poller.cache().find(first) && poller.cache().find(first)->find("val_loss"));
        QCOMPARE(poller.cache().find(first)->find("val_loss")->size(), size_t(3));
        QCOMPARE(poller.spec(first)->spec->train.batch, 2);

        // Nothing committed: polls are skipped, nothing is re-read or re-sent.
        runs.clear();
        data.clear();
        QTest::qWait(200);
        QCOMPARE(runs.count(), 0);
        QCOMPARE(data.count(), 0);

        // A new run appears by itself; its rows are read once it is watched.
        const int64_t second = uitest::writeRun(db, "b", Method::LoRA, 50);
        QTRY_COMPARE(poller.runs().size(), size_t(2));
        poller.setWatchedRuns({first, second});
        QTRY_VERIFY(poller.cache().find(second) && poller.cache().find(second)->find("train_loss"));
        QCOMPARE(poller.cache().find(second)->find("train_loss")->size(), size_t(50));
        QCOMPARE(poller.cache().find(first)->find("train_loss")->size(), size_t(30));
    }

    void pollerReportsAnUnreadableDatabaseOnce() {
        QTemporaryDir dir;
        const QString path = dir.filePath("not-a-db.sqlite");
        QFile f(path);
        QVERIFY(f.open(QIODevice::WriteOnly));
        f.write("this is not SQLite, just text that must not be touched");
        f.close();
        RunDataPoller poller;
        QVERIFY_THROWS_EXCEPTION(store::StoreError, poller.open(path));
        QVERIFY(!poller.isOpen());
        QFile check(path);
        QVERIFY(check.open(QIODevice::ReadOnly));
        QCOMPARE(check.readAll(), QByteArray("this is not SQLite, just text that must not be touched"));
    }

    // ---- the chart ----------------------------------------------------------------
    void eightRunsOfAHundredThousandPointsDrawDecimated() {
        RunMetricCache cache;
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        std::vector<RunStyle> runs;
        {
            store::RunStore store(db);
            for (int r = 0; r < 8; ++r) {
                const int64_t id = store.createRun("{}", "run" + std::to_string(r), "full");
                store::StoreWriter writer(db, id);
                for (int s = 1; s <= 100000; s += 1000) {
                    std::vector<MetricPoint> batch;
                    for (int k = s; k < s + 1000; ++k) batch.push_back({"train_loss", k, noisy(k) + r});
                    writer.metrics(batch, s);
                }
                QVERIFY(writer.flush());
                runs.push_back({id, QString("run %1").arg(r), QColor(Qt::GlobalColor(Qt::red + r)), });
            }
        }
        store::RunReader reader(db);
        for (const RunStyle& r : runs) cache.update(reader, r.id, {"train_loss"}, 64);

        MetricChart chart("loss", "loss");
        chart.resize(900, 500);
        chart.setCache(&cache);
        chart.setCurves({{"train_loss", "train", Qt::SolidLine, 1.5, true, false}});
        chart.setRuns(runs);
        chart.show();
        QVERIFY(QTest::qWaitForWindowExposed(&chart));
        chart.refresh();
        QVERIFY(QTest::qWaitForWindowExposed(&chart));
        // A poll while run 0 trains: its 1000 new rows are read and drawn.
        {
            store::StoreWriter writer(db, runs[0].id);
            std::vector<MetricPoint> batch;
            for (int k = 100001; k <= 101000; ++k) batch.push_back({"train_loss", k, noisy(k)});
            writer.metrics(batch, 1000);
            QVERIFY(writer.flush());
        }
        QElapsedTimer timer;
        timer.start();
        QVERIFY(cache.update(reader, runs[0].id, {"train_loss"}, 64));
        const qint64 readMs = timer.restart();
        chart.refresh();
        const qint64 refreshMs = timer.restart();
        qInfo("read of 1000 new rows: %lld ms", readMs);
        chart.viewport()->repaint();
        const qint64 paintMs = timer.restart();
        qInfo("8 runs x 100k points, one growing: read + refresh %lld ms, paint %lld ms", refreshMs, paintMs);
        QVERIFY2(refreshMs + paintMs < 200, "a redraw must fit well within the 500 ms poll");
        for (const RunStyle& r : runs) {
            QLineSeries* s = chart.seriesFor(r.id, "train_loss");
            QVERIFY(s->count() > 100);
            QVERIFY(s->count() <= 2 * chart.width());   // two per pixel column
        }

        // Zooming in decimates the visible range again: finer steps, as few points.
        const QPoint centre = chart.viewport()->rect().center();
        for (int i = 0; i < 6; ++i) {
            QWheelEvent wheel(centre, chart.viewport()->mapToGlobal(centre), QPoint(), QPoint(0, 120), Qt::NoButton,
                              Qt::NoModifier, Qt::NoScrollPhase, false);
            QApplication::sendEvent(chart.viewport(), &wheel);
        }
        QVERIFY(chart.isZoomed());
        const auto [lo, hi] = chart.visibleX();
        QVERIFY(hi - lo < 100000 / 3.0);
        QTRY_VERIFY(chart.seriesFor(runs[0].id, "train_loss")->at(0).x() >= lo - 1000);
        const QLineSeries* zoomed = chart.seriesFor(runs[0].id, "train_loss");
        QVERIFY(zoomed->count() <= 2 * chart.width());
        QVERIFY(zoomed->at(zoomed->count() - 1).x() <= hi + 1000);
        QTest::mouseDClick(chart.viewport(), Qt::LeftButton);   // reset
        QVERIFY(!chart.isZoomed());
        QTRY_VERIFY(chart.seriesFor(runs[0].id, "train_loss")->at(0).x() < 200);
    }

    void chartUpdatesSeriesWithReplaceOnly() {
        RunMetricCache cache;
        QTemporaryDir dir;
        const std::string db = dir.filePath("runs.sqlite").toStdString();
        RunSpec spec = uitest::tinySpec(Method::FullRank, 1000);
        const int64_t id = store::RunStore(db).createRun(toJson(spec), "live", "full");
        store::StoreWriter writer(db, id);
        writer.runStarted(toJson(spec), "cpu", "test");
        for (int s = 1; s <= 100; ++s) writer.metrics({{"train_loss", s, 1.0 / s}}, s);
        QVERIFY(writer.flush());
        store::RunReader reader(db);
        cache.update(reader, id, {"train_loss"}, 64);
        MetricChart chart("loss", "loss");
        chart.resize(800, 400);
        chart.show();
        QVERIFY(QTest::qWaitForWindowExposed(&chart));
        chart.setCache(&cache);
        chart.setCurves({{"train_loss", "train", Qt::SolidLine, 1.5, false, false}});
        chart.setRuns({{id, "live", Qt::blue}});
        QLineSeries* series = chart.seriesFor(id, "train_loss");
        QCOMPARE(series->count(), 100);

        QSignalSpy replaced(series, &QXYSeries::pointsReplaced);
        QSignalSpy added(series, &QXYSeries::pointAdded);
        chart.refresh();
        QCOMPARE(replaced.count(), 0);   // nothing new: nothing redrawn
        for (int s = 101; s <= 150; ++s) writer.metrics({{"train_loss", s, 1.0 / s}}, s);
        QVERIFY(writer.flush());
        QVERIFY(cache.update(reader, id, {"train_loss"}, 64));
        chart.refresh();
        QCOMPARE(replaced.count(), 1);
        QCOMPARE(added.count(), 0);
        QCOMPARE(series->count(), 150);
        writer.runFinished("finished", "done");

        // Exported as PNG and SVG.
        const QString png = dir.filePath("loss.png"), svg = dir.filePath("loss.svg");
        QString error;
        QVERIFY2(chart.exportTo(png, &error), qPrintable(error));
        QVERIFY2(chart.exportTo(svg, &error), qPrintable(error));
        QCOMPARE(QImage(png).size(), chart.size());
        QFile svgFile(svg);
        QVERIFY(svgFile.open(QIODevice::ReadOnly));
        const QByteArray text = svgFile.readAll();
        QVERIFY(text.contains("<svg") && text.contains("<polyline"));   // vector lines, not a picture
        QVERIFY(!chart.exportTo(dir.filePath("no/such/folder/loss.png"), &error));
        QVERIFY(error.contains("could not write"));
    }
};

QTEST_MAIN(TestChartData)
#include "test_ui_chartdata.moc"
