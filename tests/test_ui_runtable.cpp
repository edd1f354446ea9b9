// The run table and the config diff: every run of the database with its
// method, status, key settings and validation losses; check boxes that
// survive refreshes and choose the overlaid runs, each in its own colour;
// numeric sorting; a run whose spec cannot be read still listed; the specs
// of the overlaid runs side by side with "differences only".
#include "support/UiTestSupport.h"
#include "ui/data/MetricsCsv.h"
#include "ui/data/RunDataPoller.h"
#include "ui/runs/ConfigDiffModel.h"
#include "ui/runs/RunPalette.h"
#include "ui/runs/RunTableModel.h"
#include "ui/runs/RunsPanel.h"

#include <QCheckBox>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QTemporaryDir>
#include <QtTest>

#include <sqlite3.h>

#include <sstream>

using namespace relora;
using namespace relora::ui;

namespace {

QString cell(const QAbstractItemModel& m, int row, int column, int role = Qt::DisplayRole) {
    return m.data(m.index(row, column), role).toString();
}

}  // namespace

class TestRunTable : public QObject {
    Q_OBJECT

private slots:
    void init() {
        dir_ = std::make_unique<QTemporaryDir>();
        db_ = dir_->filePath("runs.sqlite").toStdString();
    }

    void listsEveryRunWithItsFigures() {
        const int64_t full = uitest::writeRun(db_, "cmp-full", Method::FullRank, 40, "finished", 1.0);
        const int64_t lora = uitest::writeRun(db_, "cmp-lora", Method::LoRA, 30, "failed", 1.2);
        RunDataPoller poller;
        poller.open(QString::fromStdString(db_));
        RunsPanel panel(&poller);
        const RunTableModel& m = *panel.model();
        QCOMPARE(m.rowCount(), 2);
        QCOMPARE(m.runAt(0), full);
        QCOMPARE(cell(m, 0, RunTableModel::Name), QString("cmp-full"));
        QCOMPARE(cell(m, 0, RunTableModel::Method), QString("full-rank"));
        QCOMPARE(cell(m, 1, RunTableModel::Method), QString("LoRA"));
        QCOMPARE(cell(m, 0, RunTableModel::Status), QString("finished"));
        QCOMPARE(cell(m, 1, RunTableModel::Status), QString("failed"));
        QVERIFY(cell(m, 1, RunTableModel::Status, Qt::ToolTipRole).contains("failed by the test"));
        QCOMPARE(cell(m, 0, RunTableModel::Progress), QString("40 / 40"));
        QCOMPARE(cell(m, 0, RunTableModel::Rank), QString("–"));
        QCOMPARE(cell(m, 1, RunTableModel::Rank), QString("4"));
        QCOMPARE(cell(m, 0, RunTableModel::Model), QString("32·64·2·1"));
        // val_loss = 5.5/sqrt(step): last at step 40, best is the last too.
        QCOMPARE(cell(m, 0, RunTableModel::ValLoss), QString::number(5.5 / std::sqrt(40.0), 'f', 4));
        QCOMPARE(cell(m, 0, RunTableModel::BestValLoss), QString::number(5.5 / std::sqrt(40.0), 'f', 4));
        QCOMPARE(cell(m, 1, RunTableModel::BestValLoss), QString::number(1.2 * 5.5 / std::sqrt(30.0), 'f', 4));
        QCOMPARE(m.data(m.index(0, RunTableModel::Name), Qt::DecorationRole).value<QColor>(), runColor(full));
        QVERIFY(runColor(full) != runColor(lora));
        QVERIFY(cell(m, 0, RunTableModel::Device).contains("test CPU"));
    }

    void checksChooseTheOverlaidRunsAndSurviveRefreshes() {
        const int64_t a = uitest::writeRun(db_, "a", Method::FullRank, 20);
        const int64_t b = uitest::writeRun(db_, "b", Method::ReLoRA, 20);
        RunDataPoller poller;
        poller.setInterval(20);
        poller.open(QString::fromStdString(db_));
        RunsPanel panel(&poller);
        QSignalSpy overlay(&panel, &RunsPanel::overlayChanged);
        RunTableModel& m = *panel.model();
        QVERIFY(m.setData(m.index(m.rowOf(b), RunTableModel::Name), Qt::Checked, Qt::CheckStateRole));
        QVERIFY(overlay.count() >= 1);
        QCOMPARE(panel.overlaidRuns().size(), size_t(1));
        QCOMPARE(panel.overlaidRuns()[0].id, b);
        QCOMPARE(panel.overlaidRuns()[0].name, QString("b #%1").arg(b));
        QCOMPARE(panel.overlaidRuns()[0].color, runColor(b));

        // A new run appears: rows are inserted, b stays checked.
        const int64_t c = uitest::writeRun(db_, "c", Method::LoRA, 20);
        QTRY_COMPARE(m.rowCount(), 3);
        QCOMPARE(m.runAt(2), c);
        QCOMPARE(m.data(m.index(m.rowOf(b), RunTableModel::Name), Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Checked);
        QCOMPARE(m.data(m.index(m.rowOf(a), RunTableModel::Name), Qt::CheckStateRole).value<Qt::CheckState>(), Qt::Unchecked);

        // A deleted run leaves the table and the overlay.
        store::RunStore(db_).deleteRun(b);
        QTRY_COMPARE(m.rowCount(), 2);
        QVERIFY(panel.overlaidRuns().empty());
    }

    void sortsNumbersAsNumbers() {
        RunTableModel m;
        std::vector<RunRow> rows;
        for (int i = 1; i <= 3; ++i) {
            RunRow r;
            r.summary.id = i;
            r.summary.name = "r" + std::to_string(i);
            r.summary.bestValLoss = i == 2 ? 10.5 : i == 1 ? 9.0 : 2.25;
            rows.push_back(r);
        }
        m.setRuns(rows);
        QSortFilterProxyModel proxy;
        proxy.setSourceModel(&m);
        proxy.setSortRole(RunTableModel::SortRole);
        proxy.sort(RunTableModel::BestValLoss);
        QCOMPARE(cell(proxy, 0, RunTableModel::Name), QString("r3"));   // 2.25 < 9.0 < 10.5 (text would put 10.5 first)
        QCOMPARE(cell(proxy, 2, RunTableModel::Name), QString("r2"));
    }

    void aRunWithAnUnreadableSpecIsStillListed() {
        const int64_t id = uitest::writeRun(db_, "broken", Method::LoRA, 10);
        sqlite3* raw = nullptr;
        QCOMPARE(sqlite3_open(db_.c_str(), &raw), SQLITE_OK);
        const std::string sql = "UPDATE runs SET spec = '{\"schema_version\": 99}' WHERE id = " + std::to_string(id);
        QCOMPARE(sqlite3_exec(raw, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(raw);
        RunDataPoller poller;
        poller.open(QString::fromStdString(db_));
        RunsPanel panel(&poller);
        QCOMPARE(panel.model()->rowCount(), 1);
        QCOMPARE(cell(*panel.model(), 0, RunTableModel::Model), QString("(unreadable spec)"));
        QVERIFY(poller.spec(id)->error.contains("newer"));
    }

    void configDiffShowsTheOverlaidSpecsSideBySide() {
        const int64_t a = uitest::writeRun(db_, "a", Method::FullRank, 10);
        const int64_t b = uitest::writeRun(db_, "b", Method::ReLoRA, 10);
        RunDataPoller poller;
        poller.open(QString::fromStdString(db_));
        RunsPanel panel(&poller);
        panel.setOverlaid(a, true);
        panel.setOverlaid(b, true);
        const ConfigDiffModel& diff = *panel.diffModel();
        QCOMPARE(diff.columnCount(), 2);
        QCOMPARE(diff.headerData(0, Qt::Horizontal).toString(), QString("a #%1").arg(a));
        QVERIFY(panel.differencesOnly()->isChecked());
        QStringList fields;
        for (int r = 0; r < diff.rowCount(); ++r) fields << diff.field(r);
        QCOMPARE(fields, (QStringList{"name", "method.kind"}));
        const int kind = static_cast<int>(fields.indexOf("method.kind"));
        QCOMPARE(cell(diff, kind, 0), QString("full"));
        QCOMPARE(cell(diff, kind, 1), QString("relora"));
        QVERIFY(diff.rowDiffers(kind));

        panel.differencesOnly()->setChecked(false);
        QVERIFY(diff.rowCount() > 30);
        bool sawTargets = false;
        for (int r = 0; r < diff.rowCount(); ++r) {
            if (diff.field(r) != "method.targets") continue;
            sawTargets = true;
            QCOMPARE(cell(diff, r, 0), QString("wq, wk, wv, wo, gate, up, down"));
            QVERIFY(!diff.rowDiffers(r));
        }
        QVERIFY(sawTargets);
    }

    void metricsOfSeveralRunsExportAsOneCsv() {
        const int64_t a = uitest::writeRun(db_, "a,quoted", Method::FullRank, 20);
        const int64_t b = uitest::writeRun(db_, "b", Method::LoRA, 10);
        store::RunReader reader(db_);
        std::ostringstream out;
        writeMetricsCsv(reader, {a, b}, out);
        const QStringList lines = QString::fromStdString(out.str()).split('\n', Qt::SkipEmptyParts);
        QCOMPARE(lines.front(), QString("run_id,run,method,key,step,value,wall_s"));
        // Per run: train_loss and lr every step, val_loss every 10.
        QCOMPARE(lines.size(), 1 + (20 * 2 + 2) + (10 * 2 + 1));
        QVERIFY(lines.contains(QString("%1,\"a,quoted\",full,lr,7,0.001,0.7").arg(a)));
        const QString val = QString("%1,b,lora,val_loss,10,").arg(b);
        const auto row = std::find_if(lines.begin(), lines.end(), [&](const QString& l) { return l.startsWith(val); });
        QVERIFY(row != lines.end());
        QCOMPARE(row->section(',', 5, 5).toDouble(), 5.5 / std::sqrt(10.0));   // exact: shortest round-trip text
    }

    void flattenNamesEveryLeaf() {
        const auto rows = ConfigDiffModel::flatten(R"({"a": 1, "b": {"c": "x", "d": [1, 2]}})");
        QCOMPARE(rows.size(), size_t(3));
        QCOMPARE(rows[1].first, std::string("b.c"));
        QCOMPARE(rows[2].second, std::string("1, 2"));
        QCOMPARE(ConfigDiffModel::flatten("not json").front().first, std::string("(error)"));
    }

private:
    std::unique_ptr<QTemporaryDir> dir_;
    std::string db_;
};

QTEST_MAIN(TestRunTable)
#include "test_ui_runtable.moc"
