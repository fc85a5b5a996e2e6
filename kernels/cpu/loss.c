/*
 * kernels/cpu/loss.c — the per-token clipped policy loss with dual clip and the KL
 * anchor to the reference policy (formulas in backend.h and shared/RL_MATH.md).
 * Gradients are with respect to the current log-probability logp; a clamp (±20 on
 * log-ratios, ±10 on k3) or a clip that is active passes no gradient, as in PyTorch
 * autograd of the same expression.
 */
#include <math.h>

#include "kernels/cpu/cpu_ops.h"

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

static void policy_loss(rlvr_backend *be, float *loss, float *kl, float *clipped,
                        float *dlogp, const float *logp, const float *old_logp,
                        const float *ref_logp, const float *adv, const float *weight, int T,
                        const rlvr_policy_loss_params *p) {
#pragma omp parallel for num_threads(cpu_threads_for(be, (size_t)T * 16)) schedule(static)
    for (int t = 0; t < T; t++) {
        const float A = adv[t];
        const float raw = logp[t] - old_logp[t];
        const float lr = clampf(raw, -20.0f, 20.0f);
        const float pass = (raw == lr) ? 1.0f : 0.0f;
        const float rho = expf(lr);
        const float rho_c = clampf(rho, 1.0f - p->clip_low, 1.0f + p->clip_high);
        const float surr1 = -A * rho, surr2 = -A * rho_c;
        float l, dl, was_clipped;
        if (surr1 >= surr2) {
            l = surr1;
            dl = -A * rho * pass;
            was_clipped = 0.0f;
        } else {
            l = surr2;
            dl = 0.0f;
            was_clipped = 1.0f;
        }
        if (p->dual_clip > 0.0f && A < 0.0f && l > -p->dual_clip * A) {
            l = -p->dual_clip * A;
            dl = 0.0f;
            was_clipped = 1.0f;
        }
        float k = 0.0f, dk = 0.0f;
        if (ref_logp) {
            const float draw = ref_logp[t] - logp[t];
            const float d = clampf(draw, -20.0f, 20.0f);
            const float dpass = (draw == d) ? 1.0f : 0.0f;
            switch (p->kl_estimator) {
            case RLVR_KL_K1:
                k = -d;
                dk = dpass;
                break;
            case RLVR_KL_K2:
                k = 0.5f * d * d;
                dk = -d * dpass;
                break;
            default: { /* k3 */
                const float ed = expf(d);
                const float raw3 = ed - d - 1.0f;
                k = clampf(raw3, -10.0f, 10.0f);
                dk = (raw3 == k) ? (1.0f - ed) * dpass : 0.0f;
                break;
            }
            }
        }
        loss[t] = l + p->kl_coef * k;
        if (kl) kl[t] = k;
        if (clipped) clipped[t] = was_clipped;
        dlogp[t] = weight[t] * (dl + p->kl_coef * dk);
    }
}

void cpu_loss_register(rlvr_backend *be) { be->policy_loss = policy_loss; }
