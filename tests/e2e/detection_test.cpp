// Detection end to end (model.arch detr on `vit data synth-detection`'s shapes): the generator and
// its config, training with checkpoints and exact resume, mAP in eval, the exported module's
// (logits, boxes) read by Python's torch.jit.load, predict's COCO results and overlays, and the
// errors of data that does not fit the model.
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <fstream>
#include <map>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

// One small task and one short training run for all tests of the suite.
class Detection : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const auto generated =
        run_vit("data synth-detection --output " + data().string() + " --train-images 96 --val-images 24 --seed 3");
    ASSERT_EQ(generated.exit_code, 0) << generated.err;
    const auto trained = run_vit("train --config " + (data() / "detection.yaml").string() + " " + kSmall +
                                 " --output " + run().string());
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
    log_ = new std::string(trained.err);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete log_;
  }
  static fs::path data() { return dir() / "shapes"; }
  static fs::path run() { return dir() / "run"; }
  static const std::string& log() { return *log_; }
  static fs::path dir() { return dir_->path(); }
  static constexpr const char* kSmall =
      "--set train.epochs=2 --set train.batch_size=16 --set model.depth=1 --set model.dim=32 --set model.heads=2 "
      "--set model.decoder_depth=2 --set model.decoder_heads=2 --set train.amp=none --set data.workers=1 "
      "--set train.threads=2";  // pinned: exact resume compares bits

 private:
  static inline TempDir* dir_ = nullptr;
  static inline std::string* log_ = nullptr;
};

TEST_F(Detection, TheGeneratorWritesACocoTaskAndAConfigThatTrains) {
  EXPECT_TRUE(fs::exists(data() / "train" / "000096.png"));
  EXPECT_TRUE(fs::exists(data() / "val.json"));
  const auto annotations = nlohmann::json::parse(read_file(data() / "train.json"));
  EXPECT_EQ(annotations["images"].size(), 96u);
  EXPECT_EQ(annotations["categories"].size(), 4u);
  EXPECT_GE(annotations["annotations"].size(), 96u);
  // The run evaluated mAP every epoch and kept the best.
  EXPECT_NE(log().find("val mAP"), std::string::npos) << log();
  EXPECT_NE(log().find("AP50"), std::string::npos);
  EXPECT_TRUE(fs::exists(run() / "best.ckpt"));
  EXPECT_TRUE(fs::exists(run() / "map.png"));
  const auto metrics = read_file(run() / "metrics.csv");
  EXPECT_NE(metrics.find("val_map,val_ap50"), std::string::npos) << metrics;
}

TEST_F(Detection, InspectCountsObjectsAndDrawsTheirBoxes) {
  const auto inspected = run_vit("data inspect --config " + (data() / "detection.yaml").string() + " --output " +
                                 (dir() / "inspect").string());
  ASSERT_EQ(inspected.exit_code, 0) << inspected.err;
  EXPECT_NE(inspected.out.find("objects"), std::string::npos) << inspected.out;
  EXPECT_NE(inspected.out.find("0 circle"), std::string::npos) << inspected.out;
  EXPECT_TRUE(fs::exists(dir() / "inspect" / "train_samples.png"));
}

TEST_F(Detection, DataParallelRanksAgreeWithOneProcessOnMeanAveragePrecision) {
  // Two ranks each evaluate half of the validation images; their detections are gathered before
  // mAP is computed, so the last epoch's mAP equals `vit eval` of the same weights in one process.
  const auto parallel_run = dir() / "parallel";
  const auto trained =
      run_vit("train --nproc 2 --threads 1 --config " + (data() / "detection.yaml").string() + " " + kSmall +
              " --set train.epochs=1 --set train.ema_decay=0.9 --output " + parallel_run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE(trained.err.find("data-parallel: 2 ranks"), std::string::npos) << trained.err;
  EXPECT_NE(trained.err.find("EMA mAP"), std::string::npos) << trained.err;
  const auto at = trained.err.find("val mAP ");
  ASSERT_NE(at, std::string::npos);
  const double logged = std::stod(trained.err.substr(at + 8, 5));
  const auto json = dir() / "parallel_eval.json";
  const auto evaluated =
      run_vit("eval --checkpoint " + (parallel_run / "last.ckpt").string() + " --json " + json.string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_NEAR(nlohmann::json::parse(read_file(json))["map"].get<double>(), logged, 0.0006);
  // TensorBoard has the detection scalars.
  bool found = false;
  for (const auto& entry : fs::directory_iterator(parallel_run)) {
    if (entry.path().filename().string().find("tfevents") != std::string::npos) {
      found = read_file(entry.path()).find("val/map") != std::string::npos;
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(Detection, InfoAndBenchKnowTheDetector) {
  const auto config = (data() / "detection.yaml").string();
  const auto info = run_vit("info --json --config " + config);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto described = nlohmann::json::parse(info.out);
  std::map<std::string, int64_t> macs;
  for (const auto& module : described["modules"]) {
    macs[module["name"].get<std::string>()] = module["macs"];
    // The decoder reads every token of the backbone's last block.
    EXPECT_EQ(module["executed_macs"], module["macs"]) << module["name"];
  }
  for (const auto* part :
       {"patch_embed", "blocks.3", "query_anchor", "decoder_blocks.2", "class_embed", "bbox_embed"}) {
    EXPECT_EQ(macs.count(part), 1u) << part;
  }
  EXPECT_GT(macs["decoder_blocks.0"], 0);
  EXPECT_GT(macs["bbox_embed"], 0);
  const auto bench =
      run_vit("bench --config " + config + " --mode train --batch-size 4 --warmup 1 --steps 2 --repeats 1 --json");
  ASSERT_EQ(bench.exit_code, 0) << bench.err;
  EXPECT_GT(nlohmann::json::parse(bench.out)["images_per_s_median"].get<double>(), 0.0);
}

TEST_F(Detection, EvalReportsCocoAveragePrecision) {
  const auto json = dir() / "eval.json";
  const auto evaluated = run_vit("eval --checkpoint " + run().string() + " --json " + json.string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_NE(evaluated.out.find("24 images"), std::string::npos) << evaluated.out;
  EXPECT_NE(evaluated.out.find("mAP@[.5:.95]"), std::string::npos);
  const auto report = nlohmann::json::parse(read_file(json));
  for (const auto* key : {"map", "ap50", "ap75"}) {
    EXPECT_GE(report[key].get<double>(), 0.0);
    EXPECT_LE(report[key].get<double>(), 1.0);
  }
  EXPECT_EQ(report["images"], 24);
  EXPECT_FALSE(report["per_class"].empty());
}

TEST_F(Detection, ExportReturnsLogitsAndBoxesForAnyBatchSize) {
  const auto model = dir() / "shapes.pt";
  const auto exported = run_vit("export --checkpoint " + run().string() + " --output " + model.string());
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto script = dir() / "load.py";
  write_file(script,
             "import sys, torch\n"
             "m = torch.jit.load(sys.argv[1])\n"
             "for b in (1, 3):\n"
             "    logits, boxes = m(torch.zeros(b, 3, 64, 64))\n"
             "    print(tuple(logits.shape), tuple(boxes.shape), float(boxes.min()) > 0, float(boxes.max()) < 1)\n");
  const auto printed = dir() / "load.txt";
  const auto command =
      app::python_interpreter() + " " + script.string() + " " + model.string() + " > " + printed.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto python = read_file(printed);
  EXPECT_NE(python.find("(1, 10, 5) (1, 10, 4) True True"), std::string::npos) << python;
  EXPECT_NE(python.find("(3, 10, 5) (3, 10, 4) True True"), std::string::npos) << python;

  // ONNX: the same two outputs, both with a symbolic batch.
  const auto onnx = dir() / "shapes.onnx";
  const auto converted = run_vit("export --checkpoint " + run().string() + " --format onnx --output " + onnx.string());
  ASSERT_EQ(converted.exit_code, 0) << converted.err;
  const auto onnx_script = dir() / "onnx_outputs.py";
  write_file(onnx_script,
             "import sys, onnx\n"
             "m = onnx.load(sys.argv[1])\n"
             "print([(o.name, o.type.tensor_type.shape.dim[0].dim_param) for o in m.graph.output])\n");
  const auto onnx_printed = dir() / "onnx_outputs.txt";
  const auto onnx_command =
      app::python_interpreter() + " " + onnx_script.string() + " " + onnx.string() + " > " + onnx_printed.string();
  ASSERT_EQ(std::system(onnx_command.c_str()), 0) << onnx_command;
  EXPECT_NE(read_file(onnx_printed).find("[('logits', 'batch'), ('boxes', 'batch')]"), std::string::npos)
      << read_file(onnx_printed);

  // predict: the module and the checkpoint agree; COCO results in the image's pixels; overlays.
  const auto image = (data() / "val" / "000001.png").string();
  const auto from_module = run_vit("predict --model " + model.string() + " --json --score-threshold 0 --overlay " +
                                   (dir() / "overlays").string() + " " + image);
  ASSERT_EQ(from_module.exit_code, 0) << from_module.err;
  const auto objects = nlohmann::json::parse(from_module.out);
  ASSERT_EQ(objects.size(), 10u);  // every query at threshold 0
  // COCO results: each category_id is the annotation file's id of the class named (ids 1-4 here).
  std::map<int64_t, std::string> categories;
  const auto annotations = nlohmann::json::parse(read_file(data() / "val.json"));
  for (const auto& category : annotations["categories"]) {
    categories[category["id"].get<int64_t>()] = category["name"].get<std::string>();
  }
  for (const auto& object : objects) {
    ASSERT_EQ(categories.count(object["category_id"].get<int64_t>()), 1u) << object;
    EXPECT_EQ(categories[object["category_id"].get<int64_t>()], object["category"].get<std::string>()) << object;
    EXPECT_EQ(object["image_id"], image);
    EXPECT_EQ(object["bbox"].size(), 4u);
    EXPECT_GE(object["bbox"][2].get<double>(), 0.0);
    EXPECT_LE(object["bbox"][2].get<double>(), 64.0);
  }
  EXPECT_TRUE(fs::exists(dir() / "overlays" / "000001.png"));
  // Only detections scored at least the threshold are listed.
  const auto confident = run_vit("predict --model " + model.string() + " --json --score-threshold 1 " + image);
  ASSERT_EQ(confident.exit_code, 0) << confident.err;
  EXPECT_TRUE(nlohmann::json::parse(confident.out).empty());
  const auto text = run_vit("predict --model " + model.string() + " --score-threshold 0 " + image);
  EXPECT_NE(text.out.find("000001.png: 10 objects"), std::string::npos) << text.out;
  const auto from_checkpoint = run_vit("predict --model " + run().string() + " --json --score-threshold 0 " + image);
  ASSERT_EQ(from_checkpoint.exit_code, 0) << from_checkpoint.err;
  const auto same = nlohmann::json::parse(from_checkpoint.out);
  ASSERT_EQ(same.size(), objects.size());
  EXPECT_NEAR(same[0]["score"].get<double>(), objects[0]["score"].get<double>(), 1e-4);
  EXPECT_EQ(same[0]["category_id"], objects[0]["category_id"]);
  EXPECT_NEAR(same[0]["bbox"][0].get<double>(), objects[0]["bbox"][0].get<double>(), 1e-3);
}

TEST_F(Detection, AResumedRunContinuesExactly) {
  const auto config = (data() / "detection.yaml").string();
  const auto straight = dir() / "straight";
  const auto resumed = dir() / "resumed";
  const std::string steps = " --set train.epochs=1 --set train.checkpoint_every_steps=1";
  ASSERT_EQ(run_vit("train --config " + config + " " + kSmall + steps + " --output " + straight.string()).exit_code, 0);
  const auto first =
      run_vit("train --config " + config + " " + kSmall + steps + " --stop-after 3 --output " + resumed.string());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto second = run_vit("train --resume " + resumed.string());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(loss_column(straight / "steps.csv"), loss_column(resumed / "steps.csv"));
}

TEST_F(Detection, DataThatDoesNotFitTheModelIsRefusedByName) {
  const auto config = (data() / "detection.yaml").string();
  const auto classifier_data =
      run_vit("train --config " + config + " --set data.train.source=idx --set data.val.source=idx");
  EXPECT_EQ(classifier_data.exit_code, 2);
  EXPECT_NE(classifier_data.err.find("data.train: model.arch detr detects objects; it trains on COCO-format data"),
            std::string::npos)
      << classifier_data.err;
  const auto mixup = run_vit("train --config " + config + " --set train.mixup.mixup_alpha=0.8");
  EXPECT_EQ(mixup.exit_code, 2);
  EXPECT_NE(mixup.err.find("train.mixup"), std::string::npos) << mixup.err;
  write_file(dir() / "classifier.yaml",
             "model: {arch: vit, image_size: 64, patch_size: 8, num_classes: 4, dim: 32, depth: 1, heads: 2}\n"
             "data:\n  train: {source: coco, images: " +
                 (data() / "train").string() + ", annotations: " + (data() / "train.json").string() + "}\n");
  const auto classifier = run_vit("train --config " + (dir() / "classifier.yaml").string());
  EXPECT_EQ(classifier.exit_code, 2);
  EXPECT_NE(classifier.err.find("COCO detection data (source: coco) trains a detector"), std::string::npos)
      << classifier.err;
  write_file(dir() / "no_annotations.yaml", "model: {preset: detr_shapes_64}\ndata:\n  train: {source: coco, images: " +
                                                (data() / "train").string() + "}\n");
  const auto missing = run_vit("train --config " + (dir() / "no_annotations.yaml").string());
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("annotations"), std::string::npos) << missing.err;
  EXPECT_NE(missing.err.find("is required for a coco source"), std::string::npos) << missing.err;
  // A category the annotations do not declare: the annotation's id in the message.
  auto annotations = nlohmann::json::parse(read_file(data() / "val.json"));
  annotations["annotations"][0]["category_id"] = 77;
  write_file(dir() / "bad_val.json", annotations.dump());
  const auto bad =
      run_vit("train --config " + config + " --set data.val.annotations=" + (dir() / "bad_val.json").string());
  EXPECT_EQ(bad.exit_code, 1);  // a data error, as for every other source
  EXPECT_NE(bad.err.find("bad_val.json: annotation id 1: category_id 77 is not in \"categories\""), std::string::npos)
      << bad.err;
}

}  // namespace
}  // namespace vit::testing
