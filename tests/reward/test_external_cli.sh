#!/usr/bin/env bash
# tests/reward/test_external_cli.sh — `rlvr score` with the sat and external built-ins,
# in-process and under isolation "process": per-item rewards of the example Python
# reward and of sat, and no external process left behind after the command exits.
# usage: test_external_cli.sh RLVR REPO_ROOT   (exit 77 when python3 is missing)
set -u
rlvr=$1
root=$2
command -v python3 >/dev/null || exit 77
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ex="$root/rewards/examples/external_reward.py"
cat > "$tmp/rows.jsonl" <<'ROWS'
{"prompt":"p","completion":"<answer>42</answer>","answer":"42","group_id":0}
{"prompt":"p","completion":"41","answer":"42","group_id":0}
{"prompt":"q","completion":"x1=T x2=T x3=F","answer":"","cnf":"p cnf 3 3\n1 -2 0\n2 3 0\n-1 -3 0","group_id":1}
{"prompt":"q","completion":"1 -2 3 0","answer":"","cnf":"p cnf 3 3\n1 -2 0\n2 3 0\n-1 -3 0","group_id":1}
ROWS
fail=0
for iso in thread process; do
  out=$("$rlvr" score --workers 2 --input "$tmp/rows.jsonl" \
        --reward "external:{\"command\":[\"python3\",\"$ex\"],\"isolation\":\"$iso\"}" \
        --reward sat 2>"$tmp/err")
  got=$(printf '%s\n' "$out" | python3 -c '
import json, sys
for l in sys.stdin:
    r = json.loads(l)["rewards"]
    print(r["external"], r["sat"])')
  want=$'1 None\n0 None\nNone 1\nNone 0'
  if [ "$got" != "$want" ]; then
    echo "FAIL isolation=$iso: got"; echo "$got"; cat "$tmp/err"; fail=1
  fi
done
sleep 0.2
if pgrep -f "$ex" >/dev/null; then
  echo "FAIL: external reward process left behind"; pgrep -af "$ex"; fail=1
fi
[ $fail = 0 ] && echo "external/sat CLI: ok"
exit $fail
