#include "app/runtime/runtime.h"
#include "app/errors.h"
#include "app/runtime/blas_kernels.h"
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

}  // namespace
}  // namespace vit::testing
