/*
 * rewards/builtin/builtin_util.h — small helpers shared by the built-in rewards: config
 * reading with error messages that name the field, per-item info JSON, and a cJSON view
 * of an item's extra fields.
 */
#ifndef RLVR_REWARDS_BUILTIN_UTIL_H
#define RLVR_REWARDS_BUILTIN_UTIL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "rewards/include/rlvr/reward.h"

/* Parses a config object; err names the reward. Returns NULL on error. */
cJSON *bu_config(const char *reward, const char *json, char *err, size_t errlen);
/* Fails (returns -1 with err) when cfg has a key not in the NULL-terminated list. */
int bu_known_keys(const char *reward, const cJSON *cfg, const char *const *keys, char *err,
                  size_t errlen);
/* Typed getters: absent -> default; wrong type -> -1 with err naming the field. */
int bu_get_bool(const char *reward, const cJSON *cfg, const char *key, int def, int *out,
                char *err, size_t errlen);
int bu_get_num(const char *reward, const cJSON *cfg, const char *key, double def, double lo,
               double hi, double *out, char *err, size_t errlen);
/* Returns a borrowed string or def; -1 on wrong type. */
int bu_get_str(const char *reward, const cJSON *cfg, const char *key, const char *def,
               const char **out, char *err, size_t errlen);
/* Attaches an info object to item i (and deletes it). */
void bu_set_info(rlvr_out *out, size_t i, cJSON *info);
/* Scores a batch item by item: one(state, item, &score, info) returns the item's
 * status and fills its score and info (an info object is made for each item; an
 * allocation failure makes that item an error). The common score() of the built-ins. */
typedef int (*bu_item_fn)(const void *state, const rlvr_item *it, double *score, cJSON *info);
int bu_score_each(const void *state, const rlvr_batch *b, rlvr_out *out, bu_item_fn one);
/* Adds a string field, truncated to max bytes (at a UTF-8 boundary). */
void bu_add_str(cJSON *obj, const char *key, const char *s, size_t n, size_t max);

#endif
