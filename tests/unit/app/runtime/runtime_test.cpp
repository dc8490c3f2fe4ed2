#include "app/runtime/runtime.h"

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

}  // namespace
}  // namespace vit::testing
