/* The run folder: its name, the .lock held for the whole run, the refusal of a folder that holds a
 * run (unless --resume continues it or --overwrite replaces it), config.json and classes.txt. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "train_internal.h"

static vt_status mkdir_p(const char *path) {
    char tmp[512];
    copy_str(tmp, sizeof tmp, path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return vt_error(VT_ERR_IO, "cannot create folder %s: %s", tmp, strerror(errno));
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
        return vt_error(VT_ERR_IO, "cannot create folder %s: %s", tmp, strerror(errno));
    return VT_OK;
}

vt_status tr_write_text(const char *dir, const char *name, const char *text, const char *mode) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, mode);
    if (!f) return vt_error(VT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    int ok = fputs(text, f) >= 0;
    ok = (fclose(f) == 0) && ok;
    return ok ? VT_OK : vt_error(VT_ERR_IO, "cannot write %s: %s", path, strerror(errno));
}

vt_status tr_write_json_file(const char *dir, const char *name, cJSON *j) {
    char *txt = cJSON_Print(j);
    if (!txt) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_status s = tr_write_text(dir, name, txt, "w");
    free(txt);
    if (s == VT_OK) s = tr_write_text(dir, name, "\n", "a");
    return s;
}

/* An exclusive lock on RUN/.lock for the whole run: a second trainer on the same folder would
 * overwrite the first one's checkpoints. The file keeps the holder's pid for the message. */
static vt_status lock_run_dir(vt_trainer *t) {
    if (t->locked) return VT_OK;
    char path[700];
    snprintf(path, sizeof path, "%s/.lock", t->cfg.out_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return vt_error(VT_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char txt[32] = "";
        ssize_t n = pread(fd, txt, sizeof txt - 1, 0);
        txt[n > 0 ? n : 0] = 0;
        close(fd);
        if (e == EWOULDBLOCK)
            return vt_error(VT_ERR_IO, "run folder %s is in use by another vtrain (pid %ld)", t->cfg.out_dir,
                            atol(txt));
        return vt_error(VT_ERR_IO, "cannot lock %s: %s", path, strerror(e));
    }
    char txt[32];
    int n = snprintf(txt, sizeof txt, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, txt, (size_t)n, 0) != n) {
        int e = errno;
        close(fd);
        return vt_error(VT_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    t->lock_fd = fd;
    t->locked = 1;
    return VT_OK;
}

/* The files a run writes in its folder (the report's too), removed by --overwrite. */
static const char *const vt_run_files[] = {
    "config.json", "last.vtc",    "best.vtc",    "init.vtc",      "summary.json", "summary.md",    "metrics.jsonl",
    "metrics.csv", "classes.txt", "report.html", "acc_epoch.svg", "acc_time.svg", "loss_epoch.svg"};

/* A folder that holds a run is continued (--resume) or replaced (--overwrite), never overwritten silently. */
static vt_status check_run_dir(vt_trainer *t) {
    if (t->cfg.resume[0]) return VT_OK;
    const char *marks[3] = {"config.json", "last.vtc", "summary.json"};
    int holds = 0;
    char path[700];
    for (int i = 0; i < 3 && !holds; i++) {
        snprintf(path, sizeof path, "%s/%s", t->cfg.out_dir, marks[i]);
        holds = access(path, F_OK) == 0;
    }
    if (!holds) return VT_OK;
    if (!t->cfg.overwrite)
        return vt_error(VT_ERR_INVALID_ARG,
                        "%s already holds a run; continue it with --resume %s/last.vtc, replace it with --overwrite, "
                        "or choose another --out",
                        t->cfg.out_dir, t->cfg.out_dir);
    for (size_t i = 0; i < sizeof vt_run_files / sizeof vt_run_files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", t->cfg.out_dir, vt_run_files[i]);
        if (unlink(path) != 0 && errno != ENOENT)
            return vt_error(VT_ERR_IO, "cannot remove %s: %s", path, strerror(errno));
    }
    return VT_OK;
}

static vt_status write_classes(const vt_trainer *t) {
    if (!t->class_names || t->rank != 0) return VT_OK;
    size_t cap = 1;
    for (int i = 0; i < t->n_classes; i++) cap += strlen(t->class_names[i]) + 1;
    char *txt = malloc(cap), *q = txt;
    if (!txt) return vt_error(VT_ERR_OOM, "out of host memory");
    for (int i = 0; i < t->n_classes; i++) {
        size_t k = strlen(t->class_names[i]);
        memcpy(q, t->class_names[i], k);
        for (size_t j = 0; j < k; j++)
            if (q[j] == '\n' || q[j] == '\r') q[j] = ' '; /* one name per line */
        q += k;
        *q++ = '\n';
    }
    *q = 0;
    vt_status s = tr_write_text(t->cfg.out_dir, "classes.txt", txt, "w");
    free(txt);
    return s;
}

vt_status tr_run_folder_choose(vt_trainer *t) {
    if (!t->cfg.out_dir[0] && t->cfg.resume[0]) {
        /* a resumed run continues in the folder its checkpoint is in */
        copy_str(t->cfg.out_dir, sizeof t->cfg.out_dir, t->cfg.resume);
        char *slash = strrchr(t->cfg.out_dir, '/');
        if (slash && slash != t->cfg.out_dir) *slash = 0;
        else copy_str(t->cfg.out_dir, sizeof t->cfg.out_dir, slash ? "/" : ".");
    }
    if (!t->cfg.out_dir[0]) {
        copy_str(t->cfg.out_dir, sizeof t->cfg.out_dir, "runs/");
        copy_str(t->cfg.out_dir + 5, sizeof t->cfg.out_dir - 5, t->cfg.problem);
    }
    snprintf(t->last_path, sizeof t->last_path, "%s/last.vtc", t->cfg.out_dir);
    snprintf(t->best_path, sizeof t->best_path, "%s/best.vtc", t->cfg.out_dir);
    /* An existing folder is locked before the data is read, so that a clash fails at once; a new one is
     * created only once the model fits on the device. Whether it already holds a run is decided once the
     * data and the model are ready, so that a run that cannot start leaves an old run (and --overwrite
     * removes nothing) untouched. Only rank 0 touches the run folder: the other ranks neither lock nor
     * write it. */
    struct stat st;
    if (t->rank == 0 && stat(t->cfg.out_dir, &st) == 0 && S_ISDIR(st.st_mode)) return lock_run_dir(t);
    return VT_OK;
}

vt_status tr_run_folder_open(vt_trainer *t) {
    if (t->rank == 0) {
        VT_TRY(mkdir_p(t->cfg.out_dir));
        VT_TRY(lock_run_dir(t));
        VT_TRY(check_run_dir(t));
        cJSON *c = tr_cfg_to_json(t);
        vt_status s = tr_write_json_file(t->cfg.out_dir, "config.json", c);
        cJSON_Delete(c);
        VT_TRY(s);
    }
    return write_classes(t);
}
