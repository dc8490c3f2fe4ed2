#!/usr/bin/env bash
# Training throughput under load: `vit bench --mode train` (the default config's model and step) and
# the same step in PyTorch eager (scripts/bench/reference.py --like), each alone and beside one busy
# process at the same priority (`while :; do :; done`), in the same run; vitcpp also with the
# settings that trade solo speed for robustness (OMP_WAIT_POLICY=PASSIVE, one intra-op thread).
# Each case's share of its solo throughput is the figure; the target is >= 50 % beside one busy process.
# Writes bench/contention.json and bench/contention.md (also printed).
#
# Environment: ROUNDS (3: solo/busy rounds, alternating), CONFIG (the default config), STEPS (20)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
source scripts/bench/same_blas_kernels.sh

python=/usr/bin/python3
work=bench/tmp/contention
mkdir -p "$work"
config_args=()
[[ -n "${CONFIG:-}" ]] && config_args=(--config "$CONFIG")
busy_pid=""
stop_busy() {
  if [[ -n "$busy_pid" ]]; then
    kill "$busy_pid" 2>/dev/null || true
    wait "$busy_pid" 2>/dev/null || true  # the killed loop's status is not a failure
  fi
  busy_pid=""
}
trap stop_busy EXIT

measure() {  # name load -> appends one JSON line to results.jsonl
  local name=$1 load=$2 out="$work/$1-$2.json"
  case $name in
    vitcpp) build/vit bench --mode train "${config_args[@]}" --warmup 3 --steps "${STEPS:-20}" --repeats 3 --json >"$out" ;;
    vitcpp_passive) OMP_WAIT_POLICY=PASSIVE build/vit bench --mode train "${config_args[@]}" --warmup 3 \
      --steps "${STEPS:-20}" --repeats 3 --json >"$out" ;;
    vitcpp_1thread) build/vit bench --mode train "${config_args[@]}" --threads 1 --warmup 3 --steps "${STEPS:-20}" \
      --repeats 3 --json >"$out" ;;
    reference) "$python" scripts/bench/reference.py --like "$work/like.json" >"$out" ;;
  esac
  "$python" -c "import json, sys; r = json.load(open(sys.argv[1])); print(json.dumps({'case': sys.argv[2], 'load': sys.argv[3], 'images_per_s': r['images_per_s_median'], 'threads': r.get('threads')}))" \
    "$out" "$name" "$load" >>"$work/results.jsonl"
}

rm -f "$work/results.jsonl"
build/vit bench --mode train "${config_args[@]}" --warmup 3 --steps "${STEPS:-20}" --repeats 3 --json >"$work/like.json"
for round in $(seq "${ROUNDS:-3}"); do
  echo "bench_contention: round $round, alone" >&2
  for name in vitcpp reference vitcpp_passive vitcpp_1thread; do measure "$name" solo; done
  echo "bench_contention: round $round, beside one busy process" >&2
  bash -c 'while :; do :; done' &
  busy_pid=$!
  for name in vitcpp reference vitcpp_passive vitcpp_1thread; do measure "$name" busy; done
  stop_busy
done
"$python" scripts/bench/contention_report.py --json bench/contention.json "$work/results.jsonl" >bench/contention.md
cat bench/contention.md
