#include "app/config/config_names.h"
#include "app/config/config_sections.h"

#include <limits>

namespace vit::app {
namespace {

constexpr int64_t kMaxImageSide = 1 << 16;

data::SourceOptions read_source(YamlSection section, data::SourceOptions source) {
  section.read_choice("source", source.kind, kSourceNames);
  std::string path;
  if (section.read("path", path)) {
    source.path = path;
  } else if (source.kind != data::SourceKind::Idx) {
    section.fail("path", "is required for this source (the folder root, CSV list file or CIFAR folder)");
  }
  section.read_choice<std::string>("split", source.split, {{"train", "train"}, {"test", "test"}});
  section.finish();
  return source;
}

data::TransformOptions read_transforms(YamlSection section) {
  data::TransformOptions t;
  section.read_int("resize", t.resize, 0, kMaxImageSide);
  section.read_double("crop_pct", t.crop_pct, 0.0, 1.0);
  section.read("center_crop", t.center_crop);
  if (section.has("random_resized_crop")) {
    auto crop = section.section("random_resized_crop");
    auto& o = t.random_resized_crop;
    o.enabled = true;
    crop.read("enabled", o.enabled);
    crop.read_interval("scale", o.scale_min, o.scale_max, 1e-6, 1.0);
    crop.read_interval("ratio", o.ratio_min, o.ratio_max, 1e-3, 1e3);
    crop.finish();
  }
  section.read_int("random_crop_padding", t.random_crop_padding, -1, kMaxImageSide);
  section.read_double("hflip", t.hflip, 0.0, 1.0);
  {
    auto jitter = section.section("color_jitter");
    auto& o = t.color_jitter;
    jitter.read_double("brightness", o.brightness, 0.0, 1e3);
    jitter.read_double("contrast", o.contrast, 0.0, 1e3);
    jitter.read_double("saturation", o.saturation, 0.0, 1e3);
    jitter.read_double("hue", o.hue, 0.0, 0.5);
    jitter.finish();
  }
  {
    auto augment = section.section("rand_augment");
    auto& o = t.rand_augment;
    augment.read_int("num_ops", o.num_ops, 0, 16);
    augment.read_int("num_magnitude_bins", o.num_magnitude_bins, 2, 1000);
    augment.read_int("magnitude", o.magnitude, 0, o.num_magnitude_bins - 1);
    augment.finish();
  }
  {
    auto erasing = section.section("random_erasing");
    auto& o = t.random_erasing;
    erasing.read_double("p", o.probability, 0.0, 1.0);
    erasing.read_interval("scale", o.scale_min, o.scale_max, 1e-6, 1.0);
    erasing.read_interval("ratio", o.ratio_min, o.ratio_max, 1e-3, 1e3);
    erasing.finish();
  }
  section.finish();
  return t;
}

}  // namespace

data::DataOptions read_data(YamlSection section) {
  data::DataOptions d;
  d.train = read_source(section.section("train"), d.train);
  if (section.has("val")) {
    data::SourceOptions val_defaults = d.train;
    val_defaults.split = "test";
    d.val = read_source(section.section("val"), val_defaults);
  } else {
    section.section("val");
  }
  section.read_double("val_fraction", d.val_fraction, 0.0, 0.99);
  if (d.val && d.val_fraction > 0.0) section.fail("val_fraction", "cannot be combined with a separate data.val source");
  int64_t split_seed = 0;
  if (section.read_int("split_seed", split_seed, 0, std::numeric_limits<int64_t>::max())) {
    d.split_seed = static_cast<uint64_t>(split_seed);
  }
  section.read("class_names", d.class_names);
  section.read_int("workers", d.workers, 0, 256);
  section.read_int("prefetch", d.prefetch_batches, 1, 1024);
  section.read_choice("on_bad_sample", d.on_bad_sample, kBadSampleNames);
  section.read_int("max_pixels", d.max_pixels, 1, std::numeric_limits<int64_t>::max() / 2);
  std::vector<double> mean;
  std::vector<double> std;
  section.read("mean", mean);
  section.read("std", std);
  for (const double value : std) {
    if (value <= 0.0) section.fail("std", "every value must be positive");
  }
  d.train_transforms = read_transforms(section.section("train_transforms"));
  d.val_transforms = read_transforms(section.section("val_transforms"));
  for (auto* transforms : {&d.train_transforms, &d.val_transforms}) {
    transforms->mean = mean;
    transforms->std = std;
  }
  section.finish();
  return d;
}

void check_consistency(const Config& config, YamlSection& top) {
  const auto shape = models::shape_of(config.model.options);
  const auto channels = static_cast<size_t>(shape.in_chans);
  const auto& transforms = config.data.train_transforms;
  auto data = top.section("data");
  for (const auto* key : {"mean", "std"}) {
    const auto& values = std::string(key) == "mean" ? transforms.mean : transforms.std;
    if (!values.empty() && values.size() != 1 && values.size() != channels) {
      data.fail(key, "has " + std::to_string(values.size()) + " values for a model with " + std::to_string(channels) +
                         " input channels (give 1 or " + std::to_string(channels) + ")");
    }
  }
  if (config.train.mixup.enabled() && shape.num_classes == 0) {
    top.section("train").section("mixup").fail("", "mixes class targets, but model.num_classes is 0 (no head)");
  }
  if (channels != 1 && channels != 3) {
    top.section("model").fail("in_chans", "image data can feed 1 or 3 channels, not " + std::to_string(channels));
  }
}

}  // namespace vit::app
