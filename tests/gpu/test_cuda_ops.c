/*
 * tests/gpu/test_cuda_ops.c — every op of the CUDA backend against its CPU twin
 * (kernels/cpu, the fp32 reference) on fresh random inputs at several sizes, odd ones
 * included.
 *
 * Method: inputs are drawn on the host and rounded to bf16 values, so both backends
 * see exactly the same numbers and only accumulation order and output rounding
 * differ. Every output is poisoned (all bits set: NaN in bf16 and fp32) before the call,
 * so an element the kernel forgot to write fails. Outputs that accumulate (+=) start
 * from random values and are compared as increments (after − before) so overwriting
 * instead of accumulating fails. Errors: rel = ‖got − ref‖ / ‖ref‖ and
 * max = max|got − ref| / max|ref|; bf16 outputs pass with rel ≤ 1e-2, max ≤ 3e-2,
 * fp32 outputs of fp32 math with tighter bounds per op. Reductions documented as
 * deterministic are run twice and must give the same bits.
 *
 * Usage: test_cuda_ops [report.json]   (seed: $RLVR_TEST_SEED, else the clock)
 * RLVR_TEST_DIGEST=FILE writes one line per compared output, "op | case | hash" (64-bit
 * FNV-1a of the GPU output's bits): two runs with the same seed must write the same file.
 * tests/emu runs the emulation twice — threads and blocks in index order, then both
 * reversed (tests/emu/cuda_emu.h) — and compares the digests: a kernel whose bits depend
 * on the order its threads or blocks run in has a race.
 * Exit: 0 all pass, 1 any failure, 77 no usable GPU (ctest skip).
 *
 * Built a second time as test_cuda_ops_emu (tests/emu, TEST_CUDA_OPS_EMU): the same
 * checks on kernels/cuda run by the CPU emulation, in CI. There the cases too large to
 * emulate in minutes (marked GPU_ONLY: contexts of thousands of tokens, 8k-row
 * reductions, the 164 MB LM head) are left out or replaced by smaller ones of the same
 * kind.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kernels/backend.h"
#include "kernels/composite.h"
#include "kernels/cuda/cuda_backend.h"
#include "engine/model/kv_share.h"

#ifdef TEST_CUDA_OPS_EMU
enum { EMU = 1 }; /* the kernels run on the CPU emulation (tests/emu) */
#else
enum { EMU = 0 };
#endif

/* ---- results ------------------------------------------------------------------------ */

typedef struct {
    char op[40];
    char cs[112];
    double rel, max;
    int pass;
} result;

typedef struct {
    rlvr_backend *cpu, *gpu;
    uint64_t rng;
    result *res;
    int nres, cap, fails;
    int dead; /* the CUDA backend reported an error: later groups are not run */
} test_state;

static test_state S; /* the test program's state: one instance, owned by main */
static int g_pdl; /* the decode kernels launched as programmatic dependents (set_pdl) */
static FILE *g_digest; /* RLVR_TEST_DIGEST's file, or NULL */

/* One line of the digest: the bits of one GPU output (FNV-1a, 64 bits). */
static void digest(const char *op, const char *cs, const void *bits, size_t bytes) {
    if (!g_digest) return;
    uint64_t h = 0xcbf29ce484222325ull;
    const unsigned char *b = bits;
    for (size_t i = 0; i < bytes; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    fprintf(g_digest, "%s | %s | %016llx\n", op, cs, (unsigned long long)h);
}

static void record(const char *op, const char *cs, double rel, double mx, int pass) {
    if (S.nres == S.cap) {
        S.cap = S.cap ? 2 * S.cap : 256;
        result *r = realloc(S.res, (size_t)S.cap * sizeof *r);
        if (!r) {
            fprintf(stderr, "test_cuda_ops: out of memory\n");
            exit(1);
        }
        S.res = r;
    }
    result *r = &S.res[S.nres++];
    snprintf(r->op, sizeof r->op, "%s", op);
    snprintf(r->cs, sizeof r->cs, "%.100s%s", cs, g_pdl ? " pdl" : "");
    cs = r->cs;
    r->rel = rel;
    r->max = mx;
    r->pass = pass;
    if (!pass) S.fails++;
    printf("%-22s %-58s %10.3e %10.3e  %s\n", op, cs, rel, mx, pass ? "PASS" : "FAIL");
    fflush(stdout);
}

/* ---- random inputs ------------------------------------------------------------------ */

static uint64_t rng_next(void) { /* splitmix64 */
    uint64_t z = (S.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float urand(void) { return (float)((rng_next() >> 11) * (1.0 / 9007199254740992.0)); }
static float srand1(void) { return 2.0f * urand() - 1.0f; }
static int irand(int n) { return (int)(rng_next() % (uint64_t)n); }

static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return f;
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "test_cuda_ops: out of memory\n");
        exit(1);
    }
    return p;
}

/* n values uniform in [-scale, scale], rounded to bf16. */
static float *rand_bf(size_t n, float scale) {
    float *h = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = bf16_round(scale * srand1());
    return h;
}

/* ---- paired buffers: the same data on the CPU and the CUDA backend --------------------- */

typedef struct {
    void *c, *g;
} pair;

static pair pair_act(const float *h, size_t n) {
    pair p = {S.cpu->alloc(S.cpu, n * S.cpu->act_size), S.gpu->alloc(S.gpu, n * S.gpu->act_size)};
    S.cpu->act_from_f32(S.cpu, p.c, h, n);
    S.gpu->act_from_f32(S.gpu, p.g, h, n);
    return p;
}
static pair pair_raw(const void *h, size_t bytes) {
    pair p = {S.cpu->alloc(S.cpu, bytes), S.gpu->alloc(S.gpu, bytes)};
    S.cpu->to_device(S.cpu, p.c, h, bytes);
    S.gpu->to_device(S.gpu, p.g, h, bytes);
    return p;
}
static pair pair_f32(const float *h, size_t n) { return pair_raw(h, n * sizeof(float)); }
static pair pair_i32(const int *h, size_t n) { return pair_raw(h, n * sizeof(int)); }
/* All bits set: NaN as bf16 and as fp32. */
static void poison(rlvr_backend *be, void *p, size_t bytes) {
    unsigned char *h = xmalloc(bytes);
    memset(h, 0xff, bytes);
    be->to_device(be, p, h, bytes);
    free(h);
}
static pair pair_poison_act(size_t n) {
    pair p = {S.cpu->alloc(S.cpu, n * S.cpu->act_size), S.gpu->alloc(S.gpu, n * S.gpu->act_size)};
    poison(S.cpu, p.c, n * S.cpu->act_size);
    poison(S.gpu, p.g, n * S.gpu->act_size);
    return p;
}
static pair pair_poison_f32(size_t n) {
    pair p = {S.cpu->alloc(S.cpu, n * 4), S.gpu->alloc(S.gpu, n * 4)};
    poison(S.cpu, p.c, n * 4);
    poison(S.gpu, p.g, n * 4);
    return p;
}
static void pair_free(pair p) {
    S.cpu->free(S.cpu, p.c);
    S.gpu->free(S.gpu, p.g);
}
static float *down_act(rlvr_backend *be, const void *p, size_t n) {
    float *h = xmalloc(n * sizeof(float));
    be->act_to_f32(be, h, p, n);
    return h;
}
static float *down_f32(rlvr_backend *be, const void *p, size_t n) {
    float *h = xmalloc(n * sizeof(float));
    be->to_host(be, h, p, n * sizeof(float));
    return h;
}

/* ---- comparison ------------------------------------------------------------------------ */

enum { TOL_BF16, TOL_F32, TOL_F32_LOOSE, TOL_EXACT };

static void compare(const char *op, const char *cs, const float *got, const float *ref,
                    const float *init, size_t n, int tol) {
    digest(op, cs, got, n * sizeof *got);
    double num = 0, den = 0, mxd = 0, mxr = 0;
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], r = ref[i];
        if (init) {
            g -= init[i];
            r -= init[i];
        }
        if (!isfinite(g)) bad = 1;
        double d = fabs(g - r);
        num += d * d;
        den += r * r;
        if (d > mxd) mxd = d;
        if (fabs(r) > mxr) mxr = fabs(r);
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    double mx = mxr > 0 ? mxd / mxr : mxd;
    if (bad) rel = mx = INFINITY;
    double tr, tm;
    switch (tol) {
    case TOL_BF16: tr = 1e-2; tm = 3e-2; break;
    case TOL_F32: tr = 1e-5; tm = 1e-4; break;
    case TOL_F32_LOOSE: tr = 1e-4; tm = 1e-3; break;
    default: tr = 0; tm = 0; break;
    }
    /* Outputs that are zero in exact arithmetic (e.g. dq of a length-1 sequence) hold
     * only rounding noise on either side: an absolute floor of 1e-6 (inputs are O(1)). */
    const int tiny = mxd <= 1e-6;
    record(op, cs, rel, mx, !bad && ((rel <= tr && mx <= tm) || tiny));
}

static void cmp_act(const char *op, const char *cs, pair p, const float *init, size_t n,
                    int tol) {
    float *g = down_act(S.gpu, p.g, n), *c = down_act(S.cpu, p.c, n);
    compare(op, cs, g, c, init, n, tol);
    free(g);
    free(c);
}
static void cmp_f32(const char *op, const char *cs, pair p, const float *init, size_t n,
                    int tol) {
    float *g = down_f32(S.gpu, p.g, n), *c = down_f32(S.cpu, p.c, n);
    compare(op, cs, g, c, init, n, tol);
    free(g);
    free(c);
}
/* Same bits in two GPU buffers of `bytes`. */
static void cmp_bits(const char *op, const char *cs, const void *a, const void *b, size_t bytes) {
    unsigned char *ha = xmalloc(bytes), *hb = xmalloc(bytes);
    S.gpu->to_host(S.gpu, ha, a, bytes);
    S.gpu->to_host(S.gpu, hb, b, bytes);
    int same = memcmp(ha, hb, bytes) == 0;
    digest(op, cs, ha, bytes);
    record(op, cs, same ? 0.0 : 1.0, same ? 0.0 : 1.0, same);
    free(ha);
    free(hb);
}
/* A GPU error recorded by the backend fails the op family that caused it. */
static void check_backend(const char *op) {
    S.gpu->sync(S.gpu);
    const char *e = S.gpu->error(S.gpu);
    if (e) {
        printf("backend error after %s: %s\n", op, e);
        record(op, "backend error state", INFINITY, INFINITY, 0);
        fprintf(stderr, "test_cuda_ops: the CUDA backend is in an error state; stopping\n");
        S.dead = 1;
    }
}

/* ---- casts and memory ------------------------------------------------------------------ */

static void test_casts(void) {
    const size_t n = 100003;
    float *h = xmalloc(n * sizeof(float)), *want = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        h[i] = 3.0f * srand1();
        want[i] = bf16_round(h[i]);
    }
    void *a = S.gpu->alloc(S.gpu, n * 2);
    poison(S.gpu, a, n * 2);
    S.gpu->act_from_f32(S.gpu, a, h, n);
    float *back = down_act(S.gpu, a, n);
    compare("act_from_f32", "n=100003 round-trip vs host RNE", back, want, NULL, n, TOL_EXACT);
    free(back);
    float *f = S.gpu->alloc(S.gpu, n * 4);
    S.gpu->to_device(S.gpu, f, h, n * 4);
    poison(S.gpu, a, n * 2);
    S.gpu->cast_f32_to_act(S.gpu, a, f, n);
    back = down_act(S.gpu, a, n);
    compare("cast_f32_to_act", "n=100003 vs host RNE", back, want, NULL, n, TOL_EXACT);
    free(back);
    void *b = S.gpu->alloc(S.gpu, n * 2);
    poison(S.gpu, b, n * 2);
    S.gpu->copy(S.gpu, b, a, n * 2);
    cmp_bits("copy", "n=100003 dev->dev", a, b, n * 2);
    S.gpu->zero(S.gpu, b, n * 2);
    back = down_act(S.gpu, b, n);
    memset(want, 0, n * sizeof(float));
    compare("zero", "n=100003", back, want, NULL, n, TOL_EXACT);
    free(back);
    S.gpu->free(S.gpu, a);
    S.gpu->free(S.gpu, b);
    S.gpu->free(S.gpu, f);
    free(h);
    free(want);
    check_backend("casts");
}

/* ---- prefetch_l2 (a hint: nothing may change) -------------------------------------------- */

/* Ranges of one buffer — unaligned starts and ends, shorter than 16 bytes, empty, NULL,
 * several chunks and blocks of the kernel, RLVR_PREFETCH_MAX of them — prefetched, also
 * inside a recorded graph: the buffer keeps its bits, the backend no error (the emulation
 * also checks every range against its allocation). */
static void test_prefetch(void) {
    const size_t n = (size_t)24 << 20; /* bytes: 384 chunks of 64 KiB */
    unsigned char *h = xmalloc(n);
    for (size_t i = 0; i < n; i++) h[i] = (unsigned char)(rng_next() >> 56);
    char *d = S.gpu->alloc(S.gpu, n);
    S.gpu->to_device(S.gpu, d, h, n);
    const void *ptr[RLVR_PREFETCH_MAX] = {d + 3, d + 100, NULL, d + 4096, d + 7, d + n - 1,
                                          d + 1000, d};
    const size_t bytes[RLVR_PREFETCH_MAX] = {n - 3, 9, 64, 0, 20, 1, (size_t)5 << 20, n};
    S.gpu->prefetch_l2(S.gpu, ptr, bytes, RLVR_PREFETCH_MAX);
    S.gpu->prefetch_l2(S.gpu, ptr + 1, bytes + 1, 1);
    S.gpu->prefetch_l2(S.gpu, ptr, bytes, 0);
    if (S.gpu->graph_begin && S.gpu->graph_begin(S.gpu) == 0) {
        S.gpu->prefetch_l2(S.gpu, ptr, bytes, 3);
        void *g = S.gpu->graph_end(S.gpu);
        if (g) {
            S.gpu->graph_launch(S.gpu, g);
            S.gpu->graph_free(S.gpu, g);
        } else {
            record("prefetch_l2", "graph_end failed", INFINITY, INFINITY, 0);
        }
    }
    S.gpu->sync(S.gpu);
    unsigned char *back = xmalloc(n);
    S.gpu->to_host(S.gpu, back, d, n);
    const int same = memcmp(back, h, n) == 0;
    digest("prefetch_l2", "24 MiB, 8 ranges, again in a graph", back, n);
    record("prefetch_l2", "24 MiB, 8 ranges, again in a graph: bits unchanged", same ? 0.0 : 1.0,
           same ? 0.0 : 1.0, same);
    S.gpu->free(S.gpu, d);
    free(h);
    free(back);
    check_backend("prefetch_l2");
}

/* ---- embedding ------------------------------------------------------------------------- */

/* to_device through the pinned upload ring (backend_cuda.cu: copies of at most 256 KiB
 * are staged and sent without waiting): 40 uploads of 1 byte to 256 KiB + 1 (the largest
 * staged size, and one past it: the plain path) into separate device buffers, the host
 * source overwritten right after each call, twice round the 16-slot ring; every buffer
 * must then read back what was uploaded into it. On a GPU a slot refilled before its
 * copy left would show here as another upload's bytes. */
static void test_upload_ring(void) {
    enum { N = 40, MAXB = (256 << 10) + 1 };
    unsigned char *host = malloc(MAXB), *back = malloc(MAXB);
    void *dev[N];
    size_t len[N];
    int bad = 0;
    for (int i = 0; i < N; i++) {
        len[i] = i == 0 ? 1 : i == 1 ? MAXB - 1 : i == 2 ? MAXB : 1 + (size_t)irand(MAXB - 1);
        dev[i] = S.gpu->alloc(S.gpu, len[i]);
        for (size_t j = 0; j < len[i]; j++) host[j] = (unsigned char)(i * 31 + j * 7);
        S.gpu->to_device(S.gpu, dev[i], host, len[i]);
        memset(host, 0xAB, len[i]); /* the caller may reuse its buffer at once */
    }
    for (int i = 0; i < N; i++) {
        S.gpu->to_host(S.gpu, back, dev[i], len[i]);
        for (size_t j = 0; j < len[i]; j++)
            if (back[j] != (unsigned char)(i * 31 + j * 7)) {
                bad++;
                break;
            }
        S.gpu->free(S.gpu, dev[i]);
    }
    record("to_device upload ring", "40 uploads, 1 B .. 256 KiB + 1", bad, bad, bad == 0);
    free(host);
    free(back);
    check_backend("to_device");
}

static void test_embedding(int T, int C, int V) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d C=%d V=%d", T, C, V);
    int *ids = xmalloc((size_t)T * sizeof(int));
    for (int t = 0; t < T; t++) ids[t] = irand(V);
    float *wte = rand_bf((size_t)V * C, 1.0f), *dout = rand_bf((size_t)T * C, 1.0f);
    float *dw0 = rand_bf((size_t)V * C, 1.0f);
    pair pid = pair_i32(ids, T), pw = pair_act(wte, (size_t)V * C);
    pair po = pair_poison_act((size_t)T * C);
    S.cpu->embedding_forward(S.cpu, po.c, pid.c, pw.c, T, C);
    S.gpu->embedding_forward(S.gpu, po.g, pid.g, pw.g, T, C);
    cmp_act("embedding_forward", cs, po, NULL, (size_t)T * C, TOL_EXACT);
    pair pd = pair_act(dout, (size_t)T * C), pdw = pair_f32(dw0, (size_t)V * C);
    S.cpu->embedding_backward(S.cpu, pdw.c, pd.c, pid.c, T, C);
    S.gpu->embedding_backward(S.gpu, pdw.g, pd.g, pid.g, T, C);
    cmp_f32("embedding_backward", cs, pdw, dw0, (size_t)V * C, TOL_F32);
    pair again = pair_f32(dw0, (size_t)V * C);
    S.gpu->embedding_backward(S.gpu, again.g, pd.g, pid.g, T, C);
    cmp_bits("embedding_backward", strcat(cs, " determinism"), pdw.g, again.g,
             (size_t)V * C * 4);
    pair_free(pid);
    pair_free(pw);
    pair_free(po);
    pair_free(pd);
    pair_free(pdw);
    pair_free(again);
    free(ids);
    free(wte);
    free(dout);
    free(dw0);
    check_backend("embedding");
}

/* ---- RMSNorm --------------------------------------------------------------------------- */

static int g_rms_fused; /* the rmsnorm cases run with the fused backward forced on */

static void test_rmsnorm(int N, int C, int accumulate) {
    char cs[112];
    const char *rps = getenv("RLVR_RMSNORM_BWD_RPS");
    snprintf(cs, sizeof cs, "N=%d C=%d acc=%d%s%s%s", N, C, accumulate,
             g_rms_fused ? " fused" : "", rps ? " rps=" : "", rps ? rps : "");
    const size_t n = (size_t)N * C;
    float *x = rand_bf(n, 2.0f), *w = rand_bf((size_t)C, 1.5f), *dy = rand_bf(n, 1.0f);
    float *din0 = rand_bf(n, 1.0f), *dw0 = rand_bf((size_t)C, 1.0f);
    pair px = pair_act(x, n), pw = pair_act(w, (size_t)C);
    pair po = pair_poison_act(n), pr = pair_poison_f32((size_t)N);
    S.cpu->rmsnorm_forward(S.cpu, po.c, pr.c, px.c, pw.c, N, C, 1e-6f);
    S.gpu->rmsnorm_forward(S.gpu, po.g, pr.g, px.g, pw.g, N, C, 1e-6f);
    cmp_act("rmsnorm_forward out", cs, po, NULL, n, TOL_BF16);
    cmp_f32("rmsnorm_forward rstd", cs, pr, NULL, (size_t)N, TOL_F32);
    /* The backward gets the CPU's rstd on both sides. */
    float *rstd = down_f32(S.cpu, pr.c, (size_t)N);
    pair prs = pair_f32(rstd, (size_t)N), pdy = pair_act(dy, n);
    pair pdin = accumulate ? pair_act(din0, n) : pair_poison_act(n);
    pair pdw = pair_f32(dw0, (size_t)C);
    S.cpu->rmsnorm_backward(S.cpu, pdin.c, pdw.c, pdy.c, px.c, pw.c, prs.c, N, C, accumulate);
    S.gpu->rmsnorm_backward(S.gpu, pdin.g, pdw.g, pdy.g, px.g, pw.g, prs.g, N, C, accumulate);
    cmp_act("rmsnorm_backward din", cs, pdin, accumulate ? din0 : NULL, n, TOL_BF16);
    cmp_f32("rmsnorm_backward dw", cs, pdw, dw0, (size_t)C, TOL_F32_LOOSE);
    pair again = pair_f32(dw0, (size_t)C);
    S.gpu->rmsnorm_backward(S.gpu, NULL, again.g, pdy.g, px.g, pw.g, prs.g, N, C, 0);
    cmp_bits("rmsnorm_backward dw", strcat(cs, " determinism"), pdw.g, again.g, (size_t)C * 4);
    pair_free(px);
    pair_free(pw);
    pair_free(po);
    pair_free(pr);
    pair_free(prs);
    pair_free(pdy);
    pair_free(pdin);
    pair_free(pdw);
    pair_free(again);
    free(x);
    free(w);
    free(dy);
    free(din0);
    free(dw0);
    free(rstd);
    check_backend("rmsnorm");
}

/* The residual add fused with the norm after it: against the CPU, and bit for bit against
 * add then rmsnorm_forward on the GPU (its promise); in place (sum aliasing a) as the
 * model calls it. */
static int g_rowvec; /* the 16-byte row kernels forced on (rlvr_cuda_set_row_vec) */

static void test_add_rmsnorm(int N, int C) {
    char cs[112];
    snprintf(cs, sizeof cs, "N=%d C=%d%s", N, C, g_rowvec ? " rowvec" : "");
    const size_t n = (size_t)N * C;
    float *a = rand_bf(n, 2.0f), *b = rand_bf(n, 1.0f), *w = rand_bf((size_t)C, 1.0f);
    pair pa = pair_act(a, n), pb = pair_act(b, n), pw = pair_act(w, (size_t)C);
    pair po = pair_poison_act(n), pr = pair_poison_f32((size_t)N);
    pair ref_sum = pair_poison_act(n), ref_out = pair_poison_act(n);
    pair ref_r = pair_poison_f32((size_t)N);
    S.gpu->add(S.gpu, ref_sum.g, pa.g, pb.g, n);
    S.gpu->rmsnorm_forward(S.gpu, ref_out.g, ref_r.g, ref_sum.g, pw.g, N, C, 1e-6f);
    S.cpu->add_rmsnorm_forward(S.cpu, pa.c, po.c, pr.c, pa.c, pb.c, pw.c, N, C, 1e-6f);
    S.gpu->add_rmsnorm_forward(S.gpu, pa.g, po.g, pr.g, pa.g, pb.g, pw.g, N, C, 1e-6f);
    cmp_act("add_rmsnorm_forward sum", cs, pa, NULL, n, TOL_BF16);
    cmp_act("add_rmsnorm_forward out", cs, po, NULL, n, TOL_BF16);
    /* the GPU takes the norm of the bf16-rounded sum, the CPU of the fp32 one: bf16 */
    cmp_f32("add_rmsnorm_forward rstd", cs, pr, NULL, (size_t)N, TOL_BF16);
    const size_t as = S.gpu->act_size;
    cmp_bits("add_rmsnorm_forward sum = add", cs, pa.g, ref_sum.g, n * as);
    if (!g_rowvec) { /* the element-wise kernel promises add + rmsnorm's bits */
        cmp_bits("add_rmsnorm_forward out = add+rmsnorm", cs, po.g, ref_out.g, n * as);
        cmp_bits("add_rmsnorm_forward rstd = add+rmsnorm", cs, pr.g, ref_r.g, (size_t)N * 4);
    } else { /* the row kernel sums squares in another order */
        float *x = down_act(S.gpu, po.g, n), *y = down_act(S.gpu, ref_out.g, n);
        compare("add_rmsnorm_forward out ~ add+rmsnorm", cs, x, y, NULL, n, TOL_BF16);
        free(x);
        free(y);
        x = down_f32(S.gpu, pr.g, (size_t)N);
        y = down_f32(S.gpu, ref_r.g, (size_t)N);
        compare("add_rmsnorm_forward rstd ~ add+rmsnorm", cs, x, y, NULL, (size_t)N, TOL_F32);
        free(x);
        free(y);
        /* and the same bits when run again on the same inputs */
        pair p2 = pair_poison_act(n), r2 = pair_poison_f32((size_t)N);
        S.gpu->add_rmsnorm_forward(S.gpu, ref_sum.g, p2.g, r2.g, pa.g, pb.g, pw.g, N, C, 1e-6f);
        pair p3 = pair_poison_act(n), r3 = pair_poison_f32((size_t)N);
        S.gpu->add_rmsnorm_forward(S.gpu, ref_sum.g, p3.g, r3.g, pa.g, pb.g, pw.g, N, C, 1e-6f);
        cmp_bits("add_rmsnorm_forward out determinism", cs, p2.g, p3.g, n * as);
        pair_free(p2);
        pair_free(r2);
        pair_free(p3);
        pair_free(r3);
    }
    pair_free(pa);
    pair_free(pb);
    pair_free(pw);
    pair_free(po);
    pair_free(pr);
    pair_free(ref_sum);
    pair_free(ref_out);
    pair_free(ref_r);
    free(a);
    free(b);
    free(w);
    check_backend("add_rmsnorm");
}

/* ---- linear layer ---------------------------------------------------------------------- */

static int g_gemv; /* the matmul cases run with the GEMV forward forced on */
static const char *g_tune = ""; /* case tag of the tuned-GEMM pass (gemm_tune_cases) */

static void test_matmul(int N, int IC, int OC, int bias, int accumulate) {
    char cs[112];
    snprintf(cs, sizeof cs, "N=%d IC=%d OC=%d bias=%d acc=%d%s%s", N, IC, OC, bias, accumulate,
             g_gemv ? " gemv" : "", g_tune);
    const float ws = 1.0f / sqrtf((float)IC);
    float *x = rand_bf((size_t)N * IC, 1.0f), *w = rand_bf((size_t)OC * IC, ws);
    float *b = rand_bf((size_t)OC, 1.0f), *dy = rand_bf((size_t)N * OC, 1.0f);
    float *din0 = rand_bf((size_t)N * IC, 1.0f), *dw0 = rand_bf((size_t)OC * IC, 1.0f);
    float *db0 = rand_bf((size_t)OC, 1.0f);
    pair px = pair_act(x, (size_t)N * IC), pw = pair_act(w, (size_t)OC * IC);
    pair pb = pair_act(b, (size_t)OC), po = pair_poison_act((size_t)N * OC);
    S.cpu->matmul_forward(S.cpu, po.c, px.c, pw.c, bias ? pb.c : NULL, N, IC, OC);
    S.gpu->matmul_forward(S.gpu, po.g, px.g, pw.g, bias ? pb.g : NULL, N, IC, OC);
    cmp_act("matmul_forward", cs, po, NULL, (size_t)N * OC, TOL_BF16);
    pair pdy = pair_act(dy, (size_t)N * OC);
    pair pdin = accumulate ? pair_act(din0, (size_t)N * IC) : pair_poison_act((size_t)N * IC);
    pair pdw = pair_f32(dw0, (size_t)OC * IC), pdb = pair_f32(db0, (size_t)OC);
    S.cpu->matmul_backward(S.cpu, pdin.c, pdw.c, bias ? pdb.c : NULL, pdy.c, px.c, pw.c, N, IC,
                           OC, accumulate);
    S.gpu->matmul_backward(S.gpu, pdin.g, pdw.g, bias ? pdb.g : NULL, pdy.g, px.g, pw.g, N, IC,
                           OC, accumulate);
    cmp_act("matmul_backward din", cs, pdin, accumulate ? din0 : NULL, (size_t)N * IC,
            TOL_BF16);
    cmp_f32("matmul_backward dw", cs, pdw, dw0, (size_t)OC * IC, TOL_F32_LOOSE);
    if (bias) {
        cmp_f32("matmul_backward dbias", cs, pdb, db0, (size_t)OC, TOL_F32_LOOSE);
        /* Only dbias requested: din and dw NULL must be skipped, dbias deterministic. */
        pair again = pair_f32(db0, (size_t)OC);
        S.gpu->matmul_backward(S.gpu, NULL, NULL, again.g, pdy.g, px.g, pw.g, N, IC, OC, 0);
        cmp_bits("matmul_backward dbias", strcat(cs, " determinism"), pdb.g, again.g,
                 (size_t)OC * 4);
        pair_free(again);
    }
    pair_free(px);
    pair_free(pw);
    pair_free(pb);
    pair_free(po);
    pair_free(pdy);
    pair_free(pdin);
    pair_free(pdw);
    pair_free(pdb);
    free(x);
    free(w);
    free(b);
    free(dy);
    free(din0);
    free(dw0);
    free(db0);
    check_backend("matmul");
}

/* matmul_swiglu_forward (the stacked gate|up projection + SwiGLU; fused into one GEMV
 * kernel for T <= 8 rows) against the CPU, and on the GPU against its two ops run apart
 * (rlvr_cuda_set_decode_fuse 0): the same bits. T > 8 checks the unfused fallback. */
static void test_matmul_swiglu(int T, int C, int F) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d C=%d F=%d", T, C, F);
    float *x = rand_bf((size_t)T * C, 1.0f), *w = rand_bf((size_t)2 * F * C, 2.0f / sqrtf((float)C));
    pair px = pair_act(x, (size_t)T * C), pw = pair_act(w, (size_t)2 * F * C);
    pair ph = pair_poison_act((size_t)T * F), pgu = pair_poison_act((size_t)2 * T * F);
    pair h2 = pair_poison_act((size_t)T * F), gu2 = pair_poison_act((size_t)2 * T * F);
    S.cpu->matmul_swiglu_forward(S.cpu, ph.c, pgu.c, px.c, pw.c, T, C, F);
    S.gpu->matmul_swiglu_forward(S.gpu, ph.g, pgu.g, px.g, pw.g, T, C, F);
    cmp_act("matmul_swiglu_forward gu", cs, pgu, NULL, (size_t)2 * T * F, TOL_BF16);
    cmp_act("matmul_swiglu_forward out", cs, ph, NULL, (size_t)T * F, TOL_BF16);
    rlvr_cuda_set_decode_fuse(S.gpu, 0);
    S.gpu->matmul_swiglu_forward(S.gpu, h2.g, gu2.g, px.g, pw.g, T, C, F);
    rlvr_cuda_set_decode_fuse(S.gpu, 1);
    char c2[128];
    snprintf(c2, sizeof c2, "%.100s fused = apart", cs);
    cmp_bits("matmul_swiglu_forward gu", c2, pgu.g, gu2.g, (size_t)2 * T * F * 2);
    cmp_bits("matmul_swiglu_forward out", c2, ph.g, h2.g, (size_t)T * F * 2);
    pair_free(px);
    pair_free(pw);
    pair_free(ph);
    pair_free(pgu);
    pair_free(h2);
    pair_free(gu2);
    free(x);
    free(w);
    check_backend("matmul_swiglu");
}

/* How the fused decode ops are compared: run 0 on the CPU and the GPU (decode fusions on),
 * run 1 on the GPU with the decode fusions off (the ops apart); call(be, dev, run, arg)
 * issues the op on be (dev: the GPU side of the pairs) into run's buffers. */
typedef void (*fused_call)(rlvr_backend *be, int dev, int run, void *arg);
static void run_fused_and_apart(fused_call call, void *arg) {
    for (int k = 0; k < 2; k++) {
        if (k == 1) rlvr_cuda_set_decode_fuse(S.gpu, 0);
        for (int dev = k; dev < 2; dev++) call(dev ? S.gpu : S.cpu, dev, k, arg);
        rlvr_cuda_set_decode_fuse(S.gpu, 1);
    }
}
#define PICK(p) (dev ? (p).g : (p).c)

/* add_rmsnorm_swiglu / add_rmsnorm_matmul's buffers: run[fused, apart][a, sum, ln, rstd,
 * out, gu] and the shared inputs. */
typedef struct {
    pair run[2][6], pw, pnw, pb, pbias;
    int N, C, F, swiglu, bias;
} arn_case;

static void arn_call(rlvr_backend *be, int dev, int k, void *arg) {
    const arn_case *t = (const arn_case *)arg;
    const pair *r = t->run[k];
    if (t->swiglu)
        be->add_rmsnorm_swiglu(be, PICK(r[1]), PICK(r[2]), PICK(r[3]), PICK(r[0]), PICK(t->pb),
                               PICK(t->pnw), 1e-6f, PICK(r[4]), PICK(r[5]), PICK(t->pw), t->N,
                               t->C, t->F);
    else
        be->add_rmsnorm_matmul(be, PICK(r[1]), PICK(r[2]), PICK(r[3]), PICK(r[0]), PICK(t->pb),
                               PICK(t->pnw), 1e-6f, PICK(r[4]), PICK(t->pw),
                               t->bias ? PICK(t->pbias) : NULL, t->N, t->C, t->F);
}

/* add_rmsnorm_swiglu (swiglu: the residual add + RMSNorm + gate|up projection + SwiGLU
 * before a layer's MLP) or add_rmsnorm_matmul (the add + norm + a projection with an
 * optional bias: the next layer's q|k|v) — one kernel for N <= 8 with the decode fusions
 * on — against the CPU, and on the GPU bit for bit against the two ops run apart
 * (decode fusions off), the sum in place (sum = a, as the model calls them: the fused
 * kernel must not overwrite a while other blocks still read it) or into its own buffer.
 * F: the SwiGLU features, or the projection's OC. */
static void test_add_rmsnorm_gemv(int N, int C, int F, int inplace, int swiglu, int bias) {
    char cs[112];
    snprintf(cs, sizeof cs, "N=%d C=%d F=%d%s%s%s", N, C, F, inplace ? " in place" : "",
             bias ? " bias" : "", g_rowvec ? " rowvec" : "");
    const char *op = swiglu ? "add_rmsnorm_swiglu" : "add_rmsnorm_matmul";
    const int rows = swiglu ? 2 * F : F; /* of w */
    const size_t n = (size_t)N * C, nh = (size_t)N * F, as = S.gpu->act_size;
    float *a = rand_bf(n, 2.0f), *b = rand_bf(n, 1.0f), *nw = rand_bf((size_t)C, 1.0f);
    float *w = rand_bf((size_t)rows * C, 2.0f / sqrtf((float)C)), *bs = rand_bf((size_t)F, 1.0f);
    arn_case t = {.pw = pair_act(w, (size_t)rows * C), .pnw = pair_act(nw, (size_t)C),
                  .pb = pair_act(b, n), .pbias = pair_act(bs, (size_t)F), .N = N, .C = C,
                  .F = F, .swiglu = swiglu, .bias = bias};
    for (int k = 0; k < 2; k++) {
        t.run[k][0] = pair_act(a, n);
        t.run[k][1] = inplace ? t.run[k][0] : pair_poison_act(n);
        t.run[k][2] = pair_poison_act(n);
        t.run[k][3] = pair_poison_f32((size_t)N);
        t.run[k][4] = pair_poison_act(nh);
        t.run[k][5] = pair_poison_act(2 * nh);
    }
    run_fused_and_apart(arn_call, &t);
    pair *f = t.run[0], *u = t.run[1];
    char c1[160], c2[160];
    snprintf(c1, sizeof c1, "%s %.100s", op, cs);
    snprintf(c2, sizeof c2, "%s %.100s fused = apart", op, cs);
    cmp_act("sum", c1, f[1], NULL, n, TOL_BF16);
    cmp_act("ln", c1, f[2], NULL, n, TOL_BF16);
    cmp_f32("rstd", c1, f[3], NULL, (size_t)N, TOL_BF16);
    cmp_act("out", c1, f[4], NULL, nh, TOL_BF16);
    if (swiglu) cmp_act("gu", c1, f[5], NULL, 2 * nh, TOL_BF16);
    cmp_bits("sum", c2, f[1].g, u[1].g, n * as);
    cmp_bits("ln", c2, f[2].g, u[2].g, n * as);
    cmp_bits("rstd", c2, f[3].g, u[3].g, (size_t)N * 4);
    cmp_bits("out", c2, f[4].g, u[4].g, nh * as);
    if (swiglu) cmp_bits("gu", c2, f[5].g, u[5].g, 2 * nh * as);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 6; i++)
            if (i != 1 || !inplace) pair_free(t.run[k][i]);
    pair_free(t.pw);
    pair_free(t.pnw);
    pair_free(t.pb);
    pair_free(t.pbias);
    free(a);
    free(b);
    free(nw);
    free(w);
    free(bs);
    check_backend(op);
}

/* add_rmsnorm_qkv_store (the residual add + input norm + stacked q|k|v projection with its
 * bias, then the split: q and k rotated at pos, k and v also into their cache slots; one
 * kernel for N <= 8 with the decode fusions on, session 20) against the CPU, and on the GPU
 * bit for bit against the two ops run apart (decode fusions off): sum (in place, as the
 * model calls it), ln, rstd, q, k, v and both caches (a negative slot stores nothing; the
 * other slots keep their bits). */
typedef struct {
    pair run[2][9], pw, pnw, pb, pbias, pp, psl, pf;
    int N, C, Hq, Hkv, D;
} qkv_case;

static void qkv_call(rlvr_backend *be, int dev, int k, void *arg) {
    const qkv_case *t = (const qkv_case *)arg;
    const pair *x = t->run[k];
    /* a backend without the op (older kernels, tests/emu/same_bits.sh): the ops it stands
     * for, so that the run draws the same random inputs */
    typeof(be->add_rmsnorm_qkv_store) op =
        be->add_rmsnorm_qkv_store ? be->add_rmsnorm_qkv_store : rlvr_add_rmsnorm_qkv_store_apart;
    op(be, PICK(x[0]), PICK(x[1]), PICK(x[2]), PICK(x[0]), PICK(t->pb), PICK(t->pnw), 1e-6f,
       PICK(x[3]), PICK(t->pw), PICK(t->pbias), PICK(x[4]), PICK(x[5]), PICK(x[6]), PICK(x[7]),
       PICK(x[8]), PICK(t->psl), PICK(t->pp), PICK(t->pf), t->N, t->C, t->Hq, t->Hkv, t->D);
}
#undef PICK

static void test_add_rmsnorm_qkv_store(int N, int C, int Hq, int Hkv, int D) {
    char cs[112];
    snprintf(cs, sizeof cs, "N=%d C=%d Hq=%d Hkv=%d D=%d%s", N, C, Hq, Hkv, D,
             g_rowvec ? " rowvec" : "");
    const int OC = (Hq + 2 * Hkv) * D, nslot = N + 3;
    const size_t n = (size_t)N * C, nq = (size_t)N * Hq * D, nk = (size_t)N * Hkv * D;
    const size_t nc = (size_t)nslot * Hkv * D, as = S.gpu->act_size;
    float *a = rand_bf(n, 2.0f), *b = rand_bf(n, 1.0f), *nw = rand_bf((size_t)C, 1.0f);
    float *w = rand_bf((size_t)OC * C, 2.0f / sqrtf((float)C)), *bs = rand_bf((size_t)OC, 1.0f);
    float *c0 = rand_bf(nc, 1.0f), *c1 = rand_bf(nc, 1.0f);
    int *pos = xmalloc((size_t)N * sizeof(int)), *slots = xmalloc((size_t)N * sizeof(int));
    for (int t = 0; t < N; t++) {
        pos[t] = irand(5000);
        slots[t] = t % 3 == 2 ? -1 : nslot - 1 - t;
    }
    float *inv = xmalloc((size_t)(D / 2 + 1) * sizeof(float));
    for (int i = 0; i < D / 2; i++) inv[i] = powf(1e6f, -2.0f * (float)i / (float)D);
    qkv_case t = {.pw = pair_act(w, (size_t)OC * C), .pnw = pair_act(nw, (size_t)C),
                  .pb = pair_act(b, n), .pbias = pair_act(bs, (size_t)OC),
                  .pp = pair_i32(pos, N), .psl = pair_i32(slots, N),
                  .pf = pair_f32(inv, (size_t)(D / 2 + 1)), .N = N, .C = C, .Hq = Hq,
                  .Hkv = Hkv, .D = D};
    for (int k = 0; k < 2; k++) {
        pair *x = t.run[k];
        x[0] = pair_act(a, n);
        x[1] = pair_poison_act(n);
        x[2] = pair_poison_f32((size_t)N);
        x[3] = pair_poison_act((size_t)N * OC);
        x[4] = pair_poison_act(nq);
        x[5] = pair_poison_act(nk);
        x[6] = pair_poison_act(nk);
        x[7] = pair_act(c0, nc);
        x[8] = pair_act(c1, nc);
    }
    run_fused_and_apart(qkv_call, &t);
    pair(*r)[9] = t.run;
    static const char *const names[9] = {"sum", "ln", "rstd", "qkv", "q", "k", "v",
                                          "k_cache", "v_cache"};
    const size_t cnt[9] = {n, n, (size_t)N, 0, nq, nk, nk, nc, nc};
    char c1s[160], c2s[160];
    snprintf(c1s, sizeof c1s, "add_rmsnorm_qkv_store %.100s", cs);
    snprintf(c2s, sizeof c2s, "add_rmsnorm_qkv_store %.100s fused = apart", cs);
    for (int i = 0; i < 9; i++) {
        if (i == 3) continue; /* qkv: unspecified after the call */
        if (i == 2) cmp_f32(names[i], c1s, r[0][i], NULL, cnt[i], TOL_BF16);
        else cmp_act(names[i], c1s, r[0][i], NULL, cnt[i], TOL_BF16);
        cmp_bits(names[i], c2s, r[0][i].g, r[1][i].g, cnt[i] * (i == 2 ? 4 : as));
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 9; i++) pair_free(r[k][i]);
    pair_free(t.pw);
    pair_free(t.pnw);
    pair_free(t.pb);
    pair_free(t.pbias);
    pair_free(t.pp);
    pair_free(t.psl);
    pair_free(t.pf);
    free(a);
    free(b);
    free(nw);
    free(w);
    free(bs);
    free(c0);
    free(c1);
    free(pos);
    free(slots);
    free(inv);
    check_backend("add_rmsnorm_qkv_store");
}

/* The skinny GEMM forward (kernels/cuda/skinny_gemm.cu, forced on by the caller) against
 * the CPU, then again into a fresh buffer: the same bits (split-K partials are summed in a
 * fixed order, no atomics). Shapes it does not cover must come back right from cuBLAS. */
static void test_skinny(int N, int IC, int OC, int bias) {
    char cs[112];
    snprintf(cs, sizeof cs, "N=%d IC=%d OC=%d bias=%d skinny", N, IC, OC, bias);
    const float ws = 1.0f / sqrtf((float)IC);
    float *x = rand_bf((size_t)N * IC, 1.0f), *w = rand_bf((size_t)OC * IC, ws);
    float *b = rand_bf((size_t)OC, 1.0f);
    pair px = pair_act(x, (size_t)N * IC), pw = pair_act(w, (size_t)OC * IC);
    pair pb = pair_act(b, (size_t)OC), po = pair_poison_act((size_t)N * OC);
    pair again = pair_poison_act((size_t)N * OC);
    S.cpu->matmul_forward(S.cpu, po.c, px.c, pw.c, bias ? pb.c : NULL, N, IC, OC);
    S.gpu->matmul_forward(S.gpu, po.g, px.g, pw.g, bias ? pb.g : NULL, N, IC, OC);
    S.gpu->matmul_forward(S.gpu, again.g, px.g, pw.g, bias ? pb.g : NULL, N, IC, OC);
    cmp_act("matmul_forward", cs, po, NULL, (size_t)N * OC, TOL_BF16);
    cmp_bits("matmul_forward", strcat(cs, " determinism"), po.g, again.g,
             (size_t)N * OC * S.gpu->act_size);
    pair_free(px);
    pair_free(pw);
    pair_free(pb);
    pair_free(po);
    pair_free(again);
    free(x);
    free(w);
    free(b);
    check_backend("matmul skinny");
}

/* ---- rotary embedding ------------------------------------------------------------------ */

static void test_rope(int T, int H, int D) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d H=%d D=%d", T, H, D);
    const size_t n = (size_t)T * H * D;
    int *pos = xmalloc((size_t)T * sizeof(int));
    for (int t = 0; t < T; t++) pos[t] = irand(4096);
    float *inv = xmalloc((size_t)(D / 2 + 1) * sizeof(float));
    for (int i = 0; i < D / 2; i++) inv[i] = powf(1e6f, -2.0f * (float)i / (float)D);
    float *x = rand_bf(n, 1.0f);
    pair pp = pair_i32(pos, T), pf = pair_f32(inv, (size_t)(D / 2 + 1));
    pair px = pair_act(x, n);
    S.cpu->rope_forward(S.cpu, px.c, pp.c, pf.c, T, H, D);
    S.gpu->rope_forward(S.gpu, px.g, pp.g, pf.g, T, H, D);
    cmp_act("rope_forward", cs, px, NULL, n, TOL_BF16);
    pair pd = pair_act(x, n);
    S.cpu->rope_backward(S.cpu, pd.c, pp.c, pf.c, T, H, D);
    S.gpu->rope_backward(S.gpu, pd.g, pp.g, pf.g, T, H, D);
    cmp_act("rope_backward", cs, pd, NULL, n, TOL_BF16);
    pair_free(pp);
    pair_free(pf);
    pair_free(px);
    pair_free(pd);
    free(pos);
    free(inv);
    free(x);
    check_backend("rope");
}

/* ---- attention ------------------------------------------------------------------------- */

/* Selects the attention path of the next calls: NULL the default dispatch (flash2 with
 * its two-kernel backward), "dqpartials" flash2 with dQ from the dK/dV kernel
 * (RLVR_ATTN_DQ=partials), "wide" flash2 with two tiles per warp in the forward, dK/dV
 * and dQ at D 64 (RLVR_ATTN_FWD=wide RLVR_ATTN_BWD=wide RLVR_ATTN_DQ=wide), "gqasep" flash2
 * with GQA's dK/dV group sum in its own kernel (RLVR_ATTN_GQA=separate; by default the
 * dK/dV kernel's last head block of a group sums it at D 64), anything else that
 * RLVR_ATTENTION value. */
static void attn_set_path(const char *impl) {
    unsetenv("RLVR_ATTENTION");
    unsetenv("RLVR_ATTN_DQ");
    unsetenv("RLVR_ATTN_BWD");
    unsetenv("RLVR_ATTN_FWD");
    unsetenv("RLVR_ATTN_GQA");
    if (impl && strcmp(impl, "gqasep") == 0) {
        setenv("RLVR_ATTN_GQA", "separate", 1);
    } else if (impl && strcmp(impl, "dqpartials") == 0) {
        setenv("RLVR_ATTN_DQ", "partials", 1);
    } else if (impl && strcmp(impl, "wide") == 0) {
        setenv("RLVR_ATTN_BWD", "wide", 1);
        setenv("RLVR_ATTN_FWD", "wide", 1);
        setenv("RLVR_ATTN_DQ", "wide", 1);
    } else if (impl) {
        setenv("RLVR_ATTENTION", impl, 1);
    }
}

/* One GPU attention forward and backward on the path `path` (attn_set_path), outputs on
 * the host as floats. The backward takes the given out/lse (the CPU forward's), so only
 * the backward kernels differ. */
typedef struct {
    float *out, *lse, *dq, *dk, *dv;
} attn_host;

static attn_host gpu_attention(const char *path, pair pq, pair pk, pair pv, pair poff,
                               pair pdo, pair pout, pair plse, int B, int T, int Hq, int Hkv,
                               int D, int max_len) {
    const size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D, nl = (size_t)T * Hq;
    attn_set_path(path);
    const size_t as = S.gpu->act_size;
    void *o = S.gpu->alloc(S.gpu, nq * as), *dq = S.gpu->alloc(S.gpu, nq * as);
    void *dk = S.gpu->alloc(S.gpu, nk * as), *dv = S.gpu->alloc(S.gpu, nk * as);
    float *l = S.gpu->alloc(S.gpu, nl * 4);
    poison(S.gpu, o, nq * as);
    poison(S.gpu, l, nl * 4);
    poison(S.gpu, dq, nq * as);
    poison(S.gpu, dk, nk * as);
    poison(S.gpu, dv, nk * as);
    S.gpu->attention_forward(S.gpu, o, l, pq.g, pk.g, pv.g, poff.g, B, T, Hq, Hkv, D, max_len);
    S.gpu->attention_backward(S.gpu, dq, dk, dv, pdo.g, pq.g, pk.g, pv.g, pout.g, plse.g,
                              poff.g, B, T, Hq, Hkv, D, max_len);
    attn_set_path(NULL);
    attn_host h = {down_act(S.gpu, o, nq), down_f32(S.gpu, l, nl), down_act(S.gpu, dq, nq),
                   down_act(S.gpu, dk, nk), down_act(S.gpu, dv, nk)};
    S.gpu->free(S.gpu, o);
    S.gpu->free(S.gpu, l);
    S.gpu->free(S.gpu, dq);
    S.gpu->free(S.gpu, dk);
    S.gpu->free(S.gpu, dv);
    return h;
}

static void attn_host_free(attn_host *h) {
    free(h->out);
    free(h->lse);
    free(h->dq);
    free(h->dk);
    free(h->dv);
}

/* One attention case: the GPU path `impl` (NULL: the default dispatch, flash2; "flash1":
 * the first fused implementation, RLVR_ATTENTION=flash1; "dqpartials": flash2 with dQ
 * from the dK/dV kernel, RLVR_ATTN_DQ=partials; "wide": flash2 with two tiles per warp
 * in the forward, dK/dV and dQ, the same bits; "gqasep": the GQA group sum of dK/dV as
 * its own kernel, the same bits) against the CPU reference, its
 * backward run twice for the same bits, and for D = 64/128 against the simple kernels,
 * with max_len understated, and (impl given) against the default fused kernels. */
static void test_attention(int Hq, int Hkv, int D, const int *lens, int B, const char *impl) {
    char cs[112];
    int k = snprintf(cs, sizeof cs, "%s%sHq=%d Hkv=%d D=%d lens=", impl ? impl : "",
                     impl ? " " : "", Hq, Hkv, D);
    const int dqp = impl && strcmp(impl, "dqpartials") == 0;
    attn_set_path(impl);
    int *off = xmalloc((size_t)(B + 1) * sizeof(int));
    int T = 0, max_len = 0;
    off[0] = 0;
    for (int b = 0; b < B; b++) {
        T += lens[b];
        off[b + 1] = T;
        if (lens[b] > max_len) max_len = lens[b];
        if (k < (int)sizeof cs - 8) k += snprintf(cs + k, sizeof cs - (size_t)k, "%s%d", b ? "," : "", lens[b]);
    }
    const size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D;
    float *q = rand_bf(nq, 2.0f), *kk = rand_bf(nk, 2.0f), *v = rand_bf(nk, 1.0f);
    float *dout = rand_bf(nq, 1.0f);
    pair poff = pair_i32(off, (size_t)B + 1);
    pair pq = pair_act(q, nq), pk = pair_act(kk, nk), pv = pair_act(v, nk);
    pair po = pair_poison_act(nq), pl = pair_poison_f32((size_t)T * Hq);
    S.cpu->attention_forward(S.cpu, po.c, pl.c, pq.c, pk.c, pv.c, poff.c, B, T, Hq, Hkv, D,
                             max_len);
    S.gpu->attention_forward(S.gpu, po.g, pl.g, pq.g, pk.g, pv.g, poff.g, B, T, Hq, Hkv, D,
                             max_len);
    cmp_act("attention_forward out", cs, po, NULL, nq, TOL_BF16);
    cmp_f32("attention_forward lse", cs, pl, NULL, (size_t)T * Hq, TOL_F32_LOOSE);
    /* Backward from the CPU forward's out (rounded to bf16) and lse on both sides. */
    float *out = down_act(S.cpu, po.c, nq), *lse = down_f32(S.cpu, pl.c, (size_t)T * Hq);
    for (size_t i = 0; i < nq; i++) out[i] = bf16_round(out[i]);
    pair pout = pair_act(out, nq), plse = pair_f32(lse, (size_t)T * Hq);
    pair pdo = pair_act(dout, nq);
    pair pdq = pair_poison_act(nq), pdk = pair_poison_act(nk), pdv = pair_poison_act(nk);
    S.cpu->attention_backward(S.cpu, pdq.c, pdk.c, pdv.c, pdo.c, pq.c, pk.c, pv.c, pout.c,
                              plse.c, poff.c, B, T, Hq, Hkv, D, max_len);
    S.gpu->attention_backward(S.gpu, pdq.g, pdk.g, pdv.g, pdo.g, pq.g, pk.g, pv.g, pout.g,
                              plse.g, poff.g, B, T, Hq, Hkv, D, max_len);
    cmp_act("attention_backward dq", cs, pdq, NULL, nq, TOL_BF16);
    cmp_act("attention_backward dk", cs, pdk, NULL, nk, TOL_BF16);
    cmp_act("attention_backward dv", cs, pdv, NULL, nk, TOL_BF16);
    void *dq2 = S.gpu->alloc(S.gpu, nq * 2), *dk2 = S.gpu->alloc(S.gpu, nk * 2);
    void *dv2 = S.gpu->alloc(S.gpu, nk * 2);
    S.gpu->attention_backward(S.gpu, dq2, dk2, dv2, pdo.g, pq.g, pk.g, pv.g, pout.g, plse.g,
                              poff.g, B, T, Hq, Hkv, D, max_len);
    char cd[112];
    snprintf(cd, sizeof cd, "%.90s determinism", cs);
    cmp_bits("attention_backward dq", cd, pdq.g, dq2, nq * 2);
    cmp_bits("attention_backward dk", cd, pdk.g, dk2, nk * 2);
    cmp_bits("attention_backward dv", cd, pdv.g, dv2, nk * 2);
    S.gpu->free(S.gpu, dq2);
    S.gpu->free(S.gpu, dk2);
    S.gpu->free(S.gpu, dv2);
    if (D == 64 || D == 128) {
        /* The fused tensor-core kernels (the default path for these head dims) against
         * the simple CUDA kernels, and with max_len understated (the fused kernels then
         * loop over the extra tiles: same bits). */
        attn_host f = gpu_attention(impl, pq, pk, pv, poff, pdo, pout, plse, B, T, Hq, Hkv, D,
                                    max_len);
        attn_host sm = gpu_attention("simple", pq, pk, pv, poff, pdo, pout, plse, B, T, Hq,
                                     Hkv, D, max_len);
        attn_host u = gpu_attention(impl, pq, pk, pv, poff, pdo, pout, plse, B, T, Hq, Hkv, D,
                                    1);
        compare("attention fused~simple out", cs, f.out, sm.out, NULL, nq, TOL_BF16);
        compare("attention fused~simple lse", cs, f.lse, sm.lse, NULL, (size_t)T * Hq,
                TOL_F32_LOOSE);
        compare("attention fused~simple dq", cs, f.dq, sm.dq, NULL, nq, TOL_BF16);
        compare("attention fused~simple dk", cs, f.dk, sm.dk, NULL, nk, TOL_BF16);
        compare("attention fused~simple dv", cs, f.dv, sm.dv, NULL, nk, TOL_BF16);
        if (impl) { /* flash1, flash2 with dQ partials or wide dK/dV, against the default */
            attn_host d = gpu_attention(NULL, pq, pk, pv, poff, pdo, pout, plse, B, T, Hq, Hkv,
                                        D, max_len);
            const char *w[5] = {"out", "lse", "dq", "dk", "dv"};
            char nm[5][48];
            for (int i = 0; i < 5; i++)
                snprintf(nm[i], sizeof nm[i], "attention %s~flash2 %s", impl, w[i]);
            if (strcmp(impl, "wide") == 0 || strcmp(impl, "gqasep") == 0) {
                /* wide: the same mma in the same order per element; gqasep: the same
                 * group sum in the same order: the same bits */
                const int same = memcmp(f.dk, d.dk, nk * 4) == 0 &&
                                 memcmp(f.dv, d.dv, nk * 4) == 0 &&
                                 memcmp(f.dq, d.dq, nq * 4) == 0 &&
                                 memcmp(f.out, d.out, nq * 4) == 0 &&
                                 memcmp(f.lse, d.lse, (size_t)T * Hq * 4) == 0;
                record(strcmp(impl, "wide") == 0 ? "attention wide=flash2 bits"
                                                 : "attention gqasep=flash2 bits",
                       cs, same ? 0.0 : 1.0, same ? 0.0 : 1.0, same);
            }
            compare(nm[0], cs, f.out, d.out, NULL, nq, TOL_BF16);
            compare(nm[1], cs, f.lse, d.lse, NULL, (size_t)T * Hq, TOL_F32_LOOSE);
            compare(nm[2], cs, f.dq, d.dq, NULL, nq, TOL_BF16);
            compare(nm[3], cs, f.dk, d.dk, NULL, nk, TOL_BF16);
            compare(nm[4], cs, f.dv, d.dv, NULL, nk, TOL_BF16);
            attn_host_free(&d);
        }
        char cu[112];
        snprintf(cu, sizeof cu, "%.80s max_len=1", cs);
        /* dQ partials: with max_len understated the partials of the sequences that do
         * not fit the buffer sized from it are left to the dQ kernel, so dq is only
         * close to the full run's (dk, dv, out, lse: the same bits) */
        const int same = memcmp(f.out, u.out, nq * 4) == 0 &&
                         memcmp(f.lse, u.lse, (size_t)T * Hq * 4) == 0 &&
                         (dqp || memcmp(f.dq, u.dq, nq * 4) == 0) &&
                         memcmp(f.dk, u.dk, nk * 4) == 0 && memcmp(f.dv, u.dv, nk * 4) == 0;
        record("attention fused bits", cu, same ? 0.0 : 1.0, same ? 0.0 : 1.0, same);
        if (dqp) compare("attention dqpartials max_len=1 dq", cu, u.dq, f.dq, NULL, nq, TOL_BF16);
        attn_host_free(&f);
        attn_host_free(&sm);
        attn_host_free(&u);
    }
    attn_set_path(NULL);
    pair_free(poff);
    pair_free(pq);
    pair_free(pk);
    pair_free(pv);
    pair_free(po);
    pair_free(pl);
    pair_free(pout);
    pair_free(plse);
    pair_free(pdo);
    pair_free(pdq);
    pair_free(pdk);
    pair_free(pdv);
    free(off);
    free(q);
    free(kk);
    free(v);
    free(dout);
    free(out);
    free(lse);
    check_backend("attention");
}

/* ---- paged KV cache --------------------------------------------------------------------- */

/* ngroups prompts (lengths prompt[]) with G completions each, block_size 16: the full
 * blocks of a prompt are stored once and shared by its G sequences (the same block ids
 * in their tables); the prompt's partial last block and each completion's own tokens
 * (1..40 of them) go into private blocks. Block ids are a random permutation of the
 * pool. Both caches start poisoned (NaN), so a read of a slot nobody wrote fails.
 * Checks: the written cache rows (exact) and attention_cached for each sequence's last
 * position (decode) plus, when qper = 4, three random positions (prefill-like rows); qper = 1
 * queries the last positions only. attention_cached runs with the CUDA kernels
 * g_kv_impl0..g_kv_impl1 (forced: per query head, split-K; tensor-core split-K, the
 * default, in its own pass), each against the CPU, twice (same bits), and replayed from a
 * CUDA graph recorded with shorter contexts (pos/4) after the real positions are uploaded:
 * the recorded launch must follow the contexts as they grow. */
/* The attention_cached kernels test_kvcache runs (rlvr_cuda_set_decode_attention modes):
 * 0 per head and 1 split-K first; 2 (tensor-core split-K, the default) in its own pass. */
static int g_kv_impl0 = 0, g_kv_impl1 = 1;
/* The cache's block size in test_kvcache: 16 (the sampler's) unless a case sets another
 * (tiles that cross a block: the tensor-core kernel's per-row slot path). */
static int g_kv_bs = 16;
/* test_kvcache with the decode fusions off: the split-K merge by the combine kernel */
static int g_kv_nofuse;
/* test_kvcache's tensor-core pass with paired rows (RLVR_DECODE_ATTN_PAIR=1): also checked
 * bit for bit against the unpaired kernel on the same inputs */
static int g_kv_pair;
/* test_kvcache (q/seq 1) also checks qkv_attention_cached (kvcache_qkv_check) */
static int g_kv_qkv;
/* test_kvcache with every sample of a group as long as the group's first (the sampler's
 * case: the samples of a group decode in step, so paired neighbours share their prompt's
 * tiles) instead of 1..40 own tokens each */
static int g_kv_same_len;
/* test_kvcache (q/seq 1) passes the shared-prefix units of its queries (kv_share_plan:
 * a group's samples read their prompt's blocks once, backend.h) to every attention call,
 * and checks that the units it expects were planned */
static int g_kv_share;

/* qkv_attention_cached on test_kvcache's cache and queries (each its sequence's last
 * position): the new k, v come from a random stacked q|k|v [N, (Hq + 2·Hkv)·D] (k rotated
 * at pos, like q), their slots poisoned (NaN) first. CUDA (the op: fused where the
 * tensor-core kernel applies) against the CPU (the two ops): out and the rows written
 * (bf16 tolerance: the rotations' sin/cos differ in the last bits); then against the CUDA
 * ops apart (qkv_split_store, attention_cached) bit for bit: out and both whole caches. */
static void kvcache_qkv_check(const char *cs, int N, int Hq, int Hkv, int D, int BS,
                              int max_blocks, const int *tables, const int *seq, const int *pos,
                              pair pkc, pair pvc, pair pt, pair pseq, pair ppos, pair psh,
                              int max_ctx) {
    const size_t row = (size_t)Hkv * D, width = (size_t)(Hq + 2 * Hkv) * D;
    const size_t nout = (size_t)N * Hq * D;
    int *slots = xmalloc((size_t)N * sizeof(int));
    float *nan_row = xmalloc(row * sizeof(float)), *f = xmalloc((size_t)D / 2 * sizeof(float));
    for (size_t i = 0; i < row; i++) nan_row[i] = NAN;
    for (int i = 0; i < D / 2; i++) f[i] = powf(10000.0f, -2.0f * (float)i / (float)D);
    for (int n = 0; n < N; n++)
        slots[n] = tables[(size_t)seq[n] * max_blocks + pos[n] / BS] * BS + pos[n] % BS;
    float *qkv = rand_bf((size_t)N * width, 2.0f);
    pair pqkv = pair_act(qkv, (size_t)N * width), pf = pair_f32(f, (size_t)D / 2);
    pair pslot = pair_i32(slots, (size_t)N), po = pair_poison_act(nout);
    pair pq = pair_poison_act(nout), pk = pair_poison_act((size_t)N * row);
    pair pv = pair_poison_act((size_t)N * row);
    /* the new rows' slots poisoned in both caches of both backends */
    for (int n = 0; n < N; n++)
        for (int b = 0; b < 2; b++) {
            rlvr_backend *be = b ? S.gpu : S.cpu;
            void *kc = b ? pkc.g : pkc.c, *vc = b ? pvc.g : pvc.c;
            const size_t at = (size_t)slots[n] * row * be->act_size;
            be->act_from_f32(be, (char *)kc + at, nan_row, row);
            be->act_from_f32(be, (char *)vc + at, nan_row, row);
        }
    S.cpu->qkv_attention_cached(S.cpu, po.c, pq.c, pk.c, pv.c, pqkv.c, pkc.c, pvc.c, pslot.c,
                                ppos.c, pf.c, pt.c, max_blocks, BS, pseq.c, psh.c, N, Hq, Hkv,
                                D, max_ctx);
    /* CUDA apart first (its caches and out kept), then the op over re-poisoned rows; the
     * tensor-core kernel, paired when test_kvcache's pass is */
    rlvr_cuda_set_decode_attention(S.gpu, 2);
    if (g_kv_pair) setenv("RLVR_DECODE_ATTN_PAIR", "1", 1);
    void *o_apart = S.gpu->alloc(S.gpu, nout * S.gpu->act_size);
    rlvr_qkv_attention_cached_apart(S.gpu, o_apart, pq.g, pk.g, pv.g, pqkv.g, pkc.g, pvc.g,
                                    pslot.g, ppos.g, pf.g, pt.g, max_blocks, BS, pseq.g, psh.g,
                                    N, Hq, Hkv, D, max_ctx);
    /* whole caches after the ops apart: the bytes the op must reproduce */
    size_t cache_bytes = 0;
    for (int n = 0; n < N; n++) {
        const size_t end = ((size_t)slots[n] + 1) * row * S.gpu->act_size;
        if (end > cache_bytes) cache_bytes = end;
    }
    unsigned char *kc_apart = xmalloc(cache_bytes), *vc_apart = xmalloc(cache_bytes);
    S.gpu->to_host(S.gpu, kc_apart, pkc.g, cache_bytes);
    S.gpu->to_host(S.gpu, vc_apart, pvc.g, cache_bytes);
    for (int n = 0; n < N; n++) {
        const size_t at = (size_t)slots[n] * row * S.gpu->act_size;
        S.gpu->act_from_f32(S.gpu, (char *)pkc.g + at, nan_row, row);
        S.gpu->act_from_f32(S.gpu, (char *)pvc.g + at, nan_row, row);
    }
    /* (the composite where the backend lacks the op: tests/emu/same_bits.sh against older
     * kernels then compares it with them) */
    typeof(S.gpu->qkv_attention_cached) op = S.gpu->qkv_attention_cached
                                                 ? S.gpu->qkv_attention_cached
                                                 : rlvr_qkv_attention_cached_apart;
    op(S.gpu, po.g, pq.g, pk.g, pv.g, pqkv.g, pkc.g, pvc.g, pslot.g, ppos.g, pf.g, pt.g,
       max_blocks, BS, pseq.g, psh.g, N, Hq, Hkv, D, max_ctx);
    cmp_act("qkv_attention_cached", cs, po, NULL, nout, TOL_BF16);
    /* the rows it wrote, against the CPU's */
    float *kg = xmalloc((size_t)N * row * sizeof(float)), *kcpu = xmalloc((size_t)N * row * 4);
    float *vg = xmalloc((size_t)N * row * sizeof(float)), *vcpu = xmalloc((size_t)N * row * 4);
    for (int n = 0; n < N; n++) {
        const size_t at = (size_t)slots[n] * row;
        S.gpu->act_to_f32(S.gpu, kg + n * row, (char *)pkc.g + at * S.gpu->act_size, row);
        S.gpu->act_to_f32(S.gpu, vg + n * row, (char *)pvc.g + at * S.gpu->act_size, row);
        S.cpu->act_to_f32(S.cpu, kcpu + n * row, (char *)pkc.c + at * S.cpu->act_size, row);
        S.cpu->act_to_f32(S.cpu, vcpu + n * row, (char *)pvc.c + at * S.cpu->act_size, row);
    }
    compare("qkv_attention_cached k", cs, kg, kcpu, NULL, (size_t)N * row, TOL_BF16);
    compare("qkv_attention_cached v", cs, vg, vcpu, NULL, (size_t)N * row, TOL_EXACT);
    unsigned char *kc_op = xmalloc(cache_bytes), *vc_op = xmalloc(cache_bytes);
    S.gpu->to_host(S.gpu, kc_op, pkc.g, cache_bytes);
    S.gpu->to_host(S.gpu, vc_op, pvc.g, cache_bytes);
    cmp_bits("qkv_attention_cached fused=apart", cs, po.g, o_apart, nout * S.gpu->act_size);
    const int same = !memcmp(kc_op, kc_apart, cache_bytes) && !memcmp(vc_op, vc_apart, cache_bytes);
    record("qkv_attention_cached cache fused=apart", cs, same ? 0.0 : 1.0, same ? 0.0 : 1.0,
           same);
    check_backend("qkv_attention_cached");
    unsetenv("RLVR_DECODE_ATTN_PAIR");
    rlvr_cuda_set_decode_attention(S.gpu, -1);
    S.gpu->free(S.gpu, o_apart);
    free(kc_apart);
    free(vc_apart);
    free(kc_op);
    free(vc_op);
    free(kg);
    free(kcpu);
    free(vg);
    free(vcpu);
    free(qkv);
    free(slots);
    free(nan_row);
    free(f);
    pair_free(pqkv);
    pair_free(pf);
    pair_free(pslot);
    pair_free(po);
    pair_free(pq);
    pair_free(pk);
    pair_free(pv);
}

static void test_kvcache(int Hq, int Hkv, int D, const int *prompt, int ngroups, int G,
                         int qper) {
    const int BS = g_kv_bs;
    char cs[128];
    int k = snprintf(cs, sizeof cs, "Hq=%d Hkv=%d D=%d G=%d q/seq=%d prompts=", Hq, Hkv, D, G,
                     qper);
    for (int i = 0; i < ngroups && k < (int)sizeof cs - 8; i++)
        k += snprintf(cs + k, sizeof cs - (size_t)k, "%s%d", i ? "," : "", prompt[i]);
    const char *bps = getenv("RLVR_DECODE_SPLIT_BPS"), *nst = getenv("RLVR_DECODE_ATTN_STAGES");
    if (bps && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " bps=%s", bps);
    if (nst && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " stages=%s", nst);
    if (BS != 16 && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " block=%d", BS);
    const char *keys = getenv("RLVR_DECODE_SPLIT_KEYS");
    if (keys && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " keys=%s", keys);
    if (g_kv_nofuse && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " combine");
    if (g_kv_pair && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " pair");
    if (g_kv_same_len && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " same-len");
    if (g_kv_qkv && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " qkv");
    if (g_kv_share && qper == 1 && k < (int)sizeof cs - 16)
        k += snprintf(cs + k, sizeof cs - (size_t)k, " share");
    const int nseq = ngroups * G;
    const size_t row = (size_t)Hkv * D;
    int *len = xmalloc((size_t)nseq * sizeof(int)), max_blocks = 1, n_blocks = 0;
    for (int s = 0; s < nseq; s++) {
        len[s] = g_kv_same_len && s % G ? len[s - s % G] : prompt[s / G] + 1 + irand(40);
        const int nb = (len[s] + BS - 1) / BS;
        if (nb > max_blocks) max_blocks = nb;
        n_blocks += nb - (s % G == 0 ? 0 : prompt[s / G] / BS); /* shared blocks once */
    }
    n_blocks += 3; /* spare blocks nobody uses */
    int *perm = xmalloc((size_t)n_blocks * sizeof(int));
    for (int i = 0; i < n_blocks; i++) perm[i] = i;
    for (int i = n_blocks - 1; i > 0; i--) {
        const int j = irand(i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    int *tables = xmalloc((size_t)nseq * max_blocks * sizeof(int)), next = 0;
    for (int s = 0; s < nseq; s++) {
        const int nsh = prompt[s / G] / BS, nb = (len[s] + BS - 1) / BS;
        int *tb = tables + (size_t)s * max_blocks;
        for (int i = 0; i < max_blocks; i++) tb[i] = 0; /* never read past len */
        for (int i = 0; i < nb; i++)
            tb[i] = (i < nsh && s % G != 0) ? tables[(size_t)(s - s % G) * max_blocks + i]
                                            : perm[next++];
    }
    /* Token values: a prompt's positions share values across its group. */
    float **kp = xmalloc((size_t)ngroups * sizeof(float *)), **vp = xmalloc((size_t)ngroups * sizeof(float *));
    for (int g = 0; g < ngroups; g++) {
        kp[g] = rand_bf((size_t)prompt[g] * row, 2.0f);
        vp[g] = rand_bf((size_t)prompt[g] * row, 1.0f);
    }
    /* Store batches: 0 = the shared full prompt blocks (once per group), 1 = the rest. */
    size_t cap = 0;
    for (int s = 0; s < nseq; s++) cap += (size_t)len[s];
    float *kb = xmalloc(cap * row * sizeof(float)), *vb = xmalloc(cap * row * sizeof(float));
    int *slots = xmalloc(cap * sizeof(int));
    const size_t nslots = (size_t)n_blocks * BS;
    char *written = calloc(nslots, 1);
    if (!written) {
        fprintf(stderr, "test_cuda_ops: out of memory\n");
        exit(1);
    }
    size_t n_cached = (size_t)n_blocks * BS * row;
    pair pkc = pair_poison_act(n_cached), pvc = pair_poison_act(n_cached);
    for (int batch = 0; batch < 2; batch++) {
        int T = 0;
        for (int s = 0; s < nseq; s++) {
            const int P = prompt[s / G], nsh = P / BS;
            const int *tb = tables + (size_t)s * max_blocks;
            const int p0 = batch == 0 ? 0 : nsh * BS;
            const int p1 = batch == 0 ? (s % G == 0 ? nsh * BS : 0) : len[s];
            float *ke = NULL, *ve = NULL;
            if (batch == 1) {
                ke = rand_bf((size_t)(len[s] - P) * row, 2.0f);
                ve = rand_bf((size_t)(len[s] - P) * row, 1.0f);
            }
            for (int p = p0; p < p1; p++, T++) {
                slots[T] = tb[p / BS] * BS + p % BS;
                written[slots[T]] = 1;
                const float *ks = p < P ? kp[s / G] + (size_t)p * row : ke + (size_t)(p - P) * row;
                const float *vs = p < P ? vp[s / G] + (size_t)p * row : ve + (size_t)(p - P) * row;
                memcpy(kb + (size_t)T * row, ks, row * sizeof(float));
                memcpy(vb + (size_t)T * row, vs, row * sizeof(float));
            }
            free(ke);
            free(ve);
        }
        if (T == 0) continue;
        pair pk = pair_act(kb, (size_t)T * row), pv = pair_act(vb, (size_t)T * row);
        pair ps = pair_i32(slots, (size_t)T);
        S.cpu->kv_store(S.cpu, pkc.c, pvc.c, pk.c, pv.c, ps.c, T, Hkv, D);
        S.gpu->kv_store(S.gpu, pkc.g, pvc.g, pk.g, pv.g, ps.g, T, Hkv, D);
        pair_free(pk);
        pair_free(pv);
        pair_free(ps);
    }
    /* the written rows of both caches, exactly */
    {
        float *cg = down_act(S.gpu, pkc.g, n_cached), *cc = down_act(S.cpu, pkc.c, n_cached);
        float *vg = down_act(S.gpu, pvc.g, n_cached), *vc = down_act(S.cpu, pvc.c, n_cached);
        size_t m = 0;
        for (size_t sl = 0; sl < nslots; sl++) {
            if (!written[sl]) continue;
            memmove(cg + m * row, cg + sl * row, row * sizeof(float));
            memmove(cc + m * row, cc + sl * row, row * sizeof(float));
            memmove(vg + m * row, vg + sl * row, row * sizeof(float));
            memmove(vc + m * row, vc + sl * row, row * sizeof(float));
            m++;
        }
        compare("kv_store k_cache", cs, cg, cc, NULL, m * row, TOL_EXACT);
        compare("kv_store v_cache", cs, vg, vc, NULL, m * row, TOL_EXACT);
        free(cg);
        free(cc);
        free(vg);
        free(vc);
    }
    /* queries: each sequence's last position and qper − 1 random ones */
    const int N = nseq * qper;
    int *seq = xmalloc((size_t)N * sizeof(int)), *pos = xmalloc((size_t)N * sizeof(int));
    int *pos4 = xmalloc((size_t)N * sizeof(int));
    int max_ctx = 0;
    for (int n = 0; n < N; n++) {
        seq[n] = n / qper;
        pos[n] = n % qper == 0 ? len[seq[n]] - 1 : irand(len[seq[n]]);
        pos4[n] = pos[n] / 4;
        if (pos[n] + 1 > max_ctx) max_ctx = pos[n] + 1;
    }
    const size_t nout = (size_t)N * Hq * D;
    float *q = rand_bf(nout, 2.0f);
    pair pq = pair_act(q, nout), po = pair_poison_act(nout);
    pair pt = pair_i32(tables, (size_t)nseq * max_blocks);
    pair pseq = pair_i32(seq, (size_t)N), ppos = pair_i32(pos, (size_t)N);
    /* the shared-prefix units (one query a sequence: the samples of a group side by side):
     * a group of G >= 2 whose prompt fills KV_SHARE_MIN positions of whole blocks forms
     * ceil(G / cap) units (cap: queries of 64 rows) */
    pair psh = {NULL, NULL};
    int *share = NULL;
    if (g_kv_share && qper == 1) {
        share = xmalloc((size_t)3 * N * sizeof(int));
        const int units = kv_share_plan(tables, max_blocks, BS, seq, pos, N, Hq / Hkv, share);
        const int cap = KV_SHARE_ROWS / (Hq / Hkv);
        int want = 0;
        for (int g = 0; g < ngroups; g++) {
            const int kk = (G + cap - 1) / cap;
            if (G >= 2 && prompt[g] / BS * BS >= KV_SHARE_MIN && G / kk >= 2) want += kk;
        }
        record("kv_share_plan units", cs, units == want ? 0.0 : 1.0, (double)units, units == want);
        psh = pair_i32(share, (size_t)3 * N);
    }
    void *o2 = S.gpu->alloc(S.gpu, nout * S.gpu->act_size);
    S.cpu->attention_cached(S.cpu, po.c, pq.c, pkc.c, pvc.c, pt.c, max_blocks, BS, pseq.c,
                            ppos.c, psh.c, N, Hq, Hkv, D, max_ctx);
    static const char *const names[3][3] = {
        {"attention_cached", "attention_cached bits", "attention_cached graph"},
        {"attn_cached split", "attn_cached split bits", "attn_cached split graph"},
        {"attn_cached mma", "attn_cached mma bits", "attn_cached mma graph"}};
    for (int impl = g_kv_impl0; impl <= g_kv_impl1 && !S.dead; impl++) {
        const int pair = g_kv_pair && impl == 2;
        if (pair) setenv("RLVR_DECODE_ATTN_PAIR", "1", 1);
        rlvr_cuda_set_decode_attention(S.gpu, impl);
        poison(S.gpu, po.g, nout * S.gpu->act_size);
        poison(S.gpu, o2, nout * S.gpu->act_size);
        S.gpu->attention_cached(S.gpu, po.g, pq.g, pkc.g, pvc.g, pt.g, max_blocks, BS, pseq.g,
                                ppos.g, psh.g, N, Hq, Hkv, D, max_ctx);
        S.gpu->attention_cached(S.gpu, o2, pq.g, pkc.g, pvc.g, pt.g, max_blocks, BS, pseq.g,
                                ppos.g, psh.g, N, Hq, Hkv, D, max_ctx);
        cmp_act(names[impl][0], cs, po, NULL, nout, TOL_BF16);
        cmp_bits(names[impl][1], cs, po.g, o2, nout * S.gpu->act_size);
        if (share && impl == 2) { /* queries in no unit: the bits of a launch without units */
            poison(S.gpu, o2, nout * S.gpu->act_size);
            S.gpu->attention_cached(S.gpu, o2, pq.g, pkc.g, pvc.g, pt.g, max_blocks, BS,
                                    pseq.g, ppos.g, NULL, N, Hq, Hkv, D, max_ctx);
            const size_t qrow = (size_t)Hq * D * S.gpu->act_size;
            unsigned char *a = xmalloc(nout * S.gpu->act_size);
            unsigned char *b = xmalloc(nout * S.gpu->act_size);
            S.gpu->to_host(S.gpu, a, po.g, nout * S.gpu->act_size);
            S.gpu->to_host(S.gpu, b, o2, nout * S.gpu->act_size);
            int differ = 0, outside = 0;
            for (int n = 0; n < N; n++)
                if (share[n] == 0) {
                    outside++;
                    differ += memcmp(a + n * qrow, b + n * qrow, qrow) != 0;
                }
            record("attn_cached share: no-unit rows = no units", cs, differ, outside, differ == 0);
            free(a);
            free(b);
        }
        if (pair) { /* the same bits as the unpaired kernel */
            unsetenv("RLVR_DECODE_ATTN_PAIR");
            poison(S.gpu, o2, nout * S.gpu->act_size);
            S.gpu->attention_cached(S.gpu, o2, pq.g, pkc.g, pvc.g, pt.g, max_blocks, BS,
                                    pseq.g, ppos.g, psh.g, N, Hq, Hkv, D, max_ctx);
            cmp_bits("attn_cached pair=unpaired", cs, po.g, o2, nout * S.gpu->act_size);
            setenv("RLVR_DECODE_ATTN_PAIR", "1", 1);
        }
        check_backend(names[impl][0]);
        if (S.dead) break;
        /* recorded with contexts of pos/4 + 1 keys (run once unrecorded first, like
         * engine/model/kv_cache.c), replayed with the real ones */
        S.gpu->to_device(S.gpu, ppos.g, pos4, (size_t)N * sizeof(int));
        S.gpu->attention_cached(S.gpu, po.g, pq.g, pkc.g, pvc.g, pt.g, max_blocks, BS, pseq.g,
                                ppos.g, psh.g, N, Hq, Hkv, D, max_ctx / 4 + 1);
        void *graph = NULL;
        if (S.gpu->graph_begin(S.gpu) == 0) {
            S.gpu->attention_cached(S.gpu, po.g, pq.g, pkc.g, pvc.g, pt.g, max_blocks, BS,
                                    pseq.g, ppos.g, psh.g, N, Hq, Hkv, D, max_ctx / 4 + 1);
            graph = S.gpu->graph_end(S.gpu);
        }
        S.gpu->to_device(S.gpu, ppos.g, pos, (size_t)N * sizeof(int));
        poison(S.gpu, po.g, nout * S.gpu->act_size);
        if (graph) {
            S.gpu->graph_launch(S.gpu, graph);
            cmp_act(names[impl][2], cs, po, NULL, nout, TOL_BF16);
            S.gpu->graph_free(S.gpu, graph);
        } else {
            record(names[impl][2], "graph_begin/graph_end failed", INFINITY, INFINITY, 0);
        }
        check_backend(names[impl][2]);
        if (pair) unsetenv("RLVR_DECODE_ATTN_PAIR");
    }
    rlvr_cuda_set_decode_attention(S.gpu, -1);
    if (g_kv_qkv && qper == 1 && !S.dead)
        kvcache_qkv_check(cs, N, Hq, Hkv, D, BS, max_blocks, tables, seq, pos, pkc, pvc, pt,
                          pseq, ppos, psh, max_ctx);
    S.gpu->free(S.gpu, o2);
    pair_free(pkc);
    pair_free(pvc);
    pair_free(pq);
    pair_free(po);
    pair_free(pt);
    pair_free(pseq);
    pair_free(ppos);
    if (psh.c) pair_free(psh);
    free(share);
    for (int g = 0; g < ngroups; g++) {
        free(kp[g]);
        free(vp[g]);
    }
    free(kp);
    free(vp);
    free(kb);
    free(vb);
    free(slots);
    free(written);
    free(len);
    free(perm);
    free(tables);
    free(seq);
    free(pos);
    free(pos4);
    free(q);
    check_backend("kvcache");
}

/* ---- SwiGLU and add -------------------------------------------------------------------- */

/* The stacked projections' ops (qkv_split / qkv_merge with and without the rotation,
 * swiglu_packed_forward/backward) against the CPU: T tokens, Hq/Hkv heads of D, F the
 * intermediate size (F % 8 != 0 takes the element-wise path). */
static void test_stacked(int T, int Hq, int Hkv, int D, int F) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d Hq=%d Hkv=%d D=%d F=%d%s", T, Hq, Hkv, D, F,
             g_rowvec ? " rowvec" : "");
    const size_t nq = (size_t)T * Hq * D, nk = (size_t)T * Hkv * D, nqkv = nq + 2 * nk;
    int *pos = xmalloc((size_t)T * sizeof(int));
    for (int t = 0; t < T; t++) pos[t] = irand(4096);
    float *inv = xmalloc((size_t)(D / 2 + 1) * sizeof(float));
    for (int i = 0; i < D / 2; i++) inv[i] = powf(1e6f, -2.0f * (float)i / (float)D);
    float *x = rand_bf(nqkv, 1.0f);
    pair pp = pair_i32(pos, T), pf = pair_f32(inv, (size_t)(D / 2 + 1)), px = pair_act(x, nqkv);
    for (int rot = 0; rot < 2; rot++) {
        const int *pc = rot ? pp.c : NULL, *pg = rot ? pp.g : NULL;
        const int tol = rot ? TOL_BF16 : TOL_EXACT;
        char c2[128];
        snprintf(c2, sizeof c2, "%.100s%s", cs, rot ? " rope" : "");
        pair q = pair_poison_act(nq), k = pair_poison_act(nk), v = pair_poison_act(nk);
        S.cpu->qkv_split(S.cpu, q.c, k.c, v.c, px.c, pc, pf.c, T, Hq, Hkv, D);
        S.gpu->qkv_split(S.gpu, q.g, k.g, v.g, px.g, pg, pf.g, T, Hq, Hkv, D);
        cmp_act("qkv_split q", c2, q, NULL, nq, tol);
        cmp_act("qkv_split k", c2, k, NULL, nk, tol);
        cmp_act("qkv_split v", c2, v, NULL, nk, TOL_EXACT);
        /* the merge of what the split made (an independent input would do as well) */
        pair d = pair_poison_act(nqkv);
        S.cpu->qkv_merge(S.cpu, d.c, q.c, k.c, v.c, pc, pf.c, T, Hq, Hkv, D);
        S.gpu->qkv_merge(S.gpu, d.g, q.g, k.g, v.g, pg, pf.g, T, Hq, Hkv, D);
        cmp_act("qkv_merge", c2, d, NULL, nqkv, tol);
        if (rot) { /* the split's rotation against rope_forward's on the GPU */
            pair r = pair_poison_act(nq), r2 = pair_poison_act(nk), r3 = pair_poison_act(nk);
            S.gpu->qkv_split(S.gpu, r.g, r2.g, r3.g, px.g, NULL, pf.g, T, Hq, Hkv, D);
            S.gpu->rope_forward(S.gpu, r.g, pp.g, pf.g, T, Hq, D);
            float *a = down_act(S.gpu, r.g, nq), *b = down_act(S.gpu, q.g, nq);
            compare("qkv_split q ~ rope_forward", c2, b, a, NULL, nq, TOL_BF16);
            free(a);
            free(b);
            pair_free(r);
            pair_free(r2);
            pair_free(r3);
        }
        pair_free(q);
        pair_free(k);
        pair_free(v);
        pair_free(d);
        /* the split that also stores k and v into a paged cache (qkv_split_store): slots
         * in reverse order over T + 3 rows, every fifth token padding (-1); the caches
         * start random, so rows not stored must keep their values */
        const int nslot = T + 3;
        const size_t nc = (size_t)nslot * Hkv * D;
        int *slots = xmalloc((size_t)T * sizeof(int));
        for (int t = 0; t < T; t++) slots[t] = t % 5 == 4 ? -1 : nslot - 1 - t;
        float *c0 = rand_bf(nc, 1.0f), *c1 = rand_bf(nc, 1.0f);
        pair psl = pair_i32(slots, T), kc = pair_act(c0, nc), vc = pair_act(c1, nc);
        pair kc2 = pair_act(c0, nc), vc2 = pair_act(c1, nc);
        pair q2 = pair_poison_act(nq), k2 = pair_poison_act(nk), v2 = pair_poison_act(nk);
        q = pair_poison_act(nq), k = pair_poison_act(nk), v = pair_poison_act(nk);
        S.cpu->qkv_split_store(S.cpu, q.c, k.c, v.c, kc.c, vc.c, psl.c, px.c, pc, pf.c, T, Hq,
                               Hkv, D);
        S.gpu->qkv_split_store(S.gpu, q.g, k.g, v.g, kc.g, vc.g, psl.g, px.g, pg, pf.g, T, Hq,
                               Hkv, D);
        cmp_act("qkv_split_store q", c2, q, NULL, nq, tol);
        cmp_act("qkv_split_store k", c2, k, NULL, nk, tol);
        cmp_act("qkv_split_store v", c2, v, NULL, nk, TOL_EXACT);
        cmp_act("qkv_split_store k_cache", c2, kc, NULL, nc, tol);
        cmp_act("qkv_split_store v_cache", c2, vc, NULL, nc, TOL_EXACT);
        /* fused (the default) = qkv_split then kv_store on the GPU (decode fusions off) */
        rlvr_cuda_set_decode_fuse(S.gpu, 0);
        S.gpu->qkv_split_store(S.gpu, q2.g, k2.g, v2.g, kc2.g, vc2.g, psl.g, px.g, pg, pf.g, T,
                               Hq, Hkv, D);
        rlvr_cuda_set_decode_fuse(S.gpu, 1);
        char c3[160];
        snprintf(c3, sizeof c3, "%.120s fused = apart", c2);
        cmp_bits("qkv_split_store q", c3, q.g, q2.g, nq * 2);
        cmp_bits("qkv_split_store k_cache", c3, kc.g, kc2.g, nc * 2);
        cmp_bits("qkv_split_store v_cache", c3, vc.g, vc2.g, nc * 2);
        pair_free(psl);
        pair_free(kc);
        pair_free(vc);
        pair_free(kc2);
        pair_free(vc2);
        pair_free(q);
        pair_free(k);
        pair_free(v);
        pair_free(q2);
        pair_free(k2);
        pair_free(v2);
        free(slots);
        free(c0);
        free(c1);
    }
    const size_t nh = (size_t)T * F;
    float *gu = rand_bf(2 * nh, 3.0f), *dy = rand_bf(nh, 1.0f);
    pair pgu = pair_act(gu, 2 * nh), pdy = pair_act(dy, nh);
    pair ph = pair_poison_act(nh), pdgu = pair_poison_act(2 * nh);
    S.cpu->swiglu_packed_forward(S.cpu, ph.c, pgu.c, T, F);
    S.gpu->swiglu_packed_forward(S.gpu, ph.g, pgu.g, T, F);
    cmp_act("swiglu_packed_forward", cs, ph, NULL, nh, TOL_BF16);
    S.cpu->swiglu_packed_backward(S.cpu, pdgu.c, pdy.c, pgu.c, T, F);
    S.gpu->swiglu_packed_backward(S.gpu, pdgu.g, pdy.g, pgu.g, T, F);
    cmp_act("swiglu_packed_backward", cs, pdgu, NULL, 2 * nh, TOL_BF16);
    pair_free(pgu);
    pair_free(pdy);
    pair_free(ph);
    pair_free(pdgu);
    free(gu);
    free(dy);
    pair_free(pp);
    pair_free(pf);
    pair_free(px);
    free(pos);
    free(inv);
    free(x);
    check_backend("stacked projections");
}

/* misalign: pointers offset by one element so the 16-byte path must fall back. */
static void test_elementwise(size_t n, int misalign) {
    char cs[112];
    snprintf(cs, sizeof cs, "n=%zu%s", n, misalign ? " misaligned" : "");
    const size_t m = n + (size_t)misalign, o = (size_t)misalign;
    float *g = rand_bf(m, 4.0f), *u = rand_bf(m, 2.0f), *dy = rand_bf(m, 1.0f);
    pair pg = pair_act(g, m), pu = pair_act(u, m), pdy = pair_act(dy, m);
    pair po = pair_poison_act(m);
    const size_t cs_ = S.cpu->act_size, gs = S.gpu->act_size;
#define AT_C(p) ((char *)(p).c + o * cs_)
#define AT_G(p) ((char *)(p).g + o * gs)
    S.cpu->swiglu_forward(S.cpu, AT_C(po), AT_C(pg), AT_C(pu), n);
    S.gpu->swiglu_forward(S.gpu, AT_G(po), AT_G(pg), AT_G(pu), n);
    float *gc = down_act(S.cpu, AT_C(po), n), *gg = down_act(S.gpu, AT_G(po), n);
    compare("swiglu_forward", cs, gg, gc, NULL, n, TOL_BF16);
    free(gc);
    free(gg);
    pair pdg = pair_poison_act(m), pdu = pair_poison_act(m);
    S.cpu->swiglu_backward(S.cpu, AT_C(pdg), AT_C(pdu), AT_C(pdy), AT_C(pg), AT_C(pu), n);
    S.gpu->swiglu_backward(S.gpu, AT_G(pdg), AT_G(pdu), AT_G(pdy), AT_G(pg), AT_G(pu), n);
    gc = down_act(S.cpu, AT_C(pdg), n);
    gg = down_act(S.gpu, AT_G(pdg), n);
    compare("swiglu_backward dgate", cs, gg, gc, NULL, n, TOL_BF16);
    free(gc);
    free(gg);
    gc = down_act(S.cpu, AT_C(pdu), n);
    gg = down_act(S.gpu, AT_G(pdu), n);
    compare("swiglu_backward dup", cs, gg, gc, NULL, n, TOL_BF16);
    free(gc);
    free(gg);
    /* add, out-of-place then in place (out aliases a) */
    pair pa = pair_poison_act(m);
    S.cpu->add(S.cpu, AT_C(pa), AT_C(pg), AT_C(pu), n);
    S.gpu->add(S.gpu, AT_G(pa), AT_G(pg), AT_G(pu), n);
    gc = down_act(S.cpu, AT_C(pa), n);
    gg = down_act(S.gpu, AT_G(pa), n);
    compare("add", cs, gg, gc, NULL, n, TOL_BF16);
    free(gc);
    free(gg);
    S.cpu->add(S.cpu, AT_C(pg), AT_C(pg), AT_C(pu), n);
    S.gpu->add(S.gpu, AT_G(pg), AT_G(pg), AT_G(pu), n);
    gc = down_act(S.cpu, AT_C(pg), n);
    gg = down_act(S.gpu, AT_G(pg), n);
    char ca[112];
    snprintf(ca, sizeof ca, "%.90s in place", cs);
    compare("add", ca, gg, gc, NULL, n, TOL_BF16);
    free(gc);
    free(gg);
#undef AT_C
#undef AT_G
    pair_free(pg);
    pair_free(pu);
    pair_free(pdy);
    pair_free(po);
    pair_free(pdg);
    pair_free(pdu);
    pair_free(pa);
    free(g);
    free(u);
    free(dy);
    check_backend("elementwise");
}

/* ---- LM head --------------------------------------------------------------------------- */

static int g_lmkeep; /* the forward keeps its logits for the backward (set_lmhead_keep) */

static void test_lmhead(int T, int C, int V, float inv_temp, int tchunk, int vchunk,
                        int with_entropy) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d C=%d V=%d 1/temp=%.3g chunk=%dx%d ent=%d%s%s", T, C, V,
             (double)inv_temp, tchunk, vchunk, with_entropy, g_lmkeep ? " keep" : "", g_tune);
    rlvr_cuda_set_lmhead_chunks(S.gpu, tchunk, vchunk);
    int *tg = xmalloc((size_t)T * sizeof(int));
    for (int t = 0; t < T; t++) tg[t] = (t % 7 == 3) ? -1 : irand(V);
    float *x = rand_bf((size_t)T * C, 1.0f), *w = rand_bf((size_t)V * C, 4.0f / sqrtf((float)C));
    float *dlp = xmalloc((size_t)T * sizeof(float)), *dent = xmalloc((size_t)T * sizeof(float));
    for (int t = 0; t < T; t++) {
        dlp[t] = srand1();
        dent[t] = srand1();
    }
    float *dw0 = rand_bf((size_t)V * C, 0.01f);
    pair pt = pair_i32(tg, T), px = pair_act(x, (size_t)T * C), pw = pair_act(w, (size_t)V * C);
    pair plp = pair_poison_f32(T), pen = pair_poison_f32(T), pls = pair_poison_f32(T);
    S.cpu->lmhead_forward(S.cpu, plp.c, pen.c, pls.c, px.c, pw.c, pt.c, T, C, V, inv_temp);
    S.gpu->lmhead_forward(S.gpu, plp.g, pen.g, pls.g, px.g, pw.g, pt.g, T, C, V, inv_temp);
    cmp_f32("lmhead_forward logp", cs, plp, NULL, (size_t)T, TOL_F32_LOOSE);
    cmp_f32("lmhead_forward entropy", cs, pen, NULL, (size_t)T, TOL_F32_LOOSE);
    cmp_f32("lmhead_forward lse", cs, pls, NULL, (size_t)T, TOL_F32_LOOSE);
    /* Backward from the CPU forward's lse and entropy on both sides. */
    float *lse = down_f32(S.cpu, pls.c, (size_t)T), *ent = down_f32(S.cpu, pen.c, (size_t)T);
    pair pl2 = pair_f32(lse, (size_t)T), pe2 = pair_f32(ent, (size_t)T);
    pair pdl = pair_f32(dlp, (size_t)T), pde = pair_f32(dent, (size_t)T);
    pair pdx = pair_poison_act((size_t)T * C), pdw = pair_f32(dw0, (size_t)V * C);
    S.cpu->lmhead_backward(S.cpu, pdx.c, pdw.c, pdl.c, with_entropy ? pde.c : NULL, px.c, pw.c,
                           pt.c, pl2.c, pe2.c, T, C, V, inv_temp);
    S.gpu->lmhead_backward(S.gpu, pdx.g, pdw.g, pdl.g, with_entropy ? pde.g : NULL, px.g, pw.g,
                           pt.g, pl2.g, pe2.g, T, C, V, inv_temp);
    cmp_act("lmhead_backward dx", cs, pdx, NULL, (size_t)T * C, TOL_BF16);
    cmp_f32("lmhead_backward dw", cs, pdw, dw0, (size_t)V * C, TOL_BF16);
    pair again = pair_f32(dw0, (size_t)V * C);
    S.gpu->lmhead_backward(S.gpu, NULL, again.g, pdl.g, with_entropy ? pde.g : NULL, px.g, pw.g,
                           pt.g, pl2.g, pe2.g, T, C, V, inv_temp);
    char cd[112];
    snprintf(cd, sizeof cd, "%.90s determinism", cs);
    cmp_bits("lmhead_backward dw", cd, pdw.g, again.g, (size_t)V * C * 4);
    rlvr_cuda_set_lmhead_chunks(S.gpu, 0, 0);
    pair_free(pt);
    pair_free(px);
    pair_free(pw);
    pair_free(plp);
    pair_free(pen);
    pair_free(pls);
    pair_free(pl2);
    pair_free(pe2);
    pair_free(pdl);
    pair_free(pde);
    pair_free(pdx);
    pair_free(pdw);
    pair_free(again);
    free(tg);
    free(x);
    free(w);
    free(dlp);
    free(dent);
    free(dw0);
    free(lse);
    free(ent);
    check_backend("lmhead");
}

/* Kept logits must not serve a backward of other inputs: forward on x1 (kept), then a
 * backward on x2 (another buffer) and one with another 1/temperature — both must
 * recompute and match the CPU's backward of what they were given. */
static void test_lmhead_keep_mismatch(int T, int C, int V) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d C=%d V=%d keep, backward of other inputs", T, C, V);
    int *tg = xmalloc((size_t)T * sizeof(int));
    for (int t = 0; t < T; t++) tg[t] = irand(V);
    float *x1 = rand_bf((size_t)T * C, 1.0f), *x2 = rand_bf((size_t)T * C, 1.0f);
    float *w = rand_bf((size_t)V * C, 4.0f / sqrtf((float)C));
    float *dlp = xmalloc((size_t)T * sizeof(float));
    for (int t = 0; t < T; t++) dlp[t] = srand1();
    pair pt = pair_i32(tg, T), p1 = pair_act(x1, (size_t)T * C), p2 = pair_act(x2, (size_t)T * C);
    pair pw = pair_act(w, (size_t)V * C), pdl = pair_f32(dlp, (size_t)T);
    pair plp = pair_poison_f32(T), pen = pair_poison_f32(T), pls = pair_poison_f32(T);
    for (int k = 0; k < 2; k++) { /* k = 0: x2 at 1/temp 1; k = 1: x1 at 1/temp 0.5 */
        const float it = k ? 0.5f : 1.0f;
        pair px = k ? p1 : p2;
        S.gpu->lmhead_forward(S.gpu, plp.g, pen.g, pls.g, p1.g, pw.g, pt.g, T, C, V, 1.0f);
        /* the lse this backward needs: its own inputs' (CPU) */
        S.cpu->lmhead_forward(S.cpu, plp.c, pen.c, pls.c, px.c, pw.c, pt.c, T, C, V, it);
        float *lse = down_f32(S.cpu, pls.c, (size_t)T);
        pair pl2 = pair_f32(lse, (size_t)T);
        pair pdx = pair_poison_act((size_t)T * C);
        S.cpu->lmhead_backward(S.cpu, pdx.c, NULL, pdl.c, NULL, px.c, pw.c, pt.c, pl2.c, NULL, T,
                               C, V, it);
        S.gpu->lmhead_backward(S.gpu, pdx.g, NULL, pdl.g, NULL, px.g, pw.g, pt.g, pl2.g, NULL, T,
                               C, V, it);
        char c2[128];
        snprintf(c2, sizeof c2, "%.100s %s", cs, k ? "(1/temp)" : "(x)");
        cmp_act("lmhead_backward dx", c2, pdx, NULL, (size_t)T * C, TOL_BF16);
        pair_free(pl2);
        pair_free(pdx);
        free(lse);
    }
    pair_free(pt), pair_free(p1), pair_free(p2), pair_free(pw), pair_free(pdl);
    pair_free(plp), pair_free(pen), pair_free(pls);
    free(tg), free(x1), free(x2), free(w), free(dlp);
    check_backend("lmhead keep");
}

/* ---- policy loss ------------------------------------------------------------------------ */

static void test_policy_loss(int T, rlvr_policy_loss_params p, int with_ref) {
    char cs[112];
    snprintf(cs, sizeof cs, "T=%d clip=%.2g/%.2g dual=%.2g beta=%.2g k%d ref=%d", T,
             (double)p.clip_low, (double)p.clip_high, (double)p.dual_clip, (double)p.kl_coef,
             p.kl_estimator, with_ref);
    float *lp = xmalloc((size_t)T * 4), *old = xmalloc((size_t)T * 4), *ref = xmalloc((size_t)T * 4);
    float *adv = xmalloc((size_t)T * 4), *wt = xmalloc((size_t)T * 4);
    for (int t = 0; t < T; t++) {
        lp[t] = -5.0f * urand();
        /* mostly near-on-policy ratios, some far enough to hit the ±20 clamp */
        old[t] = lp[t] + (irand(20) == 0 ? 40.0f * srand1() : 0.5f * srand1());
        ref[t] = lp[t] + (irand(20) == 0 ? 40.0f * srand1() : 1.0f * srand1());
        adv[t] = 2.0f * srand1();
        wt[t] = (float)irand(3) * 0.5f;
    }
    pair plp = pair_f32(lp, T), pold = pair_f32(old, T), pref = pair_f32(ref, T);
    pair padv = pair_f32(adv, T), pwt = pair_f32(wt, T);
    pair ploss = pair_poison_f32(T), pkl = pair_poison_f32(T), pcl = pair_poison_f32(T);
    pair pdl = pair_poison_f32(T);
    S.cpu->policy_loss(S.cpu, ploss.c, pkl.c, pcl.c, pdl.c, plp.c, pold.c,
                       with_ref ? pref.c : NULL, padv.c, pwt.c, T, &p);
    S.gpu->policy_loss(S.gpu, ploss.g, pkl.g, pcl.g, pdl.g, plp.g, pold.g,
                       with_ref ? pref.g : NULL, padv.g, pwt.g, T, &p);
    cmp_f32("policy_loss loss", cs, ploss, NULL, (size_t)T, TOL_F32);
    cmp_f32("policy_loss kl", cs, pkl, NULL, (size_t)T, TOL_F32);
    cmp_f32("policy_loss clipped", cs, pcl, NULL, (size_t)T, TOL_EXACT);
    cmp_f32("policy_loss dlogp", cs, pdl, NULL, (size_t)T, TOL_F32);
    pair_free(plp);
    pair_free(pold);
    pair_free(pref);
    pair_free(padv);
    pair_free(pwt);
    pair_free(ploss);
    pair_free(pkl);
    pair_free(pcl);
    pair_free(pdl);
    free(lp);
    free(old);
    free(ref);
    free(adv);
    free(wt);
    check_backend("policy_loss");
}

/* ---- optimizer -------------------------------------------------------------------------- */

static void test_sumsq(size_t n) {
    char cs[112];
    snprintf(cs, sizeof cs, "n=%zu", n);
    float *h = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = srand1() * (i % 97 == 0 ? 100.0f : 1.0f);
    pair p = pair_f32(h, n);
    double c = S.cpu->sumsq(S.cpu, p.c, n), g = S.gpu->sumsq(S.gpu, p.g, n);
    double g2 = S.gpu->sumsq(S.gpu, p.g, n);
    digest("sumsq", cs, &g, sizeof g);
    double rel = fabs(g - c) / (fabs(c) > 0 ? fabs(c) : 1.0);
    record("sumsq", cs, rel, rel, isfinite(g) && rel <= 1e-10);
    char cd[112];
    snprintf(cd, sizeof cd, "n=%zu determinism", n);
    record("sumsq", cd, g == g2 ? 0.0 : 1.0, g == g2 ? 0.0 : 1.0, memcmp(&g, &g2, sizeof g) == 0);
    pair_free(p);
    free(h);
    check_backend("sumsq");
}

static void test_adamw(size_t n, int with_master) {
    char cs[112];
    snprintf(cs, sizeof cs, "n=%zu master=%d (2 steps)", n, with_master);
    float *th = rand_bf(n, 1.0f), *m0 = xmalloc(n * 4), *v0 = xmalloc(n * 4);
    for (size_t i = 0; i < n; i++) {
        m0[i] = 0.01f * srand1();
        v0[i] = 1e-4f * urand();
    }
    float *g1 = rand_bf(n, 0.1f), *g2 = rand_bf(n, 0.1f);
    pair pm = pair_f32(m0, n), pv = pair_f32(v0, n), pg1 = pair_f32(g1, n), pg2 = pair_f32(g2, n);
    /* CPU: param is f32 act; with a master both hold θ. CUDA: bf16 param + f32 master,
     * or (no master) f32 param updated in place. */
    pair pmaster = pair_f32(th, n);
    pair pparam;
    pparam.c = S.cpu->alloc(S.cpu, n * 4);
    S.cpu->to_device(S.cpu, pparam.c, th, n * 4);
    if (with_master) {
        pparam.g = S.gpu->alloc(S.gpu, n * 2);
        poison(S.gpu, pparam.g, n * 2);
    } else {
        pparam.g = S.gpu->alloc(S.gpu, n * 4);
        S.gpu->to_device(S.gpu, pparam.g, th, n * 4);
    }
    for (int step = 1; step <= 2; step++) {
        const float *gg = step == 1 ? pg1.c : pg2.c;
        const float *ggg = step == 1 ? pg1.g : pg2.g;
        S.cpu->adamw(S.cpu, pparam.c, with_master ? pmaster.c : NULL, gg, pm.c, pv.c, n, 1e-3f,
                     0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
        S.gpu->adamw(S.gpu, pparam.g, with_master ? pmaster.g : NULL, ggg, pm.g, pv.g, n, 1e-3f,
                     0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
    }
    cmp_f32("adamw m", cs, pm, NULL, n, TOL_F32);
    cmp_f32("adamw v", cs, pv, NULL, n, TOL_F32);
    if (with_master) {
        cmp_f32("adamw master", cs, pmaster, th, n, TOL_F32_LOOSE);
        float *pc = down_f32(S.cpu, pparam.c, n), *pg = down_act(S.gpu, pparam.g, n);
        compare("adamw param (bf16 copy)", cs, pg, pc, NULL, n, TOL_BF16);
        free(pc);
        free(pg);
    } else {
        cmp_f32("adamw param (f32)", cs, pparam, th, n, TOL_F32_LOOSE);
    }
    pair_free(pm);
    pair_free(pv);
    pair_free(pg1);
    pair_free(pg2);
    pair_free(pmaster);
    pair_free(pparam);
    free(th);
    free(m0);
    free(v0);
    free(g1);
    free(g2);
    check_backend("adamw");
}

/* ---- report ----------------------------------------------------------------------------- */

static void json_num(FILE *f, double x) {
    if (isfinite(x)) fprintf(f, "%.6e", x);
    else fprintf(f, "null");
}

static int write_report(const char *path, uint64_t seed) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        fprintf(stderr, "test_cuda_ops: cannot write %s\n", tmp);
        return -1;
    }
    fprintf(f, "{\n  \"test\": \"test_cuda_ops\",\n  \"seed\": %llu,\n  \"cases\": %d,\n"
               "  \"failed\": %d,\n  \"results\": [\n",
            (unsigned long long)seed, S.nres, S.fails);
    for (int i = 0; i < S.nres; i++) {
        const result *r = &S.res[i];
        fprintf(f, "    {\"op\": \"%s\", \"case\": \"%s\", \"rel\": ", r->op, r->cs);
        json_num(f, r->rel);
        fprintf(f, ", \"max\": ");
        json_num(f, r->max);
        fprintf(f, ", \"pass\": %s}%s\n", r->pass ? "true" : "false", i + 1 < S.nres ? "," : "");
    }
    fprintf(f, "  ]\n}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "test_cuda_ops: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

/* Runs one check unless an earlier one left the CUDA backend in an error state. */
#define RUN(call) \
    do {                \
        if (!S.dead) call; \
    } while (0)
/* a case too large for the CPU emulation: on a GPU only */
#define GPU_ONLY(call) \
    do {                \
        if (!EMU) RUN(call); \
    } while (0)

/* test_matmul for each row {N, IC, OC, bias, accumulate} of cases */
static void matmul_cases(const int (*cases)[5], size_t n) {
    for (size_t i = 0; i < n; i++)
        RUN(test_matmul(cases[i][0], cases[i][1], cases[i][2], cases[i][3], cases[i][4]));
}

/* The measured GEMM choice (gemm_tune.cu) on the linear layer's and the LM head's GEMMs:
 * forward, din (= and +=), dw (+=, fp32), the LM head's scaled logits and its backward.
 *   1. mode "first": the first cublasLt proposal on every shape, untimed (" lt"): the Lt
 *      descriptors' transposes, layouts and alignments (the emulation checks they agree);
 *   2. mode "all", timed (" tuned"), new shapes: the timed calls must not touch a C that
 *      the GEMM accumulates into (din with acc=1, dw), and whatever wins is right;
 *   3. mode 1 (decode shapes): a linear layer with every side > 256 is left alone;
 *   4. a shape first met inside a graph capture: no timing there (a synchronisation
 *      would break the capture), the replay right, the shape tuned at its next call;
 *   5. matmul_forward's path timed per shape (RLVR_SKINNY=tune): the skinny GEMM or
 *      cuBLAS, whichever won, right; each shape timed once;
 *   6. the choices kept in RLVR_GEMM_TUNE_FILE (gemm_tune_file_cases). */
static void gemm_tune_file_cases(void);
static void gemm_tune_cases(void) {
    rlvr_cuda_tune_stats st0, st1, st2;
    rlvr_cuda_set_gemv(S.gpu, 0); /* cuBLAS for every row count */
    rlvr_cuda_set_gemm_tune(S.gpu, 2);
    g_tune = " lt";
    const int mm[][5] = {{37, 200, 64, 0, 1}, {300, 200, 1037, 1, 0}, {300, 67, 37, 1, 1},
                         {256, 896, 1152, 1, 0}};
    matmul_cases(mm, 4);
    RUN(test_lmhead(37, 200, 5000, 1.0f / 0.7f, 16, 1024, 1));
    rlvr_cuda_gemm_tune_stats(S.gpu, &st0);
    char cs[96];
    snprintf(cs, sizeof cs, "first Lt proposal: %d shapes, %d on Lt", st0.shapes, st0.lt_picked);
    record("gemm_tune", cs, 0.0, 0.0,
           st0.shapes >= 12 && st0.lt_picked > 0 && st0.lt_picked <= st0.shapes);
    rlvr_cuda_set_gemm_tune(S.gpu, 3);
    g_tune = " tuned";
    const int tm[][5] = {{64, 896, 1152, 1, 1}, {129, 200, 333, 0, 1}, {16, 64, 40, 1, 0}};
    matmul_cases(tm, 3);
    RUN(test_lmhead(300, 64, 1037, 1.0f, 64, 256, 0));
    rlvr_cuda_gemm_tune_stats(S.gpu, &st1);
    snprintf(cs, sizeof cs, "timed: %d shapes, %d on Lt", st1.shapes - st0.shapes,
             st1.lt_picked - st0.lt_picked);
    record("gemm_tune", cs, 0.0, 0.0, st1.shapes - st0.shapes >= 9);
    rlvr_cuda_set_gemm_tune(S.gpu, 1);
    RUN(test_matmul(300, 300, 400, 1, 1));
    rlvr_cuda_gemm_tune_stats(S.gpu, &st2);
    snprintf(cs, sizeof cs, "decode shapes only: %d -> %d shapes", st1.shapes, st2.shapes);
    record("gemm_tune", cs, 0.0, 0.0, st2.shapes == st1.shapes);
    /* 4: the forward of a new (decode) shape recorded in a graph */
    if (!S.dead && S.gpu->graph_begin) {
        const int N = 19, IC = 64, OC = 72;
        float *x = rand_bf((size_t)N * IC, 1.0f), *w = rand_bf((size_t)OC * IC, 0.125f);
        pair px = pair_act(x, (size_t)N * IC), pw = pair_act(w, (size_t)OC * IC);
        pair po = pair_poison_act((size_t)N * OC);
        S.cpu->matmul_forward(S.cpu, po.c, px.c, pw.c, NULL, N, IC, OC);
        void *g = NULL;
        if (S.gpu->graph_begin(S.gpu) == 0) {
            S.gpu->matmul_forward(S.gpu, po.g, px.g, pw.g, NULL, N, IC, OC);
            g = S.gpu->graph_end(S.gpu);
        }
        rlvr_cuda_gemm_tune_stats(S.gpu, &st1);
        if (g) {
            S.gpu->graph_launch(S.gpu, g);
            S.gpu->graph_free(S.gpu, g);
            cmp_act("matmul_forward", "N=19 IC=64 OC=72 first met in a graph tuned", po, NULL,
                    (size_t)N * OC, TOL_BF16);
        } else {
            record("matmul_forward", "N=19 IC=64 OC=72 tuned: graph_begin/graph_end failed",
                   INFINITY, INFINITY, 0);
        }
        S.gpu->matmul_forward(S.gpu, po.g, px.g, pw.g, NULL, N, IC, OC);
        rlvr_cuda_tune_stats st3;
        rlvr_cuda_gemm_tune_stats(S.gpu, &st3);
        snprintf(cs, sizeof cs, "untuned in the capture (%d -> %d), tuned after (%d)",
                 st2.shapes, st1.shapes, st3.shapes);
        record("gemm_tune", cs, 0.0, 0.0,
               st1.shapes == st2.shapes && st3.shapes == st2.shapes + 1);
        pair_free(px);
        pair_free(pw);
        pair_free(po);
        free(x);
        free(w);
        check_backend("gemm_tune");
    }
    /* 5: matmul_forward's path timed (RLVR_SKINNY=tune): the skinny GEMM or cuBLAS per
     * shape, with and without a bias, and a shape the skinny GEMM declines (IC % 8) */
    rlvr_cuda_gemm_tune_stats(S.gpu, &st0);
    rlvr_cuda_set_skinny(S.gpu, 3);
    g_tune = " path tuned";
    const int pt[][5] = {{32, 896, 1152, 1, 0}, {100, 256, 384, 0, 0}, {9, 64, 40, 1, 0},
                         {24, 67, 40, 0, 0}};
    matmul_cases(pt, 4);
    rlvr_cuda_gemm_tune_stats(S.gpu, &st1);
    snprintf(cs, sizeof cs, "matmul_forward paths: %d -> %d timed, %d -> %d skinny", st0.paths,
             st1.paths, st0.skinny_picked, st1.skinny_picked);
    record("gemm_tune", cs, 0.0, 0.0,
           st1.paths - st0.paths == 4 && st1.skinny_picked - st0.skinny_picked <= 3);
    rlvr_cuda_set_skinny(S.gpu, 0);
    g_tune = "";
    rlvr_cuda_set_gemm_tune(S.gpu, 0);
    rlvr_cuda_set_gemv(S.gpu, 1);
    gemm_tune_file_cases();
}

/* 6: RLVR_GEMM_TUNE_FILE, through fresh backends in turn (S.gpu swapped for each): round 0
 * times the shapes of two linear layers (GEMMs and paths) and writes the file when
 * destroyed; round 1 reads it: every choice loaded, nothing timed, the results right;
 * round 2, with the file's first line naming another device: the file ignored, the shapes
 * timed again (and the file rewritten). */
static void gemm_tune_file_cases(void) {
    if (S.dead) return;
    char path[] = "/tmp/rlvr_gemm_tune_XXXXXX";
    const int fd = mkstemp(path);
    if (fd < 0) {
        record("gemm_tune", "file: mkstemp failed", INFINITY, INFINITY, 0);
        return;
    }
    close(fd);
    unlink(path); /* none yet: the first backend makes it */
    setenv("RLVR_GEMM_TUNE_FILE", path, 1);
    rlvr_backend *keep = S.gpu;
    rlvr_cuda_tune_stats st[3];
    g_tune = " file";
    for (int round = 0; round < 3 && !S.dead; round++) {
        if (round == 2) { /* another device's file */
            FILE *f = fopen(path, "r+");
            if (f) {
                fputs("rlvr-gemm-tune 1 cublasLt=0 cc=0.0 sms=0 l2=", f);
                fclose(f);
            }
        }
        char err[256];
        S.gpu = rlvr_cuda_backend_create(0, err, sizeof err);
        if (!S.gpu) {
            S.gpu = keep;
            record("gemm_tune", "file: a second backend could not be made", INFINITY,
                   INFINITY, 0);
            break;
        }
        rlvr_cuda_set_gemv(S.gpu, 0);
        rlvr_cuda_set_gemm_tune(S.gpu, 1);
        rlvr_cuda_set_skinny(S.gpu, 3);
        RUN(test_matmul(48, 256, 384, 1, 1));
        RUN(test_matmul(20, 128, 72, 0, 0));
        rlvr_cuda_gemm_tune_stats(S.gpu, &st[round]);
        S.gpu->destroy(S.gpu);
        S.gpu = keep;
    }
    unsetenv("RLVR_GEMM_TUNE_FILE");
    g_tune = "";
    char cs[112];
    const int made = st[0].shapes + st[0].paths;
    snprintf(cs, sizeof cs, "file: made %d choices; read %d, timed %d; other device: read %d",
             made, st[1].loaded, st[1].shapes + st[1].paths, st[2].loaded);
    record("gemm_tune", cs, 0.0, 0.0,
           made >= 5 && st[1].loaded == made && st[1].shapes + st[1].paths == 0 &&
               st[2].loaded == 0 && st[2].shapes + st[2].paths == made);
    FILE *f = fopen(path, "r");
    char head[64] = "";
    if (f) {
        if (!fgets(head, sizeof head, f)) head[0] = '\0';
        fclose(f);
    }
    record("gemm_tune", "file: rewritten for this device after the foreign one", 0.0, 0.0,
           strncmp(head, "rlvr-gemm-tune 1 cublasLt=", 26) == 0 &&
               strncmp(head, "rlvr-gemm-tune 1 cublasLt=0 ", 28) != 0);
    unlink(path);
}

/* test_add_rmsnorm_gemv for each row {N, C, F, in place, SwiGLU, bias} of cases */
static void add_rmsnorm_gemv_cases(const int (*cases)[6], size_t n) {
    for (size_t i = 0; i < n; i++)
        RUN(test_add_rmsnorm_gemv(cases[i][0], cases[i][1], cases[i][2], cases[i][3],
                                  cases[i][4], cases[i][5]));
}

/* The attention cases on path impl (NULL: the default dispatch, flash2; "flash1";
 * "dqpartials": flash2 with RLVR_ATTN_DQ=partials, dQ from the dK/dV kernel). The head
 * dims other than 64/128 run only on the default path (elsewhere they fall back to the
 * simple kernels, which it already covers). */
static void attention_cases(const char *impl) {
    const int l1[] = {1}, l2[] = {37}, l3[] = {1, 36, 5, 100}, l4[] = {300};
    const int l5[] = {1, 120, 179}, l6[] = {17, 1, 1, 40}, l7[] = {9, 30}, l8[] = {40, 3};
    const int e4[] = {150}, e5[] = {1, 64, 97};
    RUN(test_attention(4, 4, 64, l1, 1, impl));
    RUN(test_attention(4, 4, 64, l2, 1, impl));
    RUN(test_attention(6, 2, 128, l3, 4, impl));
    RUN(test_attention(14, 2, 64, EMU ? e4 : l4, 1, impl));
    RUN(test_attention(14, 2, 64, EMU ? e5 : l5, 3, impl));
    if (!impl) {
        RUN(test_attention(4, 1, 80, l6, 4, impl));
        RUN(test_attention(2, 2, 33, l7, 2, impl));
        RUN(test_attention(8, 2, 256, l8, 2, impl));
    }
    /* long packed sequences for the fused kernels: odd lengths, 1, up to 4096 */
    const int f1[] = {4096}, f2[] = {1, 2501, 3}, f3[] = {2049, 1, 1000, 63, 65, 129, 7};
    const int f4[] = {3001, 17, 1, 64}, f5[] = {777, 1, 1500}, f6[] = {128, 64, 2, 33};
    GPU_ONLY(test_attention(12, 2, 64, f1, 1, impl));
    GPU_ONLY(test_attention(14, 2, 128, f2, 3, impl));
    GPU_ONLY(test_attention(8, 8, 64, f3, 7, impl));
    GPU_ONLY(test_attention(12, 2, 128, f4, 4, impl));
    GPU_ONLY(test_attention(14, 2, 64, f5, 3, impl));
    RUN(test_attention(8, 8, 128, f6, 4, impl));
    /* emulation: several query and key tiles per sequence, odd lengths, at D 64 and 128 */
    const int g1[] = {257}, g2[] = {129, 1, 65, 3};
    if (EMU) RUN(test_attention(4, 2, 64, g1, 1, impl));
    if (EMU) RUN(test_attention(2, 1, 128, g2, 4, impl));
}

/* The paged-cache cases: Qwen2.5-0.5B's and other head shapes, groups of G sharing a
 * prompt, long contexts (many splits), odd D (scalar paths). */
static void kvcache_cases(void) {
    const int p1[] = {1, 16, 17, 300}, p2[] = {45, 1, 33}, p3[] = {300, 2, 64, 100};
    const int p4[] = {3000}, p5[] = {5000, 700}, p6[] = {2000, 1, 129};
    RUN(test_kvcache(14, 2, 64, p1, 4, 3, 4));
    RUN(test_kvcache(4, 1, 128, p2, 3, 4, 4));
    RUN(test_kvcache(14, 2, 128, p3, 4, 2, 4));
    RUN(test_kvcache(4, 1, 64, p1, 4, 1, 4));
    RUN(test_kvcache(6, 2, 33, p2, 3, 2, 4)); /* row 66: scalar paths, no split-K */
    /* long contexts, N = 1 and few queries: many splits, several tiles per split */
    RUN(test_kvcache(14, 2, 64, p4, 1, 1, 1));
    GPU_ONLY(test_kvcache(14, 2, 128, p4, 1, 1, 1));
    GPU_ONLY(test_kvcache(14, 2, 128, p5, 2, 2, 4));
    RUN(test_kvcache(8, 1, 64, p6, 3, 2, 1));   /* group 8 */
    RUN(test_kvcache(8, 2, 256, p6, 3, 1, 4));  /* D 256: one tile buffer */
    RUN(test_kvcache(4, 4, 80, p6, 3, 2, 4));   /* group 1, D 80: 10 chunks a row */
    RUN(test_kvcache(16, 1, 64, p2, 3, 2, 4));  /* group 16: split-K falls back */
}

/* One split per query (RLVR_DECODE_SPLIT_BPS=1 and 140 (query, KV head) pairs for 132
 * emulated SMs): 70 samples of one ~600-key prompt, ~10 tiles per warp, so each warp's ring
 * of shared stages wraps around several times; with the default two stages, then three and
 * four (RLVR_DECODE_ATTN_STAGES); D 128 once with three. */
static void kvcache_ring_cases(void) {
    const int p7[] = {600};
    setenv("RLVR_DECODE_SPLIT_BPS", "1", 1);
    RUN(test_kvcache(14, 2, 64, p7, 1, 70, 1));
    setenv("RLVR_DECODE_ATTN_STAGES", "3", 1);
    RUN(test_kvcache(14, 2, 64, p7, 1, 70, 1));
    RUN(test_kvcache(14, 2, 128, p7, 1, 70, 1));
    setenv("RLVR_DECODE_ATTN_STAGES", "4", 1);
    RUN(test_kvcache(14, 2, 64, p7, 1, 70, 1));
    unsetenv("RLVR_DECODE_ATTN_STAGES");
    unsetenv("RLVR_DECODE_SPLIT_BPS");
}

/* Cache cases of the samples of prompts, one query each at its last position (the
 * sampler's decode step), for the passes below: siblings sharing their prompt's blocks,
 * D 64 and 128, groups 7, 8 and 16 (16: too wide to pair), an odd query count, cache
 * blocks of 24 slots (tiles across two blocks, never shared), 128-key splits (several per
 * query: merged by the last block; with the decode fusions off, by the combine kernel). */
static void kvcache_step_cases(void) {
    const int p8[] = {300, 17, 1, 95}, p9[] = {700, 40}, p6[] = {2000, 1, 129};
    const int p3[] = {300}, pk[] = {300, 17, 1, 900};
    RUN(test_kvcache(14, 2, 64, p8, 4, 2, 1));
    RUN(test_kvcache(14, 2, 128, p9, 2, 4, 1));
    RUN(test_kvcache(14, 2, 64, p3, 1, 3, 1));
    RUN(test_kvcache(8, 1, 64, p6, 3, 2, 1));
    RUN(test_kvcache(16, 1, 64, p8, 4, 2, 1));
    g_kv_bs = 24;
    RUN(test_kvcache(14, 2, 64, p8, 4, 2, 1));
    g_kv_bs = 16;
    setenv("RLVR_DECODE_SPLIT_KEYS", "128", 1);
    RUN(test_kvcache(14, 2, 64, pk, 4, 2, 1));
    rlvr_cuda_set_decode_fuse(S.gpu, 0);
    g_kv_nofuse = 1;
    RUN(test_kvcache(14, 2, 64, pk, 4, 2, 1));
    g_kv_nofuse = 0;
    rlvr_cuda_set_decode_fuse(S.gpu, 1);
    unsetenv("RLVR_DECODE_SPLIT_KEYS");
}

/* The tensor-core cached attention with paired rows (RLVR_DECODE_ATTN_PAIR=1): each case
 * against the CPU and bit for bit against the unpaired kernel (test_kvcache): neighbouring
 * queries of one sequence at random positions (q/seq 4: the same tables, other masks and
 * splits) and group 4 with two queries a sequence; then the step cases with every sample of
 * a prompt as long as its siblings (same-len: the prompt's tiles shared by a pair); 70
 * samples of one prompt with one split each and 2 / 3 / 4 stages (D 128 with 3). */
static void kvcache_pair_cases(void) {
    const int p1[] = {1, 16, 17, 300};
    g_kv_impl0 = g_kv_impl1 = 2;
    g_kv_pair = 1;
    RUN(test_kvcache(14, 2, 64, p1, 4, 3, 4));
    RUN(test_kvcache(4, 1, 64, p1, 4, 2, 2));
    g_kv_same_len = 1;
    kvcache_step_cases();
    kvcache_ring_cases();
    g_kv_same_len = 0;
    g_kv_pair = 0;
}

/* qkv_attention_cached (kvcache_qkv_check) on the step cases, unpaired and paired (with
 * siblings of equal length), and D 80 (the scalar kernels: the op runs apart). */
static void kvcache_qkv_cases(void) {
    const int p6[] = {2000, 1, 129};
    g_kv_impl0 = g_kv_impl1 = 2;
    g_kv_qkv = 1;
    kvcache_step_cases();
    RUN(test_kvcache(4, 4, 80, p6, 3, 2, 1));
    g_kv_pair = g_kv_same_len = 1;
    kvcache_step_cases();
    g_kv_pair = g_kv_same_len = 0;
    g_kv_qkv = 0;
}

/* The shared-prefix units (backend.h, attention_cached's share; the tensor-core kernel's
 * prefix blocks): the step cases with the units of each step passed to the attention (the
 * CPU checks them, the kernel reads a unit's prompt blocks once), so each case compares the
 * unit path against the CPU and itself (bits twice, a graph recorded at shorter contexts —
 * members whose prefix then no longer fits fall back to their own splits — and replayed);
 * 128-key splits, and those merged by the combine kernel; siblings of equal length; 70
 * samples of one prompt (eight units of 8 or 9) with one split each (the launch keeps two
 * per query for a unit); and qkv_attention_cached with units against the ops apart. */
static void kvcache_share_cases(void) {
    g_kv_impl0 = g_kv_impl1 = 2;
    g_kv_share = 1;
    kvcache_step_cases();
    g_kv_same_len = 1;
    kvcache_step_cases();
    kvcache_ring_cases();
    g_kv_same_len = 0;
    g_kv_qkv = 1;
    kvcache_step_cases();
    g_kv_qkv = 0;
    g_kv_share = 0;
}

int main(int argc, char **argv) {
    char err[512];
    const char *env = getenv("RLVR_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
    S.rng = seed;
    /* the fused add + RMSNorm + GEMV with the row kernels' arithmetic (opt-in since the
     * seventh H200 run) in the row-kernel passes: on for this program, read at creation */
    setenv("RLVR_DECODE_NORM_FUSE", "1", 0);
    S.gpu = rlvr_cuda_backend_create(0, err, sizeof err);
    if (!S.gpu) {
        printf("test_cuda_ops: SKIP: %s\n", err);
        return 77;
    }
    S.cpu = rlvr_cpu_backend_create(0);
    if (!S.cpu) {
        fprintf(stderr, "test_cuda_ops: cannot create the CPU backend\n");
        return 1;
    }
    printf("test_cuda_ops: seed %llu (set RLVR_TEST_SEED to repeat)\n", (unsigned long long)seed);
    const char *dg = getenv("RLVR_TEST_DIGEST");
    if (dg && *dg && !(g_digest = fopen(dg, "w"))) {
        fprintf(stderr, "test_cuda_ops: RLVR_TEST_DIGEST: cannot write %s\n", dg);
        return 1;
    }
    printf("%-22s %-58s %10s %10s  %s\n", "op", "case", "rel err", "max err", "result");
    /* RLVR_TEST_ONLY=kvcache_qkv|kvcache_pair|kvcache_share: that group of cases alone
     * (ctest runs kvcache_qkv emulated with the blocks in reverse order: a block that read
     * a key before another block stored it would show) */
    const char *only = getenv("RLVR_TEST_ONLY");
    if (only && *only) {
        if (strcmp(only, "kvcache_qkv") == 0) {
            kvcache_qkv_cases();
        } else if (strcmp(only, "kvcache_pair") == 0) {
            kvcache_pair_cases();
        } else if (strcmp(only, "kvcache_share") == 0) {
            kvcache_share_cases();
        } else {
            fprintf(stderr, "test_cuda_ops: RLVR_TEST_ONLY=%s: expected kvcache_qkv, "
                            "kvcache_pair or kvcache_share\n", only);
            return 2;
        }
        goto report;
    }
    /* The plain kernels first: the faster paths that are now the defaults (the fused
     * RMSNorm backward, the 16-byte row kernels, the kept LM-head logits) each get their
     * own pass at the end, so both stay covered. */
    rlvr_cuda_set_rmsnorm_backward(S.gpu, 0);
    rlvr_cuda_set_row_vec(S.gpu, 0);
    rlvr_cuda_set_lmhead_keep(S.gpu, 0);

    RUN(test_casts());
    RUN(test_upload_ring());
    RUN(test_prefetch());
    const int emb[][3] = {{1, 64, 1037}, {37, 200, 1037}, {300, 67, 5000}, {300, 64, 50}};
    for (int i = 0; i < 4; i++) RUN(test_embedding(emb[i][0], emb[i][1], emb[i][2]));
    /* 600 rows: 19 row blocks of the dw column sums, so their final kernel's batched
     * loads (16 at a time) and its tail both run */
    const int rms[][2] = {{1, 64}, {37, 200}, {300, 67}, {300, 896}, {5, 4096}, {600, 67}};
    for (int i = 0; i < 6; i++)
        for (int acc = 0; acc < 2; acc++) RUN(test_rmsnorm(rms[i][0], rms[i][1], acc));
    {
        const int ar[][2] = {{1, 896}, {300, 896}, {37, 64}, {5, 1000}, {3, 33}};
        for (int i = 0; i < 5; i++) RUN(test_add_rmsnorm(ar[i][0], ar[i][1]));
    }
    const int mm[][5] = {{1, 64, 200, 1, 0},    {37, 200, 64, 0, 1},   {300, 200, 1037, 1, 0},
                         {300, 67, 37, 1, 1},   {256, 896, 1152, 1, 0}, {300, 64, 5000, 0, 1},
                         {600, 64, 37, 1, 1}}; /* 600: dbias over 19 row blocks */
    rlvr_cuda_set_gemv(S.gpu, 0); /* the cuBLAS path for every shape first */
    matmul_cases(mm, 7);
    {
        /* the GEMV forward of <= 8 rows (the default), forced on: decode shapes of
         * Qwen2.5-0.5B, a bias, 8 rows, and shapes it must hand back to cuBLAS (IC % 8) */
        const int gv[][5] = {{1, 896, 4864, 0, 0}, {3, 4864, 896, 1, 0}, {8, 896, 1152, 1, 1},
                             {5, 64, 200, 1, 0},   {2, 67, 37, 1, 0},    {9, 64, 128, 0, 0}};
        rlvr_cuda_set_gemv(S.gpu, 1);
        g_gemv = 1;
        matmul_cases(gv, 6);
        g_gemv = 0;
        rlvr_cuda_set_gemv(S.gpu, 1); /* the default for what follows */
        /* gate|up + SwiGLU: the 0.5B decode shape at 1 and 8 rows, odd sizes, the
         * fallbacks (9 rows; C % 8 != 0) */
        const int ms[][3] = {{1, 896, 4864}, {8, 896, 4864}, {3, 64, 37}, {9, 64, 40},
                             {2, 67, 24},    {2, 1544, 40}}; /* 1544: past the preload */
        for (int i = 0; i < 6; i++) RUN(test_matmul_swiglu(ms[i][0], ms[i][1], ms[i][2]));
        /* + the residual add and RMSNorm before (add_rmsnorm_swiglu), and the same before a
         * plain projection with and without a bias (add_rmsnorm_matmul; the 0.5B q|k|v):
         * C 896 (256 norm threads) and 1024 (512), in place and not, 1 and 8 rows, C 1536
         * and 2312 (rows longer than gemv_preload's registers), and the fallbacks (9 rows;
         * C 200: 128 norm threads) */
        const int as[][6] = {{1, 896, 4864, 1, 1, 0}, {8, 896, 4864, 1, 1, 0},
                             {3, 896, 40, 0, 1, 0},   {2, 1024, 24, 1, 1, 0},
                             {5, 1024, 24, 0, 1, 0},  {9, 256, 16, 1, 1, 0},
                             {2, 200, 16, 1, 1, 0},   {1, 896, 1152, 1, 0, 1},
                             {8, 896, 1152, 1, 0, 1}, {3, 1024, 37, 0, 0, 0},
                             {9, 896, 64, 1, 0, 1},   {4, 200, 30, 1, 0, 1},
                             {3, 1536, 24, 1, 1, 0},  {2, 2312, 16, 0, 0, 1}};
        add_rmsnorm_gemv_cases(as, sizeof as / sizeof as[0]);
        /* + the split, rotation and cache store of the q|k|v projection (one kernel for
         * <= 8 rows): Qwen2.5-0.5B (D 64), D 128, C 1024 (512 norm threads), the fallbacks
         * (9 rows; odd D; C % 8 != 0) */
        const int qs[][5] = {{1, 896, 14, 2, 64}, {8, 896, 14, 2, 64}, {3, 1024, 4, 2, 128},
                             {9, 256, 4, 2, 64},  {2, 64, 2, 1, 33},  {2, 200, 2, 2, 16},
                             {4, 67, 2, 1, 16}};
        for (int i = 0; i < 7; i++)
            RUN(test_add_rmsnorm_qkv_store(qs[i][0], qs[i][1], qs[i][2], qs[i][3], qs[i][4]));
    }
    const int rp[][3] = {{1, 4, 64}, {37, 2, 128}, {300, 14, 64}, {37, 3, 65}};
    for (int i = 0; i < 4; i++) RUN(test_rope(rp[i][0], rp[i][1], rp[i][2]));
    {
        /* Qwen2.5-0.5B's shape, decode-sized and odd ones, D 128, odd D, F % 8 != 0 */
        const int st[][5] = {{300, 14, 2, 64, 4864}, {1, 14, 2, 64, 4864}, {37, 6, 2, 128, 200},
                             {5, 3, 1, 65, 37}, {17, 4, 4, 1, 9}};
        for (int i = 0; i < 5; i++) RUN(test_stacked(st[i][0], st[i][1], st[i][2], st[i][3], st[i][4]));
    }
    /* every case on the default path (flash2), then the D = 64/128 ones with flash1 */
    attention_cases(NULL);
    attention_cases("flash1");
    kvcache_cases();
    const size_t ew[] = {1, 37, 60000, 12347};
    for (int i = 0; i < 4; i++) {
        RUN(test_elementwise(ew[i], 0));
        RUN(test_elementwise(ew[i], 1));
    }
    RUN(test_lmhead(1, 64, 1037, 1.0f, 0, 0, 1));
    RUN(test_lmhead(37, 200, 5000, 1.0f / 0.7f, 16, 1024, 1));
    RUN(test_lmhead(300, 64, 1037, 1.0f, 64, 256, 0));
    RUN(test_lmhead(300, 200, 5000, 1.0f, 0, 0, 1));
    RUN(test_lmhead(300, 64, 5000, 1.0f, 100, 999, 1));
    {
        rlvr_policy_loss_params p1 = {0.2f, 0.2f, 3.0f, 0.04f, RLVR_KL_K3};
        rlvr_policy_loss_params p2 = {0.2f, 0.28f, 0.0f, 0.1f, RLVR_KL_K1};
        rlvr_policy_loss_params p3 = {0.2f, 0.2f, 3.0f, 0.5f, RLVR_KL_K2};
        RUN(test_policy_loss(1, p1, 1));
        RUN(test_policy_loss(37, p2, 1));
        RUN(test_policy_loss(3001, p1, 1));
        RUN(test_policy_loss(3001, p3, 1));
        RUN(test_policy_loss(3001, p1, 0));
    }
    const size_t ss[] = {1, 37, ((size_t)1 << 20) + 3, 5000001};
    for (int i = 0; i < 4; i++) {
        if (ss[i] > 2000000) GPU_ONLY(test_sumsq(ss[i]));
        else RUN(test_sumsq(ss[i]));
    }
    const size_t ad[] = {1, 37, 100003};
    for (int i = 0; i < 3; i++) {
        RUN(test_adamw(ad[i], 1));
        RUN(test_adamw(ad[i], 0));
    }


    /* ---- the faster paths (defaults since the sixth H200 run) and the opt-ins (the
     * skinny GEMM, flash2's dQ partials) ---------------------------------------------------
     * Last, so that a failure of one of them (a sticky CUDA error ends the run) cannot
     * hide a result of the cases above. */
    {
        /* the fused backward (the default; RLVR_RMSNORM_BWD=twopass is the plain one)
         * forced on: the cases above,
         * Qwen2.5-0.5B at 8k tokens and one row more, a width that leaves lanes' last
         * chunks idle (C = 67 above takes the scalar path), Qwen3's per-head q/k norm
         * shape; then the environment's choice again */
        const int rf[][2] = {{8192, 896}, {8193, 896}, {7, 1000}, {114688, 64}};
        const int re[][2] = {{1024, 896}, {1025, 896}, {7, 1000}, {4096, 64}}; /* emulation */
        rlvr_cuda_set_rmsnorm_backward(S.gpu, 1);
        g_rms_fused = 1;
        for (int i = 0; i < 5; i++)
            for (int acc = 0; acc < 2; acc++) RUN(test_rmsnorm(rms[i][0], rms[i][1], acc));
        for (int i = 0; i < 4; i++)
            for (int acc = 0; acc < 2; acc++)
                RUN(test_rmsnorm(EMU ? re[i][0] : rf[i][0], EMU ? re[i][1] : rf[i][1], acc));
        /* one row per lane slot (RLVR_RMSNORM_BWD_RPS=1: 4x the groups, the next lease's
         * rmsrps1 row), the 0.5B shape and a partial last group */
        setenv("RLVR_RMSNORM_BWD_RPS", "1", 1);
        for (int acc = 0; acc < 2; acc++) {
            RUN(test_rmsnorm(EMU ? 1025 : 8193, 896, acc));
            RUN(test_rmsnorm(37, 200, acc));
        }
        unsetenv("RLVR_RMSNORM_BWD_RPS");
        g_rms_fused = 0;
        rlvr_cuda_set_rmsnorm_backward(S.gpu, 0);
    }
    {
        /* the 16-byte row kernel (the default; RLVR_ROW_VEC=0 off), forced on; C 33 and 1000 (> 4096
         * never here) check its hand-back (33: C % 8) and a partial last chunk pass */
        rlvr_cuda_set_row_vec(S.gpu, 1);
        g_rowvec = 1;
        const int av[][2] = {{1, 896}, {300, 896}, {37, 64}, {5, 1000}, {3, 33}, {2, 4096}};
        for (int i = 0; i < 6; i++) RUN(test_add_rmsnorm(av[i][0], av[i][1]));
        g_rowvec = 0;
        rlvr_cuda_set_row_vec(S.gpu, 0);
    }
    {
        /* the tensor-core skinny GEMM forward (opt-in, RLVR_SKINNY=1) forced on, the GEMV
         * off so it takes every N <= 256: Qwen2.5-0.5B's decode projections (stacked q|k|v
         * with its bias, o, stacked gate|up, down), odd shapes (a partial slab of OC, a
         * partial k-tile of IC, IC = 8), and shapes it must hand back to cuBLAS (N = 257,
         * IC % 8 != 0); then off again */
        const int skn[] = {1, 8, 9, 16, 17, 32, 33, 48, 64, 65, 100, 128, 129, 256};
        enum { NSKN = sizeof skn / sizeof skn[0] };
        const int skd[][2] = {{896, 1152}, {896, 896}, {896, 9728}, {4864, 896}};
        const int sko[][4] = {{20, 200, 100, 1}, {9, 1000, 1037, 1}, {64, 8, 37, 0},
                              {257, 896, 896, 1}, {17, 67, 37, 1}, {150, 200, 100, 0}};
        rlvr_cuda_set_gemv(S.gpu, 0);
        rlvr_cuda_set_skinny(S.gpu, 1);
        for (int i = 0; i < 4; i++)
            for (int n = 0; n < NSKN; n++)
                for (int bias = 0; bias < 2; bias++) {
                    /* emulation: the decode shapes at 1, 17, 64, 100 and 256 rows, with a
                     * bias (gate|up not past 64 rows: its 152 slabs take long there) */
                    if (EMU && (!bias || (skn[n] != 1 && skn[n] != 17 && skn[n] != 64 &&
                                          skn[n] != 100 && skn[n] != 256) ||
                                (skd[i][1] == 9728 && skn[n] > 64)))
                        continue;
                    RUN(test_skinny(skn[n], skd[i][0], skd[i][1], bias));
                }
        for (int i = 0; i < 6; i++)
            RUN(test_skinny(sko[i][0], sko[i][1], sko[i][2], sko[i][3]));
        rlvr_cuda_set_skinny(S.gpu, 0);
        rlvr_cuda_set_gemv(S.gpu, 1);
    }
    {
        const int st[][5] = {{300, 14, 2, 64, 4864}, {1, 14, 2, 64, 4864}, {37, 6, 2, 128, 200},
                             {5, 3, 1, 65, 37}, {17, 4, 4, 1, 9}};
        /* again with the 16-byte row kernels forced on (D % 16 == 0 takes them; D 65 and 1
         * hand back to the element-wise kernel) */
        rlvr_cuda_set_row_vec(S.gpu, 1);
        g_rowvec = 1;
        for (int i = 0; i < 5; i++) RUN(test_stacked(st[i][0], st[i][1], st[i][2], st[i][3], st[i][4]));
        /* add_rmsnorm_matmul with a bias past the GEMV's rows: the row kernel also writes
         * the bias rows the cuBLAS GEMM accumulates onto (bit for bit the two ops apart);
         * the 0.5B q|k|v at 9, 64 and 300 rows, in place and not; no bias; OC % 8 != 0 and
         * C 200 (128-thread rows), which take the ops apart. Then <= 8 rows: the fused
         * add + RMSNorm + GEMV with the row kernel's arithmetic (bit for bit the two ops
         * apart): the 0.5B q|k|v and gate|up at 1 and 8 rows, C 1536 (two chunks per
         * thread), 1000 (a partial last chunk) and 200, and C 2312 (three chunks: the ops
         * apart) */
        const int ab[][6] = {{9, 896, 1152, 1, 0, 1},  {64, 896, 1152, 0, 0, 1},
                             {300, 896, 1152, 1, 0, 1}, {64, 896, 1152, 1, 0, 0},
                             {33, 896, 30, 1, 0, 1},    {17, 200, 40, 0, 0, 1},
                             {1, 896, 1152, 1, 0, 1},   {8, 896, 1152, 0, 0, 1},
                             {1, 896, 4864, 1, 1, 0},   {8, 896, 4864, 1, 1, 0},
                             {3, 1536, 24, 0, 1, 0},    {2, 1000, 40, 1, 0, 1},
                             {5, 200, 16, 1, 1, 0},     {2, 2312, 16, 1, 0, 1}};
        add_rmsnorm_gemv_cases(ab, sizeof ab / sizeof ab[0]);
        g_rowvec = 0;
        rlvr_cuda_set_row_vec(S.gpu, 0);
    }
    /* the tensor-core split-K cached attention (the default; RLVR_DECODE_ATTN=split the
     * scalar one) forced on:
     * the paged-cache cases again (D 33, 80 and 256 hand back to the scalar kernels; group
     * 16 is its own) */
    g_kv_impl0 = g_kv_impl1 = 2;
    kvcache_cases();
    kvcache_ring_cases();
    {
        /* cache blocks of 8, 24 and 48 slots: 16-key tiles that span two blocks (every one
         * at 8, some at 24) take the per-row slot path of mma_load_tile, the others its
         * one-block path; D 64 and 128 */
        const int p8[] = {300, 17, 1, 95}, p9[] = {700, 40};
        static const int sizes[] = {8, 24, 48};
        for (int i = 0; i < 3; i++) {
            g_kv_bs = sizes[i];
            RUN(test_kvcache(14, 2, 64, p8, 4, 2, 4));
            RUN(test_kvcache(14, 2, 128, p9, 2, 2, 1));
        }
        g_kv_bs = 16;
    }
    kvcache_pair_cases();
    kvcache_qkv_cases();
    kvcache_share_cases();
    g_kv_impl0 = g_kv_impl1 = 2;
    {
        /* splits of a fixed key count (RLVR_DECODE_SPLIT_KEYS, an A/B setting): 128 keys, so
         * contexts of 1 to ~940 keys use 1 to 8 splits of a launch sized for the cache; the
         * scalar split-K and the tensor-core kernels, merged by the last split's block and
         * (decode fusions off) by the combine kernel */
        const int pk[] = {300, 17, 1, 900};
        setenv("RLVR_DECODE_SPLIT_KEYS", "128", 1);
        g_kv_impl0 = 1;
        RUN(test_kvcache(14, 2, 64, pk, 4, 2, 4));
        RUN(test_kvcache(14, 2, 128, pk, 4, 1, 1));
        rlvr_cuda_set_decode_fuse(S.gpu, 0);
        g_kv_nofuse = 1;
        RUN(test_kvcache(14, 2, 64, pk, 4, 1, 2));
        g_kv_nofuse = 0;
        rlvr_cuda_set_decode_fuse(S.gpu, 1);
        g_kv_impl0 = 2;
        unsetenv("RLVR_DECODE_SPLIT_KEYS");
    }
    g_kv_impl0 = 0;
    g_kv_impl1 = 1;
    rlvr_cuda_set_decode_attention(S.gpu, -1);
    /* the decode-step kernels launched as programmatic dependents (the default on sm_90;
     * the cases above follow RLVR_DECODE_PDL, this pass forces it on): embedding, RMSNorm, add, the GEMVs and the fused add + RMSNorm +
     * GEMV, the q|k|v split (+ cache store) and the split-K cached attention, at decode
     * shapes; the same tolerances ("pdl" after the case) */
    rlvr_cuda_set_pdl(S.gpu, 1);
    g_pdl = 1;
    RUN(test_embedding(1, 64, 1037));
    RUN(test_rmsnorm(1, 896, 0));
    RUN(test_add_rmsnorm(1, 896));
    RUN(test_matmul(1, 896, 4864, 0, 0));
    RUN(test_matmul(8, 896, 1152, 1, 0));
    RUN(test_matmul(1, 4864, 896, 1, 0)); /* the down projection: preload, then the rest */
    RUN(test_add_rmsnorm_gemv(1, 896, 4864, 1, 1, 0));
    RUN(test_add_rmsnorm_gemv(8, 896, 1152, 1, 0, 1));
    rlvr_cuda_set_row_vec(S.gpu, 1); /* the default: the fusion with the row arithmetic */
    g_rowvec = 1;
    RUN(test_add_rmsnorm_gemv(1, 896, 4864, 1, 1, 0));
    RUN(test_add_rmsnorm_gemv(1, 896, 1152, 1, 0, 1));
    RUN(test_add_rmsnorm_qkv_store(1, 896, 14, 2, 64));
    RUN(test_add_rmsnorm_qkv_store(8, 896, 14, 2, 64));
    g_rowvec = 0;
    rlvr_cuda_set_row_vec(S.gpu, 0);
    RUN(test_stacked(1, 14, 2, 64, 4864));
    kvcache_cases();
    g_pdl = 0;
    rlvr_cuda_set_pdl(S.gpu, -1);
    /* flash2 with RLVR_ATTN_DQ=partials (opt-in: dQ from the dK/dV kernel) */
    attention_cases("dqpartials");
    /* flash2's forward, dK/dV and dQ with two tiles per warp (opt-in RLVR_ATTN_FWD=wide,
     * RLVR_ATTN_BWD=wide, RLVR_ATTN_DQ=wide; D 64, the D 128 cases take the default
     * kernels) */
    attention_cases("wide");
    /* flash2 with GQA's dK/dV group sum as a separate kernel (RLVR_ATTN_GQA=separate; the
     * default sums it in the dK/dV kernel's last head block at D 64): the same bits */
    attention_cases("gqasep");
    /* the LM head with the forward's logits kept for the backward (the default, within
     * RLVR_LM_KEEP_GB) */
    rlvr_cuda_set_lmhead_keep(S.gpu, (long long)1 << 30);
    g_lmkeep = 1;
    RUN(test_lmhead(1, 64, 1037, 1.0f, 0, 0, 1));
    RUN(test_lmhead(37, 200, 5000, 1.0f / 0.7f, 16, 1024, 1));
    RUN(test_lmhead(300, 64, 1037, 1.0f, 64, 256, 0));
    RUN(test_lmhead(300, 200, 5000, 1.0f, 0, 0, 1));
    RUN(test_lmhead(300, 64, 5000, 1.0f, 100, 999, 1));
    GPU_ONLY(test_lmhead(2048, 896, 20011, 1.0f, 0, 0, 1)); /* T·V·4 = 164 MB kept, odd V */
    RUN(test_lmhead_keep_mismatch(300, 64, 5000));
    g_lmkeep = 0;
    rlvr_cuda_set_lmhead_keep(S.gpu, 0);
    /* the measured GEMM choice (opt-in RLVR_GEMM_TUNE) */
    gemm_tune_cases();

report:
    printf("test_cuda_ops: %d cases, %d failed\n", S.nres, S.fails);
    int rc = S.fails ? 1 : 0;
    if (argc > 1 && write_report(argv[1], seed) != 0) rc = 1;
    if (g_digest && fclose(g_digest) != 0) {
        fprintf(stderr, "test_cuda_ops: RLVR_TEST_DIGEST: write error\n");
        rc = 1;
    }
    S.cpu->destroy(S.cpu);
    S.gpu->destroy(S.gpu);
    free(S.res);
    return rc;
}
