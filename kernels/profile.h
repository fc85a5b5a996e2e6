/*
 * kernels/profile.h — a profiling decorator for any backend: the returned table
 * forwards every call to `inner`, and for each op synchronises before and after and
 * adds the wall time to a per-op total. For finding where a step's time goes (the
 * synchronisation itself removes overlap, so totals are an upper bound per op).
 */
#ifndef RLVR_KERNELS_PROFILE_H
#define RLVR_KERNELS_PROFILE_H

#include <stdio.h>

#include "kernels/backend.h"

/* Wraps inner; destroying the wrapper destroys inner too. NULL on out of memory. */
rlvr_backend *rlvr_profile_wrap(rlvr_backend *inner);
/* Prints per-op calls, total ms and share of the profiled time, largest first. */
void rlvr_profile_report(rlvr_backend *wrapped, FILE *f);
/* Clears the totals (e.g. after a warm-up). */
void rlvr_profile_reset(rlvr_backend *wrapped);

#endif
