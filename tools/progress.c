/* The CLI's output of a training run (see progress.h): a bar fitted to the terminal, dropping the
 * least useful parts first, or one plain log line when the output is not a terminal; and the library's
 * log lines, which wipe the bar before they are printed. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif
#include "progress.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int vt_terminal_width(int fd) {
    const char *c = getenv("COLUMNS");
    if (c && atoi(c) > 0) return atoi(c);
    struct winsize ws;
    if (fd >= 0 && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

/* m:ss, or h:mm:ss from an hour on; "?" when unknown. */
static void fmt_time(char *b, size_t n, double s) {
    if (!(s >= 0) || s > 1e8) {
        snprintf(b, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(b, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(b, n, "%ld:%02ld", t / 60, t % 60);
}

/* Appends printf output to buf at *len, never past n-1 bytes. */
static void add(char *buf, size_t n, size_t *len, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static void add(char *buf, size_t n, size_t *len, const char *fmt, ...) {
    if (*len + 1 >= n) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, n - *len, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    *len += (size_t)k < n - *len ? (size_t)k : n - *len - 1;
}

/* The parts a narrow terminal gives up, in this order. */
enum {
    VT_P_RATE = 1, /* images/s */
    VT_P_WORD = 2, /* "problem 3/8" -> "3/8" */
    VT_P_ELAPSED = 4,
    VT_P_ACC = 8,
    VT_P_LOSS = 16,
    VT_P_COMPACT = 32, /* "epoch 3/10 step 5/9" -> "e3/10 s5/9" */
    VT_P_LEVELS = 7
};

/* The line without the parts in `drop`; bar > 0 inserts a bar of that many cells; name_max >= 0
 * cuts the problem name to that many columns. */
static size_t render(const vt_progress *p, unsigned drop, int bar, int name_max, char *buf, size_t n) {
    size_t len = 0;
    char el[32], eta[32];
    fmt_time(el, sizeof el, p->elapsed_s);
    fmt_time(eta, sizeof eta, p->eta_s);
    buf[0] = 0;
    if (p->problem_count > 0)
        add(buf, n, &len, (drop & VT_P_WORD) ? "%d/%d " : "problem %d/%d ", p->problem_index, p->problem_count);
    const char *name = p->problem ? p->problem : "";
    int nl = (int)strlen(name);
    if (name_max >= 0 && nl > name_max) {
        if (name_max > 1) add(buf, n, &len, "%.*s~ ", name_max - 1, name);
    } else if (nl > 0) {
        add(buf, n, &len, "%s ", name);
    }
    add(buf, n, &len, (drop & VT_P_COMPACT) ? "e%d/%d " : "epoch %d/%d ", p->epoch, p->epochs);
    if (bar > 0) {
        int done = p->steps > 0 ? (int)((double)p->step / (double)p->steps * bar) : 0;
        if (done > bar) done = bar;
        if (done < 0) done = 0;
        add(buf, n, &len, "[");
        for (int i = 0; i < bar; i++) add(buf, n, &len, "%c", i < done ? '#' : '.');
        add(buf, n, &len, "] ");
    }
    add(buf, n, &len, (drop & VT_P_COMPACT) ? "s%lld/%lld " : "step %lld/%lld ", (long long)p->step,
        (long long)p->steps);
    if (!(drop & VT_P_LOSS)) add(buf, n, &len, "loss %.4f ", p->loss);
    if (!(drop & VT_P_ACC)) add(buf, n, &len, "acc %.2f%% ", p->acc);
    if (!(drop & VT_P_RATE) && p->images_per_s > 0) add(buf, n, &len, "%.0f img/s ", p->images_per_s);
    if (!(drop & VT_P_ELAPSED)) add(buf, n, &len, "elapsed %s ", el);
    add(buf, n, &len, "ETA %s", eta);
    return len;
}

size_t vt_progress_format(const vt_progress *p, int width, int tty, char *buf, size_t n) {
    if (!buf || n == 0) return 0;
    if (!tty) return render(p, 0, 0, -1, buf, n);
    int cols = width - 1; /* the last column would wrap on some terminals */
    if (cols <= 0) {
        buf[0] = 0;
        return 0;
    }
    size_t len = 0;
    unsigned drop = 0;
    for (int level = 0; level < VT_P_LEVELS; level++) {
        if (level > 0) drop |= 1u << (level - 1);
        len = render(p, drop, 0, -1, buf, n);
        if ((int)len <= cols) {
            /* room left: a bar of 8 to 30 cells */
            int room = cols - (int)len - 3;
            if (room >= 8) len = render(p, drop, room > 30 ? 30 : room, -1, buf, n);
            return len;
        }
    }
    /* still too wide: shorten the problem name, then cut */
    int nl = p->problem ? (int)strlen(p->problem) : 0;
    for (int keep = nl - 1; keep >= 0; keep--) {
        len = render(p, drop, 0, keep, buf, n);
        if ((int)len <= cols) return len;
    }
    if ((int)len > cols && (size_t)cols < n) {
        buf[cols] = 0;
        len = (size_t)cols;
    }
    return len;
}

void vt_progress_show(const vt_progress *p, FILE *out, int tty) {
    char line[512];
    int width = tty ? vt_terminal_width(fileno(out)) : 0;
    vt_progress_format(p, width, tty, line, sizeof line);
    /* \033[K wipes what a longer previous line left to the right */
    if (tty) fprintf(out, "\r%s\033[K", line);
    else fprintf(out, "%s\n", line);
    fflush(out);
}

void vt_progress_clear(FILE *out, int tty) {
    if (!tty) return;
    fprintf(out, "\r\033[K");
    fflush(out);
}

vt_cli_output vt_cli_out;

void vt_cli_output_init(vt_cli_output *o, const int *verbose) {
    o->tty = isatty(1);
    o->drawn = 0;
    o->verbose = verbose;
    vt_log_set(vt_cli_log, o);
}

void vt_cli_output_clear(vt_cli_output *o) {
    if (!o->drawn) return;
    vt_progress_clear(stdout, o->tty);
    o->drawn = 0;
}

void vt_cli_log(vt_log_level level, const char *text, void *user) {
    vt_cli_output *o = user;
    if (level == VT_LOG_DEBUG && !(o && o->verbose && *o->verbose)) return;
    if (o) vt_cli_output_clear(o);
    FILE *f = level == VT_LOG_INFO ? stdout : stderr;
    size_t n = strlen(text);
    fprintf(f, "%s%s", text, n && text[n - 1] == '\n' ? "" : "\n");
    fflush(f);
}

void vt_cli_progress(const vt_progress *p, void *user) {
    vt_cli_output *o = user;
    vt_progress_show(p, stdout, o->tty);
    o->drawn = o->tty;
}
