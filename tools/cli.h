/* Shared flag handling of the vtrain subcommands: `--flag value` and `--flag=value`, strict numbers
 * (whole string, finite, in range, integral where a count is expected), paths that must fit their
 * field, "did you mean" suggestions, and the one-line usage errors (exit 2). */
#ifndef VT_TOOLS_CLI_H
#define VT_TOOLS_CLI_H

#include <stddef.h>
#include <stdio.h>

#include "vt/common.h"

/* Exit statuses of every subcommand. */
enum { VT_EXIT_OK = 0, VT_EXIT_RUNTIME = 1, VT_EXIT_USAGE = 2 };

/* -v / --verbose: library errors also show where in the source they were raised. */
extern int vt_cli_verbose;

/* Walks argv[1..argc-1] of one subcommand. After vt_args_next() returns 1, `arg` is the current
 * argument; for an option (`--name` or `--name=value`) `flag` is "--name" and `inline_value` the part
 * after '=' (NULL without one); for a positional argument `flag` is NULL. */
typedef struct vt_args {
    const char *cmd; /* "train": for messages */
    int argc;
    char **argv;
    int i;
    const char *arg;
    const char *flag;
    const char *inline_value;
    char flag_buf[64];
    const char *const *known; /* NULL-terminated flag names, for "did you mean" */
} vt_args;

void vt_args_init(vt_args *a, const char *cmd, int argc, char **argv, const char *const *known);
int vt_args_next(vt_args *a);
/* 1 when the current option is `name`. */
int vt_args_is(const vt_args *a, const char *name);
/* 1 when the current argument is -h or --help. */
int vt_args_help(const vt_args *a);
/* The current option's value (inline or the next argument); NULL after printing a usage error. */
const char *vt_args_value(vt_args *a);
/* For a switch: 0 when no '=value' was given, else prints an error and returns -1. */
int vt_args_switch(vt_args *a);
/* Prints "unknown option X (did you mean Y?)" and returns VT_EXIT_USAGE. */
int vt_args_unknown(const vt_args *a);

/* The parsers below print "vtrain CMD: --flag: ..." plus the pointer to --help and return -1 on
 * refusal, 0 on success. */
int vt_args_int(vt_args *a, long long lo, long long hi, long long *out);
int vt_args_double(vt_args *a, double lo, double hi, int lo_open, double *out);
/* Copies the value into dst[cap]; refuses a value that does not fit (never cuts it). */
int vt_args_str(vt_args *a, char *dst, size_t cap);

/* The same checks on a plain string (for values from elsewhere); `flag` names it in the message. */
int vt_cli_parse_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out);
int vt_cli_parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi, int lo_open,
                        double *out);

/* Prints "vtrain CMD: <message>" and "Run 'vtrain CMD --help' for the options." to stderr;
 * returns VT_EXIT_USAGE. */
int vt_cli_usage_error(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints a library failure "vtrain CMD: <vt_last_error()>" (with its source location under -v);
 * returns VT_EXIT_RUNTIME. */
int vt_cli_lib_error(const char *cmd, const char *context);

/* Levenshtein distance, and the closest of n candidates when it is near enough to be a typo (else NULL). */
int vt_cli_edit_distance(const char *a, const char *b);
const char *vt_cli_suggest(const char *word, const char *const *cands, int n);

/* A float as its shortest decimal form that reads back to the same float (0.005, not 0.00499999988). */
void vt_cli_format_float(char *buf, size_t n, float v);

#endif
