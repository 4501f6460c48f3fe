/* Progress lines of the trainer (see vt/progress.h). */
#define _POSIX_C_SOURCE 200809L
#include "vt/progress.h"

#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

int vt_terminal_width(int fd) {
    const char *c = getenv("COLUMNS");
    if (c && atoi(c) > 0) return atoi(c);
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 80;
}

void vt_progress_show(const vt_progress *p, FILE *out, int tty) {
    fprintf(out, "%s%s epoch %d/%d step %lld/%lld loss %.4f acc %.2f%%%s", tty ? "\r" : "", p->problem, p->epoch,
            p->epochs, (long long)p->step, (long long)p->steps, p->loss, p->acc, tty ? "" : "\n");
    fflush(out);
}

void vt_progress_clear(FILE *out, int tty) {
    if (!tty) return;
    fprintf(out, "\r\033[K");
    fflush(out);
}
