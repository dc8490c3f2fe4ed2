#include "app/io/csv.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

TEST(Csv, QuotesOnlyTheFieldsThatNeedIt) {
  EXPECT_EQ(app::csv_row({"plain", "1.5", ""}), "plain,1.5,\n");
  EXPECT_EQ(app::csv_row({"coat, long", "say \"hi\"", "two\nlines"}),
            "\"coat, long\",\"say \"\"hi\"\"\",\"two\nlines\"\n");
}

// Class names with a comma and a quote reach confusion.csv intact, as Python's csv module reads it.
TEST(Csv, ConfusionMatrixWithAwkwardClassNamesReadsBackInPython) {
  TempDir dir;
  for (const auto* split : {"train", "val"}) {
    write_halves_dataset(dir / split, 8, 1);
    fs::rename(dir / split / "left", dir / split / "left, \"west\"");
  }
  write_file(dir / "config.yaml",
             "model: {image_size: 16, patch_size: 8, in_chans: 1, num_classes: 2, dim: 16, depth: 1, heads: 2}\n"
             "data:\n  train: {source: imagefolder, path: " +
                 (dir / "train").string() + "}\n  val: {source: imagefolder, path: " + (dir / "val").string() +
                 "}\n  mean: [0.5]\n  std: [0.25]\ntrain: {epochs: 1, batch_size: 8, threads: 1}\n");
  ASSERT_EQ(
      run_vit("train --config " + (dir / "config.yaml").string() + " --output " + (dir / "run").string()).exit_code, 0);
  const auto evaluated =
      run_vit("eval --checkpoint " + (dir / "run").string() + " --output " + (dir / "eval").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  write_file(dir / "read.py",
             "import csv, sys\n"
             "rows = list(csv.reader(open(sys.argv[1], newline='')))\n"
             "print(len(rows), [len(r) for r in rows], rows[0][1], rows[1][0], sum(int(x) for r in rows[1:] for x in "
             "r[1:]))\n");
  const auto out = dir / "python.txt";
  ASSERT_EQ(std::system((app::python_interpreter() + " " + (dir / "read.py").string() + " " +
                         (dir / "eval" / "confusion.csv").string() + " > " + out.string())
                            .c_str()),
            0);
  EXPECT_EQ(read_file(out), "3 [3, 3, 3] left, \"west\" left, \"west\" 16\n");
}

}  // namespace
}  // namespace vit::testing
