/*
 * kernels/backend.h — the op table: every computation the transformer, the sampler
 * and the trainer need, as one struct of function pointers with two implementations:
 * kernels/cpu (fp32 reference, OpenMP + OpenBLAS) and kernels/cuda (bf16 storage,
 * fp32 accumulation). engine/ code is written once against this table.
 *
 * Memory kinds (all pointers below are *backend* memory: host memory for the CPU
 * backend, device memory for CUDA):
 *   act   — `void *`: activations, activation gradients and compute weights, stored
 *           in the backend's activation dtype (`act_dtype`: fp32 on CPU, bf16 on CUDA).
 *   f32   — `float *`: always fp32: parameter gradients, master weights, AdamW
 *           moments, per-row statistics (rstd, log-sum-exp), log-probabilities, losses.
 *   i32   — `int *`: token ids, positions, sequence offsets.
 *
 * Conventions:
 *   - Row-major. Linear weights use the Hugging Face layout w[out, in]; y = x·wᵀ + b.
 *   - Packed batches: T tokens of B sequences laid end to end; offsets[B+1] (i32,
 *     backend memory) with offsets[0] = 0, offsets[B] = T. No padding anywhere.
 *   - Backward ops ACCUMULATE (+=) into parameter gradients (f32), so micro-batches
 *     accumulate for free. Activation gradients are written (=) unless the op takes an
 *     `accumulate` flag, in which case accumulate != 0 means +=.
 *   - Any gradient output pointer documented "nullable" may be NULL to skip it
 *     (frozen reference weights, inputs that need no gradient).
 *   - Ops are asynchronous on CUDA (one stream owned by the backend); anything that
 *     returns a value to the host, and `to_host`, synchronises.
 *   - Errors: ops return nothing. A backend that hits an error (CUDA launch failure,
 *     out of memory) records the first one with file and line; `error()` returns it
 *     (NULL when all is well). Callers check at natural boundaries (after a forward,
 *     after a step). Library code never calls exit().
 */
#ifndef RLVR_KERNELS_BACKEND_H
#define RLVR_KERNELS_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { RLVR_DTYPE_F32 = 0, RLVR_DTYPE_BF16 = 1 } rlvr_dtype;

/* KL estimators of d = logπ_ref − logπθ (shared/RL_MATH.md). */
typedef enum { RLVR_KL_K1 = 1, RLVR_KL_K2 = 2, RLVR_KL_K3 = 3 } rlvr_kl_estimator;

/* Parameters of the per-token clipped policy loss (see policy_loss below). */
typedef struct {
    float clip_low;     /* ε_low: ρ is clipped below at 1 − ε_low (0.2) */
    float clip_high;    /* ε_high: ρ is clipped above at 1 + ε_high (0.2; DAPO 0.28) */
    float dual_clip;    /* c for dual clip when A < 0 (3.0); 0 disables it */
    float kl_coef;      /* β of the KL anchor added to the loss; 0 disables it */
    int kl_estimator;   /* rlvr_kl_estimator */
} rlvr_policy_loss_params;

/* The most ranges one prefetch_l2 call takes. */
enum { RLVR_PREFETCH_MAX = 8 };

/* Controls of one sampling decision (see lmhead_sample below). */
typedef struct {
    float temperature;        /* T; <= 0 = greedy (argmax, lowest id on ties) */
    int top_k;                /* 0 (or >= V) = off */
    float top_p;              /* >= 1 = off */
    float min_p;              /* <= 0 = off */
    float repetition_penalty; /* 1 = off */
} rlvr_sample_params;

typedef struct rlvr_backend rlvr_backend;

struct rlvr_backend {
    const char *name;     /* "cpu" or "cuda" */
    rlvr_dtype act_dtype; /* storage dtype of act memory */
    size_t act_size;      /* bytes per act element: 4 (fp32) or 2 (bf16) */
    /* Decode layers of at most this many rows take add_rmsnorm_qkv_store (below) as the
     * one op it fuses them into; above it, where every query is its sequence's only one,
     * they run add_rmsnorm_matmul and leave the q|k|v split and cache store to
     * qkv_attention_cached (engine/model/layer.c; the same values either way). CPU: all
     * rows (INT_MAX); CUDA: its fused GEMV's 8 rows (0 with RLVR_DECODE_QKV_FUSE=0). */
    int qkv_store_fused_rows;
    void *ctx;            /* implementation state */

    /* ---- lifecycle, memory, errors ------------------------------------------ */
    void (*destroy)(rlvr_backend *be);
    const char *(*error)(rlvr_backend *be); /* first recorded error, or NULL */
    void *(*alloc)(rlvr_backend *be, size_t bytes); /* NULL on failure (error set) */
    void (*free)(rlvr_backend *be, void *p);
    void (*zero)(rlvr_backend *be, void *p, size_t bytes);
    void (*copy)(rlvr_backend *be, void *dst, const void *src, size_t bytes); /* dev→dev */
    void (*to_device)(rlvr_backend *be, void *dst, const void *host_src, size_t bytes);
    void (*to_host)(rlvr_backend *be, void *host_dst, const void *src, size_t bytes);
    /* Host fp32 ↔ backend act dtype (rounding to nearest even for bf16). */
    void (*act_from_f32)(rlvr_backend *be, void *dst_act, const float *host_src, size_t n);
    void (*act_to_f32)(rlvr_backend *be, float *host_dst, const void *src_act, size_t n);
    /* Backend f32 → backend act (e.g. master weights → compute weights). */
    void (*cast_f32_to_act)(rlvr_backend *be, void *dst_act, const float *src, size_t n);
    void (*sync)(rlvr_backend *be);

    /* ---- embedding ------------------------------------------------------------ */
    /* out[T,C] = wte[ids[t], :]. */
    void (*embedding_forward)(rlvr_backend *be, void *out, const int *ids, const void *wte,
                              int T, int C);
    /* dwte[V,C] += scatter of dout[T,C] by ids; deterministic (same bits every run). */
    void (*embedding_backward)(rlvr_backend *be, float *dwte, const void *dout,
                               const int *ids, int T, int C);

    /* ---- RMSNorm (Hugging Face: y = w ⊙ x / sqrt(mean(x²) + eps), fp32 math) ---- */
    /* out[N,C], rstd[N] (f32, saved for backward), in[N,C], w[C]. */
    void (*rmsnorm_forward)(rlvr_backend *be, void *out, float *rstd, const void *in,
                            const void *w, int N, int C, float eps);
    /* The residual add and the RMSNorm that follows it, in one pass: sum[N,C] = a + b
     * (rounded to the act dtype; sum may alias a or b), then out, rstd = rmsnorm_forward
     * of that rounded sum — the same values as add followed by rmsnorm_forward. */
    void (*add_rmsnorm_forward)(rlvr_backend *be, void *sum, void *out, float *rstd,
                                const void *a, const void *b, const void *w, int N, int C,
                                float eps);
    /* din[N,C] (= or += per accumulate), dw[C] += (nullable). */
    void (*rmsnorm_backward)(rlvr_backend *be, void *din, float *dw, const void *dout,
                             const void *in, const void *w, const float *rstd, int N, int C,
                             int accumulate);

    /* ---- linear layer ------------------------------------------------------------ */
    /* out[N,OC] = in[N,IC] · w[OC,IC]ᵀ + bias[OC] (bias nullable). */
    void (*matmul_forward)(rlvr_backend *be, void *out, const void *in, const void *w,
                           const void *bias, int N, int IC, int OC);
    /* din[N,IC] (=/+= per accumulate; nullable) = dout·w; dw[OC,IC] += doutᵀ·in
     * (nullable); dbias[OC] += Σ_n dout (nullable). */
    void (*matmul_backward)(rlvr_backend *be, void *din, float *dw, float *dbias,
                            const void *dout, const void *in, const void *w, int N, int IC,
                            int OC, int accumulate);

    /* ---- rotary embedding (HF half-split convention), in place ------------------- */
    /* x[T,H,D]; angle(t,i) = (float)pos[t] * inv_freq[i] in fp32, i < D/2 (inv_freq is
     * f32 backend memory, llama3 scaling already applied by the caller);
     * (x1, x2) = (x[..i], x[..i+D/2]) → (x1·cos − x2·sin, x2·cos + x1·sin). */
    void (*rope_forward)(rlvr_backend *be, void *x, const int *pos, const float *inv_freq,
                         int T, int H, int D);
    /* dx[T,H,D] in place: the transpose rotation (angle → −angle). */
    void (*rope_backward)(rlvr_backend *be, void *dx, const int *pos, const float *inv_freq,
                          int T, int H, int D);

    /* ---- the stacked q/k/v projection: its output split, its gradient merged ------ */
    /* qkv[T, (Hq+2·Hkv)·D], row t = [q_t | k_t | v_t] (one GEMM over the q, k and v
     * weights stacked) → q[T,Hq,D], k[T,Hkv,D], v[T,Hkv,D]; q and k rotated exactly as
     * rope_forward rotates them when pos != NULL, copied when pos == NULL. */
    void (*qkv_split)(rlvr_backend *be, void *q, void *k, void *v, const void *qkv,
                      const int *pos, const float *inv_freq, int T, int Hq, int Hkv, int D);
    /* The transpose: dqkv[T, (Hq+2·Hkv)·D] = [dq' | dk' | dv] (=), with dq' and dk' what
     * rope_backward makes of dq and dk when pos != NULL, dq and dk when NULL; the inputs
     * are not modified. */
    void (*qkv_merge)(rlvr_backend *be, void *dqkv, const void *dq, const void *dk,
                      const void *dv, const int *pos, const float *inv_freq, int T, int Hq,
                      int Hkv, int D);

    /* ---- causal attention over packed variable-length sequences, GQA -------------- */
    /* q[T,Hq,D], k[T,Hkv,D], v[T,Hkv,D] → out[T,Hq,D]; lse[T,Hq] (f32, natural-log
     * log-sum-exp of the scaled scores, saved for backward). Token t of sequence b
     * attends to tokens offsets[b]..t. Query head h uses KV head h / (Hq/Hkv).
     * scale = 1/sqrt(D). max_len = longest sequence (host int, for launch shapes). */
    void (*attention_forward)(rlvr_backend *be, void *out, float *lse, const void *q,
                              const void *k, const void *v, const int *offsets, int B,
                              int T, int Hq, int Hkv, int D, int max_len);
    /* dq[T,Hq,D], dk[T,Hkv,D], dv[T,Hkv,D] written (=). */
    void (*attention_backward)(rlvr_backend *be, void *dq, void *dk, void *dv,
                               const void *dout, const void *q, const void *k, const void *v,
                               const void *out, const float *lse, const int *offsets, int B,
                               int T, int Hq, int Hkv, int D, int max_len);

    /* ---- SwiGLU and residual ------------------------------------------------------ */
    /* out[n] = silu(gate[n]) · up[n]. */
    void (*swiglu_forward)(rlvr_backend *be, void *out, const void *gate, const void *up,
                           size_t n);
    /* dgate, dup written (=). */
    void (*swiglu_backward)(rlvr_backend *be, void *dgate, void *dup, const void *dout,
                            const void *gate, const void *up, size_t n);
    /* gu[T, 2F], row t = [gate_t | up_t] (one GEMM over the gate and up weights stacked;
     * F = the intermediate size) → out[T, F] = silu(gate)·up, as swiglu_forward. */
    void (*swiglu_packed_forward)(rlvr_backend *be, void *out, const void *gu, int T, int F);
    /* dgu[T, 2F] = [dgate | dup] (=), as swiglu_backward computes them. */
    void (*swiglu_packed_backward)(rlvr_backend *be, void *dgu, const void *dout,
                                   const void *gu, int T, int F);
    /* out[n] = a[n] + b[n]; out may alias a or b. */
    void (*add)(rlvr_backend *be, void *out, const void *a, const void *b, size_t n);

    /* ---- fused LM head + log-softmax + gather + entropy (chunked) ----------------- */
    /* z[t,:] = inv_temp · x[t,:]·wᵀ (never stored whole: chunked over tokens and
     * vocabulary). logp[t] = z[t,targets[t]] − lse[t]; entropy[t] = −Σ p log p
     * (nullable); lse[t] saved for backward. targets[t] < 0 → logp[t] = 0 (row still
     * gets lse and entropy). x[T,C] act, w[V,C] act. */
    void (*lmhead_forward)(rlvr_backend *be, float *logp, float *entropy, float *lse,
                           const void *x, const void *w, const int *targets, int T, int C,
                           int V, float inv_temp);
    /* From dlogp[T] and dentropy[T] (nullable): dx[T,C] written (=), dw[V,C] +=
     * (nullable). entropy[T] and lse[T] are the forward's outputs (entropy needed only
     * when dentropy != NULL). Targets < 0 contribute no log-prob gradient. */
    void (*lmhead_backward)(rlvr_backend *be, void *dx, float *dw, const float *dlogp,
                            const float *dentropy, const void *x, const void *w,
                            const int *targets, const float *lse, const float *entropy,
                            int T, int C, int V, float inv_temp);

    /* ---- per-token policy loss + KL anchor (all f32, length T) -------------------- */
    /* For each token: log_ratio = clamp(logp − old_logp, ±20), ρ = exp(log_ratio);
     * ℓ = max(−A·ρ, −A·clip(ρ, 1−ε_low, 1+ε_high)); with dual clip and A < 0:
     * ℓ = min(ℓ, −c·A). KL (ref_logp nullable → 0): d = clamp(ref − logp, ±20),
     * k1 = −d, k2 = d²/2, k3 = clamp(e^d − d − 1, ±10).
     * Outputs: loss[t] = ℓ + β·KL (unweighted), kl[t] (nullable), clipped[t] = 1 when
     * the clipped branch (or dual clip) is the one taken, else 0 (nullable),
     * dlogp[t] = weight[t] · ∂loss[t]/∂logp[t]. weight[t] = 0 masks a token. */
    void (*policy_loss)(rlvr_backend *be, float *loss, float *kl, float *clipped,
                        float *dlogp, const float *logp, const float *old_logp,
                        const float *ref_logp, const float *adv, const float *weight, int T,
                        const rlvr_policy_loss_params *p);

    /* ---- optimizer ---------------------------------------------------------------- */
    /* Σ x[i]² over n f32 values, deterministic (fixed reduction order), synchronous. */
    double (*sumsq)(rlvr_backend *be, const float *x, size_t n);
    /* AdamW on n parameters, decoupled weight decay (PyTorch torch.optim.AdamW):
     *   g = grad·grad_scale; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
     *   θ = θ − lr·wd·θ − lr·(m/(1−β1^step)) / (sqrt(v/(1−β2^step)) + eps).
     * θ lives in master (f32) when master != NULL, and param (act) receives the
     * rounded copy; when master == NULL, param must be f32 memory updated in place
     * (the CPU backend). step starts at 1. */
    void (*adamw)(rlvr_backend *be, void *param, float *master, const float *grad,
                  float *m, float *v, size_t n, float lr, float beta1, float beta2,
                  float eps, float weight_decay, float grad_scale, int step);

    /* ---- paged KV cache for generation -------------------------------------------- */
    /* One layer's cache: k_cache, v_cache act [n_blocks, block_size, Hkv, D]. Position p
     * of a sequence lives in block block_table[p / block_size], row p % block_size;
     * a "slot" is block * block_size + row. Blocks may be shared between sequences
     * (the G completions of a group share their prompt's full blocks). */
    /* Stores the keys/values of T new tokens: k[T,Hkv,D], v[T,Hkv,D] → cache slots[t];
     * a negative slot stores nothing (padding tokens). */
    void (*kv_store)(rlvr_backend *be, void *k_cache, void *v_cache, const void *k,
                     const void *v, const int *slots, int T, int Hkv, int D);
    /* Causal attention of N query tokens against the cache. Query n belongs to the
     * sequence with block table block_tables[seq[n] * max_blocks ..] (i32), sits at
     * position pos[n] and attends to positions 0..pos[n] of that sequence (its own K/V
     * already stored). q[N,Hq,D] → out[N,Hq,D]; scale 1/sqrt(D), GQA as above.
     * max_ctx = 1 + max_n pos[n] (host int, for launch shapes and scratch; a backend
     * with graph ops must not depend on it: decode graphs are recorded once and replayed
     * as contexts grow, engine/model/kv_cache.c).
     * share (i32 [3·N] backend memory, or NULL): shared-prefix units, a hint that never
     * changes the result (engine/model/kv_share.h writes it): share[n] = P_n, share[N + u]
     * = the first query a_u of unit u, share[2N + u] = its count c_u (0 past the last
     * unit). A unit is c_u >= 2 consecutive queries a_u .. a_u + c_u − 1, c_u·(Hq/Hkv)
     * <= 64, whose first P (> 0, a multiple of block_size, below every member's pos + 1)
     * positions lie in the same cache blocks, and P_n = P for each of them; P_n = 0 for a
     * query in no unit. A backend may read those keys once for the whole unit (CUDA: the
     * tensor-core kernel's shared-prefix blocks); the CPU checks the hint and computes
     * each query alone. */
    void (*attention_cached)(rlvr_backend *be, void *out, const void *q, const void *k_cache,
                             const void *v_cache, const int *block_tables, int max_blocks,
                             int block_size, const int *seq, const int *pos, const int *share,
                             int N, int Hq, int Hkv, int D, int max_ctx);
    /* qkv_split_store of the stacked qkv[N, (Hq + 2·Hkv)·D] (q, k rotated at pos[n]; k, v
     * into cache slots[n]) and then attention_cached of that q: a decode step's attention in
     * one call, for queries whose only new key is their own (the keys before pos[n] are in
     * the cache already; no two queries of one sequence). A backend may fuse the two (CUDA:
     * the tensor-core cached attention rotates q in registers and the block of each query's
     * last split stores its k and v, leaving q, k, v unwritten: their contents after the
     * call are unspecified); q [N, Hq·D], k, v [N, Hkv·D] are the split's outputs where it
     * runs apart; share as in attention_cached. Nullable: callers run the two. */
    void (*qkv_attention_cached)(rlvr_backend *be, void *out, void *q, void *k, void *v,
                                 const void *qkv, void *k_cache, void *v_cache,
                                 const int *slots, const int *pos, const float *inv_freq,
                                 const int *block_tables, int max_blocks, int block_size,
                                 const int *seq, const int *share, int N, int Hq, int Hkv,
                                 int D, int max_ctx);

    /* ---- fused LM head + sampling (generation) ------------------------------------ */
    /* Draws one token per row from fp32 logits z[r,:] = x[r,:]·wᵀ that never leave the
     * backend (x[R,C] act, w[V,C] act). Per row r:
     *   penalty: z'_i = z_i > 0 ? z_i / rp : z_i · rp for each id i listed in
     *            seen[seen_offsets[r] .. seen_offsets[r+1]) (duplicates count once; ids
     *            outside [0, V) ignored); z' = z elsewhere. seen / seen_offsets[R+1]
     *            (i32) may be NULL when rp == 1.
     *   greedy (T <= 0): the lowest id among the maxima of z'.
     *   else e_i = exp((z'_i − max z')/T), mass_i = ⌊e_i · 2^40⌋ (integer fixed point,
     *   so every backend sums in the same exact arithmetic), and the kept set is
     *     top-k: z'_i >= the k-th largest z' (ties at the threshold all kept),
     *     top-p: z'_i >= the largest value v whose tail {z' >= v} within the top-k set
     *            holds >= max(1, ⌊top_p · Σ_topk mass⌋) of the mass (HF order:
     *            top-p renormalised over the top-k survivors; ties kept),
     *     min-p: e_i >= min(min_p, 1) (HF: p_i >= min_p · p_max),
     *   and the token is the first kept i, in vocabulary order, whose running kept mass
     *   exceeds ⌊u[r] · Σ_kept mass⌋ (u[r] ∈ [0, 1), f32;
     *   u may be NULL when greedy). Tokens with mass 0 (e < 2^-40)
     *   are never drawn.
     * Outputs: tokens[r] (i32) and logprobs[r] = log softmax(z/T)[token] over the full
     * unpenalised, unfiltered row (T = 1 when greedy), f32. Synchronous only on CPU. */
    void (*lmhead_sample)(rlvr_backend *be, int *tokens, float *logprobs, const void *x,
                          const void *w, int R, int C, int V, const rlvr_sample_params *p,
                          const float *u, const int *seen, const int *seen_offsets);

    /* ---- graphs: record a sequence of ops once, replay it with one launch ---------- */
    /* NULL where unsupported (the CPU backend). graph_begin: the ops issued from now on
     * (by this thread) are recorded, not run; returns 0, or -1 with the error recorded.
     * graph_end: stops recording and returns an executable graph, or NULL (error
     * recorded) when an op could not be recorded. graph_launch: runs it, asynchronously,
     * on the same memory (pointers and launch shapes are fixed at recording; the
     * contents of the buffers are read when it runs). graph_free releases it.
     * Recorded ops must not synchronise, allocate or read results back: run the same
     * sequence once unrecorded first, so every buffer an op grows already exists, and
     * do not call error() between graph_begin and graph_end. */
    int (*graph_begin)(rlvr_backend *be);
    void *(*graph_end)(rlvr_backend *be);
    void (*graph_launch)(rlvr_backend *be, void *graph);
    void (*graph_free)(rlvr_backend *be, void *graph);

    /* ---- timeline markers: op times on the device without synchronising ---------- */
    /* NULL where unsupported (the CPU backend); used by kernels/profile.c's mode 2.
     * timer_mark: queues a timestamp marker on the op stream behind the work issued so
     * far, without synchronising; returns its index (0, 1, ... in issue order among the
     * markers held) or -1 when the pool of markers is full (CUDA: 8192 events) or on an
     * error (recorded). timer_read: waits for marker n-1, writes the device time in ms
     * from marker i to marker i+1 into ms_between[i] for i < n-1 (ms_between nullable:
     * release without reading), then releases markers 0..n-1 (also on failure); markers
     * issued after them are kept and renumbered from 0. 0 <= n <= the markers held.
     * Returns 0, or -1 with the error recorded. Not while a graph is being recorded. */
    int (*timer_mark)(rlvr_backend *be);
    int (*timer_read)(rlvr_backend *be, int n, float *ms_between);

    /* ---- fused ops: several of the ops above in one call where a backend can fuse them
     * (CUDA, for decode-sized batches; kernels/composite.h has each as the ops it stands
     * for, which the CPU backend registers). Same values as the separate ops. ------ */
    /* The stacked gate|up projection and its SwiGLU in one call: gu[T, 2F] = x[T, C]·wᵀ
     * (w [2F, C]: the gate rows, then the up rows; no bias), out[T, F] = silu(gate)·up —
     * the values of matmul_forward then swiglu_packed_forward, which a backend may fuse
     * (CUDA does for decode-sized T). Nullable: callers then run those two ops. */
    void (*matmul_swiglu_forward)(rlvr_backend *be, void *out, void *gu, const void *x,
                                  const void *w, int T, int C, int F);
    /* qkv_split, and k and v also stored into the paged cache as kv_store stores them
     * (k_cache, v_cache, slots[T]; a negative slot stores nothing): one pass where a
     * backend fuses them (CUDA does). Nullable: callers then run qkv_split, kv_store. */
    void (*qkv_split_store)(rlvr_backend *be, void *q, void *k, void *v, void *k_cache,
                            void *v_cache, const int *slots, const void *qkv, const int *pos,
                            const float *inv_freq, int T, int Hq, int Hkv, int D);
    /* add_rmsnorm_forward (sum = a + b, ln = rmsnorm(sum)·norm_w, rstd; sum may alias a
     * or b) and then matmul_swiglu_forward of ln (gu[N, 2F] = ln·wᵀ with w the stacked
     * gate|up [2F, C], out[N, F] = silu(gate)·up): the same values, fused where a backend
     * can (CUDA: one GEMV kernel for decode-sized N). Nullable: callers run the two. */
    void (*add_rmsnorm_swiglu)(rlvr_backend *be, void *sum, void *ln, float *rstd,
                               const void *a, const void *b, const void *norm_w, float eps,
                               void *out, void *gu, const void *w, int N, int C, int F);
    /* add_rmsnorm_forward and then matmul_forward of ln: out[N, OC] = ln·wᵀ (+ bias),
     * fused like add_rmsnorm_swiglu (the next layer's input norm and its q|k|v GEMM in
     * decode). Nullable: callers run the two. */
    void (*add_rmsnorm_matmul)(rlvr_backend *be, void *sum, void *ln, float *rstd,
                               const void *a, const void *b, const void *norm_w, float eps,
                               void *out, const void *w, const void *bias, int N, int C,
                               int OC);
    /* add_rmsnorm_matmul of the stacked q|k|v projection (qkv[N, (Hq + 2·Hkv)·D] = ln·wᵀ
     * + bias) and then qkv_split_store of qkv (q, k rotated at pos; k, v also into their
     * cache slots): the decode layer's input side in one call, with the values of the
     * two ops, fused where a backend can (CUDA: one GEMV kernel for decode-sized N, which
     * leaves qkv unwritten: its contents after the call are unspecified). Nullable:
     * callers run the two. */
    void (*add_rmsnorm_qkv_store)(rlvr_backend *be, void *sum, void *ln, float *rstd,
                                  const void *a, const void *b, const void *norm_w, float eps,
                                  void *qkv, const void *w, const void *bias, void *q, void *k,
                                  void *v, void *k_cache, void *v_cache, const int *slots,
                                  const int *pos, const float *inv_freq, int N, int C, int Hq,
                                  int Hkv, int D);

    /* ---- hints: no effect on any value ------------------------------------------- */
    /* Starts bringing n <= RLVR_PREFETCH_MAX ranges of backend memory (ptr[i], bytes[i];
     * each inside one allocation; NULL or 0-byte ranges ignored) toward the device's
     * cache, in order, and returns without waiting (CUDA: into L2, behind the ops that
     * follow; decode steps use it for the weights their next GEMVs read,
     * engine/model/kv_cache.c). Queued like an op, so recordable in a graph. Nullable:
     * the CPU backend has no cache to fill ahead, so no twin is needed. */
    void (*prefetch_l2)(rlvr_backend *be, const void *const *ptr, const size_t *bytes, int n);
};

/* The CPU backend; threads <= 0 means "all cores" (OMP_NUM_THREADS respected). */
rlvr_backend *rlvr_cpu_backend_create(int threads);

/* The CUDA backend on device `device`; NULL with a message in err when unavailable
 * (not built, no GPU). Defined in kernels/cuda when RLVR_HAVE_CUDA. */
rlvr_backend *rlvr_cuda_backend_create(int device, char *err, size_t errlen);

/* Picks a backend by name ("cpu", "cuda"); NULL + message on failure. */
rlvr_backend *rlvr_backend_create(const char *name, int threads, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* RLVR_KERNELS_BACKEND_H */
