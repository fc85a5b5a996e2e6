/*
 * tests/ops/test_profile_ablate.c — kernels/profile.c's ablation wrapper
 * (rlvr_profile_ablate) on the CPU backend: a named op does nothing (its output keeps
 * its old contents) and is counted, every other op runs exactly as the inner backend's,
 * a skipped lmhead_sample still writes token 0 / log-prob 0, graph ops pass through
 * (NULL here, as the CPU backend has none), and a bad name is refused with a message.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/backend.h"
#include "kernels/profile.h"
#include "tests/common/check.h"

int main(void) {
    char err[256];
    rlvr_backend *cpu = rlvr_cpu_backend_create(1);
    CHECK(cpu != NULL, "cpu backend");
    if (!cpu) return 1;
    /* refused names leave the inner backend usable */
    CHECK(rlvr_profile_ablate(cpu, "add,bogus_op", err, sizeof err) == NULL, "bogus accepted");
    CHECK(strstr(err, "bogus_op") != NULL, "error names the op: %s", err);
    CHECK(rlvr_profile_ablate(cpu, "sumsq", err, sizeof err) == NULL, "sumsq accepted");
    rlvr_backend *be = rlvr_profile_ablate(cpu, "add,lmhead_sample", err, sizeof err);
    CHECK(be != NULL, "ablate: %s", err);
    if (!be) return 1;
    CHECK(rlvr_profile_mode(be) == RLVR_PROFILE_ABLATE, "mode %d", rlvr_profile_mode(be));
    CHECK(be->graph_begin == NULL, "graph ops appear although the CPU backend has none");

    enum { N = 3, C = 8, V = 11 };
    float a[N * C], b[N * C], out[N * C], ref[N * C], w[C], rstd[N], wv[V * C];
    for (int i = 0; i < N * C; i++) a[i] = 0.25f * (float)(i % 7) - 0.5f, b[i] = 0.125f * (float)i;
    for (int i = 0; i < C; i++) w[i] = 1.0f + 0.1f * (float)i;
    for (int i = 0; i < V * C; i++) wv[i] = 0.01f * (float)((i * 37) % 17) - 0.08f;
    const size_t bytes = sizeof a;
    float *da = be->alloc(be, bytes), *db = be->alloc(be, bytes), *dout = be->alloc(be, bytes);
    float *dw = be->alloc(be, sizeof w), *dr = be->alloc(be, sizeof rstd);
    float *dwv = be->alloc(be, sizeof wv), *dlp = be->alloc(be, N * sizeof(float));
    int *dtok = be->alloc(be, N * sizeof(int));
    be->to_device(be, da, a, bytes);
    be->to_device(be, db, b, bytes);
    be->to_device(be, dw, w, sizeof w);
    be->to_device(be, dwv, wv, sizeof wv);

    /* add is skipped: out keeps the sentinel */
    for (int i = 0; i < N * C; i++) out[i] = 42.0f;
    be->to_device(be, dout, out, bytes);
    be->add(be, dout, da, db, (size_t)N * C);
    be->to_host(be, out, dout, bytes);
    int kept = 1;
    for (int i = 0; i < N * C; i++) kept &= out[i] == 42.0f;
    CHECK(kept, "a skipped add wrote its output");

    /* rmsnorm runs: the same values as the CPU backend's own */
    be->rmsnorm_forward(be, dout, dr, da, dw, N, C, 1e-6f);
    be->to_host(be, out, dout, bytes);
    cpu->rmsnorm_forward(cpu, dout, dr, da, dw, N, C, 1e-6f);
    cpu->to_host(cpu, ref, dout, bytes);
    CHECK(memcmp(out, ref, bytes) == 0, "rmsnorm through the wrapper differs");

    /* a skipped lmhead_sample writes token 0 and log-prob 0 */
    if (cpu->lmhead_sample) {
        int tok[N] = {5, 6, 7};
        float lp[N] = {1, 2, 3}, u[N] = {0.5f, 0.5f, 0.5f};
        float *du = be->alloc(be, sizeof u);
        be->to_device(be, du, u, sizeof u);
        be->to_device(be, dtok, tok, sizeof tok);
        be->to_device(be, dlp, lp, sizeof lp);
        rlvr_sample_params sp = {1.0f, 0, 1.0f, 0.0f, 1.0f};
        be->lmhead_sample(be, dtok, dlp, da, dwv, N, C, V, &sp, du, NULL, NULL);
        be->to_host(be, tok, dtok, sizeof tok);
        be->to_host(be, lp, dlp, sizeof lp);
        for (int r = 0; r < N; r++)
            CHECK(tok[r] == 0 && lp[r] == 0.0f, "row %d: token %d, log-prob %g", r, tok[r],
                  (double)lp[r]);
        be->free(be, du);
    }
    long calls = -1;
    double ms = -1;
    CHECK(rlvr_profile_op(be, "add", &calls, &ms) == 0 && calls == 1, "add calls %ld", calls);

    char buf[1024] = {0};
    FILE *f = fmemopen(buf, sizeof buf, "w");
    if (f) {
        rlvr_profile_report(be, f);
        fclose(f);
        CHECK(strstr(buf, "add") && strstr(buf, "lmhead_sample") && !strstr(buf, "rmsnorm"),
              "report: %s", buf);
    }
    be->free(be, da), be->free(be, db), be->free(be, dout), be->free(be, dw), be->free(be, dr);
    be->free(be, dwv), be->free(be, dlp), be->free(be, dtok);
    be->destroy(be); /* destroys the CPU backend too */
    printf("test_profile_ablate: %s\n", check_failures ? "FAIL" : "ok");
    return check_failures ? 1 : 0;
}
