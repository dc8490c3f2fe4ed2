#pragma once

// The YAML spelling of every enumerated config value, shared by the reader and the emitter.

#include "app/config.h"

#include <string>
#include <utility>
#include <vector>

namespace vit::app {

template <typename Enum>
using NameTable = std::vector<std::pair<std::string, Enum>>;

inline const NameTable<models::PosEmbedKind> kPosEmbedNames = {{"learned", models::PosEmbedKind::Learned},
                                                               {"sincos", models::PosEmbedKind::SinCos2d},
                                                               {"sinusoid", models::PosEmbedKind::Sinusoid1d},
                                                               {"none", models::PosEmbedKind::None}};
inline const NameTable<models::PoolKind> kPoolNames = {{"cls", models::PoolKind::Cls},
                                                       {"mean", models::PoolKind::Mean}};
inline const NameTable<data::SourceKind> kSourceNames = {{"imagefolder", data::SourceKind::ImageFolder},
                                                         {"csv", data::SourceKind::Csv},
                                                         {"idx", data::SourceKind::Idx},
                                                         {"cifar", data::SourceKind::Cifar}};
inline const NameTable<data::BadSamplePolicy> kBadSampleNames = {{"error", data::BadSamplePolicy::Error},
                                                                 {"skip", data::BadSamplePolicy::Skip}};
inline const NameTable<OptimizerKind> kOptimizerNames = {{"adamw", OptimizerKind::AdamW}, {"sgd", OptimizerKind::Sgd}};
inline const NameTable<ScheduleKind> kScheduleNames = {
    {"cosine", ScheduleKind::Cosine}, {"step", ScheduleKind::Step}, {"constant", ScheduleKind::Constant}};
inline const NameTable<DistBackend> kDistBackendNames = {
    {"auto", DistBackend::Auto}, {"gloo", DistBackend::Gloo}, {"nccl", DistBackend::Nccl}};
inline const NameTable<AmpMode> kAmpNames = {{"none", AmpMode::None}, {"bf16", AmpMode::Bf16}, {"fp16", AmpMode::Fp16}};

template <typename Enum>
const std::string& name_of(const NameTable<Enum>& table, Enum value) {
  for (const auto& [name, entry] : table) {
    if (entry == value) return name;
  }
  return table.front().first;  // unreachable while every enumerator has a name
}

}  // namespace vit::app
