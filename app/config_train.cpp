#include "app/config_names.h"
#include "app/config_sections.h"

#include <limits>

namespace vit::app {

TrainConfig read_train(YamlSection section) {
  TrainConfig t;
  constexpr int64_t kMaxCount = std::numeric_limits<int32_t>::max();
  section.read_int("epochs", t.epochs, 1, 100000);
  section.read_int("max_steps", t.max_steps, 0, std::numeric_limits<int64_t>::max() / 2);
  section.read_int("batch_size", t.batch_size, 1, 1 << 20);
  section.read_choice("optimizer", t.optimizer, kOptimizerNames);
  section.read_double("lr", t.lr, 1e-12, 100.0);
  section.read_double("backbone_lr_scale", t.backbone_lr_scale, 0.0, 100.0);
  section.read_double("min_lr", t.min_lr, 0.0, 100.0);
  section.read_double("weight_decay", t.weight_decay, 0.0, 10.0);
  double beta_low = t.beta1;
  double beta_high = t.beta2;
  std::vector<double> betas;
  if (section.read("betas", betas)) {
    if (betas.size() != 2) section.fail("betas", "expected two numbers [beta1, beta2]");
    beta_low = betas[0];
    beta_high = betas[1];
    if (beta_low < 0.0 || beta_low >= 1.0 || beta_high < 0.0 || beta_high >= 1.0) {
      section.fail("betas", "both betas must be in [0, 1)");
    }
  }
  t.beta1 = beta_low;
  t.beta2 = beta_high;
  section.read_double("momentum", t.momentum, 0.0, 0.9999);
  section.read_double("warmup_epochs", t.warmup_epochs, 0.0, 100000.0);
  section.read_int("warmup_steps", t.warmup_steps, 0, std::numeric_limits<int64_t>::max() / 2);
  section.read_choice("schedule", t.schedule, kScheduleNames);
  section.read_double("decay_epochs", t.decay_epochs, 1e-6, 100000.0);
  section.read_double("decay_rate", t.decay_rate, 0.0, 1.0);
  section.read_double("label_smoothing", t.label_smoothing, 0.0, 0.999);
  {
    auto mixup = section.section("mixup");
    mixup.read_double("mixup_alpha", t.mixup.mixup_alpha, 0.0, 100.0);
    mixup.read_double("cutmix_alpha", t.mixup.cutmix_alpha, 0.0, 100.0);
    mixup.read_double("prob", t.mixup.probability, 0.0, 1.0);
    mixup.read_double("switch_prob", t.mixup.switch_probability, 0.0, 1.0);
    mixup.finish();
  }
  section.read_double("grad_clip", t.grad_clip, 0.0, 1e9);
  section.read_int("grad_accum_steps", t.grad_accum_steps, 1, 65536);
  section.read_choice("amp", t.amp, kAmpNames);
  section.read_double("ema_decay", t.ema_decay, 0.0, 0.999999);
  section.read_int("eval_every", t.eval_every, 1, kMaxCount);
  section.read_int("save_every", t.save_every, 1, kMaxCount);
  section.read_int("keep_last", t.keep_last, 0, kMaxCount);
  section.read_int("checkpoint_every_steps", t.checkpoint_every_steps, 0, kMaxCount);
  section.read_int("log_every", t.log_every, 1, kMaxCount);
  int64_t seed = 0;
  if (section.read_int("seed", seed, 0, std::numeric_limits<int64_t>::max())) t.seed = static_cast<uint64_t>(seed);
  section.read_int("threads", t.threads, 0, 1024);
  if (section.read("device", t.device)) {
    const auto& d = t.device;
    const bool cuda_index =
        d.rfind("cuda:", 0) == 0 && d.size() > 5 && d.find_first_not_of("0123456789", 5) == std::string::npos;
    if (d != "auto" && d != "cpu" && d != "cuda" && !cuda_index) {
      section.fail("device", "expected auto, cpu, cuda or cuda:N, got '" + d + "'");
    }
  }
  {
    auto distributed = section.section("distributed");
    distributed.read_choice("backend", t.distributed.backend, kDistBackendNames);
    distributed.read_double("bucket_mb", t.distributed.bucket_mb, 0.001, 4096.0);
    distributed.read_int("timeout_s", t.distributed.timeout_s, 1, 7 * 24 * 3600);
    distributed.finish();
  }
  if (t.min_lr > t.lr) section.fail("min_lr", "must not exceed train.lr");
  section.finish();
  return t;
}

}  // namespace vit::app
