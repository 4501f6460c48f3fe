/* The communicator interface: a single-process fallback, dispatch to MPI or NCCL where built, and the
 * bucketed averaging of a flat gradient block (staged through host memory where the backend needs it). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "comm_internal.h"
#include "vt/backend.h"

double vt_comm_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int vt_comm_have_mpi(void) {
#ifdef VT_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

int vt_comm_have_nccl(void) {
#ifdef VT_HAVE_NCCL
    return 1;
#else
    return 0;
#endif
}

static int env_set(const char *name) {
    const char *v = getenv(name);
    return v && *v;
}

int vt_comm_launched(void) {
    const char *force = getenv("VT_COMM");
    if (force && strcmp(force, "mpi") == 0) return 1;
    if (force && strcmp(force, "single") == 0) return 0;
    /* Open MPI's mpirun, MPICH/Hydra and Intel MPI (PMI), PMIx launchers (srun --mpi=pmix, prterun) */
    return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMI_SIZE") || env_set("PMI_RANK") || env_set("PMIX_RANK");
}

vt_status vt_comm_init(double timeout_s, vt_comm **out) {
    *out = NULL;
    if (!(timeout_s > 0)) {
        timeout_s = VT_COMM_DEFAULT_TIMEOUT;
        const char *e = getenv("VT_COMM_TIMEOUT");
        if (e && *e) {
            char *end = NULL;
            double v = strtod(e, &end);
            if (end == e || *end || !(v > 0) || v > 1e6)
                return vt_error(VT_ERR_INVALID_ARG, "VT_COMM_TIMEOUT=%s: give seconds, more than 0", e);
            timeout_s = v;
        }
    }
    const char *force = getenv("VT_COMM");
    if (force && *force && strcmp(force, "mpi") != 0 && strcmp(force, "single") != 0)
        return vt_error(VT_ERR_INVALID_ARG, "VT_COMM=%s: give mpi or single", force);
    vt_comm *c = calloc(1, sizeof *c);
    if (!c) return vt_error(VT_ERR_OOM, "out of host memory");
    c->rank = 0;
    c->size = c->local_size = 1;
    c->kind = "single";
    c->timeout = timeout_s;
    if (vt_comm_launched()) {
#ifdef VT_HAVE_MPI
        vt_status s = vt_comm_mpi_open(c);
        if (s != VT_OK) {
            free(c);
            return s;
        }
        c->kind = "mpi";
#else
        if (force && strcmp(force, "mpi") == 0) {
            free(c);
            return vt_error(VT_ERR_UNSUPPORTED,
                            "VT_COMM=mpi: this vtrain was built without MPI (configure with -DVT_MPI=ON)");
        }
        /* started by a launcher but built without MPI: every rank would train alone, each writing the
         * same run folder; refuse that instead */
        free(c);
        return vt_error(VT_ERR_UNSUPPORTED,
                        "started by an MPI launcher, but this vtrain was built without MPI (install libopenmpi-dev "
                        "and configure with -DVT_MPI=ON), or set VT_COMM=single to run this process alone");
#endif
    }
    *out = c;
    return VT_OK;
}

void vt_comm_free(vt_comm *c) {
    if (!c) return;
#ifdef VT_HAVE_NCCL
    if (c->nccl) vt_comm_nccl_close(c);
#endif
#ifdef VT_HAVE_MPI
    if (c->mpi) vt_comm_mpi_close(c);
#endif
    free(c);
}

int vt_comm_rank(const vt_comm *c) { return c ? c->rank : 0; }
int vt_comm_size(const vt_comm *c) { return c ? c->size : 1; }
int vt_comm_local_rank(const vt_comm *c) { return c ? c->local_rank : 0; }
int vt_comm_local_size(const vt_comm *c) { return c ? c->local_size : 1; }
const char *vt_comm_kind(const vt_comm *c) { return c ? c->kind : "single"; }
double vt_comm_timeout(const vt_comm *c) { return c ? c->timeout : VT_COMM_DEFAULT_TIMEOUT; }
void vt_comm_set_timeout(vt_comm *c, double seconds) {
    if (c && seconds > 0) c->timeout = seconds;
}
const vt_comm_stats *vt_comm_get_stats(const vt_comm *c) { return &c->stats; }
void vt_comm_reset_stats(vt_comm *c) { memset(&c->stats, 0, sizeof c->stats); }

vt_status vt_comm_allreduce_avg(vt_comm *c, float *buf, size_t n) {
    c->stats.allreduces++;
    c->stats.bytes_reduced += n * sizeof(float);
    if (c->size == 1 || n == 0) return VT_OK;
#ifdef VT_HAVE_MPI
    double t0 = vt_comm_now();
    VT_TRY(vt_comm_mpi_allreduce_sum(c, buf, n, 0, "allreduce"));
    /* the sum is the same bits on every rank, so the scaled mean is too */
    const float inv = 1.0f / (float)c->size;
    for (size_t i = 0; i < n; i++) buf[i] *= inv;
    c->stats.seconds += vt_comm_now() - t0;
    return VT_OK;
#else
    (void)buf;
    return vt_error(VT_ERR_UNSUPPORTED, "allreduce over %d ranks without MPI", c->size);
#endif
}

vt_status vt_comm_allreduce_sum_f64(vt_comm *c, double *buf, size_t n) {
    c->stats.allreduces++;
    c->stats.bytes_reduced += n * sizeof(double);
    if (c->size == 1 || n == 0) return VT_OK;
#ifdef VT_HAVE_MPI
    double t0 = vt_comm_now();
    vt_status s = vt_comm_mpi_allreduce_sum(c, buf, n, 1, "allreduce (sum)");
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    (void)buf;
    return vt_error(VT_ERR_UNSUPPORTED, "allreduce over %d ranks without MPI", c->size);
#endif
}

vt_status vt_comm_allgather(vt_comm *c, const void *mine, void *all, size_t bytes) {
    c->stats.allgathers++;
    char *slot = (char *)all + (size_t)c->rank * bytes;
    if (bytes == 0) return VT_OK;
    if (c->size == 1) {
        if (mine != slot) memmove(slot, mine, bytes);
        return VT_OK;
    }
#ifdef VT_HAVE_MPI
    double t0 = vt_comm_now();
    vt_status s = vt_comm_mpi_allgather(c, mine == slot ? NULL : mine, all, bytes);
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    return vt_error(VT_ERR_UNSUPPORTED, "allgather over %d ranks without MPI", c->size);
#endif
}

vt_status vt_comm_bcast(vt_comm *c, void *buf, size_t bytes, int root) {
    if (root < 0 || root >= c->size) return vt_error(VT_ERR_INVALID_ARG, "broadcast from rank %d of %d", root, c->size);
    c->stats.bcasts++;
    if (c->size == 1 || bytes == 0) return VT_OK;
#ifdef VT_HAVE_MPI
    double t0 = vt_comm_now();
    vt_status s = vt_comm_mpi_bcast(c, buf, bytes, root);
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    (void)buf;
    return vt_error(VT_ERR_UNSUPPORTED, "broadcast over %d ranks without MPI", c->size);
#endif
}

vt_status vt_comm_barrier(vt_comm *c) {
    c->stats.barriers++;
    if (c->size == 1) return VT_OK;
#ifdef VT_HAVE_MPI
    double t0 = vt_comm_now();
    vt_status s = vt_comm_mpi_barrier(c);
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    return vt_error(VT_ERR_UNSUPPORTED, "barrier over %d ranks without MPI", c->size);
#endif
}

vt_status vt_comm_allreduce_plain(vt_comm *c, float *buf, size_t n) {
    if (c->size == 1 || n == 0) return VT_OK;
#ifdef VT_HAVE_MPI
    return vt_comm_mpi_allreduce_plain(c, buf, n);
#else
    (void)buf;
    return vt_error(VT_ERR_UNSUPPORTED, "allreduce over %d ranks without MPI", c->size);
#endif
}

void vt_comm_abort(vt_comm *c, int code, const char *msg) {
#ifdef VT_HAVE_MPI
    if (c && c->mpi) vt_comm_mpi_abort(c, code, msg);
#else
    (void)c;
    (void)code;
    (void)msg;
#endif
}

vt_status vt_comm_nccl_init(vt_comm *c, int cuda_device) {
#ifdef VT_HAVE_NCCL
    if (c->nccl) return VT_OK;
    return vt_comm_nccl_open(c, cuda_device);
#else
    (void)c;
    (void)cuda_device;
    return vt_error(VT_ERR_UNSUPPORTED, "this vtrain was built without NCCL (it needs the CUDA backend and MPI)");
#endif
}

int vt_comm_has_nccl_ready(const vt_comm *c) { return c && c->nccl != NULL; }

vt_status vt_comm_allreduce_avg_device(vt_comm *c, void *dev_ptr, size_t n) {
    c->stats.allreduces++;
    c->stats.bytes_reduced += n * sizeof(float);
#ifdef VT_HAVE_NCCL
    if (!c->nccl) return vt_error(VT_ERR_INVALID_ARG, "device allreduce before vt_comm_nccl_init");
    double t0 = vt_comm_now();
    vt_status s = vt_comm_nccl_allreduce_avg(c, dev_ptr, n);
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    (void)dev_ptr;
    return vt_error(VT_ERR_UNSUPPORTED, "device allreduce: this vtrain was built without NCCL");
#endif
}

vt_status vt_comm_allgather_device(vt_comm *c, const void *mine_dev, void *all_dev, size_t bytes) {
    c->stats.allgathers++;
#ifdef VT_HAVE_NCCL
    if (!c->nccl) return vt_error(VT_ERR_INVALID_ARG, "device allgather before vt_comm_nccl_init");
    if (bytes == 0) return VT_OK;
    double t0 = vt_comm_now();
    vt_status s = vt_comm_nccl_allgather(c, mine_dev, all_dev, bytes);
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    (void)mine_dev;
    (void)all_dev;
    (void)bytes;
    return vt_error(VT_ERR_UNSUPPORTED, "device allgather: this vtrain was built without NCCL");
#endif
}

vt_status vt_comm_bcast_device(vt_comm *c, void *dev_ptr, size_t bytes, int root) {
    if (root < 0 || root >= c->size) return vt_error(VT_ERR_INVALID_ARG, "broadcast from rank %d of %d", root, c->size);
    c->stats.bcasts++;
#ifdef VT_HAVE_NCCL
    if (!c->nccl) return vt_error(VT_ERR_INVALID_ARG, "device broadcast before vt_comm_nccl_init");
    double t0 = vt_comm_now();
    vt_status s = vt_comm_nccl_bcast(c, dev_ptr, bytes, root);
    c->stats.seconds += vt_comm_now() - t0;
    return s;
#else
    (void)dev_ptr;
    (void)bytes;
    return vt_error(VT_ERR_UNSUPPORTED, "device broadcast: this vtrain was built without NCCL");
#endif
}

/* ---- buckets ------------------------------------------------------------------------------ */

struct vt_grad_sync {
    vt_comm *comm;
    vt_tensor *flat;
    int64_t n;          /* elements of flat */
    int64_t per_bucket; /* elements per bucket (the last one may be shorter) */
    int n_buckets;
    float *stage; /* host copy of flat for staged backends; NULL when not staged */
    int device;   /* 1: straight to NCCL on the device pointer */
    double last_seconds;
    /* overlap: a thread averages the buckets handed to it while the backward pass goes on */
    int thread_started, stop;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
    int *queue; /* bucket indices in the order they were handed over */
    int queued, taken, finished;
    vt_status err;
    char err_msg[512];
    double t_begin, exposed;
};

static size_t bucket_bytes_default(void) {
    const char *e = getenv("VT_BUCKET_MB");
    if (e && *e) {
        char *end = NULL;
        double mb = strtod(e, &end);
        if (end != e && !*end && mb > 0 && mb <= 65536) return (size_t)(mb * 1048576.0);
    }
    return VT_COMM_DEFAULT_BUCKET_BYTES;
}

vt_status vt_grad_sync_new(vt_comm *c, vt_tensor *flat, size_t bucket_bytes, vt_grad_sync **out) {
    *out = NULL;
    if (!c || !flat || !flat->buf)
        return vt_error(VT_ERR_INVALID_ARG, "gradient sync needs a communicator and a placed tensor");
    if (flat->dtype != VT_F32) return vt_error(VT_ERR_DTYPE, "gradient sync: %s is not f32", flat->name);
    if (bucket_bytes == 0) bucket_bytes = bucket_bytes_default();
    if (bucket_bytes < sizeof(float)) bucket_bytes = sizeof(float);
    vt_grad_sync *s = calloc(1, sizeof *s);
    if (!s) return vt_error(VT_ERR_OOM, "out of host memory");
    s->comm = c;
    s->flat = flat;
    s->n = vt_tensor_nelem(flat);
    s->per_bucket = (int64_t)(bucket_bytes / sizeof(float));
    s->n_buckets = s->n == 0 ? 0 : (int)((s->n + s->per_bucket - 1) / s->per_bucket);
    const vt_backend *be = flat->buf->backend;
    s->device = c->nccl && be && strcmp(be->info.backend, "cuda") == 0;
    if (!flat->buf->host && !s->device && c->size > 1) {
        s->stage = malloc((size_t)s->n * sizeof(float) + 1);
        if (!s->stage) {
            long long n = (long long)s->n;
            free(s);
            return vt_error(VT_ERR_OOM, "gradient sync: out of host memory for %lld staged floats", n);
        }
    }
    *out = s;
    return VT_OK;
}

void vt_grad_sync_free(vt_grad_sync *s) {
    if (!s) return;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = 1;
        pthread_cond_broadcast(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->wake);
        pthread_cond_destroy(&s->done);
    }
    free(s->queue);
    free(s->stage);
    free(s);
}

int vt_grad_sync_n_buckets(const vt_grad_sync *s) { return s->n_buckets; }

void vt_grad_sync_bucket(const vt_grad_sync *s, int i, int64_t *first, int64_t *count) {
    *first = (int64_t)i * s->per_bucket;
    int64_t left = s->n - *first;
    *count = left < s->per_bucket ? left : s->per_bucket;
    if (*count < 0) *count = 0;
}

double vt_grad_sync_last_seconds(const vt_grad_sync *s) { return s->last_seconds; }
size_t vt_grad_sync_bytes(const vt_grad_sync *s) { return (size_t)s->n * sizeof(float); }

/* A byte range of a buffer to or from the host, counted like vt_tensor_download/upload. */
static vt_status stage_read(const vt_tensor *t, int64_t first, int64_t count, float *dst) {
    vt_backend *be = t->buf->backend;
    size_t off = t->offset + (size_t)first * sizeof(float), bytes = (size_t)count * sizeof(float);
    VT_TRY(be->iface->buffer_read(be, t->buf, off, dst, bytes));
    be->counters.downloads++;
    be->counters.bytes_down += bytes;
    return VT_OK;
}

static vt_status stage_write(vt_tensor *t, int64_t first, int64_t count, const float *src) {
    vt_backend *be = t->buf->backend;
    size_t off = t->offset + (size_t)first * sizeof(float), bytes = (size_t)count * sizeof(float);
    VT_TRY(be->iface->buffer_write(be, t->buf, off, src, bytes));
    be->counters.uploads++;
    be->counters.bytes_up += bytes;
    return VT_OK;
}

vt_status vt_grad_sync_run(vt_grad_sync *s) {
    s->last_seconds = 0;
    if (s->comm->size == 1 || s->n == 0) return VT_OK;
    double t0 = vt_comm_now();
    vt_backend *be = s->flat->buf->backend;
    VT_TRY(vt_backend_sync(be));
    for (int i = 0; i < s->n_buckets; i++) {
        int64_t first, count;
        vt_grad_sync_bucket(s, i, &first, &count);
        if (s->device) {
            VT_TRY(vt_comm_allreduce_avg_device(
                s->comm, (char *)s->flat->buf->handle + s->flat->offset + (size_t)first * sizeof(float),
                (size_t)count));
        } else if (s->stage) {
            VT_TRY(stage_read(s->flat, first, count, s->stage + first));
            VT_TRY(vt_comm_allreduce_avg(s->comm, s->stage + first, (size_t)count));
            VT_TRY(stage_write(s->flat, first, count, s->stage + first));
        } else {
            float *p = (float *)((char *)s->flat->buf->host + s->flat->offset) + first;
            VT_TRY(vt_comm_allreduce_avg(s->comm, p, (size_t)count));
        }
    }
    s->last_seconds = s->exposed = vt_comm_now() - t0;
    return VT_OK;
}

/* ---- overlap with the backward pass ---------------------------------------------------------- */

static float *bucket_host(vt_grad_sync *s, int64_t first) {
    if (s->stage) return s->stage + first;
    return (float *)((char *)s->flat->buf->host + s->flat->offset) + first;
}

/* The averaging thread: buckets in the order handed over, which is the same on every rank. */
static void *sync_thread(void *arg) {
    vt_grad_sync *s = arg;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->stop && s->taken == s->queued) pthread_cond_wait(&s->wake, &s->lock);
        if (s->stop) break;
        int b = s->queue[s->taken++];
        int failed = s->err != VT_OK;
        pthread_mutex_unlock(&s->lock);
        vt_status st = VT_OK;
        if (!failed) {
            int64_t first, count;
            vt_grad_sync_bucket(s, b, &first, &count);
            st = vt_comm_allreduce_avg(s->comm, bucket_host(s, first), (size_t)count);
        }
        pthread_mutex_lock(&s->lock);
        if (st != VT_OK && s->err == VT_OK) {
            s->err = st;
            snprintf(s->err_msg, sizeof s->err_msg, "%s", vt_last_error()); /* the message is thread-local */
        }
        s->finished++;
        pthread_cond_broadcast(&s->done);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int vt_grad_sync_can_overlap(const vt_grad_sync *s) {
    const char *e = getenv("VT_OVERLAP");
    if (e && strcmp(e, "0") == 0) return 0;
#ifdef VT_HAVE_MPI
    return s->comm->size > 1 && !s->device && vt_comm_mpi_threaded(s->comm);
#else
    return 0;
#endif
}

vt_status vt_grad_sync_begin(vt_grad_sync *s) {
    if (!vt_grad_sync_can_overlap(s)) return vt_error(VT_ERR_UNSUPPORTED, "gradient sync: no overlap here");
    if (!s->thread_started) {
        s->queue = calloc((size_t)s->n_buckets + 1, sizeof *s->queue);
        if (!s->queue) return vt_error(VT_ERR_OOM, "out of host memory");
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->wake, NULL);
        pthread_cond_init(&s->done, NULL);
        if (pthread_create(&s->thread, NULL, sync_thread, s) != 0) {
            pthread_mutex_destroy(&s->lock);
            pthread_cond_destroy(&s->wake);
            pthread_cond_destroy(&s->done);
            return vt_error(VT_ERR_OOM, "gradient sync: cannot start its thread");
        }
        s->thread_started = 1;
    }
    pthread_mutex_lock(&s->lock);
    s->queued = s->taken = s->finished = 0;
    s->err = VT_OK;
    s->err_msg[0] = 0;
    pthread_mutex_unlock(&s->lock);
    s->t_begin = vt_comm_now();
    s->exposed = 0;
    return VT_OK;
}

vt_status vt_grad_sync_ready(vt_grad_sync *s, int bucket) {
    if (bucket < 0 || bucket >= s->n_buckets)
        return vt_error(VT_ERR_INVALID_ARG, "bucket %d of %d", bucket, s->n_buckets);
    int64_t first, count;
    vt_grad_sync_bucket(s, bucket, &first, &count);
    /* the backend has finished the nodes that write this bucket: wait for them, then stage it */
    VT_TRY(vt_backend_sync(s->flat->buf->backend));
    if (s->stage) VT_TRY(stage_read(s->flat, first, count, s->stage + first));
    pthread_mutex_lock(&s->lock);
    s->queue[s->queued++] = bucket;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->lock);
    return VT_OK;
}

vt_status vt_grad_sync_end(vt_grad_sync *s) {
    double t0 = vt_comm_now();
    pthread_mutex_lock(&s->lock);
    while (s->finished < s->queued) pthread_cond_wait(&s->done, &s->lock);
    vt_status err = s->err;
    int n = s->queued;
    pthread_mutex_unlock(&s->lock);
    if (err != VT_OK) return vt_error(err, "%s", s->err_msg);
    if (n != s->n_buckets)
        return vt_error(VT_ERR_INVALID_ARG, "gradient sync: %d of %d buckets handed over", n, s->n_buckets);
    if (s->stage)
        for (int i = 0; i < s->n_buckets; i++) {
            int64_t first, count;
            vt_grad_sync_bucket(s, i, &first, &count);
            VT_TRY(stage_write(s->flat, first, count, s->stage + first));
        }
    double t1 = vt_comm_now();
    s->exposed += t1 - t0;
    s->last_seconds = t1 - s->t_begin;
    return VT_OK;
}

vt_status vt_grad_sync_drain(vt_grad_sync *s) {
    if (!s->thread_started) return VT_OK;
    double t0 = vt_comm_now();
    pthread_mutex_lock(&s->lock);
    while (s->finished < s->queued) pthread_cond_wait(&s->done, &s->lock);
    vt_status err = s->err;
    pthread_mutex_unlock(&s->lock);
    s->exposed += vt_comm_now() - t0; /* a wait the backward pass did not hide, as end()'s */
    if (err != VT_OK) return vt_error(err, "%s", s->err_msg);
    return VT_OK;
}

double vt_grad_sync_exposed_seconds(const vt_grad_sync *s) { return s->exposed; }
