/*
 * engine/cli/cli_util.h — small helpers shared by the subcommands: option parsing with
 * messages that say what was expected, and line reading.
 */
#ifndef RLVR_CLI_UTIL_H
#define RLVR_CLI_UTIL_H

#include <stdio.h>

/* If argv[*i] is `name`, stores the next argument in *value and advances *i.
 * Returns 1 when matched, 0 when not, -1 (after printing) when the value is missing. */
int cli_opt(int argc, char **argv, int *i, const char *name, const char **value);
/* Parses a positive integer option value; prints and returns -1 on failure. */
int cli_int(const char *cmd, const char *name, const char *value, int lo, int hi, int *out);
/* Parses a float option value in [lo, hi]. */
int cli_float(const char *cmd, const char *name, const char *value, float lo, float hi,
              float *out);
/* Reads one line (any length) into *buf (realloc'ed); returns its length or -1 at EOF. */
long cli_getline(char **buf, size_t *cap, FILE *f);

#endif
