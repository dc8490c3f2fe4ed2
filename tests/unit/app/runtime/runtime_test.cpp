#include "app/runtime/runtime.h"
#include "app/errors.h"
#include "app/runtime/blas_kernels.h"
#include "app/runtime/memory_budget.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

namespace vit::testing {
namespace {

// Sets (or, with nullopt, unsets) an environment variable for the lifetime of the object.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    value ? ::setenv(name, value->c_str(), 1) : ::unsetenv(name);
  }
  ~ScopedEnvironment() { old_ ? ::setenv(name_, old_->c_str(), 1) : ::unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Threads, ConfigThenOmpNumThreadsThenCoresSharedAmongLocalRanks) {
  ScopedEnvironment no_omp("OMP_NUM_THREADS", std::nullopt);
  ScopedEnvironment no_ranks("LOCAL_WORLD_SIZE", std::nullopt);
  const auto cores = app::choose_threads(0);
  EXPECT_EQ(cores.source, "one per core");
  EXPECT_GE(cores.count, 1);

  EXPECT_EQ(app::choose_threads(3).count, 3);
  EXPECT_EQ(app::choose_threads(3).source, "train.threads");
  {
    ScopedEnvironment omp("OMP_NUM_THREADS", "5");
    EXPECT_EQ(app::choose_threads(0).count, 5);
    EXPECT_EQ(app::choose_threads(0).source, "OMP_NUM_THREADS");
    EXPECT_EQ(app::choose_threads(2).count, 2);  // the config wins
  }
  {
    ScopedEnvironment ranks("LOCAL_WORLD_SIZE", std::to_string(cores.count * 2));
    EXPECT_EQ(app::choose_threads(0).count, 1);  // at least one
    ScopedEnvironment two("LOCAL_WORLD_SIZE", "2");
    EXPECT_EQ(app::choose_threads(0).count, std::max(1, cores.count / 2));
    EXPECT_NE(app::choose_threads(0).source.find("2 local ranks"), std::string::npos);
  }
  ScopedEnvironment garbage("OMP_NUM_THREADS", "lots");
  EXPECT_EQ(app::choose_threads(0).source, "one per core");
}

// OpenBLAS's generic kernels are replaced only when they are its fallback for a CPU it does not know
// and the CPU can run better ones; a choice OpenBLAS made for a CPU it knows stands.
TEST(BlasKernels, OnlyTheFallbackForAnUnknownCpuIsReplacedByTheWidestKernelsItRuns) {
  const app::VectorExtensions sse3_only{}, avx2{true, false, false}, avx512{true, true, false},
      avx512_bf16{true, true, true};
  EXPECT_EQ(app::kernels_for_unrecognised_cpu("Prescott", avx512_bf16), "Cooperlake");
  EXPECT_EQ(app::kernels_for_unrecognised_cpu("Prescott", avx512), "SkylakeX");
  EXPECT_EQ(app::kernels_for_unrecognised_cpu("Prescott", avx2), "Haswell");
  EXPECT_EQ(app::kernels_for_unrecognised_cpu("Prescott", sse3_only), "");
  for (const auto* known : {"Haswell", "SkylakeX", "Cooperlake", "SapphireRapids", "Zen", "Sandybridge"}) {
    EXPECT_EQ(app::kernels_for_unrecognised_cpu(known, avx512_bf16), "") << known;
  }
  EXPECT_EQ(app::kernels_for_unrecognised_cpu("", avx512_bf16), "");  // not OpenBLAS
}

TEST(Bf16Products, OneDnnOnlyWithAmxOrWithoutAFastSystemBlas) {
  const app::VectorExtensions avx2{true, false, false, false}, avx512_bf16{true, true, true, false},
      amx{true, true, true, true};
  for (const auto& cpu : {avx2, avx512_bf16}) {
    EXPECT_EQ(app::bf16_products_for(cpu, true).products, models::Bf16Products::kFp32Blas);
    EXPECT_EQ(app::bf16_products_for(cpu, true).reason, "chosen by vit: no AMX on this CPU");
    EXPECT_EQ(app::bf16_products_for(cpu, false).products, models::Bf16Products::kOneDnn);
  }
  EXPECT_EQ(app::bf16_products_for(amx, true).products, models::Bf16Products::kOneDnn);
  EXPECT_EQ(app::bf16_products_for(amx, true).reason, "chosen by vit: this CPU has AMX");
}

TEST(Bf16Products, VitBf16ProductsOverridesTheRuleAndOtherValuesAreUsageErrors) {
  const ScopedBf16Products restored(models::bf16_products());
  {
    const ScopedEnvironment blas("VIT_BF16_PRODUCTS", "blas");
    app::choose_bf16_products();
    EXPECT_EQ(models::bf16_products(), models::Bf16Products::kFp32Blas);
    EXPECT_EQ(app::chosen_bf16_products().reason, "set by VIT_BF16_PRODUCTS");
  }
  {
    const ScopedEnvironment onednn("VIT_BF16_PRODUCTS", "onednn");
    app::choose_bf16_products();
    EXPECT_EQ(models::bf16_products(), models::Bf16Products::kOneDnn);
  }
  const ScopedEnvironment bad("VIT_BF16_PRODUCTS", "fast");
  try {
    app::choose_bf16_products();
    FAIL() << "VIT_BF16_PRODUCTS=fast was accepted";
  } catch (const app::ConfigError& error) {
    EXPECT_NE(std::string(error.what()).find("VIT_BF16_PRODUCTS='fast'"), std::string::npos) << error.what();
  }
}

TEST(MemoryBudget, BatchSlicesHoldGradientsAndCastWeightsOfTheirOwn) {
  models::ModelComplexity complexity;
  complexity.parameters = 1 << 20;  // 4 MiB of fp32
  complexity.activation_bytes = 1 << 20;
  app::TrainConfig train;
  train.amp = app::AmpMode::None;
  const double mib = 1 << 20;
  EXPECT_EQ(app::estimate_training_memory(complexity, train, 8).slices, 0.0);
  EXPECT_EQ(app::estimate_training_memory(complexity, train, 8, 1).slices, 0.0);  // backward() into .grad
  const auto four = app::estimate_training_memory(complexity, train, 8, 4);
  EXPECT_EQ(four.slices, 16.0 * mib);
  EXPECT_EQ(four.still_needed(), four.held_throughout() + 8.0 * mib + 16.0 * mib);
  EXPECT_NE(four.describe().find("batch slices' gradients 16.0 MiB, activations 8.0 MiB"), std::string::npos)
      << four.describe();
  const auto loaders = app::estimate_training_memory(complexity, train, 8, 4, 3.0 * mib);
  EXPECT_EQ(loaders.held_throughout(), four.held_throughout() + 3.0 * mib);  // the buffers stay for reuse
  EXPECT_NE(loaders.describe().find("loader batches 3.0 MiB"), std::string::npos) << loaders.describe();
  train.amp = app::AmpMode::Bf16;  // and three bf16 copies beyond the one the weights' figure counts
  EXPECT_EQ(app::estimate_training_memory(complexity, train, 8, 4).slices, 22.0 * mib);

  const auto error_of = [](const app::MemoryEstimate& estimate, double available) {
    try {
      app::check_training_memory(estimate, available, 8);
    } catch (const app::ConfigError& error) {
      return std::string(error.what());
    }
    return std::string();
  };
  EXPECT_EQ(error_of(four, four.held_throughout() + 24.0 * mib), "");
  // Room for 4 images beside the slices: either fewer images or fewer slices.
  const auto both = error_of(four, four.held_throughout() + 20.0 * mib);
  EXPECT_EQ(both.rfind("train.batch_size: 8 images per rank need", 0), 0u) << both;
  EXPECT_NE(both.find("lower train.batch_size (about 4 images per rank fit), or cut the batch into fewer slices "
                      "(train.batch_slices, or train.threads), each holding gradients of its own: 16.0 MiB"),
            std::string::npos)
      << both;
  // Room for the activations, not for the slices beside them: the error names train.batch_slices.
  const auto slices = error_of(four, four.held_throughout() + 12.0 * mib);
  EXPECT_EQ(slices.rfind("train.batch_slices: the batch slices' gradients need", 0), 0u) << slices;
  EXPECT_EQ(slices.find("lower train.batch_size"), std::string::npos) << slices;
  // Room for less than an image: the model alone does not fit.
  const auto model = error_of(four, four.held_throughout());
  EXPECT_EQ(model.rfind("model: training this model needs an estimated", 0), 0u) << model;
  EXPECT_NE(model.find("the model alone does not fit"), std::string::npos) << model;
}

TEST(MemoryBudget, WhereSlicesGradientsDoNotFitTheMostSlicesThatDoDividingTheThreads) {
  models::ModelComplexity complexity;
  complexity.parameters = 1 << 20;  // 4 MiB of fp32 gradients a slice
  complexity.activation_bytes = 1 << 20;
  app::TrainConfig train;
  train.amp = app::AmpMode::None;
  const double mib = 1 << 20;
  const double held = app::estimate_training_memory(complexity, train, 8).held_throughout();  // 16 MiB with AdamW
  const auto fit = [&](int64_t rows, int64_t threads, double spare) {
    return app::slices_that_fit(complexity, train, rows, 0.0, threads, held + static_cast<double>(rows) * mib + spare);
  };
  EXPECT_EQ(fit(8, 8, 32.0 * mib), 8);
  EXPECT_EQ(fit(8, 8, 31.0 * mib), 4);  // 7, 6 and 5 fit beside 4 MiB less, but leave threads idle
  EXPECT_EQ(fit(8, 6, 24.0 * mib), 6);
  EXPECT_EQ(fit(8, 6, 23.0 * mib), 3);
  EXPECT_EQ(fit(8, 8, 7.0 * mib), 1);  // one slice runs backward() into .grad
  EXPECT_EQ(fit(8, 8, 0.0), 1);
  EXPECT_EQ(fit(8, 8, -1.0 * mib), 8);  // nothing fits: the check says what does not
  EXPECT_EQ(fit(3, 4, 12.0 * mib), 4);  // a batch of 3 rows runs in 3 slices
  EXPECT_EQ(fit(3, 4, 11.0 * mib), 2);
  EXPECT_EQ(fit(8, 1, 0.0), 1);
  // The loaders' batch buffers leave less room: 32 MiB spare held eight slices, beside 3 MiB of them four.
  EXPECT_EQ(app::slices_that_fit(complexity, train, 8, 3.0 * mib, 8, held + 8.0 * mib + 32.0 * mib), 4);
}

}  // namespace
}  // namespace vit::testing
