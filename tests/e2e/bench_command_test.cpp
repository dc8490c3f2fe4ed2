#include "app/runtime/blas_kernels.h"
#include "app/runtime/runtime.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>

namespace vit::testing {
namespace {

const std::string kTinyModel =
    "--set model.image_size=16 --set model.patch_size=4 --set model.dim=32 --set model.depth=2 "
    "--set model.heads=2 --threads 1 --warmup 1 --steps 2 --repeats 3 --json";

TEST(BenchCommand, TrainReportsMedianThroughputOfEachRepeat) {
  const auto result = run_vit("bench --mode train --batch-size 8 --set train.amp=bf16 " + kTinyModel);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["mode"], "train");
  EXPECT_EQ(report["amp"], "bf16");
  EXPECT_EQ(report["batch_size"], 8);
  EXPECT_EQ(report["threads"], 1);
  ASSERT_EQ(report["images_per_s"].size(), 3u);
  auto rates = report["images_per_s"].get<std::vector<double>>();
  std::sort(rates.begin(), rates.end());
  EXPECT_GT(rates[0], 0.0);
  EXPECT_DOUBLE_EQ(report["images_per_s_median"].get<double>(), rates[1]);
  EXPECT_EQ(report["model"]["dim"], 32);
  EXPECT_EQ(report["train"]["optimizer"], "adamw");
  EXPECT_GT(report["peak_rss_mb"].get<double>(), 10.0);
}

// --profile: the operators of `steps` further steps, the step's products among them with their
// shapes and FLOPs (the tiny model's blocks: 2 × qkv, proj, fc1, fc2 forward and 2 backward products
// each), the images/s still those of the timed repeats; and a table in the human-readable report.
TEST(BenchCommand, ProfileReportsOperatorsAndTheMatrixProductsOfAStep) {
  const auto result = run_vit("bench --mode train --batch-size 8 --profile " + kTinyModel);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  ASSERT_EQ(report["images_per_s"].size(), 3u);
  const auto& profile = report["profile"];
  EXPECT_EQ(profile["steps"], 2);
  const auto total = profile["ms_per_step"].get<double>(), products = profile["product_ms_per_step"].get<double>();
  EXPECT_GT(products, 0.0);
  EXPECT_LT(products, total);
  // [rows, 32] x [32, 96] forward: one product per block, an addmm, an mm where the attention node
  // adds qkv's bias (bf16 products on the fp32 kernels), or the tiles' product on a CPU with AMX.
  double qkv_products = 0;
  for (const auto& op : profile["operators"]) {
    const bool product = op["name"] == "aten::addmm" || op["name"] == "aten::mm" || op["name"] == "vit::amx_linear";
    if (product && op["shapes"].get<std::string>().find("[32, 96]") != std::string::npos) {
      qkv_products += op["calls_per_step"].get<double>();
      EXPECT_DOUBLE_EQ(op["gflop_per_step"].get<double>(),
                       op["calls_per_step"].get<double>() * 2.0 * 8 * 17 * 32 * 96 / 1e9);
    }
  }
  EXPECT_EQ(qkv_products, 2.0) << "one qkv product per block and step";

  const auto table =
      run_vit("bench --mode eval --batch-size 8 --profile " + kTinyModel.substr(0, kTinyModel.size() - 7));
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("profile of 2 steps"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("matrix products:"), std::string::npos) << table.out;
}

// The benchmark takes the steps `vit train` takes, so the settings that shape a step apply.
TEST(BenchCommand, TrainTakesTheTrainingStepWithAccumulationAndEma) {
  const auto result = run_vit(
      "bench --mode train --batch-size 4 --set train.grad_accum_steps=2 "
      "--set train.ema_decay=0.9 --set train.grad_clip=1.0 " +
      kTinyModel);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["train"]["grad_accum_steps"], 2);
  EXPECT_EQ(report["train"]["ema_decay"], 0.9);
  EXPECT_GT(report["images_per_s_median"].get<double>(), 0.0);
}

TEST(BenchCommand, InferenceMeasuresTheExportedModelAtBatchOneAndN) {
  const auto result = run_vit("bench --mode inference --batch-size 4 " + kTinyModel);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto report = nlohmann::json::parse(result.out);
  EXPECT_EQ(report["latency_ms_batch1"].size(), 3u);
  EXPECT_GT(report["latency_ms_batch1_median"].get<double>(), 0.0);
  EXPECT_GT(report["images_per_s_median"].get<double>(), 0.0);
}

TEST(BenchCommand, PythonReferenceBuildsTheSameModel) {
  TempDir dir;
  for (const auto* model : {"--set model.pool=cls --set model.pos_embed=sincos", "--set model.qkv_bias=false"}) {
    const auto result = run_vit(std::string("bench --mode eval --batch-size 2 ") + model + " " + kTinyModel);
    ASSERT_EQ(result.exit_code, 0) << result.err;
    write_file(dir / "spec.json", result.out);
    const auto info = run_vit("info --json --config " + std::string(VIT_SOURCE_DIR) +
                              "/configs/fashion_mnist_vit.yaml --set model.image_size=16 --set model.patch_size=4 " +
                              "--set model.dim=32 --set model.depth=2 --set model.heads=2 " + model);
    ASSERT_EQ(info.exit_code, 0) << info.err;
    const auto expected = nlohmann::json::parse(info.out)["parameters"].get<int64_t>();
    const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                         "/scripts/bench/reference.py --like " + (dir / "spec.json").string() +
                         " --count-parameters > " + (dir / "count").string();
    ASSERT_EQ(std::system(command.c_str()), 0);
    EXPECT_EQ(std::stoll(read_file(dir / "count")), expected) << model;
  }
}

// The reference's --profile has the shape of vit's, and profile_report.py lines the two up by product shape.
TEST(BenchCommand, PythonReferenceProfilesLikeVitAndTheReportMatchesTheProducts) {
  TempDir dir;
  const auto ours = run_vit("bench --mode train --batch-size 4 --profile " + kTinyModel);
  ASSERT_EQ(ours.exit_code, 0) << ours.err;
  write_file(dir / "vit.json", ours.out);
  const auto scripts = std::string(VIT_SOURCE_DIR) + "/scripts/bench/";
  const auto reference = app::python_interpreter() + " " + scripts + "reference.py --like " +
                         (dir / "vit.json").string() + " --profile > " + (dir / "reference.json").string();
  ASSERT_EQ(std::system(reference.c_str()), 0);
  const auto theirs = nlohmann::json::parse(read_file(dir / "reference.json"))["profile"];
  EXPECT_EQ(theirs["steps"], 2);
  EXPECT_GT(theirs["product_ms_per_step"].get<double>(), 0.0);
  bool qkv_product = false;  // the reference's qkv forward: addmm [96] [68, 32] [32, 96]
  for (const auto& op : theirs["operators"]) {
    if (op["name"] == "aten::addmm" && op["shapes"] == "[96] [68, 32] [32, 96]") {
      qkv_product = true;
      EXPECT_DOUBLE_EQ(op["calls_per_step"].get<double>(), 2.0);
      EXPECT_DOUBLE_EQ(op["gflop_per_step"].get<double>(), 2 * 2.0 * 68 * 32 * 96 / 1e9);
    }
  }
  EXPECT_TRUE(qkv_product) << theirs.dump();
  const auto report = app::python_interpreter() + " " + scripts + "profile_report.py " + (dir / "vit.json").string() +
                      " " + (dir / "reference.json").string() + " > " + (dir / "report").string();
  ASSERT_EQ(std::system(report.c_str()), 0);
  const auto text = read_file(dir / "report");
  EXPECT_NE(text.find("aten::addmm [96] [68, 32] [32, 96]"), std::string::npos) << text;
  EXPECT_NE(text.find("vitcpp: "), std::string::npos) << text;
  EXPECT_NE(text.find("pytorch: "), std::string::npos) << text;
}

// The suite's bf16 peak (gemm_peak.py) is the fastest shape of its grid, the square among them, so
// that a model's share is never of a rate that the products of its layers beat; --merge keeps each
// round's shape.
TEST(BenchCommand, TheBf16PeakIsTheFastestRateOverTheGridOfShapes) {
  TempDir dir;
  const auto peak = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) + "/scripts/bench/gemm_peak.py ";
  ASSERT_EQ(std::system((peak + "1 > " + (dir / "round.json").string()).c_str()), 0);
  const auto round = nlohmann::json::parse(read_file(dir / "round.json"));
  const auto onednn = round["onednn_bf16_gflops"].get<double>();
  const auto fp32_kernels = round["fp32_kernels_gflops"].get<double>();
  EXPECT_DOUBLE_EQ(round["bf16_gemm_gflops"].get<double>(), std::max(onednn, fp32_kernels));
  EXPECT_GE(onednn, round["onednn_bf16_2048_gflops"].get<double>());
  EXPECT_GE(fp32_kernels, round["fp32_kernels_2048_gflops"].get<double>());
  for (const auto* key : {"onednn_bf16_shape", "fp32_kernels_shape"}) {
    const auto shape = round[key].get<std::vector<int64_t>>();
    ASSERT_EQ(shape.size(), 3u) << key;
    const bool square = shape == std::vector<int64_t>{2048, 2048, 2048};
    EXPECT_TRUE(square || shape[0] == 3152 || shape[0] == 6304) << key;
  }
  const auto path = (dir / "round.json").string();
  ASSERT_EQ(std::system((peak + "--merge " + path + " " + path + " > " + (dir / "merged.json").string()).c_str()), 0);
  const auto merged = nlohmann::json::parse(read_file(dir / "merged.json"));
  EXPECT_DOUBLE_EQ(merged["bf16_gemm_gflops"].get<double>(), round["bf16_gemm_gflops"].get<double>());
  EXPECT_EQ(merged["shapes"]["onednn_bf16_shape"][1], round["onednn_bf16_shape"]);
}

// The DETR step's peer (detr_reference.py): the same parameters, and its training step runs on the
// spec's matching costs and loss weights.
TEST(BenchCommand, PythonDetrReferenceBuildsTheSameModelAndTakesItsStep) {
  TempDir dir;
  write_file(dir / "detr.yaml", "model: {preset: detr_shapes_64}\n");
  const auto config = " --config " + (dir / "detr.yaml").string();
  const auto result = run_vit("bench --mode train --batch-size 2 --warmup 0 --steps 1 --repeats 1 --json" + config);
  ASSERT_EQ(result.exit_code, 0) << result.err;
  write_file(dir / "spec.json", result.out);
  EXPECT_EQ(nlohmann::json::parse(result.out)["train"]["detection"]["eos_coef"], 0.1);
  const auto info = run_vit("info --json" + config);
  ASSERT_EQ(info.exit_code, 0) << info.err;
  const auto reference = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                         "/scripts/bench/reference.py --like " + (dir / "spec.json").string();
  ASSERT_EQ(std::system((reference + " --count-parameters > " + (dir / "count").string()).c_str()), 0);
  EXPECT_EQ(std::stoll(read_file(dir / "count")), nlohmann::json::parse(info.out)["parameters"].get<int64_t>());
  ASSERT_EQ(std::system((reference + " > " + (dir / "reference.json").string()).c_str()), 0);
  EXPECT_GT(nlohmann::json::parse(read_file(dir / "reference.json"))["images_per_s_median"].get<double>(), 0.0);
}

// Training's batch slices and memory check: a bench measures the slices `vit train` would take.
TEST(BenchCommand, TrainTakesTheSlicesTrainWouldWithinTheMemoryAvailable) {
  const std::string wide_model =  // 1.1 M parameters: 4 MiB of gradients a slice
      "bench --mode train --batch-size 8 --set model.image_size=16 --set model.patch_size=4 --set model.dim=256 "
      "--set model.depth=2 --set model.heads=2 --threads 4 --warmup 0 --steps 1 --repeats 1 --json";
  const auto ample = run_vit(wide_model, "VIT_AVAILABLE_MEMORY_MB=16384");
  ASSERT_EQ(ample.exit_code, 0) << ample.err;
  EXPECT_EQ(nlohmann::json::parse(ample.out)["slices"], 4);
  const auto two = run_vit(wide_model, "VIT_AVAILABLE_MEMORY_MB=" + std::to_string(memory_needed_mib(ample.err, 0.75)));
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_EQ(nlohmann::json::parse(two.out)["slices"], 2) << two.err;

  const auto refused = run_vit(wide_model, "VIT_AVAILABLE_MEMORY_MB=1");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("the model alone does not fit"), std::string::npos) << refused.err;
  EXPECT_NE(refused.err.find("--force"), std::string::npos) << refused.err;
  const auto forced = run_vit(wide_model + " --force", "VIT_AVAILABLE_MEMORY_MB=1");
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_EQ(nlohmann::json::parse(forced.out)["slices"], 4);
}

TEST(BenchCommand, Fp16IsAConfigError) {
  const auto result = run_vit("bench --mode eval --set train.amp=fp16 " + kTinyModel);
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("fp16"), std::string::npos) << result.err;
}

TEST(Blas, ClassifiesDebianAlternatives) {
  EXPECT_FALSE(app::classify_blas("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3").slow);
  EXPECT_EQ(app::classify_blas("/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3").name, "OpenBLAS (openmp)");
  EXPECT_EQ(app::classify_blas("/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3").name, "OpenBLAS (pthread)");
  EXPECT_TRUE(app::classify_blas("/usr/lib/x86_64-linux-gnu/blas/libblas.so.3.11.0").slow);
  EXPECT_FALSE(app::classify_blas("/opt/intel/mkl/lib/libmkl_rt.so").slow);
  EXPECT_FALSE(app::loaded_blas().slow) << app::loaded_blas().path;  // scripts/setup.sh installs OpenBLAS
}

TEST(Blas, StartupWarnsLoudlyOnTheReferenceBlas) {
  const std::filesystem::path reference = "/usr/lib/x86_64-linux-gnu/blas";
  if (!std::filesystem::exists(reference / "libblas.so.3")) GTEST_SKIP() << "Netlib's libblas3 is not installed";
  const auto result =
      run_vit("bench --mode eval --batch-size 2 " + kTinyModel, "LD_LIBRARY_PATH=" + reference.string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_NE(result.err.find("SLOW BLAS"), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("libopenblas0-openmp"), std::string::npos) << result.err;
  EXPECT_EQ(run_vit("bench --mode eval --batch-size 2 " + kTinyModel).err.find("SLOW BLAS"), std::string::npos);
}

// What `vit --version` says of OpenBLAS's kernels: "BLAS kernels: NAME (WHO CHOSE THEM)".
struct KernelsLine {
  std::string name, chooser;
};
KernelsLine kernels_line(const std::string& environment = "") {
  const auto result = run_vit("--version", environment);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const auto start = result.out.find("BLAS kernels: ");
  if (start == std::string::npos) return {};
  const auto line = result.out.substr(start + 14, result.out.find('\n', start) - start - 14);
  const auto space = line.find(" (");
  return {line.substr(0, space), line.substr(space + 2, line.size() - space - 3)};
}

// Debian's OpenBLAS 0.3.21 takes a CPU newer than its table (an Emerald Rapids Xeon, say) for a
// Prescott and runs SSE3 kernels, 3x slower fp32 training; vit runs the ones the CPU fits instead.
TEST(Blas, VitNeverRunsTheGenericKernelsOnACpuWithAvx2) {
  const auto loaded = kernels_line("env -u OPENBLAS_CORETYPE");
  if (loaded.name.empty()) GTEST_SKIP() << "the BLAS in use is not OpenBLAS";
  const auto cpu = app::this_cpu_vector_extensions();
  if (!cpu.avx2_fma) GTEST_SKIP() << "this CPU has no AVX2: OpenBLAS's generic kernels are the right ones";
  EXPECT_NE(loaded.name, "Prescott");
  if (loaded.chooser != "OpenBLAS's choice") {
    EXPECT_EQ(loaded.chooser, "chosen by vit: OpenBLAS took this CPU for a Prescott");
    EXPECT_EQ(loaded.name, app::kernels_for_unrecognised_cpu("Prescott", cpu));
  }
  const auto report =
      nlohmann::json::parse(run_vit("bench --mode eval --batch-size 2 " + kTinyModel, "env -u OPENBLAS_CORETYPE").out);
  EXPECT_EQ(report["blas_kernels"], loaded.name);
}

TEST(Blas, AUsersOpenblasCoretypeWins) {
  if (kernels_line().name.empty()) GTEST_SKIP() << "the BLAS in use is not OpenBLAS";
  const auto chosen = kernels_line("OPENBLAS_CORETYPE=Prescott");
  EXPECT_EQ(chosen.name, "Prescott");
  EXPECT_EQ(chosen.chooser, "set by OPENBLAS_CORETYPE");
  // OpenBLAS matches the name without regard to case.
  EXPECT_EQ(kernels_line("OPENBLAS_CORETYPE=prescott").chooser, "set by OPENBLAS_CORETYPE");
}

// OpenBLAS silently detects the CPU when OPENBLAS_CORETYPE names no kernel set (a typo, or a core
// newer than the library); vit says so instead of crediting the variable.
TEST(Blas, AnOpenblasCoretypeThatNamesNoKernelsIsReportedAsIgnored) {
  if (kernels_line().name.empty()) GTEST_SKIP() << "the BLAS in use is not OpenBLAS";
  const auto ignored = kernels_line("OPENBLAS_CORETYPE=NoSuchCore");
  EXPECT_NE(ignored.chooser.find("OPENBLAS_CORETYPE='NoSuchCore' names none of its kernel sets"), std::string::npos)
      << ignored.chooser;
  EXPECT_EQ(ignored.chooser.find("set by OPENBLAS_CORETYPE"), std::string::npos) << ignored.chooser;
  if (app::this_cpu_vector_extensions().avx2_fma) {
    EXPECT_NE(ignored.name, "Prescott");
  }
  const auto run = run_vit("bench --mode eval --batch-size 2 " + kTinyModel, "OPENBLAS_CORETYPE=NoSuchCore");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("OPENBLAS_CORETYPE='NoSuchCore' names none of OpenBLAS's kernel sets"), std::string::npos)
      << run.err;
}

// What `vit --version` says of the CPU's bf16 products: "bf16 products: KERNELS (WHO CHOSE THEM)".
std::string bf16_products_line(const std::string& environment) {
  const auto result = run_vit("--version", environment);
  EXPECT_EQ(result.exit_code, 0) << result.err;
  const auto start = result.out.find("bf16 products: ");
  if (start == std::string::npos) return "";
  return result.out.substr(start + 15, result.out.find('\n', start) - start - 15);
}

TEST(Bf16Products, VitMultipliesBf16OnTheFp32BlasKernelsOnlyOnACpuWithoutAmx) {
  const auto cpu = app::this_cpu_vector_extensions();
  const auto choice = app::bf16_products_for(cpu, !kernels_line().name.empty());
  const bool on_blas = choice.products == models::Bf16Products::kFp32Blas;
  EXPECT_EQ(bf16_products_line("env -u VIT_BF16_PRODUCTS"),
            std::string(on_blas ? "the BLAS's fp32 kernels on bf16 values" : "oneDNN") + " (" + choice.reason + ")");
  const auto report = nlohmann::json::parse(
      run_vit("bench --mode eval --batch-size 2 --set train.amp=bf16 " + kTinyModel, "env -u VIT_BF16_PRODUCTS").out);
  EXPECT_EQ(report["bf16_products"], on_blas ? "blas" : "onednn");
}

TEST(Bf16Products, VitBf16ProductsChoosesTheKernelsAndAnotherValueIsAUsageError) {
  EXPECT_EQ(bf16_products_line("VIT_BF16_PRODUCTS=onednn"), "oneDNN (set by VIT_BF16_PRODUCTS)");
  if (!kernels_line().name.empty()) {
    EXPECT_EQ(bf16_products_line("VIT_BF16_PRODUCTS=blas"),
              "the BLAS's fp32 kernels on bf16 values (set by VIT_BF16_PRODUCTS)");
  }
  const auto result = run_vit("bench --mode eval --batch-size 2 " + kTinyModel, "VIT_BF16_PRODUCTS=fast");
  EXPECT_EQ(result.exit_code, 2);
  EXPECT_NE(result.err.find("VIT_BF16_PRODUCTS='fast': expected onednn or blas"), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("terminate"), std::string::npos) << result.err;
}

TEST(Bf16Products, OnTheReferenceBlasOneDnnKeepsThem) {
  const std::filesystem::path reference = "/usr/lib/x86_64-linux-gnu/blas";
  if (!std::filesystem::exists(reference / "libblas.so.3")) GTEST_SKIP() << "Netlib's libblas3 is not installed";
  const auto line = bf16_products_line("env -u VIT_BF16_PRODUCTS LD_LIBRARY_PATH=" + reference.string());
  EXPECT_TRUE(line == "oneDNN (chosen by vit: no fast system BLAS)" ||
              line == "oneDNN (chosen by vit: this CPU has AMX)")
      << line;
}

// The same bf16 training on either kernels: the same arithmetic with the sums in another order, so
// close losses that are not bit for bit the same.
TEST(Bf16Products, ChangeTheBitsOfABf16TrainingRunButNotItsCourse) {
  if (kernels_line().name.empty()) GTEST_SKIP() << "the BLAS in use is not OpenBLAS";
  TempDir dir;
  const auto config = tiny_config(dir) + " --set train.amp=bf16 --set train.epochs=2 --threads 1";
  std::vector<std::string> losses[2];
  for (const int on_blas : {0, 1}) {
    const auto run = dir / (on_blas != 0 ? "blas" : "onednn");
    const auto result = run_vit("train --config " + config + " --output " + run.string(),
                                std::string("VIT_BF16_PRODUCTS=") + (on_blas != 0 ? "blas" : "onednn"));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    losses[on_blas] = loss_column(run / "steps.csv");
    // The log says where the products ran, and on the fp32 kernels that bf16 buys no speed there.
    const std::string products = on_blas != 0 ? "the BLAS's fp32 kernels on bf16 values" : "oneDNN";
    EXPECT_NE(result.err.find("bf16 products: " + products + " (set by VIT_BF16_PRODUCTS)"), std::string::npos)
        << result.err;
    EXPECT_EQ(result.err.find("bf16 trains no faster than fp32") != std::string::npos, on_blas != 0) << result.err;
  }
  ASSERT_EQ(losses[0].size(), losses[1].size());
  ASSERT_FALSE(losses[0].empty());
  EXPECT_NE(losses[0], losses[1]);
  for (size_t i = 0; i < losses[0].size(); ++i) {
    const double a = std::stod(losses[0][i].substr(losses[0][i].find(':') + 1));
    const double b = std::stod(losses[1][i].substr(losses[1][i].find(':') + 1));
    EXPECT_NEAR(a, b, 0.02 * a + 0.01) << "step " << i;
  }
}

}  // namespace
}  // namespace vit::testing
