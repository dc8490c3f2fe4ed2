#!/usr/bin/env bash
# The GPU check: vitcpp built against the GPU machine's LibTorch 2.x (CUDA), its device tests run
# on CUDA, its imports and exports checked by the peers that only that machine has (timm,
# tensorboard, onnxruntime, torchmetrics), its bf16 training measured against PyTorch eager and
# torch.compile, and NCCL trained with one rank. One command, well inside the device tool's
# 10-minute limit; a step that fails is reported and the next one still runs.
#
# Before the run, here (the .deb files of the libraries the GPU machine lacks; .gpu/ is ignored):
#   scripts/gpu/debs.sh download .gpu/debs
# and, for torchmetrics' mAP, which needs pycocotools (absent there, and no network): its source
# in .gpu/pycocotools (setup.py, pycocotools/ and common/, as in github.com/ppwwyyxx/cocoapi's
# PythonAPI), built there with the machine's Cython:
#   git -C COCOAPI archive HEAD PythonAPI/pycocotools PythonAPI/setup.py common | tar x -C /tmp/coco
#   mkdir -p .gpu/pycocotools && cp -r /tmp/coco/PythonAPI/* /tmp/coco/common .gpu/pycocotools/
# On the GPU machine (the device tool: carry [".gpu"]):
#   scripts/gpu_check.sh                 # report and logs in bench/tmp/gpu/; with $OUT set, the
#                                        # report and a tarball of the logs there, after each step
# In CI, on the CPU (the same steps on small cases, to keep the script's logic tested):
#   scripts/gpu_check.sh --cpu-only      # uses the test build in build/; downloads the .deb files
#
# The results of a GPU run go to bench/gpu.md by hand, with the date.
set -uo pipefail
cd "$(dirname "$0")/.."

cpu_only=0
[[ ${1:-} == --cpu-only ]] && cpu_only=1
out=bench/tmp/gpu
mkdir -p "$out"
report=$out/gpu.md
# The device tool brings back at most 8 files from $OUT: the report and one tarball of the logs,
# refreshed after every step so that a run stopped at its time limit still returns what it did.
returned=${OUT:-}
python=${VIT_PYTHON:-python3}
((cpu_only)) && python=/usr/bin/python3  # Debian's interpreter, where python3-torch lives
export VIT_PYTHON=$python                # vit export --format onnx runs scripts/export_onnx.py with it
debs=.gpu/debs
root=${TMPDIR:-/tmp}/vitcpp-gpu-root
failures=0
# The device tool stops a command at 600 s: a step that would not finish in what is left of the
# budget is reported as skipped instead, so that the report still comes back.
budget=${GPU_CHECK_SECONDS:-560}
((cpu_only)) && budget=${GPU_CHECK_SECONDS:-3600}

log() { echo "gpu_check: $*" >&2; }
result() {  # step, PASS/FAIL/SKIP, detail
  echo "| $1 | $2 | $3 |" >>"$report"
  log "$1: $2 $3"
  [[ $2 == FAIL ]] && failures=$((failures + 1))
  if [[ -n $returned ]]; then
    cp "$report" "$returned/gpu.md"
    (cd "$out" && tar czf "$returned/logs.tar.gz" --ignore-failed-read ./*.log ./*.rows ./*.json 2>/dev/null)
  fi
  return 0
}
# Reports each markdown row "| step | STATUS | detail |" that a helper script wrote to FILE.
results_of() {
  local step status detail
  while IFS='|' read -r _ step status detail _; do
    result "$(echo $step)" "$(echo $status)" "$(echo $detail)"
  done <"$1"
}
# Runs step function FUNCTION (reported as NAME) when NEED seconds of the budget are left.
within_budget() {
  local name=$1 need=$2
  shift 2
  if ((SECONDS + need > budget)); then
    result "$name" SKIP "$((budget - SECONDS)) s of the ${budget}-s budget left, about $need needed"
    return 0
  fi
  "$@"
}
# Runs a command with its output in $out/NAME.log; the log's tail on failure.
logged() {
  local name=$1
  shift
  if "$@" >"$out/$name.log" 2>&1; then return 0; fi
  tail -n 30 "$out/$name.log" >&2
  return 1
}

header() {
  local device
  if ((cpu_only)); then
    device="CPU dry run ($(nproc) cores), no GPU"
  else
    device=$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "no nvidia-smi")
  fi
  {
    echo "# GPU check, $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo
    echo "- device: $device"
    echo "- PyTorch / LibTorch: $("$python" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)' 2>&1 | tail -n 1)"
    echo
    echo "| step | result | detail |"
    echo "| --- | --- | --- |"
  } >"$report"
}

# 1. The build: Release, against the unpacked .deb files and the machine's LibTorch. On the CPU
# the configuration alone is checked against them (a second full build would take CI 20 minutes);
# the later steps use the test build.
build() {
  if [[ ! -d $debs ]]; then
    ((cpu_only)) || { result build FAIL "no .deb files in $debs: run scripts/gpu/debs.sh download $debs here first"; return 1; }
    logged debs scripts/gpu/debs.sh download "$debs" || { result build FAIL "downloading the .deb files"; return 1; }
  fi
  logged unpack scripts/gpu/debs.sh unpack "$debs" "$root" || { result build FAIL "unpacking the .deb files"; return 1; }
  local torch_prefix build_dir=build-gpu generator=()
  command -v ninja >/dev/null && generator=(-G Ninja)
  torch_prefix=$("$python" -c 'import torch; print(torch.utils.cmake_prefix_path)') ||
    { result build FAIL "$python has no torch"; return 1; }
  ((cpu_only)) && build_dir=$out/configure-only
  # The executables find the carried libraries, and the libraries each other, through an old-style
  # RPATH (which, unlike RUNPATH, serves a library's own dependencies too): no LD_LIBRARY_PATH,
  # which would also put Debian's zlib or libpng in front of the machine's own in Python.
  # The wheel keeps NCCL's and cuDNN's headers in its nvidia-* packages, where neither c10d's NCCL
  # process group nor LibTorch's CMake package (FindCUDNN) looks (none of them on the CPU).
  local hints=()
  mapfile -t hints < <("$python" - <<'PY' 2>/dev/null
import glob, os
try:
    import nvidia.nccl, nvidia.cudnn
except ImportError:
    raise SystemExit
nccl, cudnn = (list(package.__path__)[0] for package in (nvidia.nccl, nvidia.cudnn))
print(f"-DNCCL_INCLUDE_DIR={nccl}/include")
print(f"-DCUDNN_INCLUDE_PATH={cudnn}/include")
for library in sorted(glob.glob(f"{cudnn}/lib/libcudnn.so*"))[:1]:
    print(f"-DCUDNN_LIBRARY_PATH={library}")
PY
)
  logged configure cmake -S . -B "$build_dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DVIT_BUILD_TESTS=ON \
    "${hints[@]}" \
    -DCMAKE_PREFIX_PATH="$root/usr;$torch_prefix" -DCMAKE_BUILD_RPATH="$root/usr/lib/x86_64-linux-gnu" \
    -DCMAKE_EXE_LINKER_FLAGS=-Wl,--disable-new-dtags ||
    { result build FAIL "cmake configure (see configure.log)"; return 1; }
  local package dir outside=()
  for package in OpenCV yaml-cpp spdlog fmt GTest nlohmann_json; do
    dir=$(sed -n "s/^${package}_DIR:PATH=//p" "$build_dir/CMakeCache.txt")
    [[ $dir == "$root"/* ]] || outside+=("$package:$dir")
  done
  [[ $(sed -n 's/^TURBOJPEG_LIBRARY:FILEPATH=//p' "$build_dir/CMakeCache.txt") == "$root"/* ]] || outside+=(turbojpeg)
  ((${#outside[@]} == 0)) || { result build FAIL "found outside the unpacked root: ${outside[*]}"; return 1; }
  if ((cpu_only)); then
    result build PASS "the carried libraries closed and loaded (a PNG round trip through them); configured against them and $torch_prefix (CPU: configure only)"
    vit_build=build
    return 0
  fi
  local start=$SECONDS
  logged build cmake --build "$build_dir" -j "$(nproc)" || { result build FAIL "compile (see build.log)"; return 1; }
  result build PASS "$(nproc) cores, $((SECONDS - start)) s"
  vit_build=$build_dir
}

passed() { grep -o 'out of [0-9]*' "$1" | sed 's/out of \(.*\)/\1 tests passed/'; }
failed() { sed -n '/tests FAILED:/,$p' "$1" | grep -o '[A-Za-z0-9_]*\.[A-Za-z0-9_]*' | head -n 20 | tr '\n' ' '; }

# 2. The device tests (suites named *OnDevice, which honour VIT_TEST_DEVICE) on CUDA.
device_tests() {
  local device=cuda
  ((cpu_only)) && device=cpu
  VIT_TEST_DEVICE=$device logged device_tests ctest --test-dir "$vit_build" -R OnDevice -j 2 --timeout 120 \
    --output-on-failure &&
    result "device tests ($device)" PASS "$(passed "$out/device_tests.log")" ||
    result "device tests ($device)" FAIL "$(failed "$out/device_tests.log")"
}

# torchmetrics' MeanAveragePrecision computes through pycocotools or faster_coco_eval.
coco_backend() {
  "$python" -c 'import importlib.util as u, sys
sys.exit(not (u.find_spec("pycocotools") or u.find_spec("faster_coco_eval")))' && return 0
  [[ -f .gpu/pycocotools/setup.py ]] || return 0
  local dir=$out/pycocotools
  rm -rf "$dir"
  cp -r .gpu/pycocotools "$dir"
  if (cd "$dir" && "$python" setup.py build_ext --inplace) >"$out/pycocotools.log" 2>&1; then
    export PYTHONPATH=$PWD/$dir${PYTHONPATH:+:$PYTHONPATH}
  else
    log "pycocotools did not build from .gpu/pycocotools (see pycocotools.log)"
  fi
}

# 3. The peers: timm's models imported, TensorBoard's reader, onnxruntime, torchmetrics.
peers() {
  coco_backend
  local flag=()
  ((cpu_only)) && flag=(--allow-missing)
  timeout 240 "$python" scripts/gpu/peers.py --vit "$vit_build/vit" --work "$out/peers" --device "$(((cpu_only)) && echo cpu || echo cuda)" \
    "${flag[@]}" 2>"$out/peers.log" >>"$out/peers.rows" || true
  [[ -s $out/peers.rows ]] || { result peers FAIL "peers.py wrote nothing (see peers.log)"; return; }
  results_of "$out/peers.rows"
}

# 4. bf16 training speed: vitcpp, PyTorch eager and torch.compile on the same model and step.
performance() {
  local config=$out/perf.yaml batch=128 steps=20 device=cuda
  if ((cpu_only)); then
    echo 'model: {preset: vit_micro_patch4_28, num_classes: 10}' >"$config"
    batch=8 steps=2 device=cpu
  else
    echo 'model: {preset: vit_base_patch16_224, num_classes: 1000}' >"$config"
  fi
  echo 'train: {optimizer: adamw, lr: 1.0e-3, weight_decay: 0.05, grad_clip: 1.0, amp: bf16}' >>"$config"
  logged bench_vitcpp timeout 120 "$vit_build/vit" bench --config "$config" --mode train --batch-size $batch --device $device \
    --warmup 3 --steps $steps --repeats 3 --json || { result performance FAIL "vit bench (see bench_vitcpp.log)"; return; }
  tail -n 1 "$out/bench_vitcpp.log" >"$out/bench_vitcpp.json"
  logged bench_eager timeout 120 "$python" scripts/bench/reference.py --like "$out/bench_vitcpp.json" ||
    { result performance FAIL "reference.py (see bench_eager.log)"; return; }
  local compiled=$out/bench_compile.log
  if "$python" -c 'import torch, sys; sys.exit(not hasattr(torch, "compile"))'; then
    logged bench_compile timeout 240 "$python" scripts/bench/reference.py --like "$out/bench_vitcpp.json" --compile ||
      result "performance: torch.compile" FAIL "see bench_compile.log"
  else
    compiled=
  fi
  "$vit_build/vit" info --config "$config" --json >"$out/perf_info.json"
  "$python" scripts/gpu/perf_row.py "$out/bench_vitcpp.json" "$out/bench_eager.log" "$compiled" "$out/perf_info.json" \
    "$((cpu_only))" >>"$out/perf.rows" || { result performance FAIL "perf_row.py"; return; }
  results_of "$out/perf.rows"
}

# 5. Data-parallel training with one rank, on a generated detection task (the machine has no
# network for Fashion-MNIST): NCCL on CUDA (Gloo on the CPU).
one_rank() {
  local device=cuda backend=NCCL
  ((cpu_only)) && device=cpu backend=Gloo
  logged one_rank_data "$vit_build/vit" data synth-detection --output "$out/one_rank_data" --train-images 32 \
    --val-images 8 || { result "data-parallel, 1 rank" FAIL "vit data synth-detection"; return; }
  logged one_rank timeout 120 "$vit_build/vit" train --config "$out/one_rank_data/detection.yaml" --nproc 1 --device $device \
    --output "$out/one_rank" --set train.epochs=1 &&
    result "data-parallel, 1 rank ($backend)" PASS "$(grep -o 'epoch 1:.*' "$out/one_rank.log" | head -n 1)" ||
    result "data-parallel, 1 rank ($backend)" FAIL "see one_rank.log"
}

# 6. Last, as time allows: the unit tests on the CPU against this LibTorch (2.x on the GPU machine).
unit_tests() {
  logged unit_tests ctest --test-dir "$vit_build" -L unit -j "$(nproc)" --timeout 120 --output-on-failure &&
    result "unit tests (CPU, this LibTorch)" PASS "$(passed "$out/unit_tests.log")" ||
    result "unit tests (CPU, this LibTorch)" FAIL "$(failed "$out/unit_tests.log")"
}

rm -rf "$out"/*.rows "$out"/*.log "$out"/peers "$out"/one_rank "$out"/one_rank_data "$out"/pycocotools
header
# Most telling first: the device tests, then one rank, the speed, the peers (a detector trains for
# them), and the CPU unit tests as time allows (CI has just run them on the CPU).
if build; then
  within_budget "device tests" 120 device_tests
  within_budget "data-parallel, 1 rank" 60 one_rank
  within_budget performance 200 performance
  within_budget peers 200 peers
  ((cpu_only)) || within_budget "unit tests (CPU, this LibTorch)" 120 unit_tests
else
  result "later steps" SKIP "no build"
fi
echo >>"$report"
cat "$report"
((failures == 0))
