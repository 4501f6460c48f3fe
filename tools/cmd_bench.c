/* `vtrain bench`: op micro-benchmarks and training-step benchmarks on every backend side by side,
 * printed as a table and written as JSON, Markdown and HTML. */
#define _POSIX_C_SOURCE 200809L
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "cmd.h"
#include "vt/comm.h"
#include "vt/registry.h"
#include "vt/models.h"
#include "vt/report.h"
#include "vt/train.h"

/* The classification problems 1-8 ("all") and the segmentation ones 9-11 (only when named: FCN-32s at
 * full width is a 10 GFLOP step even on the 64x64 synthetic masks). */
#define VT_BENCH_PROBLEMS 11
static const char *const vt_problem_names[VT_BENCH_PROBLEMS] = {
    "linear",      "mlp",          "deep-mlp",          "cnn-stride",       "cnn-pool", "cnn-dropout",
    "resnet18-finetune", "resnet18-scratch", "fcn32s-scratch", "fcn32s-pretrained", "fcn8s"};

typedef struct bench_args {
    const char *backend, *problem, *json, *md, *html, *filter;
    const char *options; /* --backend-options (NULL: the environment's VT_<BACKEND>_OPTIONS) */
    int device, ops, warmup, repeats, quick, batch, min_sample_ms, distributed, sync_bn;
    double bucket_mb;
} bench_args;

static void bench_usage(FILE *f) {
    fprintf(f, "usage: vtrain bench [--backend B|all] [--device K] [--ops] [--problem N|NAME|all] [--batch B]\n"
               "                    [--repeats R] [--warmup W] [--quick] [--json FILE] [--md FILE] [--html FILE]\n"
               "  --backend B     cpu, opencl, vulkan, cuda or all (default all: every backend compiled in, its\n"
               "                  default device; cpu runs its fast path)\n"
               "  --device K      device index for a single backend, 0-1023 (default: its best device)\n"
               "  --backend-options S  a single backend's kernel-path options, key=value,... (docs/backend-<name>.md;\n"
               "                  default: the environment's VT_<BACKEND>_OPTIONS); an unknown key is an error\n"
               "  --ops           op micro-benchmarks (GEMMs, ResNet18 convolutions, pooling, batchnorm, add)\n"
               "  --filter TEXT   only the op benchmarks whose name contains TEXT (e.g. \"gemm\", \"1024\")\n"
               "  --problem P     training-step benchmark of problem 1..11 / its name / a comma list / all (1..8)\n"
               "                  (neither --ops nor --problem: both, all problems)\n"
               "  --batch B       batch size for --problem, 1-65536 (default: the problem's own, 64 or 128)\n"
               "  --repeats R     timed samples per case (default 10); --warmup W untimed runs first (default 2)\n"
               "  --min-sample-ms M  repeat a short op within one timed sample until it lasts M ms (default 50;\n"
               "                  large enough to average out a virtual machine's scheduling slices)\n"
               "  --quick         tiny shapes, one execution per sample (for tests; figures mean little)\n"
               "  --json/--md/--html FILE   write the results there (the console table is always printed)\n"
               "  --distributed   under mpirun: per problem, the step at the per-rank batch (--batch is the global\n"
               "                  batch), time in the bucketed gradient allreduce, bytes per step, and plain\n"
               "                  MPI_Allreduce of the same bytes for comparison (one backend: default cpu)\n"
               "  --bucket-mb M   gradient bucket size for --distributed, in MiB (default 25)\n"
               "  --sync-bn       with --distributed: the step with the synchronised batch norm (batch statistics\n"
               "                  over the ranks), and the time of its combines a step (column sync-bn ms)\n");
}

static int parse_args(int argc, char **argv, bench_args *a) {
    static const char *const known[] = {
        "--backend", "--backend-options", "--device",        "--ops",       "--filter", "--problem", "--batch",
        "--repeats", "--warmup",          "--min-sample-ms", "--quick",     "--json",   "--md",      "--html",
        "--help",    "--verbose",         "--distributed",   "--bucket-mb", "--sync-bn", NULL};
    *a = (bench_args){.backend = "all", .device = -1, .warmup = 2, .repeats = 10, .min_sample_ms = 50};
    vt_args g;
    vt_args_init(&g, "bench", argc, argv, known);
    while (vt_args_next(&g)) {
        long long n = 0;
        const char **str = NULL;
        int *num = NULL;
        long long lo = 0, hi = 1000000;
        if (vt_args_help(&g)) {
            bench_usage(stdout);
            return 0;
        } else if (vt_args_is(&g, "--ops") || vt_args_is(&g, "--quick") || vt_args_is(&g, "--distributed") ||
                   vt_args_is(&g, "--sync-bn")) {
            if (vt_args_switch(&g)) return -1;
            if (vt_args_is(&g, "--ops")) a->ops = 1;
            else if (vt_args_is(&g, "--quick")) a->quick = 1;
            else if (vt_args_is(&g, "--sync-bn")) a->sync_bn = 1;
            else a->distributed = 1;
            continue;
        } else if (vt_args_is(&g, "--bucket-mb")) {
            if (vt_args_double(&g, 0, 4096, 1, &a->bucket_mb)) return -1;
            continue;
        } else if (vt_args_is(&g, "--backend")) str = &a->backend;
        else if (vt_args_is(&g, "--backend-options")) str = &a->options;
        else if (vt_args_is(&g, "--problem")) str = &a->problem;
        else if (vt_args_is(&g, "--filter")) str = &a->filter;
        else if (vt_args_is(&g, "--json")) str = &a->json;
        else if (vt_args_is(&g, "--md")) str = &a->md;
        else if (vt_args_is(&g, "--html")) str = &a->html;
        else if (vt_args_is(&g, "--device")) num = &a->device, hi = 1023;
        else if (vt_args_is(&g, "--repeats")) num = &a->repeats, lo = 1;
        else if (vt_args_is(&g, "--warmup")) num = &a->warmup;
        else if (vt_args_is(&g, "--batch")) num = &a->batch, lo = 1, hi = 65536;
        else if (vt_args_is(&g, "--min-sample-ms")) num = &a->min_sample_ms;
        else {
            vt_args_unknown(&g);
            return -1;
        }
        if (str && !(*str = vt_args_value(&g))) return -1;
        if (num) {
            if (vt_args_int(&g, lo, hi, &n)) return -1;
            *num = (int)n;
        }
    }
    static const char *const names[] = {"all", "cpu", "opencl", "vulkan", "cuda"};
    int known_backend = 0;
    for (int i = 0; i < 5; i++) known_backend |= !strcmp(a->backend, names[i]);
    if (!known_backend) {
        const char *sug = vt_cli_suggest(a->backend, names, 5);
        if (sug) vt_cli_usage_error("bench", "unknown backend '%s' (did you mean %s?)", a->backend, sug);
        else vt_cli_usage_error("bench", "unknown backend '%s' (cpu, opencl, vulkan, cuda or all)", a->backend);
        return -1;
    }
    if (a->options && strcmp(a->backend, "all") == 0) {
        /* options are one backend's: another would refuse its keys */
        vt_cli_usage_error("bench", "--backend-options needs one --backend, not all");
        return -1;
    }
    if (a->device >= 0 && strcmp(a->backend, "all") == 0) {
        vt_cli_usage_error("bench", "--device needs one --backend, not all");
        return -1;
    }
    if (a->sync_bn && !a->distributed) {
        vt_cli_usage_error("bench", "--sync-bn times data-parallel steps: give --distributed too");
        return -1;
    }
    if (a->distributed) {
        if (a->ops) {
            vt_cli_usage_error("bench", "--distributed times training steps, not ops: drop --ops");
            return -1;
        }
        if (!a->problem) a->problem = "5";
        if (strcmp(a->backend, "all") == 0) a->backend = "cpu";
        return 1;
    }
    if (!a->ops && !a->problem) a->ops = 1, a->problem = "all";
    return 1;
}

/* Which problems to run: a bit mask over the eleven ("all": the eight classification ones; "5", "cnn-pool", "1,2,9"),
 * or 0 with a message when one is unknown. */
static unsigned problem_mask(const char *p) {
    if (!p) return 0;
    if (strcmp(p, "all") == 0) return 0xffu;
    unsigned mask = 0;
    char item[64];
    for (const char *s = p; *s;) {
        size_t n = strcspn(s, ",");
        snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), s);
        int found = 0;
        for (int i = 0; i < VT_BENCH_PROBLEMS && !found; i++) {
            char num[4];
            snprintf(num, sizeof num, "%d", i + 1);
            if (strcmp(item, num) == 0 || strcmp(item, vt_problem_names[i]) == 0) mask |= 1u << i, found = 1;
        }
        if (!found) {
            const char *sug = vt_cli_suggest(item, vt_problem_names, VT_BENCH_PROBLEMS);
            if (sug) vt_cli_usage_error("bench", "unknown problem '%s' (did you mean %s?)", item, sug);
            else
                vt_cli_usage_error("bench",
                                   "unknown problem '%s' (1..11, a name such as cnn-pool, a comma list, or all)", item);
            return 0;
        }
        s += n;
        if (*s == ',') s++;
    }
    return mask;
}

/* Figures rounded to 4 significant digits: enough for timings, and the JSON stays readable. */
static double r4(double v) {
    if (!isfinite(v) || v == 0) return v;
    double m = pow(10.0, 3 - floor(log10(fabs(v))));
    return round(v * m) / m;
}

static void add_num(cJSON *o, const char *k, double v) {
    if (isfinite(v)) cJSON_AddNumberToObject(o, k, r4(v));
    else cJSON_AddNullToObject(o, k);
}

static cJSON *machine_json(void) {
    cJSON *m = cJSON_CreateObject();
    char host[256] = "";
    if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "?");
    cJSON_AddStringToObject(m, "host", host);
    char cpu[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) != 0) continue;
            const char *c = strchr(line, ':');
            if (!c) break;
            c++;
            while (*c == ' ') c++;
            snprintf(cpu, sizeof cpu, "%s", c);
            cpu[strcspn(cpu, "\n")] = 0;
            break;
        }
        fclose(f);
    }
    cJSON_AddStringToObject(m, "cpu", cpu);
    cJSON_AddNumberToObject(m, "cores", (double)sysconf(_SC_NPROCESSORS_ONLN));
    double mem = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
    cJSON_AddNumberToObject(m, "memory_gib", round(mem / (1024.0 * 1024 * 1024) * 10) / 10);
    struct utsname u;
    char os[400] = "unknown";
    if (uname(&u) == 0) snprintf(os, sizeof os, "%s %s %s", u.sysname, u.release, u.machine);
    cJSON_AddStringToObject(m, "os", os);
    /* Figures taken on a busy machine read differently: keep its load with them. */
    double load = NAN;
    FILE *la = fopen("/proc/loadavg", "r");
    if (la) {
        if (fscanf(la, "%lf", &load) != 1) load = NAN;
        fclose(la);
    }
    add_num(m, "load_avg_1m", load);
    return m;
}

static const char *status_name(vt_bench_status s) {
    return s == VT_BENCH_OK ? "ok" : s == VT_BENCH_UNSUPPORTED ? "unsupported" : "error";
}

static void print_op_header(void) {
    printf("  %-34s %-34s %9s %8s %10s %10s %10s %7s\n", "op", "shape", "GFLOP/s", "GB/s", "ms min", "ms median",
           "ms max", "peak");
}

static void print_op(const vt_bench_case *c, const vt_bench_result *r) {
    if (r->status != VT_BENCH_OK) {
        printf("  %-34s %-34s %s%s%.120s\n", c->name, c->shape, status_name(r->status), r->error[0] ? ": " : "",
               r->error);
        return;
    }
    char peak[16] = "-";
    if (isfinite(r->peak_fraction)) snprintf(peak, sizeof peak, "%.1f%%", r->peak_fraction * 100);
    printf("  %-34s %-34s %9.2f %8.2f %10.4f %10.4f %10.4f %7s\n", c->name, c->shape, r->gflops, r->gbps, r->ms_min,
           r->ms_median, r->ms_max, peak);
}

static int run_ops(vt_backend *be, const bench_args *a, cJSON *ops) {
    vt_bench_case *cases = calloc(128, sizeof *cases);
    if (!cases) {
        fprintf(stderr, "vtrain bench: out of memory\n");
        return 1;
    }
    int n = vt_bench_make_cases(a->quick, cases, 128), errors = 0;
    vt_bench_opts o = {.warmup = a->warmup,
                       .repeats = a->repeats,
                       .quick = a->quick,
                       .min_sample_ms = a->min_sample_ms,
                       .max_case_ms = 20000.0};
    print_op_header();
    for (int i = 0; i < n; i++) {
        if (a->filter && !strstr(cases[i].name, a->filter)) continue;
        vt_bench_result r;
        vt_bench_run_case(be, &cases[i], &o, &r);
        errors += r.status == VT_BENCH_ERROR;
        print_op(&cases[i], &r);
        fflush(stdout);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", cases[i].name);
        cJSON_AddStringToObject(e, "op", vt_op_name(cases[i].op));
        cJSON_AddStringToObject(e, "shape", cases[i].shape);
        cJSON_AddStringToObject(e, "kind", cases[i].memory ? "memory" : "compute");
        cJSON_AddStringToObject(e, "status", status_name(r.status));
        int ok = r.status == VT_BENCH_OK;
        add_num(e, "gflops", ok ? r.gflops : NAN);
        add_num(e, "gbps", ok ? r.gbps : NAN);
        add_num(e, "ms_min", ok ? r.ms_min : NAN);
        add_num(e, "ms_median", ok ? r.ms_median : NAN);
        add_num(e, "ms_max", ok ? r.ms_max : NAN);
        add_num(e, "peak_fraction", ok ? r.peak_fraction : NAN);
        add_num(e, "flop", r.flops > 0 ? r.flops : NAN);
        add_num(e, "bytes", r.bytes > 0 ? r.bytes : NAN);
        cJSON_AddNumberToObject(e, "repeats", r.repeats);
        cJSON_AddNumberToObject(e, "iters_per_sample", r.iters);
        if (r.error[0]) cJSON_AddStringToObject(e, "error", r.error);
        cJSON_AddItemToArray(ops, e);
    }
    free(cases);
    return errors;
}

/* The backend's SGEMM rate on the square case (1024^3; 128^3 with --quick), the rate the training
 * steps' GEMM-bound ideal is taken at; NAN when it cannot be measured. */
static double sgemm_rate(vt_backend *be, const bench_args *a) {
    vt_bench_case *cases = calloc(128, sizeof *cases);
    if (!cases) return NAN;
    int n = vt_bench_make_cases(a->quick, cases, 128);
    vt_bench_opts o = {.warmup = a->warmup,
                       .repeats = a->repeats < 5 ? a->repeats : 5,
                       .quick = a->quick,
                       .min_sample_ms = a->min_sample_ms,
                       .max_case_ms = 20000.0};
    vt_bench_result r;
    double rate = NAN;
    if (n > 0) {
        vt_bench_run_case(be, &cases[0], &o, &r); /* the first case is the square GEMM */
        if (r.status == VT_BENCH_OK && r.gflops > 0) rate = r.gflops;
    }
    free(cases);
    return rate;
}

static int run_problems(vt_backend *be, const bench_args *a, unsigned mask, cJSON *probs) {
    int errors = 0, header = 0;
    double rate = sgemm_rate(be, a);
    if (isfinite(rate))
        printf("  GEMM-bound ideal of a step: its GEMM/conv FLOPs at this backend's SGEMM %s rate, %.1f GFLOP/s\n",
               a->quick ? "128^3" : "1024^3", rate);
    for (int i = 0; i < VT_BENCH_PROBLEMS; i++) {
        if (!(mask & (1u << i))) continue;
        int batch = a->batch > 0 ? a->batch : a->quick ? 4 : i >= 8 ? 8 : (i >= 6 ? 128 : 64);
        char num[4];
        snprintf(num, sizeof num, "%d", i + 1);
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "problem", num);
        cJSON_AddStringToObject(e, "name", vt_problem_names[i]);
        cJSON_AddNumberToObject(e, "batch", batch);
        vt_step_profile p;
        memset(&p, 0, sizeof p);
        vt_status s = vt_bench_problem(be, num, batch, a->warmup, a->repeats, &p);
        const char *why = vt_last_error();
        if (!header) {
            printf("  %-20s %6s %10s %10s %10s %10s %8s %8s %8s %8s %6s %8s %8s\n", "problem", "batch", "step min",
                   "median", "max ms", "images/s", "data", "fwd", "bwd", "opt", "disp", "ideal", "x ideal");
            header = 1;
        }
        if (s != VT_OK) {
            const char *st = s == VT_ERR_UNSUPPORTED ? "unsupported" : "error";
            errors += s != VT_ERR_UNSUPPORTED;
            printf("  %-20s %6d %s: %.160s\n", vt_problem_names[i], batch, st, why);
            cJSON_AddStringToObject(e, "status", st);
            cJSON_AddStringToObject(e, "error", why);
        } else {
            double ideal = isfinite(rate) ? p.gemm_gflop / rate * 1e3 : NAN;
            double ratio = ideal > 0 ? p.step_ms_median / ideal : NAN;
            printf("  %-20s %6d %10.3f %10.3f %10.3f %10.1f %8.3f %8.3f %8.3f %8.3f %6llu %8.3f %8.2f\n",
                   vt_problem_names[i], batch, p.step_ms_min, p.step_ms_median, p.step_ms_max, p.images_per_s,
                   p.data_ms, p.fwd_ms, p.bwd_ms, p.opt_ms, (unsigned long long)p.dispatches, ideal, ratio);
            cJSON_AddStringToObject(e, "status", "ok");
            add_num(e, "step_ms_min", p.step_ms_min);
            add_num(e, "step_ms_median", p.step_ms_median);
            add_num(e, "step_ms_max", p.step_ms_max);
            add_num(e, "images_per_s", p.images_per_s);
            add_num(e, "data_ms", p.data_ms);
            add_num(e, "fwd_ms", p.fwd_ms);
            add_num(e, "bwd_ms", p.bwd_ms);
            add_num(e, "opt_ms", p.opt_ms);
            add_num(e, "gemm_gflop", p.gemm_gflop);
            add_num(e, "sgemm_gflops", rate);
            add_num(e, "ideal_ms", ideal);
            add_num(e, "x_ideal", ratio);
            cJSON_AddNumberToObject(e, "dispatches", (double)p.dispatches);
            cJSON_AddNumberToObject(e, "uploads", (double)p.uploads);
            cJSON_AddNumberToObject(e, "downloads", (double)p.downloads);
            cJSON_AddNumberToObject(e, "syncs", (double)p.syncs);
        }
        fflush(stdout);
        cJSON_AddItemToArray(probs, e);
    }
    return errors;
}

static cJSON *device_json(const char *backend, int index, const vt_device_info *info) {
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "backend", backend);
    cJSON_AddNumberToObject(b, "device_index", index);
    cJSON_AddStringToObject(b, "device", info ? info->name : "");
    if (info) {
        cJSON_AddStringToObject(b, "vendor", info->vendor);
        cJSON_AddStringToObject(b, "driver", info->driver);
        cJSON_AddStringToObject(b, "config", info->config);
        cJSON_AddStringToObject(b, "type", info->type);
        cJSON_AddNumberToObject(b, "compute_units", info->compute_units);
        cJSON_AddNumberToObject(b, "memory_bytes", (double)info->memory_bytes);
        cJSON_AddNumberToObject(b, "peak_gflops", info->peak_gflops);
        cJSON_AddBoolToObject(b, "is_cpu_hosted", info->is_cpu_hosted != 0);
    }
    return b;
}

static int write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        fprintf(stderr, "vtrain bench: cannot open %s for writing\n", path);
        return 0;
    }
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok &= fclose(f) == 0;
    if (!ok) fprintf(stderr, "vtrain bench: cannot write %s\n", path);
    return ok;
}

/* ---- --distributed: the cost of data-parallel steps ---------------------------------------- */

static int cmp_ms(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return a < b ? -1 : a > b;
}

/* Problem k's gradient block on be, as the trainer lays it out (model built, no graph run). */
static vt_status grad_block(vt_backend *be, const char *num, vt_params **m, vt_graph **g, vt_tensor **flat) {
    const vt_problem *p = vt_problem_find(num);
    if (!p) return vt_error(VT_ERR_NOT_FOUND, "problem %s", num);
    vt_model_cfg mc;
    vt_model_cfg_default(p, 100, 3, 32, 32, &mc);
    if (p->arch == VT_ARCH_RESNET18) mc.stem_cifar = 1; /* as vt_bench_problem times it */
    *m = vt_params_new();
    *g = *m ? vt_graph_new(*m, 1) : NULL;
    if (!*g) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_tensor *x = vt_graph_tensor(*g, "input", VT_F32, 4, (int64_t[]){1, 3, 32, 32});
    if (x) vt_model_build(*g, &mc, x);
    VT_TRY(vt_graph_status(*g));
    VT_TRY(vt_params_alloc(*m, be, 1));
    *flat = vt_params_flat_grads(*m, -1);
    if (!*flat) return vt_error(VT_ERR_INVALID_ARG, "problem %s has no gradients", num);
    return VT_OK;
}

/* Median milliseconds of `repeats` bucketed averages (what a training step pays) and of plain blocking
 * MPI_Allreduce calls on host memory of the same size (the library's best), ranks lined up by a
 * barrier before each sample. */
static vt_status time_allreduce(vt_comm *c, vt_grad_sync *gs, float *host, size_t n, int warmup, int repeats,
                                double *sync_ms, double *plain_ms) {
    double *t = calloc((size_t)repeats, sizeof *t);
    if (!t) return vt_error(VT_ERR_OOM, "out of host memory");
    vt_status s = VT_OK;
    for (int pass = 0; pass < 2 && s == VT_OK; pass++) {
        for (int i = -warmup; i < repeats && s == VT_OK; i++) {
            s = vt_comm_barrier(c);
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            if (s == VT_OK) s = pass == 0 ? vt_grad_sync_run(gs) : vt_comm_allreduce_plain(c, host, n);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (i >= 0) t[i] = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;
        }
        qsort(t, (size_t)repeats, sizeof *t, cmp_ms);
        *(pass == 0 ? sync_ms : plain_ms) = t[repeats / 2];
    }
    free(t);
    return s;
}

static int run_distributed(const bench_args *a, unsigned mask) {
    vt_comm *c = NULL;
    if (vt_comm_init(0, &c) != VT_OK) {
        fprintf(stderr, "vtrain bench: %s\n", vt_last_error());
        return 1;
    }
    int rank = vt_comm_rank(c), n = vt_comm_size(c);
    /* ranks on one machine share its cores */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    vt_backend_opts o = {.options = a->options};
    o.threads = (int)(cores / vt_comm_local_size(c) > 0 ? cores / vt_comm_local_size(c) : 1);
    /* a device per rank on machines with several */
    int device = a->device;
    const vt_backend_reg *reg = vt_backend_reg_find(a->backend);
    if (device < 0 && n > 1 && reg && strcmp(a->backend, "cpu") != 0 && reg->device_count() > 0)
        device = vt_comm_local_rank(c) % reg->device_count();
    vt_backend *be = NULL;
    if (vt_backend_init_by_name(a->backend, device, &o, &be) != VT_OK) {
        fprintf(stderr, "vtrain bench: rank %d: %s\n", rank, vt_last_error());
        vt_comm_abort(c, 1, "a rank could not start its backend");
        vt_comm_free(c);
        return 1;
    }
    size_t bucket = a->bucket_mb > 0 ? (size_t)(a->bucket_mb * 1048576.0) : 0;
    cJSON *doc = cJSON_CreateObject(), *rows = NULL;
    if (rank == 0) {
        if (n == 1)
            printf("note: one rank (start it as mpirun -np N vtrain bench --distributed): no communication to time\n");
        printf("== distributed: %d rank%s (%s), %d on this machine, backend %s: %s, %ld thread%s a rank\n", n,
               n > 1 ? "s" : "", vt_comm_kind(c), vt_comm_local_size(c), be->info.backend, be->info.name,
               (long)o.threads, o.threads > 1 ? "s" : "");
        printf("  %-12s %6s %5s %9s %9s %7s %10s %10s %7s %9s %8s%s\n", "problem", "batch", "/rank", "step ms", "grad MB",
               "buckets", "allred ms", "plain ms", "x plain", "bus GB/s", "exposed", a->sync_bn ? "  sync-bn ms" : "");
        cJSON_AddStringToObject(doc, "tool", "vtrain bench --distributed");
        cJSON_AddItemToObject(doc, "machine", machine_json());
        cJSON_AddNumberToObject(doc, "ranks", n);
        cJSON_AddNumberToObject(doc, "ranks_per_machine", vt_comm_local_size(c));
        cJSON_AddStringToObject(doc, "comm", vt_comm_kind(c));
        cJSON_AddStringToObject(doc, "backend", be->info.backend);
        cJSON_AddStringToObject(doc, "device", be->info.name);
        cJSON_AddNumberToObject(doc, "threads_per_rank", o.threads);
        cJSON_AddBoolToObject(doc, "sync_bn", a->sync_bn);
        rows = cJSON_AddArrayToObject(doc, "problems");
    }
    int errors = 0;
    if (mask >> 8) {
        vt_cli_usage_error("bench", "--distributed times the classification problems 1..8 only (segmentation trains "
                                    "in one process)");
        return 2;
    }
    for (int i = 0; i < 8; i++) {
        if (!(mask & (1u << i))) continue;
        char num[4];
        snprintf(num, sizeof num, "%d", i + 1);
        int global = a->batch > 0 ? a->batch : a->quick ? 4 * n : (i >= 6 ? 128 : 64);
        if (global % n) {
            if (rank == 0)
                printf("  %-12s global batch %d does not divide over %d ranks: skipped\n", vt_problem_names[i], global,
                       n);
            continue;
        }
        int per = global / n;
        vt_step_profile p;
        vt_params *m = NULL;
        vt_graph *g = NULL;
        vt_tensor *flat = NULL;
        vt_grad_sync *gs = NULL;
        float *host = NULL;
        double sync_ms = 0, plain_ms = 0, bn_ms = 0;
        /* with --sync-bn the step includes the BN combines (collectives: every rank runs it) */
        vt_status s = a->sync_bn ? vt_bench_problem_sync_bn(be, c, num, per, a->warmup, a->repeats, &p, &bn_ms)
                                 : vt_bench_problem(be, num, per, a->warmup, a->repeats, &p);
        if (s == VT_OK) s = grad_block(be, num, &m, &g, &flat);
        if (s == VT_OK) s = vt_grad_sync_new(c, flat, bucket, &gs);
        size_t elems = flat ? (size_t)vt_tensor_nelem(flat) : 0;
        if (s == VT_OK && !(host = calloc(elems + 1, sizeof(float)))) s = vt_error(VT_ERR_OOM, "out of host memory");
        if (s == VT_OK) s = time_allreduce(c, gs, host, elems, a->warmup, a->repeats, &sync_ms, &plain_ms);
        if (s != VT_OK) {
            /* the other ranks wait in a collective: end the job rather than leave them to the timeout */
            char msg[400];
            snprintf(msg, sizeof msg, "%s: %s", vt_problem_names[i], vt_last_error());
            vt_comm_abort(c, 1, msg);
            printf("  %-12s error: %.160s\n", vt_problem_names[i], vt_last_error());
            errors++;
        } else if (rank == 0) {
            double bytes = (double)elems * 4, mb = bytes / 1048576.0;
            double bus = n > 1 && sync_ms > 0 ? 2.0 * (n - 1) / n * bytes / (sync_ms * 1e6) : NAN;
            double ratio = sync_ms > 0 ? plain_ms / sync_ms : NAN;
            /* no overlap with the backward pass yet: all of the allreduce is exposed */
            double exposed = n > 1 ? sync_ms / (p.step_ms_median + sync_ms) : 0;
            printf("  %-12s %6d %5d %9.3f %9.3f %7d %10.3f %10.3f %7.2f %9.3f %7.1f%%", vt_problem_names[i], global,
                   per, p.step_ms_median, mb, vt_grad_sync_n_buckets(gs), sync_ms, plain_ms, ratio, bus, exposed * 100);
            if (a->sync_bn) printf(" %12.3f", bn_ms);
            printf("\n");
            cJSON *e = cJSON_CreateObject();
            cJSON_AddStringToObject(e, "problem", num);
            cJSON_AddStringToObject(e, "name", vt_problem_names[i]);
            cJSON_AddNumberToObject(e, "global_batch", global);
            cJSON_AddNumberToObject(e, "batch_per_rank", per);
            add_num(e, "step_ms_median", p.step_ms_median);
            add_num(e, "bwd_ms", p.bwd_ms);
            cJSON_AddNumberToObject(e, "grad_bytes_per_step", bytes);
            cJSON_AddNumberToObject(e, "wire_bytes_per_rank_per_step", n > 1 ? 2.0 * (n - 1) / n * bytes : 0);
            cJSON_AddNumberToObject(e, "buckets", vt_grad_sync_n_buckets(gs));
            add_num(e, "allreduce_ms", sync_ms);
            add_num(e, "plain_mpi_allreduce_ms", plain_ms);
            add_num(e, "rate_vs_plain", ratio);
            add_num(e, "bus_gbps", bus);
            add_num(e, "exposed_share", exposed);
            if (a->sync_bn) add_num(e, "sync_bn_ms", bn_ms);
            cJSON_AddItemToArray(rows, e);
        }
        fflush(stdout);
        free(host);
        vt_grad_sync_free(gs);
        vt_graph_free(g);
        vt_params_free(m);
    }
    int rc = errors ? 1 : 0;
    if (rank == 0 && a->json) {
        char *text = cJSON_Print(doc);
        if (!text || !write_text(a->json, text)) rc = 1;
        free(text);
    }
    cJSON_Delete(doc);
    vt_backend_free(be);
    vt_comm_free(c);
    return rc;
}

int vt_cmd_bench(int argc, char **argv) {
    bench_args a;
    int pr = parse_args(argc, argv, &a);
    if (pr <= 0) return pr == 0 ? 0 : 2;
    unsigned mask = 0;
    if (a.problem && !(mask = problem_mask(a.problem))) return 2;
    if (a.distributed) return run_distributed(&a, mask);
    int single = strcmp(a.backend, "all") != 0;

    cJSON *doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "tool", "vtrain bench");
    cJSON_AddStringToObject(doc, "version", "0.1.0");
    cJSON_AddItemToObject(doc, "machine", machine_json());
    char date[40];
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    else snprintf(date, sizeof date, "unknown");
    cJSON_AddStringToObject(doc, "date", date);
    char cmdline[1024] = "vtrain";
    for (int i = 0; i < argc; i++) {
        size_t l = strlen(cmdline);
        snprintf(cmdline + l, sizeof cmdline - l, " %s", argv[i]);
    }
    cJSON_AddStringToObject(doc, "command", cmdline);
    cJSON *set = cJSON_AddObjectToObject(doc, "settings");
    cJSON_AddNumberToObject(set, "warmup", a.warmup);
    cJSON_AddNumberToObject(set, "repeats", a.repeats);
    cJSON_AddBoolToObject(set, "quick", a.quick);
    cJSON_AddNumberToObject(set, "min_sample_ms", a.min_sample_ms);
    cJSON *backends = cJSON_AddArrayToObject(doc, "backends");

    int errors = 0, ran = 0;
    int nreg = single ? 1 : vt_backend_reg_count();
    for (int i = 0; i < nreg; i++) {
        const char *name = single ? a.backend : vt_backend_reg_get(i)->name;
        vt_backend *be = NULL;
        vt_backend_opts bo = {.options = a.options};
        vt_status s = vt_backend_init_by_name(name, a.device, &bo, &be);
        if (s != VT_OK) {
            printf("== %s: not available: %s\n\n", name, vt_last_error());
            cJSON *b = device_json(name, a.device, NULL);
            cJSON_AddStringToObject(b, "status", "error");
            cJSON_AddStringToObject(b, "error", vt_last_error());
            cJSON_AddItemToArray(backends, b);
            errors += single; /* with `all`, an absent device is reported, not a failure */
            continue;
        }
        int index = a.device;
        if (index < 0) {
            /* Which device "best" picked: the one whose name matches in the registry's list. */
            const vt_backend_reg *r = vt_backend_reg_find(be->info.backend);
            for (int d = 0; r && d < r->device_count(); d++) {
                vt_device_info di;
                if (r->device_info(d, &di) == VT_OK && strcmp(di.name, be->info.name) == 0) {
                    index = d;
                    break;
                }
            }
        }
        cJSON *b = device_json(be->info.backend, index, &be->info);
        cJSON_AddStringToObject(b, "status", "ok");
        cJSON_AddItemToArray(backends, b);
        if (be->info.peak_gflops > 0)
            printf("== %s: %s (peak %.0f GFLOP/s)\n", be->info.backend, be->info.name, be->info.peak_gflops);
        else printf("== %s: %s\n", be->info.backend, be->info.name);
        if (be->info.config[0]) printf("   %s\n", be->info.config);
        if (a.ops) errors += run_ops(be, &a, cJSON_AddArrayToObject(b, "ops"));
        else cJSON_AddArrayToObject(b, "ops");
        if (mask) errors += run_problems(be, &a, mask, cJSON_AddArrayToObject(b, "problems"));
        else cJSON_AddArrayToObject(b, "problems");
        printf("\n");
        ran++;
        vt_backend_free(be);
    }

    char *text = cJSON_Print(doc);
    int rc = errors ? 1 : 0;
    if (!text) {
        fprintf(stderr, "vtrain bench: out of memory printing JSON\n");
        rc = 1;
    } else {
        if (a.json && !write_text(a.json, text)) rc = 1;
        if (a.md || a.html) {
            vt_status s = vt_report_bench_render(text, a.md, a.html);
            if (s != VT_OK) {
                fprintf(stderr, "vtrain bench: %s\n", vt_last_error());
                rc = 1;
            }
        }
    }
    if (ran == 0) {
        fprintf(stderr, "vtrain bench: no backend could be started\n");
        rc = 1;
    } else if (errors) {
        fprintf(stderr, "vtrain bench: %d case(s) failed (see 'error' above)\n", errors);
    }
    free(text);
    cJSON_Delete(doc);
    return rc;
}
