/*
 * engine/data/dataset_internal.h — the dataset struct, shared by the loader
 * (dataset.c) and the order/cursor code (dataset_order.c). Private to engine/data.
 */
#ifndef RLVR_DATA_DATASET_INTERNAL_H
#define RLVR_DATA_DATASET_INTERNAL_H

#include "engine/data/dataset.h"

struct dataset {
    char *path;
    dataset_opts opts; /* field-name pointers are the caller's; used only while
                        * loading */
    data_example *ex;  /* [n] */
    int n;
    int n_skipped;
    char *first_skip;     /* message of the first skipped line ("" when none) */
    uint64_t fingerprint; /* FNV-1a 64 of the file bytes */
    int *perm;            /* [n] order of epoch perm_epoch */
    int64_t perm_epoch;
    int64_t epoch, position; /* the cursor */
};

#endif
