#include "app/train/metrics_log.h"

#include "app/io/csv.h"
#include "app/io/file_util.h"
#include "app/viz/plot.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace vit::app {
namespace {

const std::vector<std::string> kHeader = {"epoch",    "step",     "train_loss",   "val_loss", "val_top1",
                                          "val_top5", "lr",       "images_per_s", "seconds",  "ema_val_top1",
                                          "val_map",  "val_ap50", "ema_val_map"};

std::string cell(const std::optional<double>& value) { return value ? fmt::format("{:.6g}", *value) : ""; }

std::optional<double> parse_cell(const std::string& text) {
  if (text.empty()) return std::nullopt;
  return std::stod(text);
}

std::vector<EpochMetrics> read_rows(const std::filesystem::path& file, int64_t before_epoch) {
  std::vector<EpochMetrics> rows;
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream stream(line);
    for (std::string value; std::getline(stream, value, ',');) cells.push_back(value);
    cells.resize(kHeader.size());
    try {
      EpochMetrics row;
      row.epoch = std::stoll(cells[0]);
      if (row.epoch > before_epoch) break;
      row.step = std::stoll(cells[1]);
      row.train_loss = std::stod(cells[2]);
      row.val_loss = parse_cell(cells[3]);
      row.val_top1 = parse_cell(cells[4]);
      row.val_top5 = parse_cell(cells[5]);
      row.lr = std::stod(cells[6]);
      row.images_per_s = std::stod(cells[7]);
      row.seconds = std::stod(cells[8]);
      row.ema_val_top1 = parse_cell(cells[9]);
      row.val_map = parse_cell(cells[10]);
      row.val_ap50 = parse_cell(cells[11]);
      row.ema_val_map = parse_cell(cells[12]);
      rows.push_back(row);
    } catch (const std::exception&) {
      break;  // a row this run cannot read is dropped and rewritten
    }
  }
  return rows;
}

Series series(const std::vector<EpochMetrics>& rows, const std::string& name, const cv::Scalar& color,
              const std::function<std::optional<double>(const EpochMetrics&)>& value) {
  Series s{name, {}, {}, color};
  for (const auto& row : rows) {
    if (const auto v = value(row)) {
      s.x.push_back(static_cast<double>(row.epoch));
      s.y.push_back(*v);
    }
  }
  return s;
}

}  // namespace

MetricsLog::MetricsLog(std::filesystem::path run_dir, int64_t resume_epoch)
    : run_dir_(std::move(run_dir)), rows_(read_rows(run_dir_ / "metrics.csv", resume_epoch)) {}

void MetricsLog::append(const EpochMetrics& row) {
  rows_.push_back(row);
  std::string text = csv_row(kHeader);
  for (const auto& r : rows_) {
    text += csv_row({std::to_string(r.epoch), std::to_string(r.step), fmt::format("{:.6g}", r.train_loss),
                     cell(r.val_loss), cell(r.val_top1), cell(r.val_top5), fmt::format("{:.6g}", r.lr),
                     fmt::format("{:.1f}", r.images_per_s), fmt::format("{:.2f}", r.seconds), cell(r.ema_val_top1),
                     cell(r.val_map), cell(r.val_ap50), cell(r.ema_val_map)});
  }
  write_text_atomically(run_dir_ / "metrics.csv", text);
  write_plots();
}

void MetricsLog::write_plots() const {
  const cv::Scalar blue(200, 90, 30), orange(20, 130, 240), green(60, 160, 60);
  write_png(run_dir_ / "loss.png",
            line_chart("loss", {"epoch", true, false},
                       {series(rows_, "train", blue, [](const auto& r) { return std::optional(r.train_loss); }),
                        series(rows_, "val", orange, [](const auto& r) { return r.val_loss; })}));
  write_png(run_dir_ / "accuracy.png",
            line_chart("validation accuracy", {"epoch", true, true},
                       {series(rows_, "top-1", blue, [](const auto& r) { return r.val_top1; }),
                        series(rows_, "top-5", orange, [](const auto& r) { return r.val_top5; }),
                        series(rows_, "EMA top-1", green, [](const auto& r) { return r.ema_val_top1; })}));
  if (!rows_.empty() && rows_.back().val_map) {
    write_png(run_dir_ / "map.png",
              line_chart("validation mAP", {"epoch", true, true},
                         {series(rows_, "mAP@[.5:.95]", blue, [](const auto& r) { return r.val_map; }),
                          series(rows_, "AP50", orange, [](const auto& r) { return r.val_ap50; }),
                          series(rows_, "EMA mAP", green, [](const auto& r) { return r.ema_val_map; })}));
  }
  write_png(run_dir_ / "lr.png",
            line_chart("learning rate (end of epoch)", {"epoch", true, false},
                       {series(rows_, "lr", blue, [](const auto& r) { return std::optional(r.lr); })}));
}

StepLog::StepLog(const std::filesystem::path& run_dir, int64_t resume_step) {
  const auto file = run_dir / "steps.csv";
  std::string kept = csv_row({"step", "epoch", "loss", "lr"});
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::stringstream stream(line);
    for (std::string cell; std::getline(stream, cell, ',');) cells.push_back(cell);
    if (cells.size() != 4) break;  // a torn last line
    try {
      if (std::stoll(cells[0]) > resume_step) break;
      kept_losses_.emplace_back(std::stoll(cells[1]), std::stod(cells[2]));
    } catch (const std::exception&) {
      break;
    }
    kept += line + "\n";
  }
  write_text_atomically(file, kept);
  fd_ = ::open(file.c_str(), O_WRONLY | O_APPEND);
}

std::pair<double, int64_t> StepLog::losses_of_epoch(int64_t epoch) const {
  double sum = 0.0;
  int64_t count = 0;
  for (const auto& [row_epoch, loss] : kept_losses_) {
    if (row_epoch != epoch) continue;
    sum += loss;
    ++count;
  }
  return {sum, count};
}

StepLog::~StepLog() {
  if (fd_ >= 0) ::close(fd_);
}

void StepLog::append(int64_t step, int64_t epoch, double loss, double lr) {
  // One write() per line: a killed process leaves whole lines behind.
  const auto line =
      csv_row({std::to_string(step), std::to_string(epoch), fmt::format("{:.9g}", loss), fmt::format("{:.9g}", lr)});
  if (fd_ >= 0 && ::write(fd_, line.data(), line.size()) < 0) {
    ::close(fd_);
    fd_ = -1;  // a full disk stops the step log, not the training
  }
}

}  // namespace vit::app
