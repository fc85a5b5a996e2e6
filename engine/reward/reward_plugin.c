/*
 * engine/reward/reward_plugin.c — loading and ABI-checking reward plugins, and running
 * one score() call with host-owned output buffers.
 */
#include "engine/reward/reward_plugin.h"

#include <cjson/cJSON.h>
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rewards/builtin/builtins.h"

int reward_name_is_path(const char *name) {
    size_t n = strlen(name);
    return strchr(name, '/') != NULL || (n > 3 && !strcmp(name + n - 3, ".so"));
}

int reward_desc_check(const rlvr_reward_desc *d, const char *where, rlvr_reward_desc *copy,
                      char *err, size_t errlen) {
    if (!d) {
        snprintf(err, errlen, "%s: entry point %s returned NULL (expected a descriptor)",
                 where, RLVR_REWARD_ENTRY_SYMBOL);
        return -1;
    }
    const size_t need = offsetof(rlvr_reward_desc, destroy) + sizeof(d->destroy);
    if (d->struct_size < offsetof(rlvr_reward_desc, abi_minor) + sizeof(d->abi_minor)) {
        snprintf(err, errlen, "%s: descriptor struct_size=%u is too small to hold a version",
                 where, d->struct_size);
        return -1;
    }
    if (d->abi_major != RLVR_REWARD_ABI_MAJOR) {
        snprintf(err, errlen,
                 "%s: reward ABI mismatch: plugin was built for ABI %u.%u, this host speaks "
                 "ABI %d.%d (the major versions must be equal; rebuild the plugin against "
                 "this rlvr/reward.h)",
                 where, d->abi_major, d->abi_minor, RLVR_REWARD_ABI_MAJOR,
                 RLVR_REWARD_ABI_MINOR);
        return -1;
    }
    if (d->struct_size < need) {
        snprintf(err, errlen,
                 "%s: descriptor struct_size=%u but ABI %d needs at least %zu bytes", where,
                 d->struct_size, RLVR_REWARD_ABI_MAJOR, need);
        return -1;
    }
    memset(copy, 0, sizeof *copy);
    memcpy(copy, d, d->struct_size < sizeof *copy ? d->struct_size : sizeof *copy);
    copy->struct_size = sizeof *copy;
    if (!copy->name || !copy->name[0]) {
        snprintf(err, errlen, "%s: descriptor field 'name' is empty (expected an identifier)",
                 where);
        return -1;
    }
    if (!copy->init || !copy->score) {
        snprintf(err, errlen, "%s: descriptor of '%s' has %s == NULL (expected a function)",
                 where, copy->name, copy->init ? "score" : "init");
        return -1;
    }
    if (!copy->version) copy->version = "";
    if (!copy->description) copy->description = "";
    return 0;
}

int reward_plugin_load(const char *name, reward_plugin *p, char *err, size_t errlen) {
    memset(p, 0, sizeof *p);
    const rlvr_reward_desc *d = NULL;
    if (!reward_name_is_path(name)) {
        d = rlvr_builtin_find(name);
        if (!d) {
            snprintf(err, errlen,
                     "reward '%s': no built-in reward of that name (built-ins: %s; a plugin "
                     "is given as a path to a .so file)",
                     name, rlvr_builtin_names());
            return -1;
        }
        if (reward_desc_check(d, name, &p->desc, err, errlen)) return -1;
        p->path = strdup(name);
        return p->path ? 0 : -1;
    }
    void *dl = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *m = dlerror();
        snprintf(err, errlen, "reward plugin %s: cannot load: %s", name, m ? m : "dlopen failed");
        return -1;
    }
    dlerror();
    void *sym = dlsym(dl, RLVR_REWARD_ENTRY_SYMBOL);
    if (!sym) {
        snprintf(err, errlen,
                 "reward plugin %s: missing entry symbol '%s' (a plugin must export "
                 "`const rlvr_reward_desc *%s(void)`)",
                 name, RLVR_REWARD_ENTRY_SYMBOL, RLVR_REWARD_ENTRY_SYMBOL);
        dlclose(dl);
        return -1;
    }
    rlvr_reward_entry_fn entry;
    memcpy(&entry, &sym, sizeof entry);
    d = entry();
    if (reward_desc_check(d, name, &p->desc, err, errlen)) {
        dlclose(dl);
        return -1;
    }
    p->dl = dl;
    p->path = strdup(name);
    return 0;
}

void reward_plugin_unload(reward_plugin *p) {
    if (p->dl) dlclose(p->dl);
    free(p->path);
    memset(p, 0, sizeof *p);
}

/* ---- running score() ------------------------------------------------------------- */

typedef struct {
    char **info;
    size_t n;
} info_sink;

static int host_set_info(rlvr_out *out, size_t i, const char *json) {
    info_sink *s = out->host_ctx;
    if (!s || i >= s->n || !json) return -1;
    cJSON *v = cJSON_Parse(json);
    if (!v) return -1;
    cJSON_Delete(v);
    char *c = strdup(json);
    if (!c) return -1;
    free(s->info[i]);
    s->info[i] = c;
    return 0;
}

int reward_plugin_run(const reward_plugin *p, void *state, const rlvr_batch *batch,
                      double *scores, int32_t *status, char **info, uint64_t *nonfinite,
                      char *err, size_t errlen) {
    const size_t n = batch->n_items;
    for (size_t i = 0; i < n; i++) {
        scores[i] = NAN;
        status[i] = RLVR_STATUS_OK;
        info[i] = NULL;
    }
    info_sink sink = {info, n};
    char perr[512] = "";
    rlvr_out out = {0};
    out.struct_size = sizeof out;
    out.scores = scores;
    out.status = status;
    out.set_info = host_set_info;
    out.host_ctx = &sink;
    out.err = perr;
    out.errlen = sizeof perr;
    *nonfinite = 0;
    int rc = p->desc.score(state, batch, &out);
    if (rc != 0) {
        perr[sizeof perr - 1] = 0;
        snprintf(err, errlen, "reward '%s': score() failed: %s", p->desc.name,
                 perr[0] ? perr : "(no message)");
        for (size_t i = 0; i < n; i++) status[i] = RLVR_STATUS_ERROR;
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (status[i] < RLVR_STATUS_OK || status[i] > RLVR_STATUS_ERROR) {
            status[i] = RLVR_STATUS_ERROR;
            continue;
        }
        if (status[i] == RLVR_STATUS_OK && !isfinite(scores[i])) {
            status[i] = RLVR_STATUS_ERROR;
            (*nonfinite)++;
        }
        if (status[i] != RLVR_STATUS_OK) scores[i] = 0.0;
    }
    return 0;
}
