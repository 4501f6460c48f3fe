/* CUDA backend graphs: the first graph_compute runs the nodes eagerly (which also picks convolution
 * algorithms and sizes workspaces), then records them by stream capture; later calls replay. */
#include <stdlib.h>
#include <string.h>

#include "cuda_internal.h"

typedef struct vt_cuda_graph {
    cudaGraph_t graph;
    cudaGraphExec_t exec;
    vt_cuda_step *h_step; /* pinned: the host writes each step's values here */
    vt_cuda_step *d_step; /* what captured kernels read; filled by the graph's first node */
    cudaEvent_t copied;   /* recorded by the graph right after that copy */
    int launched;
    void *ws; /* the graph's own workspace: the backend's may be reallocated later */
    size_t ws_size;
    uint64_t dispatches;
} vt_cuda_graph;

static void graph_state_free(vt_backend *be, void *state) {
    vt_cuda_ctx *cx = be->context;
    vt_cuda_graph *g = state;
    if (!g) return;
    cudaSetDevice(cx->device);
    cudaStreamSynchronize(cx->stream); /* a replay may still be running */
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    if (g->copied) cudaEventDestroy(g->copied);
    if (g->h_step) cudaFreeHost(g->h_step);
    cudaFree(g->d_step);
    cudaFree(g->ws);
    free(g);
}

static void step_from_ctx(vt_cuda_step *s, const vt_step_ctx *ctx) {
    memset(s, 0, sizeof *s);
    if (!ctx) return;
    s->step = ctx->step;
    s->seed = ctx->seed;
    s->lr = ctx->lr;
    s->batch_start = ctx->batch_start;
}

static vt_status run_eager(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx, size_t *ws_peak) {
    vt_cuda_run run;
    memset(&run, 0, sizeof run);
    run.be = be;
    run.cx = be->context;
    run.stream = run.cx->stream;
    step_from_ctx(&run.step.val, ctx);
    vt_status s = VT_OK;
    for (int i = 0; i < exec->n_nodes && s == VT_OK; i++) s = vt_cuda_run_node(&run, &exec->nodes[i]);
    be->counters.dispatches += run.dispatches;
    *ws_peak = run.ws_peak;
    return s;
}

/* Record the nodes into g; on failure the capture is ended and dropped. */
static vt_status capture(vt_backend *be, vt_graph_exec *exec, vt_cuda_graph *g) {
    vt_cuda_ctx *cx = be->context;
    vt_cuda_run run;
    memset(&run, 0, sizeof run);
    run.be = be;
    run.cx = cx;
    run.stream = cx->stream;
    run.capturing = 1;
    run.step.dev = g->d_step;
    run.ws = g->ws;
    run.ws_size = g->ws_size;
    /* Thread-local mode: this thread may not make unsafe calls (cudaMalloc, syncs) while capturing,
     * while other threads of the program are left alone. */
    VT_CU(cudaStreamBeginCapture(cx->stream, cudaStreamCaptureModeThreadLocal));
    vt_status s = VT_OK;
    cudaError_t e = cudaMemcpyAsync(g->d_step, g->h_step, sizeof *g->h_step, cudaMemcpyHostToDevice, cx->stream);
    if (e != cudaSuccess) s = vt_cuda_fail(__FILE__, __LINE__, e, "cudaMemcpyAsync(step values)");
    if (s == VT_OK) {
        /* An external event node: the host waits on it before overwriting h_step for the next replay. */
        e = cudaEventRecordWithFlags(g->copied, cx->stream, cudaEventRecordExternal);
        if (e != cudaSuccess) s = vt_cuda_fail(__FILE__, __LINE__, e, "cudaEventRecordWithFlags(external)");
    }
    for (int i = 0; i < exec->n_nodes && s == VT_OK; i++) s = vt_cuda_run_node(&run, &exec->nodes[i]);
    cudaGraph_t graph = NULL;
    e = cudaStreamEndCapture(cx->stream, &graph);
    if (s != VT_OK) {
        if (graph) cudaGraphDestroy(graph);
        cudaGetLastError();
        return s;
    }
    if (e != cudaSuccess) {
        if (graph) cudaGraphDestroy(graph);
        return vt_cuda_fail(__FILE__, __LINE__, e, "cudaStreamEndCapture");
    }
    g->graph = graph;
    g->dispatches = run.dispatches;
    VT_CU(cudaGraphInstantiate(&g->exec, g->graph, 0));
    return VT_OK;
}

vt_status vt_cuda_graph_compute(vt_backend *be, vt_graph_exec *exec, const vt_step_ctx *ctx) {
    vt_cuda_ctx *cx = be->context;
    VT_CU(cudaSetDevice(cx->device));
    vt_cuda_graph *g = exec->be_state;
    if (g) {
        /* The previous replay must have taken its copy of the step values before they change. */
        if (g->launched) {
            cudaError_t q = cudaEventQuery(g->copied);
            if (q == cudaErrorNotReady) {
                cudaGetLastError(); /* "not ready" must not be taken for the next launch's error */
                be->counters.syncs++;
                VT_CU(cudaEventSynchronize(g->copied));
            } else if (q != cudaSuccess) {
                return vt_cuda_fail(__FILE__, __LINE__, q, "cudaEventQuery(step values copied)");
            }
        }
        step_from_ctx(g->h_step, ctx);
        VT_CU(cudaGraphLaunch(g->exec, cx->stream));
        g->launched = 1;
        be->counters.submits++;
        be->counters.dispatches += g->dispatches;
        return VT_OK;
    }
    /* First call: check every node once, compute this step eagerly, then record. */
    for (int i = 0; i < exec->n_nodes; i++) {
        const vt_node *n = &exec->nodes[i];
        VT_TRY(vt_node_validate(n));
        if (!be->iface->supports_node(be, n))
            return vt_error(VT_ERR_UNSUPPORTED, "op %s (%s) is not supported on backend cuda", vt_op_name(n->op),
                            n->label);
    }
    size_t ws_peak = 0;
    VT_TRY(run_eager(be, exec, ctx, &ws_peak));
    /* Errors of the eager run surface here, before they could be blamed on the capture. */
    VT_CU(cudaStreamSynchronize(cx->stream));
    be->counters.syncs++;

    g = calloc(1, sizeof *g);
    if (!g) return vt_error(VT_ERR_OOM, "cuda: out of host memory");
    vt_status s = VT_OK;
    cudaError_t e = cudaHostAlloc((void **)&g->h_step, sizeof *g->h_step, cudaHostAllocDefault);
    if (e != cudaSuccess) s = vt_cuda_fail(__FILE__, __LINE__, e, "cudaHostAlloc(step values)");
    if (s == VT_OK) s = vt_cuda_malloc((void **)&g->d_step, sizeof *g->d_step, "graph step values");
    if (s == VT_OK && ws_peak) {
        s = vt_cuda_malloc(&g->ws, ws_peak, "graph workspace");
        g->ws_size = ws_peak;
    }
    if (s == VT_OK) {
        e = cudaEventCreateWithFlags(&g->copied, cudaEventDisableTiming);
        if (e != cudaSuccess) s = vt_cuda_fail(__FILE__, __LINE__, e, "cudaEventCreateWithFlags");
    }
    if (s == VT_OK) {
        step_from_ctx(g->h_step, ctx);
        s = capture(be, exec, g);
    }
    if (s != VT_OK) {
        graph_state_free(be, g);
        return s;
    }
    exec->be_state = g;
    exec->be_state_free = graph_state_free;
    return VT_OK;
}
