#include "app/config/config_names.h"
#include "app/config/config_sections.h"
#include "app/config/field_yaml.h"

#include <limits>

namespace vit::app {
namespace {

using data::DataOptions;
using data::SourceOptions;
using data::TransformOptions;
using models::Field;
using models::FieldList;
using models::FieldValue;

constexpr int64_t kMaxImageSide = 1 << 16;
constexpr const char* kTransformSplits[] = {"train_transforms", "val_transforms"};

// The pipeline a data.<split> key configures (DataOptions or const DataOptions).
template <typename Data>
auto& transforms_of(Data& d, const std::string& split) {
  return split == "train_transforms" ? d.train_transforms : d.val_transforms;
}

Field<SourceOptions> path_field() {
  Field<SourceOptions> field;
  field.key = "path";
  field.help = "folder root, CSV list file, or IDX / CIFAR folder (idx: Debian's Fashion-MNIST by default)";
  field.get = [](const SourceOptions& s) { return FieldValue(s.path.string()); };
  field.set = [](SourceOptions& s, const FieldValue& value) { s.path = std::get<std::string>(value); };
  return field;
}

// A path key of a COCO source.
Field<SourceOptions> coco_path_field(const std::string& key, std::filesystem::path SourceOptions::*member,
                                     const std::string& help) {
  Field<SourceOptions> field;
  field.key = key;
  field.help = help;
  field.get = [member](const SourceOptions& s) { return FieldValue((s.*member).string()); };
  field.set = [member](SourceOptions& s, const FieldValue& value) { s.*member = std::get<std::string>(value); };
  field.present = [](const SourceOptions& s) { return s.kind == data::SourceKind::Coco; };
  return field;
}

std::vector<Field<SourceOptions>> source_fields() {
  const auto not_coco = [](const SourceOptions& s) { return s.kind != data::SourceKind::Coco; };
  return FieldList<SourceOptions>()
      .choice("source", &SourceOptions::kind, kSourceNames, "imagefolder | csv | idx | cifar | coco (detection)")
      .custom(path_field())
      .present_when(not_coco)
      .choice("split", &SourceOptions::split, kSplitNames, "idx and cifar: which part, train | test")
      .present_when(not_coco)
      .custom(coco_path_field("images", &SourceOptions::images, "coco: the folder the file_names are relative to"))
      .custom(coco_path_field("annotations", &SourceOptions::annotations,
                              "coco: the annotation file (images, annotations with [x, y, w, h] boxes, categories)"))
      .fields();
}

std::vector<Field<TransformOptions>> transform_fields() {
  using T = TransformOptions;
  const auto crop_on = [](const T& t) { return t.random_resized_crop.enabled; };
  return FieldList<T>()
      .integer("resize", &T::resize, 0, kMaxImageSide, "shorter side to this many pixels; 0: no resize")
      .real("crop_pct", &T::crop_pct, 0.0, 1.0, "resize to size / crop_pct, then center crop (timm's eval)")
      .flag("center_crop", &T::center_crop, "center crop to the model's image_size")
      .interval(
          "random_resized_crop.scale", [](T& t) -> double& { return t.random_resized_crop.scale_min; },
          [](T& t) -> double& { return t.random_resized_crop.scale_max; }, 1e-6, 1.0, "of the image area")
      .present_when(crop_on)
      .interval(
          "random_resized_crop.ratio", [](T& t) -> double& { return t.random_resized_crop.ratio_min; },
          [](T& t) -> double& { return t.random_resized_crop.ratio_max; }, 1e-3, 1e3, "width / height")
      .present_when(crop_on)
      .flag(
          "random_resized_crop.enabled", [](T& t) -> bool& { return t.random_resized_crop.enabled; },
          "on when the mapping is given; false turns it off")
      .present_when(crop_on)
      .integer("random_crop_padding", &T::random_crop_padding, -1, kMaxImageSide,
               ">= 0: zero-pad, then a random crop (CIFAR style)")
      .real("hflip", &T::hflip, 0.0, 1.0, "probability of a horizontal flip")
      .real(
          "color_jitter.brightness", [](T& t) -> double& { return t.color_jitter.brightness; }, 0.0, 1e3,
          "factor drawn from [1 - b, 1 + b]")
      .real(
          "color_jitter.contrast", [](T& t) -> double& { return t.color_jitter.contrast; }, 0.0, 1e3,
          "factor drawn from [1 - c, 1 + c]")
      .real(
          "color_jitter.saturation", [](T& t) -> double& { return t.color_jitter.saturation; }, 0.0, 1e3,
          "factor drawn from [1 - s, 1 + s]")
      .real(
          "color_jitter.hue", [](T& t) -> double& { return t.color_jitter.hue; }, 0.0, 0.5, "shift drawn from [-h, h]")
      .integer(
          "rand_augment.num_ops", [](T& t) -> int64_t& { return t.rand_augment.num_ops; }, 0, 16,
          "operations per image; 0 disables RandAugment")
      .integer(
          "rand_augment.num_magnitude_bins", [](T& t) -> int64_t& { return t.rand_augment.num_magnitude_bins; }, 2,
          1000, "magnitude levels")
      .integer(
          "rand_augment.magnitude", [](T& t) -> int64_t& { return t.rand_augment.magnitude; }, 0, 999,
          "strength, below num_magnitude_bins")
      .real(
          "random_erasing.p", [](T& t) -> double& { return t.random_erasing.probability; }, 0.0, 1.0,
          "probability of erasing a rectangle")
      .interval(
          "random_erasing.scale", [](T& t) -> double& { return t.random_erasing.scale_min; },
          [](T& t) -> double& { return t.random_erasing.scale_max; }, 1e-6, 1.0, "of the image area")
      .interval(
          "random_erasing.ratio", [](T& t) -> double& { return t.random_erasing.ratio_min; },
          [](T& t) -> double& { return t.random_erasing.ratio_max; }, 1e-3, 1e3, "width / height")
      .fields();
}

// data.mean and data.std: one key each for both splits' normalization.
Field<DataOptions> statistics_field(const std::string& key, std::vector<double> TransformOptions::*member,
                                    const std::string& help) {
  Field<DataOptions> field;
  field.key = key;
  field.help = help;
  field.get = [member](const DataOptions& d) { return FieldValue(d.train_transforms.*member); };
  field.set = [member](DataOptions& d, const FieldValue& value) {
    d.train_transforms.*member = std::get<std::vector<double>>(value);
    d.val_transforms.*member = std::get<std::vector<double>>(value);
  };
  field.present = [member](const DataOptions& d) { return !(d.train_transforms.*member).empty(); };
  return field;
}

std::vector<Field<DataOptions>> declare_data_fields() {
  using D = DataOptions;
  auto fields = models::nested_fields<D>(source_fields(), "train.", [](D& d) -> SourceOptions& { return d.train; });
  const auto val = models::nested_fields<D>(
      source_fields(), "val.", [](D& d) -> SourceOptions& { return *d.val; },
      [](const D& d) { return d.val.has_value(); });
  fields.insert(fields.end(), val.begin(), val.end());
  Field<D> split_seed;
  split_seed.key = "split_seed";
  split_seed.help = "seeds the val_fraction hold-out";
  split_seed.integer_max = std::numeric_limits<int64_t>::max();
  split_seed.get = [](const D& d) { return FieldValue(static_cast<int64_t>(d.split_seed)); };
  split_seed.set = [](D& d, const FieldValue& value) {
    d.split_seed = static_cast<uint64_t>(std::get<int64_t>(value));
  };
  auto scalars =
      FieldList<D>()
          .real("val_fraction", &D::val_fraction, 0.0, 0.99, "instead of val: hold out this fraction of train")
          .custom(split_seed)
          .texts("class_names", &D::class_names,
                 "ImageFolder: its class folders, in this order; CSV: the label names; IDX/CIFAR: names")
          .present_when([](const D& d) { return !d.class_names.empty(); })
          .integer("workers", &D::workers, 0, 256, "loader threads; 0: half the cores (1..8)")
          .integer("prefetch", &D::prefetch_batches, 1, 1024, "batches ready ahead of the trainer")
          .choice("on_bad_sample", &D::on_bad_sample, kBadSampleNames, "error | skip (each bad file logged once)")
          .integer("max_pixels", &D::max_pixels, 1, std::numeric_limits<int64_t>::max() / 2,
                   "refuse images whose header declares more, before decoding")
          .custom(statistics_field("mean", &TransformOptions::mean, "per channel (or one for all), of [0, 1] pixels"))
          .custom(statistics_field("std", &TransformOptions::std, "per channel (or one for all), positive"))
          .check([](const FieldValue& value) -> std::string {
            for (const double s : std::get<std::vector<double>>(value)) {
              if (s <= 0.0) return "every value must be positive";
            }
            return "";
          })
          .fields();
  fields.insert(fields.end(), scalars.begin(), scalars.end());
  for (const auto* split : kTransformSplits) {
    const auto transforms =
        models::nested_fields<D>(transform_fields(), std::string(split) + ".",
                                 [split](D& d) -> TransformOptions& { return transforms_of(d, split); });
    fields.insert(fields.end(), transforms.begin(), transforms.end());
  }
  return fields;
}

// The checks that relate keys to each other, after the section is read.
void check_data(YamlSection& section, const DataOptions& d) {
  for (const auto* split : {"train", "val"}) {
    const SourceOptions* source = std::string(split) == "train" ? &d.train : (d.val ? &*d.val : nullptr);
    if (source != nullptr && source->kind == data::SourceKind::Coco) {
      for (const auto* key : {"images", "annotations"}) {
        if (!section.section(split).has(key)) section.section(split).fail(key, "is required for a coco source");
      }
      continue;
    }
    if (source != nullptr && source->kind != data::SourceKind::Idx && !section.section(split).has("path")) {
      section.section(split).fail("path",
                                  "is required for this source (the folder root, CSV list file or CIFAR folder)");
    }
  }
  if (d.val && d.val_fraction > 0.0) section.fail("val_fraction", "cannot be combined with a separate data.val source");
  for (const auto* split : kTransformSplits) {
    const auto& augment = transforms_of(d, split).rand_augment;
    if (augment.magnitude >= augment.num_magnitude_bins) {
      section.section(split)
          .section("rand_augment")
          .fail("magnitude", "must be in [0, " + std::to_string(augment.num_magnitude_bins - 1) + "], got " +
                                 std::to_string(augment.magnitude));
    }
  }
}

}  // namespace

const std::vector<models::Field<DataOptions>>& data_fields() {
  static const auto fields = declare_data_fields();
  return fields;
}

data::DataOptions read_data(YamlSection section) {
  // The training source is read first: a validation source starts as a copy of it.
  using Fields = std::vector<Field<DataOptions>>;
  static const auto parts = [] {
    std::pair<Fields, Fields> split;
    for (const auto& field : data_fields()) {
      (field.key.rfind("train.", 0) == 0 ? split.first : split.second).push_back(field);
    }
    return split;
  }();
  const auto& [training_source, rest] = parts;
  data::DataOptions d;
  read_fields(section, training_source, d);
  // Optional parts that a key's presence switches on: a validation source starts as the
  // training one's test split; a random_resized_crop mapping enables the crop.
  if (section.has("val")) {
    d.val = d.train;
    d.val->split = "test";
  }
  for (const auto* split : kTransformSplits) {
    if (section.section(split).has("random_resized_crop")) transforms_of(d, split).random_resized_crop.enabled = true;
  }
  read_fields(section, rest, d);
  check_data(section, d);
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
  if (models::objective_of(config.model.options) == models::Objective::Detection) {
    if (config.train.mixup.enabled()) {
      top.section("train").section("mixup").fail("", "mixes class targets; a detector (model.arch detr) has none");
    }
    const auto& evaluation = config.data.val_transforms;
    if (evaluation.center_crop || evaluation.crop_pct > 0 || evaluation.random_resized_crop.enabled ||
        evaluation.random_crop_padding >= 0) {
      data.section("val_transforms")
          .fail("", "a detector is evaluated on whole images (predictions map back to the image's pixels): no crops");
    }
    for (const auto* split : kTransformSplits) {
      if (transforms_of(config.data, split).rand_augment.num_ops > 0) {
        data.section(split)
            .section("rand_augment")
            .fail("num_ops",
                  "RandAugment's geometric operations do not move "
                  "boxes; a detector cannot use it (0)");
      }
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
