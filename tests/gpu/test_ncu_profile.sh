#!/usr/bin/env bash
# tests/gpu/test_ncu_profile.sh — ncu_profile.sh's plumbing without a GPU or Nsight
# Compute: a stand-in `ncu` (NCU=...) records its arguments, writes the report on
# --export and prints pages on --import. Checks: each run profiles the N-th launch of its
# kernels with the sections, exports then imports (details and raw CSV), the files land
# in OUTDIR; a failing ncu fails the script and names the run; no ncu at all is a skip
# (77).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fails=0
check() { # description, condition...
  local what=$1
  shift
  if "$@"; then echo "PASS $what"; else echo "FAIL $what"; fails=$((fails + 1)); fi
}

cat >"$dir/ncu" <<'EOF'
#!/usr/bin/env bash
echo "$*" >>"$NCU_ARGS"
[ "${NCU_FAIL:-}" = 1 ] && { echo "==ERROR== stand-in failure"; exit 1; }
prev=""
for a in "$@"; do
  [ "$prev" = --export ] && { : >"$a.ncu-rep"; echo "==PROF== Profiling \"k\": 0%"; }
  [ "$prev" = --import ] && { [ -f "$a" ] || exit 3; echo "page of $a"; }
  prev=$a
done
exit 0
EOF
chmod +x "$dir/ncu"

NCU="$dir/ncu" NCU_ARGS="$dir/args" bash "$here/ncu_profile.sh" "$dir/out" /no/build \
  >"$dir/run.log" 2>&1
rc=$?
check "exit 0 with a working ncu" [ "$rc" -eq 0 ]
for run in step decode decode_share; do
  check "$run: the detail page written" grep -q "page of" "$dir/out/ncu_$run.txt"
  check "$run: the raw CSV written" test -s "$dir/out/ncu_$run.csv"
  check "$run: the program's log written" grep -q "==PROF==" "$dir/out/ncu_$run.log"
done
check "the step run takes the 30th launch of the attention backward kernels" \
  grep -q -- "--kernel-id ::regex:fa2_bwd_dkdv.*:30 " "$dir/args"
check "the decode run takes the 200th launch" grep -q -- "--kernel-id ::regex:attention_split.*:200 " "$dir/args"
check "the sections asked for" grep -q -- "--section WarpStateStats" "$dir/args"
check "the training program and its shape" grep -q -- "/no/build/tests/bench/bench_step --device cuda --model builtin:qwen2.5-0.5b" "$dir/args"
check "imported twice per run (details, raw CSV)" [ "$(grep -c -- '--import' "$dir/args")" -eq 6 ]
check "the grouped run picks the shared-prefix kernel by mangled name" \
  grep -q -- "--kernel-name-base mangled --kernel-id ::regex:attention_split_mma_kernelILi64.*Lb1E:50 " "$dir/args"
check "the grouped run's program: 8 groups" grep -q -- "--n 64 .*--groups 8" "$dir/args"

NCU="$dir/ncu" NCU_ARGS="$dir/args2" NCU_FAIL=1 bash "$here/ncu_profile.sh" "$dir/out2" /no/build \
  >"$dir/run2.log" 2>&1
rc=$?
check "a failing ncu: exit 1" [ "$rc" -eq 1 ]
check "a failing ncu: the run named" grep -q "step: ncu failed" "$dir/run2.log"

PATH=/usr/bin:/bin NCU= bash "$here/ncu_profile.sh" "$dir/out3" /no/build >"$dir/run3.log" 2>&1
rc=$?
if ls /usr/local/cuda*/bin/ncu /opt/nvidia/nsight-compute/*/ncu >/dev/null 2>&1 ||
   command -v ncu >/dev/null 2>&1; then
  echo "SKIP no-ncu case: this machine has an ncu"
else
  check "no ncu: a skip (77)" [ "$rc" -eq 77 ]
  check "no ncu: says where it looked" grep -q "looked in" "$dir/run3.log"
fi
[ "$fails" -eq 0 ] || { echo "test_ncu_profile.sh: $fails failed"; cat "$dir/run.log"; exit 1; }
echo "test_ncu_profile.sh: all passed"
