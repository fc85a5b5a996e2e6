/*
 * tests/emu/test_emu_kvcache.cpp — the CUDA paged-KV-cache kernels (kernels/cuda/
 * kvcache.cu: kv_store and the three attention_cached kernels: per head, split-K, and the
 * tensor-core split-K, the default since the sixth H200 run) run by the CPU emulation (tests/emu/
 * cuda_emu.h) against their CPU twins (kernels/cpu/kvcache.c), in CI, without a GPU.
 *
 * Per case: sequences of the given lengths with their blocks (size 16) at shuffled block
 * ids; random bf16 K/V rows stored by kv_store on both backends (the emulated cache
 * starts poisoned: 0xFF bytes, NaN); queries at each sequence's last position and at
 * random earlier ones; attention_cached with each kernel forced
 * (rlvr_cuda_set_decode_attention 0, 1, 2) against the CPU's fp32 result: pass with
 * ‖got − ref‖/‖ref‖ ≤ 1e-2 and max|got − ref| ≤ 3e-2·max|ref| (test_cuda_ops's bf16
 * tolerances), the same bits on a second run, and the kernel the launcher chose must be
 * the one expected for the shape (the emulation records launched kernel names). The
 * split kernels (modes 1, 2) must merge their splits themselves (split_finish: no combine
 * kernel launched) and match, bit for bit, the separate combine kernel (decode fusions
 * off, rlvr_cuda_set_decode_fuse 0).
 * The "cuda" backend here is kernels/cuda built for the emulation (tests/emu/CMakeLists.txt).
 * What the emulation checks and does not (races, cp.async waits, timing): tests/emu/cuda_emu.h.
 *
 * Usage: test_emu_kvcache [seed]. Exit 0 when every case passes.
 */
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_backend.h"
#include "tests/emu/cuda_emu.h"

typedef __nv_bfloat16 bf16;

namespace {

uint64_t g_rng = 1;
int g_fail = 0, g_cases = 0;

uint32_t next_u32() {
    g_rng = g_rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(g_rng >> 33);
}
int irand(int n) { return (int)(next_u32() % (uint32_t)n); }
float frand() { return (float)next_u32() / 2147483648.0f - 1.0f; } /* [-1, 1) */

/* fp32 values that are exactly bf16 (round to nearest even) and their bf16 bits */
float round_bf(float f) { return __bfloat162float(__float2bfloat16_rn(f)); }

std::vector<float> rand_bf(size_t n, float scale) {
    std::vector<float> v(n);
    for (auto &x : v) x = round_bf(frand() * scale);
    return v;
}
std::vector<bf16> to_bf(const std::vector<float> &v) {
    std::vector<bf16> b(v.size());
    for (size_t i = 0; i < v.size(); i++) b[i] = __float2bfloat16_rn(v[i]);
    return b;
}

/* The kernel attention_cached should launch for the mode and shape (kvcache.cu). */
std::string expected_kernel(int mode, int Hq, int Hkv, int D) {
    const int group = Hq / Hkv;
    if (mode == 2 && (D == 64 || D == 128) && group <= 16) return "attention_split_mma_kernel";
    if (mode >= 1 && D % 8 == 0 && D <= 256 && group <= 8) return "attention_split_kernel";
    return "attention_cached_kernel";
}

void check(bool ok, const char *what, const char *cs, const char *detail) {
    g_cases++;
    if (!ok) g_fail++;
    printf("%s %-28s %s %s\n", ok ? "PASS" : "FAIL", what, cs, detail);
}

void run_case(rlvr_backend *cpu, rlvr_backend *emu, int Hq, int Hkv, int D,
              const std::vector<int> &lens, int qper, float q_scale = 2.0f) {
    const int BS = 16, nseq = (int)lens.size();
    const size_t row = (size_t)Hkv * D;
    char cs[96];
    int k = snprintf(cs, sizeof cs, "Hq=%d Hkv=%d D=%d q/seq=%d lens=", Hq, Hkv, D, qper);
    for (int i = 0; i < nseq && k < (int)sizeof cs - 8; i++)
        k += snprintf(cs + k, sizeof cs - (size_t)k, "%s%d", i ? "," : "", lens[i]);

    int max_blocks = 1, n_blocks = 2; /* two spare blocks nobody uses */
    for (int L : lens) {
        const int nb = (L + BS - 1) / BS;
        if (nb > max_blocks) max_blocks = nb;
        n_blocks += nb;
    }
    std::vector<int> perm(n_blocks);
    for (int i = 0; i < n_blocks; i++) perm[i] = i;
    for (int i = n_blocks - 1; i > 0; i--) std::swap(perm[i], perm[irand(i + 1)]);
    std::vector<int> tables((size_t)nseq * max_blocks, 0);
    int next = 0, T = 0;
    for (int s = 0; s < nseq; s++)
        for (int b = 0; b < (lens[s] + BS - 1) / BS; b++) tables[(size_t)s * max_blocks + b] = perm[next++];
    for (int L : lens) T += L;
    std::vector<int> slots(T);
    for (int s = 0, t = 0; s < nseq; s++)
        for (int p = 0; p < lens[s]; p++, t++)
            slots[t] = tables[(size_t)s * max_blocks + p / BS] * BS + p % BS;
    const std::vector<float> kf = rand_bf((size_t)T * row, 2.0f), vf = rand_bf((size_t)T * row, 1.0f);
    const std::vector<bf16> kb = to_bf(kf), vb = to_bf(vf);

    const size_t ncache = (size_t)n_blocks * BS * row;
    std::vector<float> kc_cpu(ncache, 0.0f), vc_cpu(ncache, 0.0f);
    std::vector<bf16> kc_emu(ncache), vc_emu(ncache);
    memset((void *)kc_emu.data(), 0xFF, ncache * 2);
    memset((void *)vc_emu.data(), 0xFF, ncache * 2);
    cpu->kv_store(cpu, kc_cpu.data(), vc_cpu.data(), kf.data(), vf.data(), slots.data(), T, Hkv, D);
    emu->kv_store(emu, kc_emu.data(), vc_emu.data(), kb.data(), vb.data(), slots.data(), T, Hkv, D);
    {
        size_t bad = 0;
        for (int t = 0; t < T; t++)
            for (size_t e = 0; e < row; e++) {
                const size_t i = (size_t)slots[t] * row + e;
                if (__bfloat162float(kc_emu[i]) != kc_cpu[i] || __bfloat162float(vc_emu[i]) != vc_cpu[i]) bad++;
            }
        char d[64];
        snprintf(d, sizeof d, "(%zu of %zu elements differ)", bad, (size_t)T * row * 2);
        check(bad == 0, "kv_store", cs, d);
    }

    const int N = nseq * qper;
    std::vector<int> seq(N), pos(N);
    int max_ctx = 0;
    for (int n = 0; n < N; n++) {
        seq[n] = n / qper;
        pos[n] = n % qper == 0 ? lens[seq[n]] - 1 : irand(lens[seq[n]]);
        if (pos[n] + 1 > max_ctx) max_ctx = pos[n] + 1;
    }
    const size_t nout = (size_t)N * Hq * D;
    const std::vector<float> qf = rand_bf(nout, q_scale);
    const std::vector<bf16> qb = to_bf(qf);
    std::vector<float> ref(nout);
    cpu->attention_cached(cpu, ref.data(), qf.data(), kc_cpu.data(), vc_cpu.data(), tables.data(),
                          max_blocks, BS, seq.data(), pos.data(), NULL, N, Hq, Hkv, D, max_ctx);
    static const char *const names[3] = {"attention_cached head", "attention_cached split",
                                         "attention_cached mma"};
    for (int mode = 0; mode < 3; mode++) {
        rlvr_cuda_set_decode_attention(emu, mode);
        std::vector<bf16> out(nout), out2(nout);
        memset((void *)out.data(), 0xFF, nout * 2);
        memset((void *)out2.data(), 0xFF, nout * 2);
        emu::launched.clear();
        emu->attention_cached(emu, out.data(), qb.data(), kc_emu.data(), vc_emu.data(), tables.data(),
                              max_blocks, BS, seq.data(), pos.data(), NULL, N, Hq, Hkv, D, max_ctx);
        const std::vector<std::string> first = emu::launched;
        emu->attention_cached(emu, out2.data(), qb.data(), kc_emu.data(), vc_emu.data(),
                              tables.data(), max_blocks, BS, seq.data(), pos.data(), NULL, N, Hq,
                              Hkv, D, max_ctx);
        double num = 0, den = 0, maxd = 0, maxr = 0;
        for (size_t i = 0; i < nout; i++) {
            const double g = __bfloat162float(out[i]), r = ref[i];
            const double d = std::isnan(g) ? INFINITY : fabs(g - r);
            num += d * d;
            den += r * r;
            if (d > maxd) maxd = d;
            if (fabs(r) > maxr) maxr = fabs(r);
        }
        const double rel = sqrt(num / (den > 0 ? den : 1)), mx = maxd / (maxr > 0 ? maxr : 1);
        const std::string want = expected_kernel(mode, Hq, Hkv, D);
        const bool ran = !first.empty() && first[0].compare(0, want.size(), want) == 0;
        const char *err = emu->error(emu);
        char d[256];
        snprintf(d, sizeof d, "rel %.3g max %.3g, ran %s (expected %s)%s%s", rel, mx,
                 first.empty() ? "nothing" : first[0].c_str(), want.c_str(), err ? ": " : "",
                 err ? err : "");
        check(rel <= 1e-2 && mx <= 3e-2 && ran && !err, names[mode], cs, d);
        check(memcmp(out.data(), out2.data(), nout * 2) == 0, "  same bits twice", cs, "");
        if (mode == 0) continue;
        /* the split kernels merge in their last block (decode fusions on, the default): no
         * combine kernel, and the bits of the separate combine kernel (fusions off) */
        bool combined = false;
        for (const std::string &k : first)
            combined = combined || k.find("attention_split_combine_kernel") != std::string::npos;
        check(!combined, "  merged without the combine kernel", cs, "");
        rlvr_cuda_set_decode_fuse(emu, 0);
        memset((void *)out2.data(), 0xFF, nout * 2);
        emu->attention_cached(emu, out2.data(), qb.data(), kc_emu.data(), vc_emu.data(),
                              tables.data(), max_blocks, BS, seq.data(), pos.data(), NULL, N, Hq,
                              Hkv, D, max_ctx);
        rlvr_cuda_set_decode_fuse(emu, -1);
        check(memcmp(out.data(), out2.data(), nout * 2) == 0,
              "  same bits with the combine kernel", cs, "");
    }
    rlvr_cuda_set_decode_attention(emu, -1);
}

} /* namespace */

int main(int argc, char **argv) {
    g_rng = argc > 1 ? strtoull(argv[1], NULL, 10) : 12345;
    char err[256] = "";
    rlvr_backend *cpu = rlvr_cpu_backend_create(1), *emu = rlvr_cuda_backend_create(0, err, sizeof err);
    if (!cpu || !emu) {
        fprintf(stderr, "test_emu_kvcache: could not create the backends %s\n", err);
        return 1;
    }
    /* Qwen2.5-0.5B's heads (group 7), one-split and multi-split contexts, a block's edge */
    run_case(cpu, emu, 14, 2, 64, {1, 17, 64, 65, 300}, 2);
    /* group 4 at D 128 (the opt-in shared-memory size), a context across many splits */
    run_case(cpu, emu, 4, 1, 128, {45, 129, 700}, 2);
    run_case(cpu, emu, 8, 2, 128, {2000}, 1);
    /* 47 splits of 64 keys: a merge past 32 splits (split_merge_warp's second register),
     * with peaked attention (q × 8: the splits' maxima far apart, so each split's weight
     * matters) */
    setenv("RLVR_DECODE_SPLIT_KEYS", "0", 1); /* count-based: 64 splits at most, not 256-key */
    run_case(cpu, emu, 14, 2, 64, {3000}, 1, 16.0f);
    unsetenv("RLVR_DECODE_SPLIT_KEYS");
    /* group 16: the tensor-core kernel's largest, the scalar split kernel hands it back */
    run_case(cpu, emu, 16, 1, 64, {33, 200}, 2);
    /* group 1, D 80 (no tensor-core form) and D 33 (scalar paths everywhere) */
    run_case(cpu, emu, 4, 4, 80, {20, 90}, 2);
    run_case(cpu, emu, 6, 2, 33, {45, 1, 33}, 2);
    /* enough queries that one split per query fills the card (S = 1: no partials), with
     * contexts long enough that each warp of the tensor-core kernel walks several tiles */
    {
        std::vector<int> lens(270);
        for (auto &L : lens) L = 1 + irand(300);
        run_case(cpu, emu, 14, 2, 64, lens, 1);
    }
    printf("test_emu_kvcache: %d checks, %d failed\n", g_cases, g_fail);
    emu->destroy(emu);
    cpu->destroy(cpu);
    return g_fail ? 1 : 0;
}
