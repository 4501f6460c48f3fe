/* The MPI communicator: every collective runs under a deadline, so a dead or stalled rank ends the job
 * with a message naming it instead of hanging every other rank forever. With MPI_THREAD_MULTIPLE the
 * collectives are the library's blocking ones (its fastest algorithms) watched by a thread; otherwise
 * MPI-3 non-blocking collectives are polled against the deadline. */
#define _POSIX_C_SOURCE 200809L
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"

enum { TAG_PING = 1, TAG_PONG = 2 };
#define PONG_SLOTS 64

typedef struct mpi_state {
    MPI_Comm data;                  /* collectives of the trainer */
    MPI_Comm ctl;                   /* pings between ranks when a collective is late */
    int owns_mpi;                   /* this communicator called MPI_Init */
    unsigned long long seq;         /* collectives started so far */
    long long pong_buf[PONG_SLOTS]; /* send buffers of pongs (freed requests; each slot reused late) */
    int pong_next;
    int ping_buf;
    double last_serve;
    /* the watchdog thread (MPI_THREAD_MULTIPLE only): armed while a blocking collective runs */
    int threaded;
    pthread_t watchdog;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    int armed, stop;
    double armed_at;
    const char *armed_what;
} mpi_state;

static void *watchdog_main(void *arg);

static vt_status mpi_fail(int rc, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) snprintf(msg, sizeof msg, "MPI error %d", rc);
    return vt_error(VT_ERR_NETWORK, "%s: %s", what, msg);
}

vt_status vt_comm_mpi_open(vt_comm *c) {
    mpi_state *m = calloc(1, sizeof *m);
    if (!m) return vt_error(VT_ERR_OOM, "out of host memory");
    int inited = 0, fin = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&fin);
    if (fin) {
        free(m);
        return vt_error(VT_ERR_INVALID_ARG, "MPI was already finalized in this process; it cannot start again");
    }
    int provided = 0;
    if (!inited) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
        if (rc != MPI_SUCCESS) {
            free(m);
            return mpi_fail(rc, "MPI_Init");
        }
        m->owns_mpi = 1;
    } else {
        MPI_Query_thread(&provided);
    }
    /* errors come back as codes, so that a failure is reported by this code with the rank in it */
    MPI_Comm_dup(MPI_COMM_WORLD, &m->data);
    MPI_Comm_dup(MPI_COMM_WORLD, &m->ctl);
    MPI_Comm_set_errhandler(m->data, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(m->ctl, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->data, &c->rank);
    MPI_Comm_size(m->data, &c->size);
    MPI_Comm local;
    if (MPI_Comm_split_type(m->data, MPI_COMM_TYPE_SHARED, c->rank, MPI_INFO_NULL, &local) == MPI_SUCCESS) {
        MPI_Comm_rank(local, &c->local_rank);
        MPI_Comm_size(local, &c->local_size);
        MPI_Comm_free(&local);
    } else {
        c->local_rank = c->rank;
        c->local_size = c->size;
    }
    c->mpi = m;
    const char *poll = getenv("VT_COMM_POLL"); /* 1: the non-blocking path even where threads are allowed */
    if (provided >= MPI_THREAD_MULTIPLE && !(poll && strcmp(poll, "1") == 0)) {
        pthread_mutex_init(&m->lock, NULL);
        pthread_cond_init(&m->wake, NULL);
        m->threaded = pthread_create(&m->watchdog, NULL, watchdog_main, c) == 0;
        if (!m->threaded) {
            pthread_mutex_destroy(&m->lock);
            pthread_cond_destroy(&m->wake);
        }
    }
    return VT_OK;
}

void vt_comm_mpi_close(vt_comm *c) {
    mpi_state *m = c->mpi;
    if (m->threaded) {
        pthread_mutex_lock(&m->lock);
        m->stop = 1;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->watchdog, NULL);
        pthread_mutex_destroy(&m->lock);
        pthread_cond_destroy(&m->wake);
    }
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) {
        MPI_Comm_free(&m->data);
        MPI_Comm_free(&m->ctl);
        if (m->owns_mpi) MPI_Finalize();
    }
    free(m);
    c->mpi = NULL;
}

/* Answers every ping waiting from other ranks with this rank's collective count. */
static void serve_pings(mpi_state *m) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_PING, m->ctl, &flag, &st) != MPI_SUCCESS || !flag) return;
        int who = 0;
        if (MPI_Recv(&who, 1, MPI_INT, st.MPI_SOURCE, TAG_PING, m->ctl, MPI_STATUS_IGNORE) != MPI_SUCCESS) return;
        long long *slot = &m->pong_buf[m->pong_next++ % PONG_SLOTS];
        *slot = (long long)m->seq;
        MPI_Request r;
        if (MPI_Isend(slot, 1, MPI_LONG_LONG, st.MPI_SOURCE, TAG_PONG, m->ctl, &r) == MPI_SUCCESS) MPI_Request_free(&r);
    }
}

static void sleep_us(long us) {
    struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
    nanosleep(&ts, NULL);
}

/* Past the deadline: asks every other rank whether it is alive, names those that stay silent, and
 * ends the job. Ranks that wait in a collective (or in this same check) answer at once. */
static void timeout_abort(vt_comm *c, const char *what, double waited) {
    mpi_state *m = c->mpi;
    int n = c->size;
    vt_log(VT_LOG_WARN,
           "vtrain: rank %d of %d: %s (collective #%llu) not finished after %.1f s; asking the other ranks", c->rank, n,
           what, m->seq, waited);
    long long *pong = calloc((size_t)n, sizeof *pong);
    MPI_Request *rq = calloc((size_t)n, sizeof *rq);
    int *got = calloc((size_t)n, sizeof *got);
    char list[512] = "", seen[512] = "";
    if (pong && rq && got) {
        m->ping_buf = c->rank;
        for (int r = 0; r < n; r++) {
            rq[r] = MPI_REQUEST_NULL;
            if (r == c->rank) continue;
            MPI_Request sr;
            if (MPI_Isend(&m->ping_buf, 1, MPI_INT, r, TAG_PING, m->ctl, &sr) == MPI_SUCCESS) MPI_Request_free(&sr);
            MPI_Irecv(&pong[r], 1, MPI_LONG_LONG, r, TAG_PONG, m->ctl, &rq[r]);
        }
        double grace = c->timeout * 0.25;
        if (grace < 1) grace = 1;
        if (grace > 10) grace = 10;
        double end = vt_comm_now() + grace;
        int missing = n - 1;
        while (missing > 0 && vt_comm_now() < end) {
            serve_pings(m);
            for (int r = 0; r < n; r++) {
                if (r == c->rank || got[r] || rq[r] == MPI_REQUEST_NULL) continue;
                int flag = 0;
                if (MPI_Test(&rq[r], &flag, MPI_STATUS_IGNORE) == MPI_SUCCESS && flag) got[r] = 1, missing--;
            }
            sleep_us(1000);
        }
        size_t k = 0, j = 0;
        for (int r = 0; r < n; r++) {
            if (r == c->rank) continue;
            if (!got[r] && k < sizeof list - 16)
                k += (size_t)snprintf(list + k, sizeof list - k, "%s%d", k ? ", " : "", r);
            if (got[r] && pong[r] != (long long)m->seq && j < sizeof seen - 48)
                j += (size_t)snprintf(seen + j, sizeof seen - j, "%srank %d is at collective #%lld", j ? ", " : "", r,
                                      pong[r]);
        }
    }
    char msg[1400];
    if (list[0])
        snprintf(
            msg, sizeof msg,
            "%s (collective #%llu) timed out after %.1f s: no answer from rank %s (dead, stalled, or busy "
            "outside communication)%s%s; aborting every rank (raise the limit with --comm-timeout or VT_COMM_TIMEOUT)",
            what, m->seq, waited, list, seen[0] ? "; " : "", seen);
    else
        snprintf(msg, sizeof msg,
                 "%s (collective #%llu) timed out after %.1f s although every rank answers%s%s (ranks called "
                 "different collectives); aborting every rank",
                 what, m->seq, waited, seen[0] ? ": " : "", seen);
    free(pong);
    free(rq);
    free(got);
    vt_comm_mpi_abort(c, 1, msg);
}

int vt_comm_mpi_wait(vt_comm *c, int (*done)(void *arg), void *arg, const char *what) {
    mpi_state *m = c->mpi;
    double t0 = vt_comm_now();
    for (long it = 0;; it++) {
        int r = done(arg);
        if (r) return r;
        if (it < 256) continue; /* a short collective ends while spinning */
        double t = vt_comm_now(), waited = t - t0;
        if (waited > c->timeout) timeout_abort(c, what, waited);
        if (t - m->last_serve > 0.01) {
            serve_pings(m);
            m->last_serve = t;
        }
        /* while a peer is late, leave the cores to it (ranks often outnumber cores in tests) */
        if (waited > 0.02) sleep_us(50);
        else if (waited > 0.001) sched_yield();
    }
}

int vt_comm_mpi_threaded(const vt_comm *c) { return c->mpi && ((const mpi_state *)c->mpi)->threaded; }

void vt_comm_mpi_abort(vt_comm *c, int code, const char *msg) {
    vt_log(VT_LOG_ERROR, "vtrain: rank %d of %d: %s", c->rank, c->size, msg);
    MPI_Abort(MPI_COMM_WORLD, code ? code : 1);
    exit(code ? code : 1); /* MPI_Abort does not return; this is for implementations that do */
}

/* The watchdog: while a blocking collective is armed it answers pings and, past the deadline, runs
 * the same check and abort as the polling path (MPI_Abort from this thread is allowed at
 * MPI_THREAD_MULTIPLE). Pings are answered only while armed: a rank that computes or hangs elsewhere
 * stays silent, which is what the check reports. */
static void *watchdog_main(void *arg) {
    vt_comm *c = arg;
    mpi_state *m = c->mpi;
    pthread_mutex_lock(&m->lock);
    while (!m->stop) {
        if (m->armed) {
            double waited = vt_comm_now() - m->armed_at;
            const char *what = m->armed_what;
            pthread_mutex_unlock(&m->lock);
            if (waited > c->timeout) timeout_abort(c, what, waited);
            serve_pings(m);
            pthread_mutex_lock(&m->lock);
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 10 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        if (!m->stop) pthread_cond_timedwait(&m->wake, &m->lock, &ts);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

static void arm(mpi_state *m, const char *what) {
    pthread_mutex_lock(&m->lock);
    m->armed = 1;
    m->armed_at = vt_comm_now();
    m->armed_what = what;
    pthread_mutex_unlock(&m->lock);
}

static void disarm(mpi_state *m) {
    pthread_mutex_lock(&m->lock);
    m->armed = 0;
    pthread_mutex_unlock(&m->lock);
}

typedef struct req_wait {
    MPI_Request req;
    int rc;
} req_wait;

static int req_done(void *arg) {
    req_wait *w = arg;
    int flag = 0;
    w->rc = MPI_Test(&w->req, &flag, MPI_STATUS_IGNORE);
    if (w->rc != MPI_SUCCESS) return -1;
    return flag;
}

static vt_status wait_req(vt_comm *c, MPI_Request req, const char *what) {
    req_wait w = {.req = req, .rc = MPI_SUCCESS};
    if (vt_comm_mpi_wait(c, req_done, &w, what) < 0) return mpi_fail(w.rc, what);
    return VT_OK;
}

/* counts are int in MPI-3: longer buffers go in pieces */
#define PIECE_ELEMS ((size_t)1 << 28)

vt_status vt_comm_mpi_allreduce_sum(vt_comm *c, void *buf, size_t n, int is_f64, const char *what) {
    mpi_state *m = c->mpi;
    size_t esz = is_f64 ? sizeof(double) : sizeof(float);
    for (size_t at = 0; at < n; at += PIECE_ELEMS) {
        size_t k = n - at < PIECE_ELEMS ? n - at : PIECE_ELEMS;
        MPI_Datatype type = is_f64 ? MPI_DOUBLE : MPI_FLOAT;
        m->seq++;
        if (m->threaded) {
            arm(m, what);
            int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)buf + at * esz, (int)k, type, MPI_SUM, m->data);
            disarm(m);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
            continue;
        }
        MPI_Request r;
        int rc = MPI_Iallreduce(MPI_IN_PLACE, (char *)buf + at * esz, (int)k, type, MPI_SUM, m->data, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, what);
        VT_TRY(wait_req(c, r, what));
    }
    return VT_OK;
}

vt_status vt_comm_mpi_allgather(vt_comm *c, const void *mine, void *all, size_t bytes) {
    mpi_state *m = c->mpi;
    /* one count per rank in MPI-3: the statistics gathered are a few kilobytes, far below the limit */
    if (bytes > (size_t)PIECE_ELEMS) return vt_error(VT_ERR_INVALID_ARG, "allgather of %zu bytes a rank", bytes);
    const void *send = mine ? mine : MPI_IN_PLACE;
    m->seq++;
    if (m->threaded) {
        arm(m, "allgather");
        int rc = MPI_Allgather(send, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, m->data);
        disarm(m);
        return rc == MPI_SUCCESS ? VT_OK : mpi_fail(rc, "allgather");
    }
    MPI_Request r;
    int rc = MPI_Iallgather(send, (int)bytes, MPI_BYTE, all, (int)bytes, MPI_BYTE, m->data, &r);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "allgather");
    return wait_req(c, r, "allgather");
}

vt_status vt_comm_mpi_bcast(vt_comm *c, void *buf, size_t bytes, int root) {
    mpi_state *m = c->mpi;
    for (size_t at = 0; at < bytes; at += PIECE_ELEMS) {
        size_t k = bytes - at < PIECE_ELEMS ? bytes - at : PIECE_ELEMS;
        m->seq++;
        if (m->threaded) {
            arm(m, "broadcast");
            int rc = MPI_Bcast((char *)buf + at, (int)k, MPI_BYTE, root, m->data);
            disarm(m);
            if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
            continue;
        }
        MPI_Request r;
        int rc = MPI_Ibcast((char *)buf + at, (int)k, MPI_BYTE, root, m->data, &r);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "broadcast");
        VT_TRY(wait_req(c, r, "broadcast"));
    }
    return VT_OK;
}

vt_status vt_comm_mpi_barrier(vt_comm *c) {
    mpi_state *m = c->mpi;
    m->seq++;
    if (m->threaded) {
        arm(m, "barrier");
        int rc = MPI_Barrier(m->data);
        disarm(m);
        return rc == MPI_SUCCESS ? VT_OK : mpi_fail(rc, "barrier");
    }
    MPI_Request r;
    int rc = MPI_Ibarrier(m->data, &r);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "barrier");
    return wait_req(c, r, "barrier");
}

vt_status vt_comm_mpi_allreduce_plain(vt_comm *c, float *buf, size_t n) {
    mpi_state *m = c->mpi;
    for (size_t at = 0; at < n; at += PIECE_ELEMS) {
        size_t k = n - at < PIECE_ELEMS ? n - at : PIECE_ELEMS;
        int rc = MPI_Allreduce(MPI_IN_PLACE, buf + at, (int)k, MPI_FLOAT, MPI_SUM, m->data);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Allreduce");
    }
    return VT_OK;
}
