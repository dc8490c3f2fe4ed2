#include "app/config.h"
#include "app/config_names.h"

#include <yaml-cpp/yaml.h>

#include <map>

namespace vit::app {
namespace {

template <typename T>
void field(YAML::Emitter& out, const char* key, const T& value) {
  out << YAML::Key << key << YAML::Value << value;
}

void flow_list(YAML::Emitter& out, const char* key, const std::vector<double>& values) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
  for (const double value : values) out << value;
  out << YAML::EndSeq;
}

void interval(YAML::Emitter& out, const char* key, double low, double high) { flow_list(out, key, {low, high}); }

void emit_model(YAML::Emitter& out, const ModelConfig& model) {
  const auto& o = model.options;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  // The preset is recorded for people; every field below is explicit, so it changes nothing.
  if (!model.preset.empty()) field(out, "preset", model.preset);
  field(out, "image_size", o.image_size);
  field(out, "patch_size", o.patch_size);
  field(out, "in_chans", o.in_chans);
  field(out, "num_classes", o.num_classes);
  field(out, "dim", o.embed_dim);
  field(out, "depth", o.depth);
  field(out, "heads", o.num_heads);
  field(out, "mlp_ratio", o.mlp_ratio);
  field(out, "qkv_bias", o.qkv_bias);
  field(out, "pos_embed", name_of(kPosEmbedNames, o.pos_embed));
  field(out, "pool", name_of(kPoolNames, o.pool));
  field(out, "dropout", o.drop_rate);
  field(out, "attn_dropout", o.attn_drop_rate);
  field(out, "drop_path", o.drop_path_rate);
  field(out, "layer_scale", o.layer_scale_init);
  if (!model.pretrained.empty()) field(out, "pretrained", model.pretrained);
  out << YAML::EndMap;
}

void emit_source(YAML::Emitter& out, const char* key, const data::SourceOptions& source) {
  out << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "source", name_of(kSourceNames, source.kind));
  field(out, "path", source.path.string());
  field(out, "split", source.split);
  out << YAML::EndMap;
}

void emit_transforms(YAML::Emitter& out, const char* key, const data::TransformOptions& t) {
  out << YAML::Key << key << YAML::Value << YAML::BeginMap;
  field(out, "resize", t.resize);
  field(out, "crop_pct", t.crop_pct);
  field(out, "center_crop", t.center_crop);
  if (t.random_resized_crop.enabled) {
    out << YAML::Key << "random_resized_crop" << YAML::Value << YAML::BeginMap;
    interval(out, "scale", t.random_resized_crop.scale_min, t.random_resized_crop.scale_max);
    interval(out, "ratio", t.random_resized_crop.ratio_min, t.random_resized_crop.ratio_max);
    out << YAML::EndMap;
  }
  field(out, "random_crop_padding", t.random_crop_padding);
  field(out, "hflip", t.hflip);
  out << YAML::Key << "color_jitter" << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "brightness", t.color_jitter.brightness);
  field(out, "contrast", t.color_jitter.contrast);
  field(out, "saturation", t.color_jitter.saturation);
  field(out, "hue", t.color_jitter.hue);
  out << YAML::EndMap;
  out << YAML::Key << "rand_augment" << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "num_ops", t.rand_augment.num_ops);
  field(out, "magnitude", t.rand_augment.magnitude);
  field(out, "num_magnitude_bins", t.rand_augment.num_magnitude_bins);
  out << YAML::EndMap;
  out << YAML::Key << "random_erasing" << YAML::Value << YAML::BeginMap;
  field(out, "p", t.random_erasing.probability);
  interval(out, "scale", t.random_erasing.scale_min, t.random_erasing.scale_max);
  interval(out, "ratio", t.random_erasing.ratio_min, t.random_erasing.ratio_max);
  out << YAML::EndMap;
  out << YAML::EndMap;
}

void emit_data(YAML::Emitter& out, const data::DataOptions& d) {
  out << YAML::Key << "data" << YAML::Value << YAML::BeginMap;
  emit_source(out, "train", d.train);
  if (d.val) emit_source(out, "val", *d.val);
  field(out, "val_fraction", d.val_fraction);
  field(out, "split_seed", d.split_seed);
  if (!d.class_names.empty()) {
    out << YAML::Key << "class_names" << YAML::Value << YAML::Flow << d.class_names;
  }
  field(out, "workers", d.workers);
  field(out, "prefetch", d.prefetch_batches);
  field(out, "on_bad_sample", name_of(kBadSampleNames, d.on_bad_sample));
  field(out, "max_pixels", d.max_pixels);
  // Both splits share the normalization statistics.
  if (!d.train_transforms.mean.empty()) flow_list(out, "mean", d.train_transforms.mean);
  if (!d.train_transforms.std.empty()) flow_list(out, "std", d.train_transforms.std);
  emit_transforms(out, "train_transforms", d.train_transforms);
  emit_transforms(out, "val_transforms", d.val_transforms);
  out << YAML::EndMap;
}

void emit_train(YAML::Emitter& out, const TrainConfig& t) {
  out << YAML::Key << "train" << YAML::Value << YAML::BeginMap;
  field(out, "epochs", t.epochs);
  field(out, "max_steps", t.max_steps);
  field(out, "batch_size", t.batch_size);
  field(out, "optimizer", name_of(kOptimizerNames, t.optimizer));
  field(out, "lr", t.lr);
  field(out, "backbone_lr_scale", t.backbone_lr_scale);
  field(out, "min_lr", t.min_lr);
  field(out, "weight_decay", t.weight_decay);
  flow_list(out, "betas", {t.beta1, t.beta2});
  field(out, "momentum", t.momentum);
  field(out, "warmup_epochs", t.warmup_epochs);
  field(out, "warmup_steps", t.warmup_steps);
  field(out, "schedule", name_of(kScheduleNames, t.schedule));
  field(out, "decay_epochs", t.decay_epochs);
  field(out, "decay_rate", t.decay_rate);
  field(out, "label_smoothing", t.label_smoothing);
  out << YAML::Key << "mixup" << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "mixup_alpha", t.mixup.mixup_alpha);
  field(out, "cutmix_alpha", t.mixup.cutmix_alpha);
  field(out, "prob", t.mixup.probability);
  field(out, "switch_prob", t.mixup.switch_probability);
  out << YAML::EndMap;
  field(out, "grad_clip", t.grad_clip);
  field(out, "grad_accum_steps", t.grad_accum_steps);
  field(out, "amp", name_of(kAmpNames, t.amp));
  field(out, "ema_decay", t.ema_decay);
  field(out, "eval_every", t.eval_every);
  field(out, "save_every", t.save_every);
  field(out, "keep_last", t.keep_last);
  field(out, "checkpoint_every_steps", t.checkpoint_every_steps);
  field(out, "log_every", t.log_every);
  field(out, "seed", t.seed);
  field(out, "threads", t.threads);
  field(out, "device", t.device);
  out << YAML::Key << "distributed" << YAML::Value << YAML::Flow << YAML::BeginMap;
  field(out, "backend", name_of(kDistBackendNames, t.distributed.backend));
  field(out, "bucket_mb", t.distributed.bucket_mb);
  field(out, "timeout_s", t.distributed.timeout_s);
  out << YAML::EndMap;
  out << YAML::EndMap;
}

// Every leaf of a config.yaml document by dotted key; lists as their flow text.
void flatten(const YAML::Node& node, const std::string& prefix, std::map<std::string, std::string>& leaves) {
  for (const auto& item : node) {
    const auto key = prefix + item.first.Scalar();
    if (item.second.IsMap()) {
      flatten(item.second, key + ".", leaves);
    } else if (item.second.IsScalar()) {
      leaves[key] = item.second.Scalar();
    } else {
      YAML::Emitter text;
      text << YAML::Flow << item.second;
      leaves[key] = text.c_str();
    }
  }
}

std::map<std::string, std::string> leaves_of(const Config& config) {
  std::map<std::string, std::string> leaves;
  flatten(YAML::Load(emit_config(config)), "", leaves);
  return leaves;
}

}  // namespace

std::vector<ConfigChange> config_changes(const Config& from, const Config& to) {
  const auto before = leaves_of(from);
  const auto after = leaves_of(to);
  std::vector<ConfigChange> changes;
  for (const auto& [key, value] : before) {
    const auto found = after.find(key);
    if (found == after.end()) {
      changes.push_back({key, value, "(absent)"});
    } else if (found->second != value) {
      changes.push_back({key, value, found->second});
    }
  }
  for (const auto& [key, value] : after) {
    if (before.count(key) == 0) changes.push_back({key, "(absent)", value});
  }
  return changes;
}

std::string emit_config(const Config& config) {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << YAML::BeginMap;
  emit_model(out, config.model);
  emit_data(out, config.data);
  emit_train(out, config.train);
  field(out, "output", config.output);
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace vit::app
