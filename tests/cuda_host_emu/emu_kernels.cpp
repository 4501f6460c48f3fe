// Runs the kernels of cuda_kernels.cu on the host (emu_shim.h) against the CPU reference backend,
// and the row-major-to-cuBLAS mapping of cuda_conv.c against a column-major GEMM written from the
// cuBLAS documentation. For machines without a GPU; run.sh builds and runs it.
#include "kernels_host.cpp"
#include <cstdio>
#include <string>
extern "C" {
#include "vt/backend.h"
#include "vt/registry.h"
#include "vt/rng.h"
}
#define SERIAL(call) launch(1, 1, [&] { call; })

static vt_backend *cpu;
static vt_rng rng;
static int fails = 0, checks = 0;

struct H {
    vt_tensor *t = nullptr;
    std::vector<uint8_t> b;
    float *f() { return (float *)b.data(); }
    int32_t *i() { return (int32_t *)b.data(); }
};
/* gen: 0 uniform [-1,1] (x3 when wide), 1 in [0.5,1.5], 2 zeros, 3 permutation; ints below k. */
static H mk(vt_dtype dt, std::vector<int64_t> s, int gen = 0, int k = 10, float scale = 1.0f) {
    H h;
    vt_tensor_new(cpu, "t", dt, (int)s.size(), s.data(), &h.t);
    int64_t n = vt_tensor_nelem(h.t);
    h.b.resize(vt_tensor_nbytes(h.t));
    for (int64_t i = 0; i < n; i++) {
        if (dt == VT_F32)
            h.f()[i] = gen == 1   ? vt_rng_uniform_range(&rng, 0.5f, 1.5f)
                       : gen == 2 ? 0.f
                                  : scale * vt_rng_uniform_range(&rng, -1.f, 1.f);
        else if (dt == VT_I32)
            h.i()[i] = (int32_t)vt_rng_below(&rng, (uint32_t)k);
        else if (dt == VT_U8)
            h.b[i] = (uint8_t)vt_rng_below(&rng, 256);
    }
    if (dt == VT_I32 && gen == 3)
        vt_rng_permutation(&rng, h.i(), n);
    vt_tensor_upload(h.t, h.b.data(), h.b.size());
    return h;
}
static std::vector<float> ref(H &h) {
    std::vector<float> v(vt_tensor_nelem(h.t));
    vt_tensor_download(h.t, v.data(), v.size() * 4);
    return v;
}
static std::vector<float> ref_out(H &h) {
    return ref(h);
}
static void cmp(const std::string &w, const float *g, const float *r, int64_t n, double atol = 1e-5,
                double rtol = 1e-4) {
    checks++;
    for (int64_t i = 0; i < n; i++) {
        double a = g[i], b = r[i];
        if ((std::isnan(a) != std::isnan(b)) || (!std::isnan(a) && fabs(a - b) > atol + rtol * fabs(b))) {
            printf("FAIL %s at %lld: got %.9g want %.9g\n", w.c_str(), (long long)i, a, b);
            fails++;
            return;
        }
    }
}
static void run(vt_node &n, vt_step_ctx *ctx = nullptr) {
    vt_step_ctx z = {};
    if (vt_backend_compute(cpu, &n, ctx ? ctx : &z) != VT_OK) {
        printf("cpu reference failed: %s\n", vt_last_error());
        exit(2);
    }
}
static vt_cuda_step_arg sarg(const vt_step_ctx &c) {
    vt_cuda_step_arg a = {};
    a.val.step = c.step;
    a.val.seed = c.seed;
    a.val.lr = c.lr;
    a.val.batch_start = c.batch_start;
    return a;
}

/* cuBLAS sgemm, column-major, as documented. */
static void sgemm_cm(bool ta, bool tb, int m, int n, int k, float alpha, const float *A, int lda, const float *B,
                     int ldb, float beta, float *C, int ldc) {
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int p = 0; p < k; p++) {
                float a = ta ? A[p + i * lda] : A[i + p * lda];
                float b = tb ? B[j + p * ldb] : B[p + j * ldb];
                s += (double)a * b;
            }
            C[i + j * ldc] = (float)(alpha * s + (beta != 0 ? beta * C[i + j * ldc] : 0.0));
        }
}
/* gemm_rm of cuda_conv.c, with the fake cuBLAS. */
static void gemm_rm(int ta, int tb, int M, int N, int K, float alpha, const float *A, const float *B, float beta,
                    float *C, int batch, long long sA, long long sB, long long sC) {
    int lda = ta ? M : K, ldb = tb ? K : N;
    for (int b = 0; b < batch; b++)
        sgemm_cm(tb, ta, N, M, K, alpha, B + b * sB, ldb, A + b * sA, lda, beta, C + b * sC, N);
}

/* The synchronised batch norm's four kernels against the reference, each reading the reference's
 * stats and sums (what the host would have combined across ranks), with count = 2 M as if this were
 * one of two ranks; the optional outputs left out once; and, with count = M, BN_STATS then BN_APPLY
 * against the whole BATCHNORM kernel's y (wy): one rank is BATCHNORM up to rounding. */
static void sync_bn(const std::string &nm0, const std::vector<int64_t> &xs, int64_t N, int64_t C, int64_t HW, H &x,
                    H &g, H &b, H &dy, const std::vector<float> &wy) {
    int64_t M = N * HW, count = 2 * M;
    unsigned grid = (unsigned)C;
    std::string nm = nm0 + " sync";
    vt_batchnorm_params bp = {1, 0.1f, 1e-5f, count};
    H st = mk(VT_F32, {2, C}, 0, 10, 3.f);
    vt_node a = {};
    a.op = VT_OP_BN_STATS;
    a.p.bn = bp;
    a.src[0] = x.t;
    a.dst[0] = st.t;
    run(a);
    std::vector<float> gst(2 * C), rst = ref(st);
    launch(grid, VT_RED_BS, [&] { vt_k_bn_stats(x.f(), gst.data(), N, C, HW); });
    cmp(nm + " bn_stats", gst.data(), rst.data(), 2 * C);

    H y = mk(VT_F32, xs, 0, 10, 3.f), rm = mk(VT_F32, {C}), rv = mk(VT_F32, {C}, 1);
    vt_node ap = {};
    ap.op = VT_OP_BN_APPLY;
    ap.p.bn = bp;
    ap.src[0] = x.t;
    ap.src[1] = g.t;
    ap.src[2] = b.t;
    ap.src[3] = st.t;
    ap.dst[0] = y.t;
    ap.dst[1] = rm.t;
    ap.dst[2] = rv.t;
    run(ap);
    std::vector<float> gy(wy.size()), ry = ref(y);
    launch(grid, VT_RED_BS, [&] {
        vt_k_bn_apply(x.f(), g.f(), b.f(), rst.data(), gy.data(), rm.f(), rv.f(), N, C, HW, count, 0.1f, 1e-5f);
    });
    cmp(nm + " bn_apply y", gy.data(), ry.data(), gy.size());
    cmp(nm + " bn_apply rm", rm.f(), ref(rm).data(), C);
    cmp(nm + " bn_apply rv", rv.f(), ref(rv).data(), C);
    std::fill(gy.begin(), gy.end(), 0.f);
    launch(grid, VT_RED_BS, [&] {
        vt_k_bn_apply(x.f(), g.f(), b.f(), rst.data(), gy.data(), nullptr, nullptr, N, C, HW, count, 0.1f, 1e-5f);
    });
    cmp(nm + " bn_apply y, no running stats", gy.data(), ry.data(), gy.size());
    launch(grid, VT_RED_BS, [&] {
        vt_k_bn_apply(x.f(), g.f(), b.f(), gst.data(), gy.data(), nullptr, nullptr, N, C, HW, M, 0.1f, 1e-5f);
    });
    cmp(nm + " one rank = batchnorm", gy.data(), wy.data(), gy.size(), 1e-6, 1e-6);

    H dg = mk(VT_F32, {C}), db = mk(VT_F32, {C}), sums = mk(VT_F32, {2, C}, 0, 10, 3.f);
    vt_node bs = {};
    bs.op = VT_OP_BN_BWD_STATS;
    bs.p.bn = bp;
    bs.src[0] = dy.t;
    bs.src[1] = x.t;
    bs.src[2] = st.t;
    bs.dst[0] = dg.t;
    bs.dst[1] = db.t;
    bs.dst[2] = sums.t;
    run(bs);
    std::vector<float> gdg(C), gdb(C), gsums(2 * C), rsums = ref(sums);
    launch(grid, VT_RED_BS, [&] {
        vt_k_bn_bwd_stats(dy.f(), x.f(), rst.data(), gdg.data(), gdb.data(), gsums.data(), N, C, HW, 1e-5f);
    });
    cmp(nm + " bn_bwd_stats sums", gsums.data(), rsums.data(), 2 * C);
    cmp(nm + " bn_bwd_stats dgamma", gdg.data(), ref(dg).data(), C);
    cmp(nm + " bn_bwd_stats dbeta", gdb.data(), ref(db).data(), C);
    std::fill(gsums.begin(), gsums.end(), 0.f);
    launch(grid, VT_RED_BS,
           [&] { vt_k_bn_bwd_stats(dy.f(), x.f(), rst.data(), nullptr, nullptr, gsums.data(), N, C, HW, 1e-5f); });
    cmp(nm + " bn_bwd_stats sums, no dgamma", gsums.data(), rsums.data(), 2 * C);

    H dx = mk(VT_F32, xs, 0, 10, 3.f);
    vt_node ba = {};
    ba.op = VT_OP_BN_BWD_APPLY;
    ba.p.bn = bp;
    ba.src[0] = dy.t;
    ba.src[1] = x.t;
    ba.src[2] = g.t;
    ba.src[3] = st.t;
    ba.src[4] = sums.t;
    ba.dst[0] = dx.t;
    run(ba);
    std::vector<float> gdx(gy.size());
    launch(grid, VT_RED_BS, [&] {
        vt_k_bn_bwd_apply(dy.f(), x.f(), g.f(), rst.data(), rsums.data(), gdx.data(), N, C, HW, count, 1e-5f);
    });
    cmp(nm + " bn_bwd_apply dx", gdx.data(), ref(dx).data(), gdx.size());
    for (H *h : {&st, &y, &rm, &rv, &dg, &db, &sums, &dx})
        vt_tensor_free(h->t);
}

static std::vector<int32_t> refi(H &h) {
    std::vector<int32_t> v(vt_tensor_nelem(h.t));
    vt_tensor_download(h.t, v.data(), v.size() * 4);
    return v;
}
static void cmpi(const std::string &w, const int32_t *g, const int32_t *r, int64_t n) {
    checks++;
    for (int64_t i = 0; i < n; i++)
        if (g[i] != r[i]) {
            printf("FAIL %s at %lld: got %d want %d\n", w.c_str(), (long long)i, g[i], r[i]);
            fails++;
            return;
        }
}
/* Labels of n rows: in [0,K), or with ignore also 255, K and -1 (about one in four). */
static void seg_labels(H &lab, int K, bool ignore) {
    const int32_t odd[3] = {255, K, -1};
    for (int64_t i = 0; i < vt_tensor_nelem(lab.t); i++) {
        uint32_t u = vt_rng_below(&rng, 4 * (uint32_t)K);
        lab.i()[i] = ignore && u < (uint32_t)K ? odd[u % 3] : (int32_t)(u % (uint32_t)K);
    }
    vt_tensor_upload(lab.t, lab.b.data(), lab.b.size());
}

/* Per-pixel softmax cross-entropy with ignored labels, argmax over axis 1, CONFUSION, and BATCH_PREP's
 * crops and masks, each against the CPU reference. */
static void segmentation() {
    /* {N, K, H, W}; H = W = 0: logits [N,K]. All ignored once (counted 0: the loss is 0). */
    int ce[][4] = {{3, 7, 5, 9}, {2, 21, 4, 33}, {1, 2, 1, 1}, {4, 40, 3, 3}, {5, 11, 0, 0}, {33, 3, 0, 0}};
    for (auto &d : ce)
        for (int v = 0; v < 5; v++) {
            int N = d[0], K = d[1];
            bool px = d[2] > 0, ignore = v >= 2, all_ignored = v == 4;
            float e = (v & 1) ? 0.1f : 0.f;
            int64_t S = px ? (int64_t)d[2] * d[3] : 1, rows = N * S;
            std::vector<int64_t> ls = px ? std::vector<int64_t>{N, K, d[2], d[3]} : std::vector<int64_t>{N, K};
            std::vector<int64_t> ys = px ? std::vector<int64_t>{N, d[2], d[3]} : std::vector<int64_t>{N};
            H lg = mk(VT_F32, ls, 0, 10, 3.f), lab = mk(VT_I32, ys, 0, K), loss = mk(VT_F32, {1}),
              met = mk(VT_F32, {3}), dl = mk(VT_F32, ls, 0, 10, 3.f), am = mk(VT_I32, ys);
            seg_labels(lab, K, ignore);
            if (all_ignored) {
                std::fill(lab.i(), lab.i() + rows, 255);
                vt_tensor_upload(lab.t, lab.b.data(), lab.b.size());
            }
            std::vector<float> m0(met.f(), met.f() + 3);
            float scale = 1.f / (float)rows;
            vt_node n = {};
            n.op = VT_OP_SOFTMAX_CE;
            n.p.ce = {e, scale, ignore ? 1 : 0};
            n.src[0] = lg.t;
            n.src[1] = lab.t;
            n.dst[0] = loss.t;
            n.dst[1] = met.t;
            run(n);
            float gl = -1;
            std::vector<float> gm = m0;
            launch(1, 1024, [&] { vt_k_softmax_ce(lg.f(), lab.i(), &gl, gm.data(), rows, K, S, e, n.p.ce.ignore); });
            std::string nm = "seg ce N" + std::to_string(N) + " K" + std::to_string(K) + " S" + std::to_string(S) +
                             " v" + std::to_string(v);
            cmp(nm + " loss", &gl, ref(loss).data(), 1, 1e-6, 1e-5);
            cmp(nm + " metrics", gm.data(), ref(met).data(), 3, 1e-5, 1e-5);
            checks++;
            if (all_ignored && (gl != 0.f || gm[2] != m0[2])) {
                printf("FAIL %s: all ignored gives loss %g, counted %g\n", nm.c_str(), gl, gm[2] - m0[2]);
                fails++;
            }
            vt_node m = {};
            m.op = VT_OP_SOFTMAX_CE_BWD;
            m.p.ce = n.p.ce;
            m.src[0] = lg.t;
            m.src[1] = lab.t;
            m.dst[0] = dl.t;
            run(m);
            std::vector<float> gd(rows * K, NAN);
            if (S == 1)
                launch((unsigned)((rows * 32 + 255) / 256), 256,
                       [&] { vt_k_softmax_ce_bwd(lg.f(), lab.i(), gd.data(), rows, K, e, scale, m.p.ce.ignore); });
            else
                SERIAL(vt_k_softmax_ce_bwd_px(lg.f(), lab.i(), gd.data(), rows, K, S, e, scale, m.p.ce.ignore));
            cmp(nm + " bwd", gd.data(), ref(dl).data(), rows * K, 1e-6, 1e-4);
            /* argmax with NaNs and ties planted in row 0 (class stride S) */
            if (K > 3) {
                lg.f()[1 * S] = NAN;
                lg.f()[2 * S] = 1e9f;
                lg.f()[3 * S] = 1e9f;
                int64_t r1 = S == 1 ? K : 1; /* row 1: NaN first gives 0 */
                if (rows > 1)
                    for (int k = 0; k < K; k++)
                        lg.f()[r1 + k * S] = k == 0 ? NAN : 1.f;
                vt_tensor_upload(lg.t, lg.b.data(), lg.b.size());
            }
            vt_node a = {};
            a.op = VT_OP_ARGMAX;
            a.src[0] = lg.t;
            a.dst[0] = am.t;
            run(a);
            std::vector<int32_t> ga(rows, -7);
            if (S == 1)
                launch((unsigned)((rows * 32 + 255) / 256), 256, [&] { vt_k_argmax(lg.f(), ga.data(), rows, K); });
            else
                SERIAL(vt_k_argmax_px(lg.f(), ga.data(), rows, K, S));
            cmpi(nm + " argmax", ga.data(), refi(am).data(), rows);
            for (H *h : {&lg, &lab, &loss, &met, &dl, &am})
                vt_tensor_free(h->t);
        }
    /* CONFUSION: accumulated onto counts that are not zero; out-of-range values on both sides; K = 70
     * is past the shared-memory matrix. Several blocks, so that blocks add into the same counters. */
    for (int K : {7, 1, 21, 70}) {
        int64_t M = 3 * 5 * 9 * 7;
        H pred = mk(VT_I32, {3, 5, 9, 7}, 0, K + 2), truth = mk(VT_I32, {3, 5, 9, 7}, 0, K + 2),
          cnt = mk(VT_I32, {K + 1, K + 1}, 0, 50);
        pred.i()[0] = -1;
        pred.i()[1] = 255;
        truth.i()[2] = 255;
        truth.i()[3] = -5;
        vt_tensor_upload(pred.t, pred.b.data(), pred.b.size());
        vt_tensor_upload(truth.t, truth.b.data(), truth.b.size());
        vt_node n = {};
        n.op = VT_OP_CONFUSION;
        n.src[0] = pred.t;
        n.src[1] = truth.t;
        n.dst[0] = cnt.t;
        run(n);
        std::vector<int32_t> g(cnt.i(), cnt.i() + (K + 1) * (K + 1));
        int shared = (K + 1) * (K + 1) <= VT_CONF_SHARED;
        launch(3, 64, [&] { vt_k_confusion(pred.i(), truth.i(), g.data(), M, K, shared); });
        cmpi("confusion K" + std::to_string(K), g.data(), refi(cnt).data(), (K + 1) * (K + 1));
        for (H *h : {&pred, &truth, &cnt})
            vt_tensor_free(h->t);
    }
    /* BATCH_PREP: {H, W, Ho, Wo, pad, flip, center, masks}; the first is the whole image (as before). */
    int bp[][8] = {{13, 17, 13, 17, 0, 1, 0, 1}, {13, 17, 8, 11, 0, 1, 0, 1}, {13, 17, 8, 11, 2, 1, 0, 1},
                   {13, 17, 8, 11, 3, 0, 1, 1},  {12, 16, 7, 16, 1, 1, 1, 1}, {9, 9, 5, 4, 2, 1, 0, 0},
                   {9, 9, 5, 4, 1, 0, 1, 0}};
    for (auto &q : bp) {
        int D = 11, B = 6, C = 3, Hh = q[0], W = q[1], Ho = q[2], Wo = q[3];
        bool masks = q[7];
        H img = mk(VT_U8, {D, C, Hh, W}), perm = mk(VT_I32, {D}, 3), x = mk(VT_F32, {B, C, Ho, Wo});
        H lab = masks ? mk(VT_U8, {D, Hh, W}) : mk(VT_I32, {D}, 0, 100);
        H y = masks ? mk(VT_I32, {B, Ho, Wo}) : mk(VT_I32, {B});
        if (masks) {
            for (auto &u : lab.b)
                u = (uint8_t)(u % 13 == 12 ? 255 : u % 12);
            vt_tensor_upload(lab.t, lab.b.data(), lab.b.size());
        }
        for (int step = 0; step < 3; step++) {
            vt_step_ctx c = {0x300000005ull + (uint64_t)step * 7, 4321u, 0.05f, step == 2 ? 5 : step};
            vt_node n = {};
            n.op = VT_OP_BATCH_PREP;
            n.p.prep = {q[4], q[5], {0.5f, 0.4f, 0.3f, 0}, {0.2f, 0.25f, 0.3f, 1}, 99u, q[6]};
            n.src[0] = img.t;
            n.src[1] = lab.t;
            n.src[2] = perm.t;
            n.dst[0] = x.t;
            n.dst[1] = y.t;
            run(n, &c);
            std::vector<float> g(x.b.size() / 4, NAN);
            std::vector<int32_t> gy(vt_tensor_nelem(y.t), -7);
            SERIAL(vt_k_batch_prep(img.b.data(), masks ? nullptr : lab.i(), masks ? lab.b.data() : nullptr, perm.i(),
                                   g.data(), gy.data(), D, B, C, Hh, W, Ho, Wo, n.p.prep, sarg(c)));
            std::string nm = "batch_prep " + std::to_string(Hh) + "x" + std::to_string(W) + "->" + std::to_string(Ho) +
                             "x" + std::to_string(Wo) + " pad" + std::to_string(q[4]) + " center" +
                             std::to_string(q[6]) + " step" + std::to_string(step);
            cmp(nm + " x", g.data(), ref(x).data(), g.size(), 0, 0);
            cmpi(nm + " y", gy.data(), refi(y).data(), gy.size());
        }
        for (H *h : {&img, &perm, &x, &lab, &y})
            vt_tensor_free(h->t);
    }
}

int main() {
    vt_backend_opts o = {};
    o.reference = 1;
    if (vt_backend_init_by_name("cpu", 0, &o, &cpu) != VT_OK)
        return 2;
    vt_rng_init(&rng, 5, 5);
    // matmul
    int mm[][3] = {{1, 1, 1}, {5, 7, 13}, {13, 33, 7}, {33, 5, 1}, {20, 17, 40}};
    for (auto &d : mm)
        for (int t = 0; t < 4; t++) {
            int M = d[0], N = d[1], K = d[2], ta = t & 1, tb = t >> 1;
            H A = ta ? mk(VT_F32, {K, M}) : mk(VT_F32, {M, K});
            H B = tb ? mk(VT_F32, {N, K}) : mk(VT_F32, {K, N});
            H bias = mk(VT_F32, {N});
            H C = mk(VT_F32, {M, N});
            vt_node n = {};
            n.op = VT_OP_MATMUL;
            n.p.matmul = {ta, tb, t == 3 ? 2.f : 1.f, t == 3 ? 0.5f : 0.f, (vt_act)(t % 4), 0.1f};
            n.src[0] = A.t;
            n.src[1] = B.t;
            if (t & 1)
                n.src[2] = bias.t;
            n.dst[0] = C.t;
            run(n);
            std::vector<float> g(C.b.size() / 4);
            memcpy(g.data(), C.f(), C.b.size());
            gemm_rm(ta, tb, M, N, K, n.p.matmul.alpha, A.f(), B.f(), n.p.matmul.beta, g.data(), 1, 0, 0, 0);
            SERIAL(vt_k_bias_act(g.data(), (t & 1) ? bias.f() : nullptr, (int64_t)M * N, 1, N, n.p.matmul.act, 0.1f));
            cmp("matmul " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " t" +
                    std::to_string(t),
                g.data(), ref_out(C).data(), (int64_t)M * N);
        }
    // conv via im2col
    int cv[][8] = {{1, 1, 5, 7, 1, 1, 1, 0},   {5, 7, 13, 13, 5, 3, 3, 1},  {2, 3, 7, 5, 13, 3, 5, 2},
                   {3, 5, 33, 13, 7, 5, 5, 3}, {4, 8, 16, 16, 16, 3, 3, 4}, {3, 16, 8, 8, 8, 1, 1, 5}};
    for (auto &c : cv) {
        int N = c[0], C = c[1], Hh = c[2], W = c[3], K = c[4], R = c[5], S = c[6], code = c[7];
        vt_conv2d_params cp = {1, 1, 0, 0, VT_ACT_NONE, 0.f};
        if (code == 1)
            cp.pad_h = R / 2, cp.pad_w = S / 2;
        if (code == 2)
            cp.stride_h = 2, cp.stride_w = 1, cp.pad_h = 1, cp.pad_w = 2;
        if (code == 3)
            cp.stride_h = cp.stride_w = 3, cp.pad_h = cp.pad_w = 2;
        if (code == 4)
            cp.stride_h = cp.stride_w = 2, cp.pad_h = cp.pad_w = 1;
        if (code == 5)
            cp.stride_h = cp.stride_w = 2;
        int P = (Hh + 2 * cp.pad_h - R) / cp.stride_h + 1, Q = (W + 2 * cp.pad_w - S) / cp.stride_w + 1;
        vt_cuda_conv_geom g = {C, Hh, W, K, R, S, P, Q, cp.stride_h, cp.stride_w, cp.pad_h, cp.pad_w};
        int CRS = C * R * S, PQ = P * Q;
        long long col_per = (long long)CRS * PQ, x_per = (long long)C * Hh * W, y_per = (long long)K * PQ;
        std::vector<float> col(col_per * N);
        for (int op = 0; op < 3; op++) {
            H x = mk(VT_F32, {N, C, Hh, W}), w = mk(VT_F32, {K, C, R, S}), y = mk(VT_F32, {N, K, P, Q}),
              b = mk(VT_F32, {K});
            vt_node n = {};
            n.p.conv2d = cp;
            std::vector<float> got;
            std::string nm = "conv op" + std::to_string(op) + " code" + std::to_string(code);
            if (op == 0) {
                n.op = VT_OP_CONV2D;
                n.p.conv2d.act = VT_ACT_LEAKY_RELU;
                n.p.conv2d.act_alpha = 0.1f;
                n.src[0] = x.t;
                n.src[1] = w.t;
                n.src[2] = b.t;
                n.dst[0] = y.t;
                run(n);
                got.assign(y_per * N, 0);
                int nb = 2;
                for (int b0 = 0; b0 < N; b0 += nb) {
                    int cnt = std::min(nb, N - b0);
                    SERIAL(vt_k_im2col(x.f() + b0 * x_per, col.data(), cnt, g));
                    gemm_rm(0, 0, K, PQ, CRS, 1.f, w.f(), col.data(), 0.f, got.data() + b0 * y_per, cnt, 0, col_per,
                            y_per);
                }
                SERIAL(vt_k_bias_act(got.data(), b.f(), (int64_t)got.size(), PQ, K, VT_ACT_LEAKY_RELU, 0.1f));
                cmp(nm, got.data(), ref_out(y).data(), got.size(), 1e-4, 1e-4);
            } else if (op == 1) {
                n.op = VT_OP_CONV2D_BWD_DATA;
                n.src[0] = y.t;
                n.src[1] = w.t;
                n.dst[0] = x.t;
                run(n);
                got.assign(x_per * N, 0);
                int nb = 2;
                for (int b0 = 0; b0 < N; b0 += nb) {
                    int cnt = std::min(nb, N - b0);
                    gemm_rm(1, 0, CRS, PQ, K, 1.f, w.f(), y.f() + b0 * y_per, 0.f, col.data(), cnt, 0, y_per, col_per);
                    SERIAL(vt_k_col2im(col.data(), got.data() + b0 * x_per, cnt, g));
                }
                cmp(nm, got.data(), ref_out(x).data(), got.size(), 1e-4, 1e-4);
            } else {
                n.op = VT_OP_CONV2D_BWD_WEIGHT;
                n.src[0] = y.t;
                n.src[1] = x.t;
                n.dst[0] = w.t;
                run(n);
                got.assign((size_t)K * CRS, 0);
                int nb = 2;
                for (int b0 = 0; b0 < N; b0 += nb) {
                    int cnt = std::min(nb, N - b0);
                    SERIAL(vt_k_im2col(x.f() + b0 * x_per, col.data(), cnt, g));
                    for (int i = 0; i < cnt; i++)
                        gemm_rm(0, 1, K, CRS, PQ, 1.f, y.f() + (b0 + i) * y_per, col.data() + i * col_per,
                                (b0 + i) ? 1.f : 0.f, got.data(), 1, 0, 0, 0);
                }
                cmp(nm, got.data(), ref_out(w).data(), got.size(), 1e-4, 1e-4);
            }
            vt_tensor_free(x.t);
            vt_tensor_free(w.t);
            vt_tensor_free(y.t);
            vt_tensor_free(b.t);
        }
    }
    // pooling
    int pl[][7] = {{5, 7, 2, 2, 2, 0, 0}, {13, 13, 3, 3, 2, 1, 0}, {7, 5, 3, 3, 1, 1, 1},  {33, 33, 2, 2, 2, 0, 1},
                   {8, 8, 8, 8, 1, 0, 1}, {9, 9, 3, 3, 2, 1, 1},   {10, 11, 3, 2, 1, 1, 0}};
    for (auto &q : pl) {
        int Hh = q[0], W = q[1];
        vt_pool2d_params pp = {(vt_pool_kind)q[6], q[2], q[3], q[4], q[4], q[5], q[5]};
        int P = (Hh + 2 * pp.pad_h - pp.kh) / pp.stride_h + 1, Q = (W + 2 * pp.pad_w - pp.kw) / pp.stride_w + 1;
        H x = mk(VT_F32, {2, 3, Hh, W}), y = mk(VT_F32, {2, 3, P, Q}), dy = mk(VT_F32, {2, 3, P, Q}),
          dx = mk(VT_F32, {2, 3, Hh, W});
        vt_node n = {};
        n.op = VT_OP_POOL2D;
        n.p.pool2d = pp;
        n.src[0] = x.t;
        n.dst[0] = y.t;
        run(n);
        std::vector<float> g(y.b.size() / 4);
        SERIAL(vt_k_pool(x.f(), g.data(), 6, Hh, W, P, Q, pp));
        cmp("pool " + std::to_string(q[0]) + " kind" + std::to_string(q[6]), g.data(), ref_out(y).data(), g.size());
        vt_node m = {};
        m.op = VT_OP_POOL2D_BWD;
        m.p.pool2d = pp;
        m.src[0] = dy.t;
        m.src[1] = x.t;
        m.dst[0] = dx.t;
        run(m);
        std::vector<float> g2(dx.b.size() / 4);
        SERIAL(vt_k_pool_bwd(dy.f(), x.f(), g2.data(), 6, Hh, W, P, Q, pp));
        cmp("pool_bwd " + std::to_string(q[0]) + " kind" + std::to_string(q[6]), g2.data(), ref_out(dx).data(),
            g2.size());
    }
    // upsample
    int up[][4] = {{5, 7, 10, 14},   {7, 5, 13, 33}, {13, 13, 5, 7}, {1, 1, 3, 3},
                   {16, 16, 32, 32}, {3, 4, 7, 9},   {9, 9, 4, 4}};
    for (auto &u : up)
        for (int mode = 0; mode < 2; mode++) {
            H x = mk(VT_F32, {2, 3, u[0], u[1]}), y = mk(VT_F32, {2, 3, u[2], u[3]}),
              dy = mk(VT_F32, {2, 3, u[2], u[3]}), dx = mk(VT_F32, {2, 3, u[0], u[1]});
            vt_node n = {};
            n.op = VT_OP_UPSAMPLE;
            n.p.upsample.mode = (vt_upsample_mode)mode;
            n.src[0] = x.t;
            n.dst[0] = y.t;
            run(n);
            float sh = (float)u[0] / (float)u[2], sw = (float)u[1] / (float)u[3];
            std::vector<float> g(y.b.size() / 4);
            SERIAL(vt_k_upsample(x.f(), g.data(), 6, u[0], u[1], u[2], u[3], mode, sh, sw));
            cmp("upsample m" + std::to_string(mode) + " " + std::to_string(u[0]) + "->" + std::to_string(u[2]),
                g.data(), ref_out(y).data(), g.size());
            vt_node m = {};
            m.op = VT_OP_UPSAMPLE_BWD;
            m.p.upsample.mode = (vt_upsample_mode)mode;
            m.src[0] = dy.t;
            m.dst[0] = dx.t;
            run(m);
            std::vector<float> g2(dx.b.size() / 4);
            SERIAL(vt_k_upsample_bwd(dy.f(), g2.data(), 6, u[0], u[1], u[2], u[3], mode, sh, sw));
            cmp("upsample_bwd m" + std::to_string(mode) + " " + std::to_string(u[0]) + "->" + std::to_string(u[2]),
                g2.data(), ref_out(dx).data(), g2.size());
        }
    // act / act_bwd (ACT_BWD's src1 is the forward output, x for gelu) / dropout
    for (int k = VT_ACT_RELU; k < VT_ACT_COUNT; k++) {
        H x = mk(VT_F32, {7, 13}, 0, 10, 3.f), y = mk(VT_F32, {7, 13}), dy = mk(VT_F32, {7, 13}),
          dx = mk(VT_F32, {7, 13});
        vt_node n = {};
        n.op = VT_OP_ACT;
        n.p.act = {(vt_act)k, 0.2f};
        n.src[0] = x.t;
        n.dst[0] = y.t;
        run(n);
        std::vector<float> g(91);
        SERIAL(vt_k_act(x.f(), g.data(), 91, k, 0.2f));
        /* the same formulas as the reference, compiled on the same host: the same bits */
        cmp(std::string("act ") + vt_act_name((vt_act)k), g.data(), ref_out(y).data(), 91, 0, 0);
        vt_node m = {};
        m.op = VT_OP_ACT_BWD;
        m.p.act = {(vt_act)k, 0.2f};
        const float *fwd = k == VT_ACT_GELU ? x.f() : g.data();
        m.src[0] = dy.t;
        m.src[1] = k == VT_ACT_GELU ? x.t : y.t;
        m.dst[0] = dx.t;
        run(m);
        std::vector<float> g2(91);
        SERIAL(vt_k_act_bwd(dy.f(), fwd, g2.data(), 91, k, 0.2f));
        cmp(std::string("act_bwd ") + vt_act_name((vt_act)k), g2.data(), ref_out(dx).data(), 91, 0, 0);
    }
    for (float p : {0.f, 0.3f, 0.5f}) {
        H x = mk(VT_F32, {1001}), y = mk(VT_F32, {1001});
        vt_step_ctx c = {0x500000003ull, 17u, 0.1f, 0};
        vt_node n = {};
        n.op = VT_OP_DROPOUT;
        n.p.dropout = {p, 4242u};
        n.src[0] = x.t;
        n.dst[0] = y.t;
        run(n, &c);
        std::vector<float> g(1001);
        SERIAL(vt_k_dropout(x.f(), g.data(), 1001, p, 4242u, sarg(c)));
        cmp("dropout", g.data(), ref_out(y).data(), 1001, 0, 0);
    }
    // batch_prep
    for (int aug = 0; aug < 2; aug++) {
        int D = aug ? 100 : 13, B = aug ? 64 : 5;
        H img = mk(VT_U8, {D, 3, 32, 32}), lab = mk(VT_I32, {D}, 0, 100), perm = mk(VT_I32, {D}, 3),
          x = mk(VT_F32, {B, 3, 32, 32}), y = mk(VT_I32, {B});
        vt_step_ctx c = {0x300000005ull, 4321u, 0.05f, aug ? 30 : 7};
        vt_node n = {};
        n.op = VT_OP_BATCH_PREP;
        n.p.prep = {aug ? 4 : 0, aug, {0.5f, 0.4f, 0.3f, 0}, {0.2f, 0.25f, 0.3f, 1}, 99u};
        n.src[0] = img.t;
        n.src[1] = lab.t;
        n.src[2] = perm.t;
        n.dst[0] = x.t;
        n.dst[1] = y.t;
        run(n, &c);
        std::vector<float> g(x.b.size() / 4);
        std::vector<int32_t> gy(B);
        SERIAL(
            vt_k_batch_prep(img.b.data(), lab.i(), nullptr, perm.i(), g.data(), gy.data(), D, B, 3, 32, 32, 32, 32, n.p.prep,
                            sarg(c)));
        cmp("batch_prep", g.data(), ref_out(x).data(), g.size(), 0, 0);
        std::vector<int32_t> ry(B);
        vt_tensor_download(y.t, ry.data(), B * 4);
        checks++;
        if (memcmp(ry.data(), gy.data(), B * 4)) {
            printf("FAIL batch_prep labels\n");
            fails++;
        }
    }
    // sgd / adam
    for (int v = 0; v < 3; v++) {
        H gr = mk(VT_F32, {333}), p = mk(VT_F32, {333}), b = mk(VT_F32, {333});
        vt_step_ctx c = {5, 1, 0.05f, 0};
        vt_node n = {};
        n.op = VT_OP_SGD;
        n.p.sgd = {1.f, v ? 0.9f : 0.f, v ? 5e-4f : 0.f, v == 2};
        n.src[0] = gr.t;
        n.dst[0] = p.t;
        if (v)
            n.dst[1] = b.t;
        run(n, &c);
        SERIAL(vt_k_sgd(gr.f(), p.f(), v ? b.f() : nullptr, 333, n.p.sgd, sarg(c)));
        cmp("sgd", p.f(), ref_out(p).data(), 333, 0, 0);
        if (v)
            cmp("sgd buf", b.f(), ref_out(b).data(), 333, 0, 0);
    }
    // Adam with L2 decay and AdamW, each with beta1 0.9 and 0.3 (both branches of torch's lerp_)
    for (int v = 0; v < 4; v++) {
        H gr = mk(VT_F32, {333}), p = mk(VT_F32, {333}), m = mk(VT_F32, {333}), vv = mk(VT_F32, {333}, 1);
        vt_step_ctx c = {6, 1, 0.05f, 0};
        vt_node n = {};
        n.op = VT_OP_ADAM;
        n.p.adam = {1.f, v < 2 ? 0.9 : 0.3, 0.999, 1e-8, 0.01, v & 1, 2};
        n.src[0] = gr.t;
        n.dst[0] = p.t;
        n.dst[1] = m.t;
        n.dst[2] = vv.t;
        run(n, &c);
        SERIAL(vt_k_adam(gr.f(), p.f(), m.f(), vv.f(), 333, n.p.adam, sarg(c)));
        cmp("adam p", p.f(), ref_out(p).data(), 333, 0, 0);
        cmp("adam m", m.f(), ref_out(m).data(), 333, 0, 0);
        cmp("adam v", vv.f(), ref_out(vv).data(), 333, 0, 0);
    }
    // nonfinite: one special value first, in the middle, last, or none; the flag starts at 0 or 1
    for (int v = 0; v < 8; v++) {
        H x = mk(VT_F32, {1031}, 0, 10, 1e30f), f = mk(VT_I32, {1}, 0, 1);
        int64_t at[4] = {0, 515, 1030, -1};
        float special[3] = {NAN, INFINITY, -INFINITY};
        if (at[v % 4] >= 0) x.f()[at[v % 4]] = special[v % 3];
        f.i()[0] = v >= 4;
        vt_tensor_upload(x.t, x.b.data(), x.b.size());
        vt_tensor_upload(f.t, f.b.data(), f.b.size());
        vt_node n = {};
        n.op = VT_OP_NONFINITE;
        n.src[0] = x.t;
        n.dst[0] = f.t;
        run(n);
        int32_t want = 0;
        vt_tensor_download(f.t, &want, 4);
        launch(3, 128, [&] { vt_k_nonfinite((const uint32_t *)x.f(), 1031, f.i()); });
        checks++;
        if (f.i()[0] != want || want != (v >= 4 || at[v % 4] >= 0)) {
            printf("FAIL nonfinite %d: got %d, reference %d\n", v, f.i()[0], want);
            fails++;
        }
    }
    int64_t bn[][4] = {{5, 7, 1, 1}, {13, 5, 7, 7}, {2, 3, 1, 1}, {8, 4, 16, 16}};
    for (auto &d : bn)
        for (int train = 0; train < 2; train++) {
            int64_t N = d[0], C = d[1], HW = d[2] * d[3];
            std::vector<int64_t> xs = d[2] == 1 ? std::vector<int64_t>{N, C} : std::vector<int64_t>{N, C, d[2], d[3]};
            H x = mk(VT_F32, xs, 0, 10, 3.f), g = mk(VT_F32, {C}), b = mk(VT_F32, {C}), rm = mk(VT_F32, {C}),
              rv = mk(VT_F32, {C}, 1), y = mk(VT_F32, xs, 0, 10, 3.f), sm = mk(VT_F32, {C}), si = mk(VT_F32, {C});
            vt_node n = {};
            n.op = VT_OP_BATCHNORM;
            n.p.bn = {train, 0.1f, 1e-5f};
            n.src[0] = x.t;
            n.src[1] = g.t;
            n.src[2] = b.t;
            n.src[3] = rm.t;
            n.src[4] = rv.t;
            n.dst[0] = y.t;
            n.dst[1] = sm.t;
            n.dst[2] = si.t;
            run(n);
            std::vector<float> gy(y.b.size() / 4), gsm(C), gsi(C);
            launch((unsigned)C, VT_RED_BS, [&] {
                vt_k_bn_fwd(x.f(), g.f(), b.f(), rm.f(), rv.f(), gy.data(), gsm.data(), gsi.data(), N, C, HW, train,
                            0.1f, 1e-5f);
            });
            std::string nm = "bn train" + std::to_string(train) + " C" + std::to_string(C);
            cmp(nm + " y", gy.data(), ref(y).data(), gy.size(), 1e-5, 1e-4);
            cmp(nm + " mean", gsm.data(), ref(sm).data(), C);
            cmp(nm + " invstd", gsi.data(), ref(si).data(), C);
            cmp(nm + " rm", rm.f(), ref(rm).data(), C);
            cmp(nm + " rv", rv.f(), ref(rv).data(), C);
            // backward, using the saved stats of the reference
            H dy = mk(VT_F32, xs, 0, 10, 3.f), dx = mk(VT_F32, xs, 0, 10, 3.f), dg = mk(VT_F32, {C}),
              db = mk(VT_F32, {C});
            std::vector<float> rsm = ref(sm), rsi = ref(si);
            vt_node m = {};
            m.op = VT_OP_BATCHNORM_BWD;
            m.p.bn = {train, 0.1f, 1e-5f};
            m.src[0] = dy.t;
            m.src[1] = x.t;
            m.src[2] = g.t;
            m.src[3] = sm.t;
            m.src[4] = si.t;
            m.dst[0] = dx.t;
            m.dst[1] = dg.t;
            m.dst[2] = db.t;
            run(m);
            std::vector<float> gdx(dx.b.size() / 4), gdg(C), gdb(C);
            launch((unsigned)C, VT_RED_BS, [&] {
                vt_k_bn_bwd(dy.f(), x.f(), g.f(), rsm.data(), rsi.data(), gdx.data(), gdg.data(), gdb.data(), N, C, HW,
                            train);
            });
            cmp(nm + " dx", gdx.data(), ref(dx).data(), gdx.size(), 1e-5, 1e-4);
            cmp(nm + " dgamma", gdg.data(), ref(dg).data(), C, 1e-5, 1e-4);
            cmp(nm + " dbeta", gdb.data(), ref(db).data(), C, 1e-5, 1e-4);
            if (train)
                sync_bn(nm, xs, N, C, HW, x, g, b, dy, gy);
            // bias grad of dy
            H bg = mk(VT_F32, {C});
            vt_node q = {};
            q.op = VT_OP_BIAS_GRAD;
            q.src[0] = dy.t;
            q.dst[0] = bg.t;
            run(q);
            std::vector<float> gbg(C);
            launch((unsigned)C, VT_RED_BS, [&] { vt_k_channel_sum(dy.f(), gbg.data(), N, C, HW); });
            cmp(nm + " bias_grad", gbg.data(), ref(bg).data(), C, 1e-5, 1e-4);
        }
    int ce[][2] = {{1, 1}, {5, 7}, {33, 13}, {64, 100}, {40, 37}, {3, 70}};
    for (auto &d : ce)
        for (int ls = 0; ls < 2; ls++) {
            int N = d[0], K = d[1];
            float e = ls ? 0.1f : 0.f;
            H lg = mk(VT_F32, {N, K}, 0, 10, 3.f), lab = mk(VT_I32, {N}, 0, K), loss = mk(VT_F32, {1}),
              met = mk(VT_F32, {3}), dl = mk(VT_F32, {N, K}, 0, 10, 3.f), am = mk(VT_I32, {N});
            std::vector<float> m0(met.f(), met.f() + 3);
            vt_node n = {};
            n.op = VT_OP_SOFTMAX_CE;
            n.p.ce = {e, 1.f / N};
            n.src[0] = lg.t;
            n.src[1] = lab.t;
            n.dst[0] = loss.t;
            n.dst[1] = met.t;
            run(n);
            float gl = 0;
            std::vector<float> gm = m0;
            launch(1, 1024, [&] { vt_k_softmax_ce(lg.f(), lab.i(), &gl, gm.data(), N, K, 1, e, 0); });
            std::string nm = "ce N" + std::to_string(N) + " K" + std::to_string(K) + " ls" + std::to_string(ls);
            cmp(nm + " loss", &gl, ref(loss).data(), 1, 1e-6, 1e-5);
            cmp(nm + " metrics", gm.data(), ref(met).data(), 3, 1e-5, 1e-5);
            vt_node m = {};
            m.op = VT_OP_SOFTMAX_CE_BWD;
            m.p.ce = {e, 1.f / N};
            m.src[0] = lg.t;
            m.src[1] = lab.t;
            m.dst[0] = dl.t;
            run(m);
            std::vector<float> gd(N * K);
            unsigned grid = (unsigned)((N * 32 + 255) / 256);
            launch(grid, 256, [&] { vt_k_softmax_ce_bwd(lg.f(), lab.i(), gd.data(), N, K, e, 1.f / N, 0); });
            cmp(nm + " bwd", gd.data(), ref(dl).data(), N * K, 1e-6, 1e-4);
            // argmax, with NaNs planted
            if (K > 3) {
                lg.f()[1] = NAN;
                if (N > 1)
                    lg.f()[K] = NAN;
                if (N > 2) {
                    lg.f()[2 * K + 2] = 1e9f;
                    lg.f()[2 * K + 3] = 1e9f;
                }
                vt_tensor_upload(lg.t, lg.b.data(), lg.b.size());
            }
            vt_node a = {};
            a.op = VT_OP_ARGMAX;
            a.src[0] = lg.t;
            a.dst[0] = am.t;
            run(a);
            std::vector<int32_t> ga(N), ra(N);
            launch(grid, 256, [&] { vt_k_argmax(lg.f(), ga.data(), N, K); });
            vt_tensor_download(am.t, ra.data(), N * 4);
            checks++;
            if (memcmp(ga.data(), ra.data(), N * 4)) {
                printf("FAIL %s argmax\n", nm.c_str());
                fails++;
            }
        }
    segmentation();
    printf("host emulation of the CUDA kernels: %d checks, %d failed\n", checks, fails);
    return fails != 0;
}
