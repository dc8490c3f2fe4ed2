#pragma once

// The YAML spelling of every enumerated config value, shared by the reader and the emitter.

#include "app/config/config.h"
#include "models/core/name_table.h"

#include <string>
#include <utility>
#include <vector>

namespace vit::app {

using models::name_of;
using models::NameTable;

inline const NameTable<data::SourceKind> kSourceNames = {{"imagefolder", data::SourceKind::ImageFolder},
                                                         {"csv", data::SourceKind::Csv},
                                                         {"idx", data::SourceKind::Idx},
                                                         {"cifar", data::SourceKind::Cifar},
                                                         {"coco", data::SourceKind::Coco}};
inline const NameTable<std::string> kSplitNames = {{"train", "train"}, {"test", "test"}};
inline const NameTable<data::BadSamplePolicy> kBadSampleNames = {{"error", data::BadSamplePolicy::Error},
                                                                 {"skip", data::BadSamplePolicy::Skip}};
inline const NameTable<OptimizerKind> kOptimizerNames = {{"adamw", OptimizerKind::AdamW}, {"sgd", OptimizerKind::Sgd}};
inline const NameTable<ScheduleKind> kScheduleNames = {
    {"cosine", ScheduleKind::Cosine}, {"step", ScheduleKind::Step}, {"constant", ScheduleKind::Constant}};
inline const NameTable<DistBackend> kDistBackendNames = {
    {"auto", DistBackend::Auto}, {"gloo", DistBackend::Gloo}, {"nccl", DistBackend::Nccl}};
inline const NameTable<DistillationKind> kDistillationNames = {
    {"none", DistillationKind::None}, {"soft", DistillationKind::Soft}, {"hard", DistillationKind::Hard}};
inline const NameTable<AmpMode> kAmpNames = {{"none", AmpMode::None}, {"bf16", AmpMode::Bf16}, {"fp16", AmpMode::Fp16}};

}  // namespace vit::app
