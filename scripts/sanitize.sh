#!/usr/bin/env bash
# The clang AddressSanitizer + UndefinedBehaviorSanitizer build in build-sanitize/, the libraries
# and vit without the precompiled header (so every file of theirs must include what it uses): runs the unit
# tests of the input-parsing code, the bad-input suite and the attention kernels that compute their
# own memory offsets (BatchedMatmul, FusedAttention, ScaledSoftmax, ResidualLayerNorm, the bf16 rounding and
# GELU kernels of Bf16Products and Bf16Gelu, the unpacked products of UnpackedGemm and the packed ones of
# LinearGelu, the tile products of AmxAttention and AmxLinear where the CPU has AMX) under the sanitizers, then each
# libFuzzer target for FUZZ_SECONDS (default 30) from its seed corpus in tests/fuzz/corpus/, VIT_JOBS
# of them at once.
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
echo "sanitize: built in $SECONDS s"

# LibTorch and OpenMP keep allocations alive until exit by design: leak checks would only report those.
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
sanitized_tests='TorchPickle|EventFile|IdxFile|IdxDataset|CifarDataset|CsvList|ImageFile|ImageFolder|Config|Bad|Transform|CenterCrop|RandomResizedCrop|RandAugment|ColorOps|BatchedMatmul|Bf16Products|Bf16Gelu|UnpackedGemm|LinearGelu|FusedAttention|AmxAttention|AmxLinear|FusedAdamW|ShardedSgd|BatchShards|MemoryBudget|ScaledSoftmax|ResidualLayerNorm|TeachersThatDoNotFit|UnlabeledLists|MaskedAutoencoder|SwinTransformer|SwinReference|CocoDataset|ObjectBoxes|SyntheticShapes|MeanAveragePrecision|LinearAssignment|DetectionReference|HungarianMatch|DetectionLoss|Detr'
(cd build-sanitize && ctest --output-on-failure -j"$(nproc)" -R "$sanitized_tests")
echo "sanitize: built and tested in $SECONDS s"

mkdir -p build-sanitize/crashes
# Each fuzzer runs on one core: as many at once as there are jobs, so that 30 s each costs 30 s per
# core rather than 30 s per target in a row.
fuzz() {
  local target=$1 status=0
  local corpus=build-sanitize/corpus/$target
  mkdir -p "$corpus"
  build-sanitize/tests/fuzz/fuzz_"$target" -max_total_time="${FUZZ_SECONDS:-30}" -max_len=65536 -rss_limit_mb=4096 \
    -artifact_prefix=build-sanitize/crashes/"$target"- -print_final_stats=1 "$corpus" tests/fuzz/corpus/"$target" \
    >build-sanitize/fuzz_"$target".log 2>&1 || status=$?
  echo "$status" >build-sanitize/fuzz_"$target".status
}
for target in "${targets[@]}"; do
  while (($(jobs -rp | wc -l) >= ${VIT_JOBS:-$(nproc)})); do wait -n || true; done
  echo "sanitize: fuzzing $target for ${FUZZ_SECONDS:-30} s"
  fuzz "$target" &
done
wait
failed=0
for target in "${targets[@]}"; do
  log=build-sanitize/fuzz_$target.log
  status=$(cat build-sanitize/fuzz_"$target".status)
  echo "sanitize: fuzz_$target"
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "$log" || true
  if [[ $status -ne 0 ]]; then
    tail -40 "$log" >&2
    echo "sanitize: fuzz_$target failed (exit $status); the input is in build-sanitize/crashes/" >&2
    failed=1
  fi
done
((failed == 0)) || exit 1
echo "sanitize: all clean in $SECONDS s"
