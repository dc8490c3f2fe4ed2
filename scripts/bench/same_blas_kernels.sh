# Sourced by the benchmarks that time a Python peer, after the build: the peer runs on the OpenBLAS
# kernels that vit runs on. Where OpenBLAS takes a CPU newer than its table for a Prescott, vit
# replaces those generic kernels (README, Performance: "The right BLAS kernels") and Python's torch keeps them; without
# this the ratios would measure the kernels, not the code. An OPENBLAS_CORETYPE the caller set holds
# for both sides as it is.
if [[ -z "${OPENBLAS_CORETYPE:-}" ]]; then
  vit_blas_kernels=$(build/vit --version | sed -n 's/^BLAS kernels: \([A-Za-z0-9]*\) (chosen by vit.*/\1/p')
  if [[ -n "$vit_blas_kernels" ]]; then
    export OPENBLAS_CORETYPE=$vit_blas_kernels
    echo "bench: the Python peers run on vit's OpenBLAS kernels (OPENBLAS_CORETYPE=$vit_blas_kernels)" >&2
  fi
fi
