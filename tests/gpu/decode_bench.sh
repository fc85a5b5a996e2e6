#!/usr/bin/env bash
# tests/gpu/decode_bench.sh OUTDIR BUILD [options] — issue 9's generation speed section:
# rlvr's sampler (BUILD/tests/gpu/bench_decode) and Hugging Face transformers `generate`
# (tests/gpu/hf_generate_bench.py) on the same card, model shape and workload, then one
# summary OUTDIR/decode_bench.json: rlvr output tok/s on the 256-sequence workload and its
# fraction of the bandwidth bound, the G = 8 grouped run, batch-1 ms/token against its
# bound, transformers' useful tok/s on a deterministic subsample (the first --hf-n
# sequences of the same stream) and rlvr's figure on that same subsample, their ratio,
# and the vLLM figure from the issue (17,711 tok/s on an A800) for context.
# Sized to finish within ~150 s on an H100 with the defaults.
#
# options: --bw-gbs X (default: from nvidia-smi's GPU name; 0 = unknown, no bound)
#          --device cuda|cpu --shape qwen2.5-0.5b --n 256 --hf-n 64 (0: no transformers) --buckets 4
#          --max-s 40 (rlvr's G = 1 run: longest prefix of the workload predicted to fit)
#          --hf-max-s 60 --groups 8 --min-len 100 --max-len 1024 --b1-prompt 512
#          --b1-new 256 --seed 1 --threads 0
# Exit status: 0 when bench_decode ran (transformers may be skipped), 1 otherwise,
# 2 on bad usage. Logs: OUTDIR/bench_decode.log, OUTDIR/hf_generate.log; on cuda also
# bench_decode_{nographs,graphs,nopdl,keys0,normfuse}.log (32 seqs and batch 1) and
# bench_decode_256_qkvattnapart.log (the 256-sequence workload); the rows the seventh H200
# run decided (below from skinny2r32 to qkvattnapart at 32, and sampleblk, stages4, bps8,
# admission, keys256, tune, tuneall at 256; pair also grouped) with RLVR_DECODE_AB_ALL=1.
# The rows:
#   keys0       the count-based cached-attention splits for <= 32 queries too (the
#               default since the seventh run: 256-key splits there), RLVR_DECODE_SPLIT_KEYS=0;
#   normfuse    the fused add + RMSNorm + GEMV with the row kernels (off by default since
#               the seventh run), RLVR_DECODE_NORM_FUSE=1;
#   nopdl       plain launches instead of programmatic dependents, RLVR_DECODE_PDL=0;
#   skinny2     the tensor-core GEMM for <= 256 rows where OC <= 1.5·IC, RLVR_SKINNY=2;
#   skinny2r32  the same for at most 32 rows, RLVR_SKINNY_ROWS=32;
#   stages4     the tensor-core cached attention with four shared stages per warp instead
#               of two, RLVR_DECODE_ATTN_STAGES=4;
#   bps8, bps16 its split count aimed at 8 / 16 blocks per SM instead of 4,
#               RLVR_DECODE_SPLIT_BPS;
#   late        the GEMV's (and skinny GEMM's) weights loaded after pdl_begin instead of
#               before, RLVR_GEMV_EARLY=0;
#   normapart   add + RMSNorm and the GEMV after it as two kernels again with the row
#               kernels on, RLVR_DECODE_NORM_FUSE=0;
#   qkvapart    the q|k|v split and cache store after the fused add + RMSNorm + q|k|v GEMV
#               as its own kernel again (<= 8 rows), RLVR_DECODE_QKV_FUSE=0;
#   tune        each decode GEMM's cuBLAS kernel chosen by timing, RLVR_GEMM_TUNE=1 (tuned
#               in bench_decode's warm-up; the 256 log lists every tuned shape);
#   tuneall     that, and each projection's path (skinny GEMM or cuBLAS) chosen by timing,
#               RLVR_SKINNY=tune;
#   sampleblk   the sampling split path with a block per chunk instead of a warp,
#               RLVR_SAMPLE_SPLIT=blocks;
#   admission   the decode rows in admission order instead of longest context first,
#               RLVR_DECODE_ORDER=admission;
#   keys256     the cached attention's splits 256 keys each whatever the context,
#               RLVR_DECODE_SPLIT_KEYS=256;
#   pair        the tensor-core cached attention on two neighbouring queries per block
#               (the samples of a group side by side: their prompt's tiles read once per
#               pair), RLVR_DECODE_ATTN_PAIR=1;
#   qkvattnapart the q|k|v split and cache store as their own kernel again for > 8 rows
#               instead of inside the tensor-core cached attention, RLVR_DECODE_QKV_ATTN=0
#               (256 also grouped).
# With RLVR_DECODE_AB_ALL=1 also the settings earlier runs decided or that sessions 20 and
# 21 moved out to make room for tune and pair: skinny2 at 32 (the same setting as
# skinny2r32 there: 32 rows at most); skinny2r64 (32, 256); skinny2r32 and bps16
# at 256 (tuneall answers the skinny GEMM per shape; bps8 the split count); nopdl and
# skinny2 at 256 (PDL won 1.011 and 1.046 there in the sixth run; RLVR_SKINNY=2 lost
# 0.906 and 0.862); rowvec0
# (the element-wise row kernels; the fused add + RMSNorm + GEMV then with the element-wise
# norm's arithmetic) and nostage (every upload from pageable memory with a wait,
# RLVR_CUDA_STAGED_UPLOAD=0) at 32 and batch 1, rowvec0 at 256; nofuse at 32 and batch 1
# (the decode fusions off, RLVR_DECODE_FUSE=0; kept at 0.941 and 0.928 of batch 1 in the
# sixth run); split (the scalar split-K cached attention, RLVR_DECODE_ATTN=split), skinny
# (RLVR_SKINNY=1 for every shape), prefetch (each decode layer prefetches its next weights
# into L2, RLVR_DECODE_PREFETCH_MB=40), head (the per-head cached attention), gemv0
# (cuBLAS for <= 8 rows, RLVR_GEMV=0), separate (separate q/k/v and gate/up GEMMs,
# RLVR_STACKED_PROJ=0), sample1 (the single-block sampling kernel, RLVR_SAMPLE_SPLIT=0),
# prefill_cached (256 only). And bench_decode_256_ablate_{matmul,attention,sample,small}.log
# (the same with op groups skipped: their cost inside the decode graphs).
set -uo pipefail

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}
[ $# -ge 2 ] || usage
case "$1" in -h|--help) usage ;; esac
OUTARG="$1" BUILD="$2"
shift 2
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BENCH="$BUILD/tests/gpu/bench_decode"
BW="" DEVICE=cuda SHAPE=qwen2.5-0.5b N=256 HF_N=64 BUCKETS=4 HF_MAX_S=60 MAX_S=40 NGROUPS=8
MIN_LEN=100 MAX_LEN=1024 B1_PROMPT=512 B1_NEW=256 SEED=1 THREADS=0
while [ $# -gt 0 ]; do
  [ $# -ge 2 ] || { echo "decode_bench.sh: $1 needs a value" >&2; exit 2; }
  case "$1" in
    --bw-gbs) BW="$2" ;;
    --device) DEVICE="$2" ;;
    --shape) SHAPE="$2" ;;
    --n) N="$2" ;;
    --hf-n) HF_N="$2" ;;
    --buckets) BUCKETS="$2" ;;
    --hf-max-s) HF_MAX_S="$2" ;;
    --max-s) MAX_S="$2" ;;
    --groups) NGROUPS="$2" ;;
    --min-len) MIN_LEN="$2" ;;
    --max-len) MAX_LEN="$2" ;;
    --b1-prompt) B1_PROMPT="$2" ;;
    --b1-new) B1_NEW="$2" ;;
    --seed) SEED="$2" ;;
    --threads) THREADS="$2" ;;
    *) echo "decode_bench.sh: unknown option '$1'" >&2; usage ;;
  esac
  shift 2
done
[ -x "$BENCH" ] || { echo "decode_bench.sh: $BENCH not built (target bench_decode)" >&2; exit 1; }
[ "$HF_N" -le "$N" ] 2>/dev/null || { echo "decode_bench.sh: --hf-n $HF_N must be <= --n $N" >&2; exit 2; }
mkdir -p "$OUTARG" || { echo "decode_bench.sh: cannot create '$OUTARG'" >&2; exit 2; }
OUT="$(cd "$OUTARG" && pwd)"

# ---- the card and its bandwidth (GB/s, vendor peak) ----------------------------------
GPU="none"
if [ "$DEVICE" = cuda ] && command -v nvidia-smi >/dev/null 2>&1; then
  GPU="$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1)"
fi
if [ -z "$BW" ]; then
  case "$GPU" in
    *H200*) BW=4800 ;;
    *H100*PCIe*) BW=2000 ;;
    *H100*NVL*) BW=3900 ;;
    *H100*) BW=3350 ;;
    *A100*80GB*) BW=2039 ;;
    *A100*) BW=1555 ;;
    *) BW=0; echo "decode_bench.sh: unknown bandwidth for GPU '$GPU': pass --bw-gbs" >&2 ;;
  esac
fi
echo "decode_bench.sh: device $DEVICE, GPU '$GPU', bandwidth $BW GB/s"

# ---- rlvr ----------------------------------------------------------------------------
T0=$(date +%s)
timeout --kill-after=10 120 "$BENCH" --device "$DEVICE" --shape "$SHAPE" --n "$N" \
  --seed "$SEED" --min-len "$MIN_LEN" --max-len "$MAX_LEN" --groups "$NGROUPS" \
  --groups-max-s 25 --subset "$HF_N" --b1-prompt "$B1_PROMPT" --b1-new "$B1_NEW" \
  --bw-gbs "$BW" --threads "$THREADS" --max-s "$MAX_S" --json "$OUT/bench_decode.json" \
  $([ "$DEVICE" = cuda ] && echo --sample-probe 128) \
  2>&1 | tee "$OUT/bench_decode.log"
RLVR_RC=${PIPESTATUS[0]}
echo "decode_bench.sh: bench_decode exit $RLVR_RC in $(( $(date +%s) - T0 )) s"
# The same batch-1 decode and a small batch without CUDA graphs (RLVR_CUDA_GRAPHS=0):
# what recording the decode step as one graph saves.
if [ "$DEVICE" = cuda ]; then
  RLVR_CUDA_GRAPHS=0 timeout --kill-after=10 60 "$BENCH" --device cuda --shape "$SHAPE" \
    --n 32 --seed "$SEED" --min-len 100 --max-len 300 --groups 0 --b1-prompt "$B1_PROMPT" \
    --b1-new "$B1_NEW" --bw-gbs "$BW" --json "$OUT/bench_decode_nographs.json" \
    > "$OUT/bench_decode_nographs.log" 2>&1
  timeout --kill-after=10 60 "$BENCH" --device cuda --shape "$SHAPE" \
    --n 32 --seed "$SEED" --min-len 100 --max-len 300 --groups 0 --b1-prompt "$B1_PROMPT" \
    --b1-new "$B1_NEW" --bw-gbs "$BW" --json "$OUT/bench_decode_graphs.json" \
    > "$OUT/bench_decode_graphs.log" 2>&1
  echo "decode_bench.sh: without graphs:"; tail -n 6 "$OUT/bench_decode_nographs.log"
  echo "decode_bench.sh: with graphs:"; tail -n 6 "$OUT/bench_decode_graphs.log"
  # A/B rows: the same run with settings changed (NAME:VAR=V[,VAR=V...]). By default only
  # the settings still undecided (opt-ins never measured, or last measured before the
  # kernels they compete with changed, or whose runs disagreed); RLVR_DECODE_AB_ALL=1 adds
  # the settings the fourth to sixth H200 runs decided, each of which costs the lease ~10 s.
  # With the row kernels on (the default) the fused add + RMSNorm + GEMV runs with the row
  # norm's arithmetic since session 19 (normapart: the two kernels, as before); rowvec0
  # runs it with the element-wise norm's.
  # Since the seventh H200 run (session 21): the two new defaults' opt-outs (keys0: the
  # count-based splits for <= 32 queries too; normfuse: the fused add + RMSNorm + GEMV)
  # and nopdl; the rows that run decided are behind RLVR_DECODE_AB_ALL=1.
  AB32="nopdl:RLVR_DECODE_PDL=0 keys0:RLVR_DECODE_SPLIT_KEYS=0 normfuse:RLVR_DECODE_NORM_FUSE=1"
  AB256="qkvattnapart:RLVR_DECODE_QKV_ATTN=0"
  # rows run on the 256-sequence workload and on its grouped form (G = 8), as the main run;
  # noshare (session 22): the grouped samples without shared-prefix units, each reading its
  # prompt's keys itself (the units are the default, unmeasured)
  AB256G="noshare:RLVR_DECODE_SHARE=0"
  DECIDED32="skinny2r32:RLVR_SKINNY=2,RLVR_SKINNY_ROWS=32 stages4:RLVR_DECODE_ATTN_STAGES=4
        bps8:RLVR_DECODE_SPLIT_BPS=8 late:RLVR_GEMV_EARLY=0 qkvapart:RLVR_DECODE_QKV_FUSE=0
        tune:RLVR_GEMM_TUNE=1 tuneall:RLVR_GEMM_TUNE=1,RLVR_SKINNY=tune
        pair:RLVR_DECODE_ATTN_PAIR=1 qkvattnapart:RLVR_DECODE_QKV_ATTN=0"
  DECIDED256="sampleblk:RLVR_SAMPLE_SPLIT=blocks stages4:RLVR_DECODE_ATTN_STAGES=4
         bps8:RLVR_DECODE_SPLIT_BPS=8 admission:RLVR_DECODE_ORDER=admission
         keys256:RLVR_DECODE_SPLIT_KEYS=256 tune:RLVR_GEMM_TUNE=1,RLVR_GEMM_TUNE_LOG=1
         tuneall:RLVR_GEMM_TUNE=1,RLVR_SKINNY=tune,RLVR_GEMM_TUNE_LOG=1"
  if [ "${RLVR_DECODE_AB_ALL:-0}" = 1 ]; then
    AB256G="$AB256G pair:RLVR_DECODE_ATTN_PAIR=1"
    AB32="$AB32 $DECIDED32 skinny2:RLVR_SKINNY=2 skinny2r64:RLVR_SKINNY=2,RLVR_SKINNY_ROWS=64
          rowvec0:RLVR_ROW_VEC=0
          nostage:RLVR_CUDA_STAGED_UPLOAD=0
          nofuse:RLVR_DECODE_FUSE=0 split:RLVR_DECODE_ATTN=split skinny:RLVR_SKINNY=1
          prefetch:RLVR_DECODE_PREFETCH_MB=40 head:RLVR_DECODE_ATTN=head gemv0:RLVR_GEMV=0
          separate:RLVR_STACKED_PROJ=0 sample1:RLVR_SAMPLE_SPLIT=0"
    AB256="$AB256 $DECIDED256 skinny2r32:RLVR_SKINNY=2,RLVR_SKINNY_ROWS=32 bps16:RLVR_DECODE_SPLIT_BPS=16
           skinny2r64:RLVR_SKINNY=2,RLVR_SKINNY_ROWS=64 nopdl:RLVR_DECODE_PDL=0
           skinny2:RLVR_SKINNY=2 split:RLVR_DECODE_ATTN=split
           rowvec0:RLVR_ROW_VEC=0 skinny:RLVR_SKINNY=1
           prefetch:RLVR_DECODE_PREFETCH_MB=40 head:RLVR_DECODE_ATTN=head
           prefill_cached:RLVR_PREFILL_ATTN=cached separate:RLVR_STACKED_PROJ=0
           sample1:RLVR_SAMPLE_SPLIT=0"
  fi
  for v in $AB32; do
    # shellcheck disable=SC2046 # the row's assignments, one word each
    env $(echo "${v#*:}" | tr , ' ') timeout --kill-after=10 60 "$BENCH" --device cuda --shape "$SHAPE" \
      --n 32 --seed "$SEED" --min-len 100 --max-len 300 --groups 0 --b1-prompt "$B1_PROMPT" \
      --b1-new "$B1_NEW" --bw-gbs "$BW" --json "$OUT/bench_decode_${v%%:*}.json" \
      > "$OUT/bench_decode_${v%%:*}.log" 2>&1
    echo "decode_bench.sh: with graphs, ${v#*:}:"; tail -n 6 "$OUT/bench_decode_${v%%:*}.log"
  done
  # The 256-sequence workload (G = 1 only; AB256G rows also grouped), the same A/B settings.
  for v in $AB256 $(for g in $AB256G; do echo "G:$g"; done); do
    GROUPS_ARG="--groups 0"
    case "$v" in G:*) v="${v#G:}"; GROUPS_ARG="--groups $NGROUPS --groups-max-s 25" ;; esac
    # shellcheck disable=SC2046,SC2086 # the row's assignments and GROUPS_ARG, one word each
    env $(echo "${v#*:}" | tr , ' ') timeout --kill-after=10 120 "$BENCH" --device cuda --shape "$SHAPE" --n "$N" \
      --seed "$SEED" --min-len "$MIN_LEN" --max-len "$MAX_LEN" $GROUPS_ARG --b1-new 0 \
      --bw-gbs "$BW" --max-s "$MAX_S" --json "$OUT/bench_decode_256_${v%%:*}.json" \
      > "$OUT/bench_decode_256_${v%%:*}.log" 2>&1
    echo "decode_bench.sh: 256 sequences, ${v#*:}:"; tail -n 4 "$OUT/bench_decode_256_${v%%:*}.log"
  done
  # Where the graph-mode decode step goes: the same workload with op groups skipped
  # (bench_decode --ablate; the tokens are meaningless, the step count is the same). The
  # drop in decode-forward time against the default run is the group's cost in the graphs.
  # (The matmul group includes add_rmsnorm_swiglu and add_rmsnorm_matmul, so the add +
  # RMSNorm before each MLP and q|k|v GEMM: the model calls them as one op since session 15;
  # and add_rmsnorm_qkv_store, which at <= 8 rows also holds the q|k|v split, session 20;
  # the attention group includes qkv_attention_cached, which above 8 rows holds the q|k|v
  # split and cache store, session 21.)
  for v in matmul:matmul_forward,matmul_swiglu_forward,add_rmsnorm_swiglu,add_rmsnorm_matmul,add_rmsnorm_qkv_store \
           attention:attention_cached,qkv_attention_cached sample:lmhead_sample \
           small:add_rmsnorm_forward,qkv_split,qkv_split_store,kv_store,swiglu_packed_forward,embedding_forward; do
    timeout --kill-after=10 90 "$BENCH" --device cuda --shape "$SHAPE" --n "$N" \
      --seed "$SEED" --min-len "$MIN_LEN" --max-len "$MAX_LEN" --groups 0 --b1-new 0 \
      --bw-gbs "$BW" --max-s "$MAX_S" --ablate "${v#*:}" \
      --json "$OUT/bench_decode_256_ablate_${v%%:*}.json" \
      > "$OUT/bench_decode_256_ablate_${v%%:*}.log" 2>&1
    echo "decode_bench.sh: 256 sequences without ${v#*:}:"
    grep -E "^G=1" "$OUT/bench_decode_256_ablate_${v%%:*}.log"
  done
fi

# ---- transformers --------------------------------------------------------------------
T1=$(date +%s)
HF_RC=77
if [ "$HF_N" -eq 0 ]; then
  echo "--hf-n 0: transformers not run" >"$OUT/hf_generate.log"
elif [ "$RLVR_RC" -eq 0 ]; then
  # bench_decode caps its subset to the sequences it ran (--max-s): transformers runs the same
  HF_N="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["subset"]["prompts"])' \
          "$OUT/bench_decode.json" 2>/dev/null || echo "$HF_N")"
  timeout --kill-after=10 $(( ${HF_MAX_S%.*} + 60 )) python3 "$ROOT/tests/gpu/hf_generate_bench.py" \
    --device "$DEVICE" --shape "$SHAPE" --n "$HF_N" --seed "$SEED" --min-len "$MIN_LEN" \
    --max-len "$MAX_LEN" --buckets "$BUCKETS" --max-s "$HF_MAX_S" \
    --check "$OUT/bench_decode.json" --json "$OUT/hf_generate.json" \
    2>&1 | tee "$OUT/hf_generate.log"
  HF_RC=${PIPESTATUS[0]}
else
  echo "bench_decode failed: transformers not run" >"$OUT/hf_generate.log"
fi
echo "decode_bench.sh: hf_generate_bench exit $HF_RC in $(( $(date +%s) - T1 )) s"

# ---- summary ---------------------------------------------------------------------------
python3 - "$OUT" "$GPU" "$BW" "$RLVR_RC" "$HF_RC" <<'EOF'
import json, os, sys
out, gpu, bw, rlvr_rc, hf_rc = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
def load(name):
    try:
        with open(os.path.join(out, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
r, h = load("bench_decode.json"), load("hf_generate.json")
s = {"gpu": gpu, "bandwidth_gbs": bw or None, "target_bound_fraction": 0.40,
     "vllm_reference": {"output_tok_s": 17711, "card": "A800",
                        "note": "published figure quoted in issue 9 (same 256-sequence "
                                "workload shape), about 16.5% of that card's bound; "
                                "not measured here"}}
if rlvr_rc == 0 and r:
    g1 = r["g1"]
    s["rlvr"] = {"device": r["device"], "shape": r["shape"], "sequences": g1["sequences"],
                 "output_tokens": g1["output_tokens"], "wall_s": g1["wall_s"],
                 "output_tok_s": g1["output_tok_s"], "bound_s": g1["bound_s"],
                 "bound_fraction": g1["bound_fraction"], "bound_formula": r["bound_formula"]}
    gr = r.get("grouped", {})
    s["rlvr_grouped"] = ({"G": gr["G"], "prompts": gr["prompts"],
                          "output_tok_s": gr["output_tok_s"],
                          "bound_fraction": gr["bound_fraction"]}
                         if "G" in gr else {"skipped": gr.get("skipped", "")})
    s["batch1"] = r.get("batch1")
else:
    s["rlvr"] = {"failed": f"bench_decode exit {rlvr_rc}, see bench_decode.log"}
if hf_rc == 0 and h and r and "subset" in r:
    sub = r["subset"]
    s["hf"] = {"useful_tok_s": h["useful_tok_s"], "generated_tok_s": h["generated_tok_s"],
               "sequences": h["workload"]["n"], "complete": h["complete"],
               "method": h["method"], "transformers": h["transformers"]}
    s["rlvr_same_subset_tok_s"] = sub["output_tok_s"]
    s["ratio_rlvr_over_hf"] = sub["output_tok_s"] / h["useful_tok_s"]
    if not h["complete"]:
        s["ratio_note"] = ("transformers stopped early (--hf-max-s): its rate covers its "
                           "shortest-output batches only")
else:
    s["hf"] = {"skipped" if hf_rc == 77 else "failed":
               f"hf_generate_bench exit {hf_rc}, see hf_generate.log"}
path = os.path.join(out, "decode_bench.json")
tmp = f"{path}.tmp.{os.getpid()}"
with open(tmp, "w") as f:
    json.dump(s, f, indent=2)
    f.flush()
    os.fsync(f.fileno())
os.replace(tmp, path)
rl = s["rlvr"]
if "output_tok_s" in rl:
    fr = rl["bound_fraction"]
    print(f"rlvr: {rl['output_tok_s']:.0f} output tok/s on {rl['sequences']} sequences"
          + (f", {100 * fr:.1f}% of the bandwidth bound" if fr is not None else ""))
b = s.get("batch1")
if b:
    print(f"batch 1: {b['ms_per_token']:.3f} ms/token"
          + (f" (bound {b['bound_ms_per_token']:.4f}, {100 * b['bound_fraction']:.1f}%)"
             if b["bound_fraction"] is not None else ""))
if "ratio_rlvr_over_hf" in s:
    print(f"transformers: {s['hf']['useful_tok_s']:.0f} useful tok/s on the first "
          f"{s['hf']['sequences']} sequences; rlvr {s['rlvr_same_subset_tok_s']:.0f}: "
          f"ratio {s['ratio_rlvr_over_hf']:.2f}x")
print(f"wrote {path}")
EOF
[ "$RLVR_RC" -eq 0 ] || exit 1
exit 0
