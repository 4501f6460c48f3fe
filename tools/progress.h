/* The CLI's view of a training run: the trainer's progress (vt/train.h) as a one-line bar redrawn in
 * place on a terminal (fitted to its width), or a plain log line elsewhere, so `| tee` and CI logs stay
 * readable; and the library's log lines, printed so that they never run into a bar. */
#ifndef VT_TOOLS_PROGRESS_H
#define VT_TOOLS_PROGRESS_H

#include <stdio.h>

#include "vt/common.h"
#include "vt/train.h"

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

/* The program's output: info lines on stdout, warnings and errors on stderr, debug lines on stderr
 * under -v only; progress on stdout, as a bar when stdout is a terminal. */
typedef struct vt_cli_output {
    int tty;            /* stdout is a terminal: progress is a bar redrawn in place */
    int drawn;          /* a bar is on the screen */
    const int *verbose; /* when set and non-zero: debug lines too (-v can come after the command) */
} vt_cli_output;

/* The program's one output. */
extern vt_cli_output vt_cli_out;

/* Installs vt_cli_log as the library's log callback, writing through `o` (which must outlive it). */
void vt_cli_output_init(vt_cli_output *o, const int *verbose);
/* A vt_log_fn: wipes a bar first, then prints the line (a newline added when it has none). */
void vt_cli_log(vt_log_level level, const char *text, void *user);
/* A vt_progress_fn for the trainer; user is the vt_cli_output. */
void vt_cli_progress(const vt_progress *p, void *user);
/* Wipes a bar left on the screen (before the program prints its own lines). */
void vt_cli_output_clear(vt_cli_output *o);

#endif
