/* Progress of a training run: a one-line bar redrawn in place on a terminal (fitted to its width),
 * or a plain log line elsewhere, so `| tee` and CI logs stay readable. Both go to `out` (stdout). */
#ifndef VT_PROGRESS_H
#define VT_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct vt_progress {
    const char *problem;              /* the run's problem name */
    int problem_index, problem_count; /* --problem all: problem k of n (1-based); 0 = a single run */
    int epoch, epochs;                /* current epoch (1-based) and planned epochs */
    int64_t step, steps;              /* steps done in this epoch, steps per epoch */
    double loss, acc;                 /* running train loss and accuracy (percent) of the epoch */
    double images_per_s;
    double elapsed_s;                 /* training time of the whole run so far */
    double eta_s;                     /* time left (already capped by --max-minutes); < 0 = unknown */
} vt_progress;

/* tty: redraws one line in place, never wider than the terminal (COLUMNS or the tty's width,
 * 80 when unknown); otherwise prints one log line ending in a newline. */
void vt_progress_show(const vt_progress *p, FILE *out, int tty);
/* The text vt_progress_show prints, into buf (always terminated): for a tty, the bar's visible text
 * without control characters, never more than width-1 columns (parts are dropped and the problem
 * name shortened to fit); otherwise the log line without its newline (width ignored). Returns its length. */
size_t vt_progress_format(const vt_progress *p, int width, int tty, char *buf, size_t n);
/* Wipes a bar drawn by vt_progress_show so that another line can be printed (no-op when !tty). */
void vt_progress_clear(FILE *out, int tty);
/* Width in columns of the terminal on fd (COLUMNS wins when set), 80 when unknown. */
int vt_terminal_width(int fd);

#ifdef __cplusplus
}
#endif
#endif
