#!/usr/bin/env bash
# The clang AddressSanitizer + UndefinedBehaviorSanitizer build in build-sanitize/, without the
# precompiled header (so every file must include what it uses): runs the unit
# tests of the input-parsing code, the bad-input suite and the attention kernels that compute their
# own memory offsets (BatchedMatmul, FusedAttention, ScaledSoftmax, ResidualLayerNorm, the bf16 rounding and
# GELU kernels of Bf16Products and Bf16Gelu, the unpacked products of UnpackedGemm) under the sanitizers, then each
# libFuzzer target for FUZZ_SECONDS (default 30) from its seed corpus in tests/fuzz/corpus/.
# New inputs the fuzzers find go to build-sanitize/corpus/, crashes to build-sanitize/crashes/.
#
# Environment: FUZZ_SECONDS (30), FUZZ_TARGETS (all), VIT_JOBS (nproc)
set -euo pipefail
cd "$(dirname "$0")/.."
VIT_BUILD=0 scripts/setup.sh

cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER=clang++ \
  -DVIT_SANITIZE=ON -DVIT_FUZZ=ON -DVIT_BUILD_TESTS=ON -DVIT_PCH=OFF >/dev/null
targets=(${FUZZ_TARGETS:-idx cifar csv coco config checkpoint image_header safetensors pickle event_file})
cmake --build build-sanitize -j"${VIT_JOBS:-$(nproc)}" --target vit vit_unit_tests vit_e2e_tests "${targets[@]/#/fuzz_}"

# LibTorch and OpenMP keep allocations alive until exit by design: leak checks would only report those.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
sanitized_tests='TorchPickle|EventFile|IdxFile|IdxDataset|CifarDataset|CsvList|ImageFile|ImageFolder|Config|Bad|Transform|CenterCrop|RandomResizedCrop|RandAugment|ColorOps|BatchedMatmul|Bf16Products|Bf16Gelu|UnpackedGemm|FusedAttention|FusedAdamW|ScaledSoftmax|ResidualLayerNorm|TeachersThatDoNotFit|UnlabeledLists|MaskedAutoencoder|SwinTransformer|SwinReference|CocoDataset|ObjectBoxes|SyntheticShapes|MeanAveragePrecision|LinearAssignment|DetectionReference|HungarianMatch|DetectionLoss|Detr'
(cd build-sanitize && ctest --output-on-failure -j"$(nproc)" -R "$sanitized_tests")

mkdir -p build-sanitize/crashes
for target in "${targets[@]}"; do
  corpus=build-sanitize/corpus/$target
  mkdir -p "$corpus"
  echo "sanitize: fuzzing $target for ${FUZZ_SECONDS:-30} s"
  log=build-sanitize/fuzz_$target.log
  status=0
  build-sanitize/tests/fuzz/fuzz_"$target" -max_total_time="${FUZZ_SECONDS:-30}" -max_len=65536 -rss_limit_mb=4096 \
    -artifact_prefix=build-sanitize/crashes/"$target"- -print_final_stats=1 "$corpus" tests/fuzz/corpus/"$target" \
    >"$log" 2>&1 || status=$?
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "$log" || true
  if [[ $status -ne 0 ]]; then
    tail -40 "$log" >&2
    echo "sanitize: fuzz_$target failed (exit $status); the input is in build-sanitize/crashes/" >&2
    exit 1
  fi
done
echo "sanitize: all clean"
