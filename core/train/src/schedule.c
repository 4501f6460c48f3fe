/* Learning-rate schedules: PyTorch's closed forms evaluated per whole epoch, a fractional linear
 * warm-up in front, and the "kind:args[,warmup:E[:F]]" text form used on the command line. */
#include "vt/schedule.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double main_lr(const vt_schedule *s, double e) {
    /* Epoch-level schedulers only change at whole epochs. */
    double k = floor(e);
    double base = s->base_lr;
    switch (s->kind) {
    case VT_SCHED_STEP: return base * pow(s->gamma, floor(k / s->step_size));
    case VT_SCHED_MULTISTEP: {
        int passed = 0;
        for (int i = 0; i < s->n_milestones; i++)
            if (k >= s->milestones[i]) passed++;
        return base * pow(s->gamma, passed);
    }
    case VT_SCHED_EXPONENTIAL: return base * pow(s->gamma, k);
    case VT_SCHED_COSINE:
        /* CosineAnnealingLR's closed form; past T_max it keeps following the cosine as PyTorch does. */
        return s->eta_min + (base - s->eta_min) * (1.0 + cos(3.14159265358979323846 * k / s->t_max)) / 2.0;
    case VT_SCHED_CONSTANT:
    default: return base;
    }
}

float vt_schedule_lr(const vt_schedule *s, double epoch) {
    if (epoch < 0 || !isfinite(epoch)) epoch = 0;
    if (s->warmup_epochs > 0) {
        if (epoch < s->warmup_epochs) {
            double f = s->warmup_start_factor + (1.0 - s->warmup_start_factor) * epoch / s->warmup_epochs;
            return (float)(s->base_lr * f);
        }
        epoch -= s->warmup_epochs;
    }
    return (float)main_lr(s, epoch);
}

/* ---- text form ---- */

static vt_status bad(const char *spec, const char *what) {
    return vt_error(VT_ERR_INVALID_ARG,
                    "schedule '%s': %s (forms: constant, step:STEP:GAMMA, multistep:M1,M2:GAMMA, exp:GAMMA, "
                    "cosine:T_MAX[:ETA_MIN], each with optional ,warmup:EPOCHS[:START_FACTOR])",
                    spec, what);
}

static int parse_int(const char *t, int lo, int hi, int *out) {
    if (!t || !*t) return 0;
    char *end;
    errno = 0;
    long v = strtol(t, &end, 10);
    if (errno || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

static int parse_float(const char *t, float *out) {
    if (!t || !*t) return 0;
    char *end;
    errno = 0;
    float v = strtof(t, &end);
    if (errno || *end || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

/* Splits s in place at every sep; returns the number of fields (at most max). */
static int split(char *s, char sep, char **fields, int max) {
    int n = 0;
    for (;;) {
        if (n == max) return max + 1;
        fields[n++] = s;
        char *p = strchr(s, sep);
        if (!p) return n;
        *p = 0;
        s = p + 1;
    }
}

vt_status vt_schedule_parse(const char *spec, vt_schedule *s) {
    if (!spec) return vt_error(VT_ERR_INVALID_ARG, "schedule: no spec given");
    char buf[256];
    if (strlen(spec) >= sizeof buf)
        return vt_error(VT_ERR_INVALID_ARG, "schedule: spec longer than %zu characters", sizeof buf - 1);
    snprintf(buf, sizeof buf, "%s", spec);
    vt_schedule r;
    memset(&r, 0, sizeof r);
    r.base_lr = s->base_lr;
    r.gamma = 1.0f;
    r.warmup_start_factor = VT_SCHED_DEFAULT_WARMUP_FACTOR;

    char *warm = strstr(buf, ",warmup:");
    if (warm) {
        *warm = 0;
        char *f[3];
        int nf = split(warm + 8, ':', f, 2);
        if (nf > 2) return bad(spec, "warmup takes EPOCHS[:START_FACTOR]");
        if (!parse_int(f[0], 0, 1000000, &r.warmup_epochs)) return bad(spec, "warmup epochs must be an integer >= 0");
        if (nf == 2 && (!parse_float(f[1], &r.warmup_start_factor) || r.warmup_start_factor <= 0.0f ||
                        r.warmup_start_factor > 1.0f))
            return bad(spec, "warmup start factor must be in (0, 1]");
    }
    char *f[4];
    int nf = split(buf, ':', f, 3);
    const char *kind = f[0];
    if (strcmp(kind, "constant") == 0) {
        r.kind = VT_SCHED_CONSTANT;
        if (nf != 1) return bad(spec, "constant takes no arguments");
    } else if (strcmp(kind, "step") == 0) {
        r.kind = VT_SCHED_STEP;
        if (nf != 3) return bad(spec, "step needs STEP:GAMMA");
        if (!parse_int(f[1], 1, 1000000, &r.step_size)) return bad(spec, "step size must be an integer >= 1");
        if (!parse_float(f[2], &r.gamma) || r.gamma <= 0.0f) return bad(spec, "gamma must be a number > 0");
    } else if (strcmp(kind, "multistep") == 0) {
        r.kind = VT_SCHED_MULTISTEP;
        if (nf != 3) return bad(spec, "multistep needs M1,M2,...:GAMMA");
        char *m[VT_SCHED_MAX_MILESTONES + 1];
        int nm = split(f[1], ',', m, VT_SCHED_MAX_MILESTONES);
        if (nm > VT_SCHED_MAX_MILESTONES) return bad(spec, "at most 8 milestones");
        for (int i = 0; i < nm; i++) {
            if (!parse_int(m[i], 1, 1000000, &r.milestones[i])) return bad(spec, "milestones must be integers >= 1");
            if (i && r.milestones[i] <= r.milestones[i - 1]) return bad(spec, "milestones must be strictly increasing");
        }
        r.n_milestones = nm;
        if (!parse_float(f[2], &r.gamma) || r.gamma <= 0.0f) return bad(spec, "gamma must be a number > 0");
    } else if (strcmp(kind, "exp") == 0) {
        r.kind = VT_SCHED_EXPONENTIAL;
        if (nf != 2) return bad(spec, "exp needs GAMMA");
        if (!parse_float(f[1], &r.gamma) || r.gamma <= 0.0f) return bad(spec, "gamma must be a number > 0");
    } else if (strcmp(kind, "cosine") == 0) {
        r.kind = VT_SCHED_COSINE;
        if (nf != 2 && nf != 3) return bad(spec, "cosine needs T_MAX[:ETA_MIN]");
        if (!parse_int(f[1], 1, 1000000, &r.t_max)) return bad(spec, "T_MAX must be an integer >= 1");
        if (nf == 3 && (!parse_float(f[2], &r.eta_min) || r.eta_min < 0.0f))
            return bad(spec, "eta_min must be a number >= 0");
    } else {
        return bad(spec, "unknown kind");
    }
    *s = r;
    return VT_OK;
}

/* Shortest %g text that reads back as the same float. */
static void float_text(float v, char *buf, size_t n) {
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, n, "%.*g", prec, (double)v);
        if (strtof(buf, NULL) == v) return;
    }
}

int vt_schedule_format(const vt_schedule *s, char *buf, size_t n) {
    char main[160], a[32], b[32];
    switch (s->kind) {
    case VT_SCHED_STEP:
        float_text(s->gamma, a, sizeof a);
        snprintf(main, sizeof main, "step:%d:%s", s->step_size, a);
        break;
    case VT_SCHED_MULTISTEP: {
        int k = snprintf(main, sizeof main, "multistep:");
        for (int i = 0; i < s->n_milestones && i < VT_SCHED_MAX_MILESTONES; i++)
            k += snprintf(main + k, sizeof main - (size_t)k, "%s%d", i ? "," : "", s->milestones[i]);
        float_text(s->gamma, a, sizeof a);
        snprintf(main + k, sizeof main - (size_t)k, ":%s", a);
        break;
    }
    case VT_SCHED_EXPONENTIAL:
        float_text(s->gamma, a, sizeof a);
        snprintf(main, sizeof main, "exp:%s", a);
        break;
    case VT_SCHED_COSINE:
        if (s->eta_min != 0.0f) {
            float_text(s->eta_min, a, sizeof a);
            snprintf(main, sizeof main, "cosine:%d:%s", s->t_max, a);
        } else {
            snprintf(main, sizeof main, "cosine:%d", s->t_max);
        }
        break;
    case VT_SCHED_CONSTANT:
    default: snprintf(main, sizeof main, "constant"); break;
    }
    if (s->warmup_epochs > 0) {
        if (s->warmup_start_factor != VT_SCHED_DEFAULT_WARMUP_FACTOR) {
            float_text(s->warmup_start_factor, b, sizeof b);
            return snprintf(buf, n, "%s,warmup:%d:%s", main, s->warmup_epochs, b);
        }
        return snprintf(buf, n, "%s,warmup:%d", main, s->warmup_epochs);
    }
    return snprintf(buf, n, "%s", main);
}
