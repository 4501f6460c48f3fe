/* Shared flag handling of the vtrain subcommands (see cli.h): one strict number parser for every
 * flag, `--flag=value`, typo suggestions and the one-line usage errors. */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int vt_cli_verbose = 0;

int vt_cli_usage_error(const char *cmd, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (cmd) {
        fprintf(stderr, "vtrain %s: %s\n", cmd, msg);
        fprintf(stderr, "Run 'vtrain %s --help' for the options.\n", cmd);
    } else {
        fprintf(stderr, "vtrain: %s\n", msg);
        fprintf(stderr, "Run 'vtrain --help' for the commands.\n");
    }
    return VT_EXIT_USAGE;
}

int vt_cli_lib_error(const char *cmd, const char *context) {
    const char *loc = vt_last_error_location();
    fprintf(stderr, "vtrain %s: %s%s%s", cmd, context ? context : "", context ? ": " : "", vt_last_error());
    if (vt_cli_verbose && loc[0]) fprintf(stderr, " (at %s)", loc);
    fputc('\n', stderr);
    return VT_EXIT_RUNTIME;
}

/* Optimal string alignment distance: insertions, deletions, substitutions and swaps of two
 * neighbours ("trian" is one edit from "train"). */
int vt_cli_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int d[64][64];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    return d[la][lb];
}

const char *vt_cli_suggest(const char *word, const char *const *cands, int n) {
    const char *best = NULL;
    int best_d = 1 << 30;
    for (int i = 0; i < n && cands[i]; i++) {
        int d = vt_cli_edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    /* a typo: at most a third of the word wrong (and at least one edit allowed) */
    size_t len = strlen(word);
    int limit = (int)(len / 3);
    if (limit < 1) limit = 1;
    if (limit > 3) limit = 3;
    return best && best_d <= limit ? best : NULL;
}

void vt_cli_format_float(char *buf, size_t n, float v) {
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
        return;
    }
    vt_float_shortest(v, buf, n);
}

void vt_args_init(vt_args *a, const char *cmd, int argc, char **argv, const char *const *known) {
    memset(a, 0, sizeof *a);
    a->cmd = cmd;
    a->argc = argc;
    a->argv = argv;
    a->i = 0;
    a->known = known;
}

int vt_args_next(vt_args *a) {
    if (++a->i >= a->argc) return 0;
    /* -v / --verbose is understood by every subcommand, anywhere among its options */
    while (!strcmp(a->argv[a->i], "-v") || !strcmp(a->argv[a->i], "--verbose")) {
        vt_cli_verbose = 1;
        if (++a->i >= a->argc) return 0;
    }
    a->arg = a->argv[a->i];
    a->flag = NULL;
    a->inline_value = NULL;
    if (a->arg[0] == '-' && a->arg[1] != 0 && !(isdigit((unsigned char)a->arg[1]) || a->arg[1] == '.')) {
        const char *eq = a->arg[1] == '-' ? strchr(a->arg, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a->arg) : strlen(a->arg);
        if (len >= sizeof a->flag_buf) len = sizeof a->flag_buf - 1;
        memcpy(a->flag_buf, a->arg, len);
        a->flag_buf[len] = 0;
        a->flag = a->flag_buf;
        a->inline_value = eq ? eq + 1 : NULL;
    }
    return 1;
}

int vt_args_is(const vt_args *a, const char *name) { return a->flag && strcmp(a->flag, name) == 0; }

int vt_args_help(const vt_args *a) { return vt_args_is(a, "--help") || vt_args_is(a, "-h"); }

const char *vt_args_value(vt_args *a) {
    if (a->inline_value) return a->inline_value;
    if (a->i + 1 >= a->argc) {
        vt_cli_usage_error(a->cmd, "%s needs a value", a->flag);
        return NULL;
    }
    return a->argv[++a->i];
}

int vt_args_switch(vt_args *a) {
    if (!a->inline_value) return 0;
    vt_cli_usage_error(a->cmd, "%s takes no value (got '%s')", a->flag, a->inline_value);
    return -1;
}

int vt_args_unknown(const vt_args *a) {
    if (!a->flag) return vt_cli_usage_error(a->cmd, "unexpected argument '%s'", a->arg);
    int n = 0;
    while (a->known && a->known[n]) n++;
    const char *s = a->known ? vt_cli_suggest(a->flag, a->known, n) : NULL;
    if (s) return vt_cli_usage_error(a->cmd, "unknown option %s (did you mean %s?)", a->flag, s);
    return vt_cli_usage_error(a->cmd, "unknown option %s", a->flag);
}

/* strtod over the whole string, no leading blanks; 0 when it is not a number at all. */
static int read_number(const char *s, double *out) {
    if (!s || !*s || isspace((unsigned char)s[0])) return 0;
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (end == s || *end != 0) return 0;
    *out = x;
    return 1;
}

int vt_cli_parse_int(const char *cmd, const char *flag, const char *s, long long lo, long long hi, long long *out) {
    double x;
    if (!read_number(s, &x) || !isfinite(x) || x != floor(x))
        return vt_cli_usage_error(cmd, "%s: '%s' is not a whole number in [%lld, %lld]", flag, s, lo, hi), -1;
    if (x < (double)lo || x > (double)hi)
        return vt_cli_usage_error(cmd, "%s: %s is out of range [%lld, %lld]", flag, s, lo, hi), -1;
    *out = (long long)x;
    return 0;
}

int vt_cli_parse_double(const char *cmd, const char *flag, const char *s, double lo, double hi, int lo_open,
                        double *out) {
    double x;
    if (!read_number(s, &x)) return vt_cli_usage_error(cmd, "%s: '%s' is not a number", flag, s), -1;
    if (!isfinite(x)) return vt_cli_usage_error(cmd, "%s: '%s' is not a finite number", flag, s), -1;
    if ((lo_open ? x <= lo : x < lo) || x > hi)
        return vt_cli_usage_error(cmd, "%s: %s is out of range %c%g, %g]", flag, s, lo_open ? '(' : '[', lo, hi), -1;
    *out = x;
    return 0;
}

int vt_args_int(vt_args *a, long long lo, long long hi, long long *out) {
    const char *v = vt_args_value(a);
    if (!v) return -1;
    return vt_cli_parse_int(a->cmd, a->flag, v, lo, hi, out);
}

int vt_args_double(vt_args *a, double lo, double hi, int lo_open, double *out) {
    const char *v = vt_args_value(a);
    if (!v) return -1;
    return vt_cli_parse_double(a->cmd, a->flag, v, lo, hi, lo_open, out);
}

int vt_args_str(vt_args *a, char *dst, size_t cap) {
    const char *v = vt_args_value(a);
    if (!v) return -1;
    size_t len = strlen(v);
    if (len >= cap) {
        vt_cli_usage_error(a->cmd, "%s: the value is %zu characters long; at most %zu are accepted", a->flag, len,
                           cap - 1);
        return -1;
    }
    memcpy(dst, v, len + 1);
    return 0;
}
