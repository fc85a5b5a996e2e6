# tests/dist/lib.sh — the shared start of the data-parallel training tests (sourced, with
# rlvr, make_model and tokdir set): skips (77) without mpirun; OpenMPI settings for root
# and for more ranks than cores; a temporary working directory, removed on exit; the
# helpers fail and mpi (NP then the command, 300 s at most); and the model "m" (a
# random tiny Qwen3 with 2338 tokens, 3 layers) with the GPT-2 tokenizer files.
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_rmaps_base_oversubscribe=1
unset RLVR_DIST RLVR_DIST_TIMEOUT_S
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
mpi() { local np=$1; shift; timeout 300 mpirun -np "$np" --oversubscribe "$@"; }
"$make_model" tiny-qwen3 2338 m 3 >/dev/null || fail make_model
cp "$tokdir"/tokenizer*.json m/
