#!/usr/bin/env python3
# tests/gpu/test_ab_summary.py — ab_summary.py on a hand-made run.sh output directory (the
# real ones come from a GPU): each A/B row beside the default of its own table, speed-ups
# the right way round for rates and times, the noise band, rows left out where they
# belong elsewhere (prof2, graphs, 256_*, ablate_*), ablation costs, kernel profiles,
# the sampling op's timing lines.
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ab_summary import summarise  # noqa: E402


def put(d, name, obj, last_line=False):
    path = os.path.join(d, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        if last_line:  # bench_step-style: log lines, then the JSON
            f.write("warm-up\n")
        f.write(json.dumps(obj) + "\n")


with tempfile.TemporaryDirectory() as d:
    put(d, "model/bench_rlvr.json", {"tokens_per_s": 100000.0}, last_line=True)
    put(d, "model/bench_rlvr_lmkeep.json", {"tokens_per_s": 110000.0})
    put(d, "model/bench_rlvr_rowvec.json", {"tokens_per_s": 101000.0})
    put(d, "model/bench_rlvr_prof2.json", {"tokens_per_s": 5.0})
    put(d, "model/bench_torch.json", {"tokens_per_s": 80000.0})
    put(d, "bench_decode_graphs.json", {"g1": {"output_tok_s": 30000.0},
                                        "batch1": {"ms_per_token": 1.2}})
    put(d, "bench_decode_prefetch.json", {"g1": {"output_tok_s": 31000.0},
                                          "batch1": {"ms_per_token": 0.8}})
    put(d, "bench_decode.json", {"g1": {"output_tok_s": 36000.0, "decode_forward_s": 3.0},
                                 "grouped": {"output_tok_s": 40000.0}})
    put(d, "bench_decode_256_mma.json", {"g1": {"output_tok_s": 30000.0}})
    put(d, "bench_decode_256_pair.json", {"g1": {"output_tok_s": 36500.0},
                                          "grouped": {"output_tok_s": 50000.0}})
    put(d, "bench_decode_256_ablate_matmul.json", {"g1": {"decode_forward_s": 1.5}})
    put(d, "bench_decode_attn.json", {"workloads": [
        {"name": "g8_256", "N": 256, "us": {"default": 40.0, "pair": 20.0, "qkv": 30.0,
                                          "qkvapart": 33.0},
         "same_bits": {"default": True, "pair": True, "qkv": False, "qkvapart": True}}]})
    put(d, "kp_decode1.json", {"span_ms": 10.0, "busy_ms": 8.0, "idle_ms": 2.0,
                               "rows": [{"name": "gemv_kernel<1>", "ms": 4.0, "calls": 96,
                                         "mean_us": 41.7, "share": 0.5}]})
    # ncu's raw page (tests/gpu/ncu_profile.sh): header, units, one row per launch; a
    # kernel name with a comma inside quotes, a metric left empty
    with open(os.path.join(d, "ncu_step.csv"), "w") as f:
        f.write('"ID","Kernel Name","gpu__time_duration.sum",'
                '"sm__throughput.avg.pct_of_peak_sustained_elapsed",'
                '"gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",'
                '"dram__throughput.avg.pct_of_peak_sustained_elapsed",'
                '"sm__warps_active.avg.pct_of_peak_sustained_active",'
                '"launch__registers_per_thread"\n'
                '"","","nsecond","%","%","%","%","register/thread"\n'
                '"0","void fa2_bwd_dkdv_kernel<64, false>(bf16*, int)","259,900","41.5",'
                '"38.2","12.0","24.9","168"\n'
                '"1","rmsnorm_backward_fused_kernel","47100","8.1","61.0","","30.0","64"\n')
    with open(os.path.join(d, "model/generate_cuda.log"), "w") as f:
        f.write("PASS op split R=7 ...\n"
                "PASS time lmhead_sample R=256 V=151936 C=896 min-p 0.05 + penalty 1.3   "
                "split 0.200 ms  blocks 0.300 ms (x1.50)  single-block 0.800 ms  (x4.00)  "
                "tokens equal 256+256/256 |dlp| 1.0e-07\n")
    with open(os.path.join(d, "bench_decode_256_tune.log"), "w") as f:
        f.write("warm-up\n"
                "gemm tune: matmul_forward TN m=1152 n=256 k=896 C=bf16 beta=1: default 4.85 us,"
                " 8 Lt candidates, best 3.10 us -> lt\n"
                "gemm tune: matmul_forward TN m=896 n=256 k=896 C=bf16 beta=0: default 10.00 us,"
                " 8 Lt candidates, best 9.90 us -> default\n"
                "gemm tune: lmhead_sample TN m=151936 n=9 k=896 C=f32 beta=0: default 40.00 us,"
                " 6 Lt candidates, best 20.00 us -> lt\n")
    text = "\n".join(summarise(d, 3.0))

print(text)
fail = 0


def check(cond, what):
    global fail
    print(("PASS " if cond else "FAIL ") + what)
    fail += not cond


def line_with(*parts):
    return next((l for l in text.splitlines() if all(p in l for p in parts)), "")


check("1.100  FASTER" in line_with("lmkeep"), "training: +10% is FASTER, speed-up 1.100")
check("same" in line_with("rowvec"), "training: +1% is within the 3% noise band")
check("prof2" not in text, "training: the profiled run is not an A/B row")
check("rlvr/PyTorch = 1.250" in text, "training: the ratio against PyTorch eager")
lines = text.splitlines()
i32 = next(i for i, l in enumerate(lines) if "decode, 32 sequences" in l)
ib1 = next(i for i, l in enumerate(lines) if "decode, batch 1" in l)
check("1.033  FASTER" in lines[i32 + 2], "decode 32: +3.3% is FASTER (beyond 3%)")
check("1.500  FASTER" in lines[ib1 + 2], "batch 1: 1.2 -> 0.8 ms is a speed-up of 1.5")
check("0.833  slower" in line_with("mma"), "decode 256: -17% is slower")
check(not any(l.strip().startswith(("graphs", "256_", "ablate_", "attn ")) for l in lines),
      "rows of other tables are not A/B rows here")
check("1.500 s (50%)" in line_with("matmul"), "ablation: the matmul group costs 1.5 s")
ig = next(i for i, l in enumerate(lines) if "as 32 groups of G = 8" in l)
check("40,000" in lines[ig + 1] and lines[ig + 2].split()[:4] == ["pair", "50,000", "1.250",
                                                                   "FASTER"]
      and "mma" not in lines[ig + 3],
      "decode 256 grouped: only rows that ran it, beside the main run's grouped figure")
check("gemv_kernel<1>" in text and "idle 2.0 ms" in text, "kernel profile summarised")
da = line_with("g8_256", "N=256")
check("default 40 us" in da and "pair 20.00 x2.000" in da and "qkv 30.00 x1.100" in da
      and "BITS DIFFER: qkv" in da,
      "decode attention op: speed-ups against default / qkvapart, a failed bit check shown")
dk = line_with("fa2_bwd_dkdv_kernel<64, false>")
check(dk.split()[:6] == ["259.9", "42", "38", "12", "25", "168"],
      "ncu: ns to us, thousands separator, percentages, registers")
check(line_with("rmsnorm_backward_fused").split()[:6] == ["47.1", "8", "61", "-", "30", "64"],
      "ncu: an empty metric shown as -")
check(line_with("R=256", "min-p 0.05 + penalty 1.3").split()[-9:] ==
      ["split", "0.200", "blocks", "0.300", "(x1.50)", "single", "0.800", "(x4.00)", "PASS"],
      "sampling op: the three paths' times and the split path's speed-ups")
check("3 shapes, 2 not on cuBLAS's default (cublasLt or skinny); one call of each: 54.9 -> "
      "33.1 us" in text,
      "GEMM tuning: shapes, Lt picks, the summed time of one call each")
tl = [l for l in lines if "(x" in l and "us (x" in l]
check(len(tl) == 2 and "m=151936" in tl[0] and "(x2.00)" in tl[0] and "(x1.56)" in tl[1],
      "GEMM tuning: the Lt picks, largest gain first; the default's shape not listed")
sys.exit(1 if fail else 0)
