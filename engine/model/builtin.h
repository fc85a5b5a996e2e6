/*
 * engine/model/builtin.h — built-in model shapes, random-initialised from a seed, so
 * demos, tests and benchmarks need no downloaded checkpoint. Named "builtin:<name>"
 * wherever a model directory is accepted.
 */
#ifndef RLVR_MODEL_BUILTIN_H
#define RLVR_MODEL_BUILTIN_H

#include "engine/model/model.h"

/* Fills cfg for a built-in name (without the "builtin:" prefix); -1 + list if unknown. */
int model_builtin_config(const char *name, model_config *cfg, char *err, size_t errlen);
/* Loads "builtin:<name>" (random weights, seed 1234) or a Hugging Face directory. */
int model_open(const char *spec, rlvr_backend *be, model **out, char *err, size_t errlen);

#endif
