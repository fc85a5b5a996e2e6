#!/usr/bin/env bash
# tests/reward/test_cli_score.sh — `rlvr score` end to end: built-ins with weights, the
# example out-of-tree plugin built with its one compiler line, --info, isolation:process,
# and the errors a user meets (bad option, bad JSON line, unknown reward, bad config).
# usage: test_cli_score.sh RLVR_BINARY SOURCE_DIR
set -u
rlvr=$1
src=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # description, command...
  local what=$1; shift
  if ! "$@"; then echo "FAIL: $what"; fail=1; fi
}

# The example plugin builds with one compiler line against the header.
cc -shared -fPIC -O2 -Wall -Wextra -Werror -I "$src/rewards/include" \
   -o "$tmp/exact_match.so" "$src/rewards/examples/exact_match.c" || { echo "FAIL: example build"; exit 1; }

cat > "$tmp/in.jsonl" <<'JSON'
{"prompt":"2+2?","completion":"<think>easy</think><answer>\\boxed{4}</answer>","answer":"4","id":1}
{"prompt":"half?","completion":"It is \\frac{1}{2}","answer":"0.5","id":2}
{"prompt":"q","completion":"x","answer":"","id":3}
JSON
out=$("$rlvr" score --reward math_answer --reward 'format:{"weight":0.1}' \
      --reward "$tmp/exact_match.so:{\"case_sensitive\":false}" --input "$tmp/in.jsonl" --info)
rc=$?
check "score exit status 0 (got $rc)" test $rc -eq 0
check "three output lines" test "$(printf '%s\n' "$out" | wc -l)" -eq 3
line1=$(printf '%s\n' "$out" | sed -n 1p)
line2=$(printf '%s\n' "$out" | sed -n 2p)
line3=$(printf '%s\n' "$out" | sed -n 3p)
check "line 1 total 1.1: $line1" grep -q '"reward":1.1,"status":"ok","rewards":{"math_answer":1,"format":1,"exact_match":0}' <<<"$line1"
check "line 1 keeps its fields" grep -q '"id":1' <<<"$line1"
check "line 1 info" grep -q '"reward_info":{"math_answer":{' <<<"$line1"
check "line 2 last-number fallback: $line2" grep -q '"rewards":{"math_answer":1,"format":0,' <<<"$line2"
check "line 3 abstains: $line3" grep -q '"status":"abstain","rewards":{"math_answer":null' <<<"$line3"

# stdin, and isolation:process gives the same numbers
out2=$("$rlvr" score --reward 'math_answer:{"isolation":"process"}' < "$tmp/in.jsonl")
check "isolated via stdin" grep -q '"reward":1,"status":"ok","rewards":{"math_answer":1}' <<<"$(printf '%s\n' "$out2" | sed -n 1p)"

# --help and errors
check "--help exits 0" "$rlvr" score --help
"$rlvr" score >/dev/null 2>"$tmp/e"; rc=$?
check "no --reward exits 2 (got $rc)" test $rc -eq 2
check "no --reward message" grep -q "expected at least one --reward" "$tmp/e"
"$rlvr" score --reward math_answer --bogus 1 >/dev/null 2>"$tmp/e"; rc=$?
check "unknown option exits 2 (got $rc)" test $rc -eq 2
"$rlvr" score --reward nope </dev/null >/dev/null 2>"$tmp/e"; rc=$?
check "unknown reward fails (rc $rc)" test $rc -ne 0
check "unknown reward names built-ins" grep -q "built-ins: math_answer" "$tmp/e"
"$rlvr" score --reward 'format:{"weight":"heavy"}' </dev/null >/dev/null 2>"$tmp/e"; rc=$?
check "bad weight fails" test $rc -ne 0
check "bad weight message names the field" grep -q "'weight'" "$tmp/e"
printf '{"completion":"1","answer":"1"}\nnot json\n' > "$tmp/bad.jsonl"
"$rlvr" score --reward math_answer --input "$tmp/bad.jsonl" >/dev/null 2>"$tmp/e"; rc=$?
check "bad line fails" test $rc -ne 0
check "bad line names file:line" grep -q "bad.jsonl:2: not a JSON object" "$tmp/e"
printf '{"answer":"1"}\n' > "$tmp/nocomp.jsonl"
"$rlvr" score --reward math_answer --input "$tmp/nocomp.jsonl" >/dev/null 2>"$tmp/e"; rc=$?
check "missing completion names the field" grep -q 'field "completion" is missing' "$tmp/e"

[ $fail -eq 0 ] && echo "rlvr score: all checks passed"
exit $fail
