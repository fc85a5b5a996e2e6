/*
 * kernels/profile.h — a profiling decorator for any backend: the returned table
 * forwards every call to `inner` and adds each op's time to a per-op total. Two modes:
 *
 *   1 (RLVR_PROFILE_SYNC): each op is synchronised before and after and timed with the
 *     host clock. Simple and works on every backend, but every op also pays a launch +
 *     synchronisation floor (about 11 µs on an H200) and overlap is removed, so totals
 *     are an upper bound per op.
 *   2 (RLVR_PROFILE_TIMELINE): nothing is synchronised per op; each op is bracketed by
 *     two markers on the backend's stream (backend.h timer_mark) and its time is the
 *     device time between them, read back in batches (backend.h timer_read) when the
 *     marker pool nears full, when the inner backend synchronises anyway (sync, to_host,
 *     to_device, act_from_f32, act_to_f32, sumsq) and at report/reset time. The time
 *     includes any GPU idle time inside the op (the host still launching its kernels),
 *     but not the time between ops, which is totalled separately. Backends without timer
 *     ops (the CPU backend) fall back to mode 1; rlvr_profile_mode says which runs.
 *
 * Neither mode allows graphs: the wrapper's graph ops are NULL (a recording cannot hold
 * a synchronisation, and markers inside a recorded graph would time the replay, not the
 * ops). The wrapper's own timer ops are NULL too (the wrapper uses the inner pool).
 *
 * A third use, ablation (rlvr_profile_ablate): nothing is timed or synchronised and the
 * graph ops pass through, but the named ops are skipped (not run at all). A benchmark's
 * time with and without an op, graphs included, is that op's cost where per-op timing
 * cannot see (inside a CUDA graph). The results are wrong by design: for timing only.
 */
#ifndef RLVR_KERNELS_PROFILE_H
#define RLVR_KERNELS_PROFILE_H

#include <stddef.h>
#include <stdio.h>

#include "kernels/backend.h"

enum { RLVR_PROFILE_SYNC = 1, RLVR_PROFILE_TIMELINE = 2, RLVR_PROFILE_ABLATE = 3 };

/* Mode 1 wrapper; destroying the wrapper destroys inner too. NULL on out of memory. */
rlvr_backend *rlvr_profile_wrap(rlvr_backend *inner);
/* Wrapper in `mode` (1 or 2; 2 falls back to 1 when inner has no timer ops). NULL with a
 * message in err on a bad mode or out of memory (inner is then left as it was). */
rlvr_backend *rlvr_profile_wrap_mode(rlvr_backend *inner, int mode, char *err,
                                     size_t errlen);
/* Ablation wrapper: the ops named in `ops` (comma-separated report names, e.g.
 * "attention_cached,lmhead_sample"; sumsq cannot be skipped) do nothing; every other call
 * and the graph ops pass through untimed. Destroying it destroys inner. NULL with a
 * message in err on an unknown name or out of memory. rlvr_profile_report lists the
 * skipped ops and their call counts. */
rlvr_backend *rlvr_profile_ablate(rlvr_backend *inner, const char *ops, char *err,
                                  size_t errlen);
/* The mode the wrapper actually runs in (1, 2, or 3 for an ablation wrapper). */
int rlvr_profile_mode(rlvr_backend *wrapped);
/* paused != 0: ops pass straight through, neither timed nor counted (no sync, no
 * markers), e.g. while a benchmark times its steps; 0 resumes. Starts unpaused. */
void rlvr_profile_pause(rlvr_backend *wrapped, int paused);
/* Prints per-op calls, total ms and share of the profiled time, largest first (mode 2
 * reads the outstanding markers first, which synchronises). */
void rlvr_profile_report(rlvr_backend *wrapped, FILE *f);
/* Clears the totals (e.g. after a warm-up); mode 2 discards outstanding markers. */
void rlvr_profile_reset(rlvr_backend *wrapped);

/* One op's totals by its report name (e.g. "matmul_forward"): calls and ms. Mode 2 reads
 * the outstanding markers first. Returns 0, or -1 for a name that is not an op. */
int rlvr_profile_op(rlvr_backend *wrapped, const char *op, long *calls, double *ms);

/* Totals beside the per-op ones (mode 2 reads the outstanding markers first). */
typedef struct {
    double op_ms;      /* Σ over ops */
    double between_ms; /* mode 2: device time from one op's end marker to the next op's
                        * start marker (untimed copies/zeros, GPU idle while the host
                        * works between ops), within each batch of markers read; 0 in 1 */
    long untimed;      /* mode 2: calls whose markers failed (counted in calls, not ms) */
    long reads;        /* mode 2: batches of markers read (timer_read calls) */
} rlvr_profile_totals;
void rlvr_profile_get_totals(rlvr_backend *wrapped, rlvr_profile_totals *out);

#endif
