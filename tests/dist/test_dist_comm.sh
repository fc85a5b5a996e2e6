#!/usr/bin/env bash
# tests/dist/test_dist_comm.sh TEST_DIST_COMM — the communicator under mpirun:
#   1. every collective on 2 and 4 ranks (4 oversubscribed on a 2-core machine);
#   2. timeout: rank 1 never enters an all-reduce; the job must exit non-zero within a few
#      seconds with a message naming rank 1, and leave no process behind.
# Skips (77) when mpirun is missing.
set -u
exe=$1
command -v mpirun >/dev/null || { echo "SKIP: mpirun not found"; exit 77; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader,tcp OMPI_MCA_rmaps_base_oversubscribe=1
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
for np in 2 4; do
  timeout 120 mpirun -np $np --oversubscribe "$exe" > "$tmp/out$np" 2>&1 || { cat "$tmp/out$np"; fail "collectives on $np ranks"; }
  [ "$(grep -c 'collectives ok' "$tmp/out$np")" = $np ] || { cat "$tmp/out$np"; fail "not every rank passed on $np"; }
done
t0=$(date +%s)
RLVR_DIST_TIMEOUT_S=3 timeout 60 mpirun -np 2 --oversubscribe "$exe" timeout > "$tmp/to" 2>&1
rc=$?; t1=$(date +%s)
[ $rc -ne 0 ] && [ $rc -ne 124 ] || { cat "$tmp/to"; fail "timeout test exited $rc (0 = no error, 124 = hang)"; }
grep -q 'rank 1 did not arrive' "$tmp/to" || { cat "$tmp/to"; fail "message does not name rank 1"; }
[ $((t1 - t0)) -le 30 ] || fail "took $((t1 - t0)) s for a 3 s timeout"
for _ in $(seq 15); do pgrep -f "$exe timeout" >/dev/null || break; sleep 1; done
if pgrep -f "$exe timeout" >/dev/null; then fail "processes left behind: $(pgrep -af "$exe timeout")"; fi
echo "dist comm: collectives on 2 and 4 ranks ok; hung rank 1 stopped the job in $((t1 - t0)) s (exit $rc)"
grep 'did not arrive' "$tmp/to" | head -1
