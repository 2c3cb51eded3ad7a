/* chatgui's native kernels: products of GGUF-quantized weights (as stored in the mapped file)
 * with float32 activations, for the engine's CPU path (chatgui/engine/native_linear.py).
 *
 * y[m, rows] = x[m, k] . W^T, where W is one or more "segments" (GGUF tensors of any supported
 * type, optionally with a row order), written side by side into y. x is first quantized to
 * int8 per 32 elements (cg_common.h), then every weight row meets every activation row in
 * integer dot products, up to four (AVX2, portable) or eight (AVX-512) activation rows per pass
 * over a weight row (prefill), each row by the same instructions whatever their number.
 *
 * Paths: portable C (every CPU), AVX2+FMA+F16C and AVX-512 (VNNI) on x86-64, one library,
 * chosen at run time by cg_select. Threads: a small pool of our own (pthreads), splitting rows
 * in chunks taken from a shared counter; the calling thread works too. No OpenMP: torch has
 * its own runtime, and two would fight over the same cores.
 * Called through ctypes with raw pointers (no Python or torch headers). */
#include "cg_common.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "cg_portable.inc"

#define ATT_CHUNK 128              /* cached positions per attention task */
#define ATT_MAX_G 64               /* query heads per key/value head, at most */
#define ATT_MAX_HD 512
#define PFX(name) portable_##name
#include "cg_attend.inc"
#undef PFX

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CG_X86 1
#include <immintrin.h>

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
#define PFX(name) avx2_##name
#define CG_VNNI 0
#include "cg_x86.inc"
#include "cg_attend.inc"
#undef PFX
#undef CG_VNNI
#if defined(__clang__)
#pragma clang attribute pop
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), \
                             apply_to = function)
#else
#pragma GCC pop_options
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#define PFX(name) avx512_##name
#define CG_VNNI 1
#include "cg_x86.inc"
#include "cg_attend.inc"
#undef PFX
#undef CG_VNNI
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

enum { PATH_AUTO = 0, PATH_PORTABLE = 1, PATH_AVX2 = 2, PATH_AVX512 = 3 };

typedef void (*quant_fn)(const float *x, int k, int qb, uint8_t *a, int interleave);
typedef void (*attend_fn)(const float *q, int g, int hd, float scale, const void *k, const void *v, int bf16, int64_t p0,
                          int64_t p1, float *scores, float *row, float *m, float *l, float *acc);

/* one weight tensor: n_rows rows of row_bytes bytes at w; output row r is stored row
 * row_ids[r] (or r where row_ids is NULL) */
typedef struct {
    int32_t type, n_rows;
    int64_t row_bytes;
    const uint8_t *w;
    const int32_t *row_ids;
} cg_seg;

static int g_path = 0;
static const dot_fn *g_dots = PORTABLE_DOTS;
static const dot_fn *g_dots1 = PORTABLE_DOTS;    /* products of one activation row */
static int g_max_nr = 4;              /* activation rows a kernel call takes at most */
static quant_fn g_quant = quantize_row_portable;
static attend_fn g_attend = portable_attend_chunk;

int cg_supports(int path) {
    if (path == PATH_PORTABLE) return 1;
#ifdef CG_X86
    __builtin_cpu_init();
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
    if (path == PATH_AVX2) return avx2;
    if (path == PATH_AVX512)
        return avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#endif
    return 0;
}

/* use a path (PATH_AUTO: the best this CPU has); returns the path in use, or -1 if unsupported */
int cg_select(int path) {
    if (path == PATH_AUTO) path = cg_supports(PATH_AVX512) ? PATH_AVX512 : cg_supports(PATH_AVX2) ? PATH_AVX2 : PATH_PORTABLE;
    if (!cg_supports(path)) return -1;
    g_path = path;
    g_dots = g_dots1 = PORTABLE_DOTS; g_quant = quantize_row_portable; g_max_nr = 4; g_attend = portable_attend_chunk;
#ifdef CG_X86
    if (path == PATH_AVX2) {
        g_dots = avx2_DOTS; g_dots1 = avx2_DOTS1; g_quant = avx2_quantize_row; g_max_nr = avx2_MAX_ROWS; g_attend = avx2_attend_chunk;
    }
    if (path == PATH_AVX512) {
        g_dots = avx512_DOTS; g_dots1 = avx512_DOTS1; g_quant = avx512_quantize_row; g_max_nr = avx512_MAX_ROWS; g_attend = avx512_attend_chunk;
    }
#endif
    return path;
}

int cg_path(void) { return g_path; }
int cg_block_elems(int type) { return type >= 0 && type < T_COUNT ? BLOCK_ELEMS[type] : 0; }
int cg_block_bytes(int type) { return type >= 0 && type < T_COUNT ? BLOCK_BYTES[type] : 0; }

/* ---- the thread pool ------------------------------------------------------------------------ */
/* Work is claimed in chunks of rows from one 64-bit counter that also holds the job's number
 * (high 32 bits), so a worker that wakes late, after its job is done and another begun, can
 * never claim the new job's rows with the old job's pointers. The caller works too, and waits
 * only for rows claimed and not yet finished, never for a worker that has not woken: on a busy
 * machine a sleeping worker may take milliseconds to be scheduled. */
#define MAX_THREADS 64
#define SPIN_ROUNDS 4000           /* ~0.05-0.2 ms of spinning before a worker sleeps */

/* a job: `total` units (weight rows of a product, or attention tasks), claimed `chunk` at a time */
typedef struct job job_t;
struct job {
    void (*run)(const job_t *j, int64_t start, int64_t end);
    int64_t total, chunk;
    /* cg_linear */
    const cg_seg *segs; int nseg; const int64_t *seg_start;
    int k, m; const uint8_t *act[2]; size_t act_stride[2];     /* [0]: blocks of 32, [1]: of 256 */
    float *y; int64_t ldy; const float *alpha, *bias; int accumulate;
    const cg_seg *next; int next_nseg;     /* the product expected next: workers warm its first bytes */
    unsigned warm_epoch;                   /* g_warm_epoch when the job was posted */
    /* cg_attend */
    const float *q; const void *kc, *vc; int bf16, g, hd, n_chunks; float scale; int64_t head_stride, lo, n; float *parts;
};

static job_t g_job;
static atomic_ullong g_claim;       /* job number << 32 | next row */
static atomic_llong g_rows_done;
static atomic_uint g_gen;           /* the job number, bumped once the job is written */
static atomic_int g_quit;
static int g_workers = 0;           /* threads besides the caller */
static pthread_t g_threads[MAX_THREADS];
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_cv = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t g_call_mu = PTHREAD_MUTEX_INITIALIZER;   /* one product at a time */

static inline void cpu_relax(void) {
#ifdef CG_X86
    __builtin_ia32_pause();
#endif
}

#define MAX_CHUNK 64                /* rows a claim takes at most (cg_linear_ex's chunk) */

/* rows [start, end) for every activation row: the dot products into a small buffer, then
 * y = alpha * that (+ bias) (+ y where accumulating), element by element (so a row's result
 * stays the same in any batch) */
static void run_rows(const job_t *j, int64_t start, int64_t end) {
    float tmp[8 * MAX_CHUNK];
    int s = 0;
    while (j->seg_start[s + 1] <= start) s++;
    const int max_nr = g_max_nr;
    const dot_fn *dots = j->m == 1 ? g_dots1 : g_dots;     /* (as the rows were quantized) */
    for (int r0 = 0; r0 < j->m; r0 += max_nr) {
        int nr = j->m - r0 < max_nr ? j->m - r0 : max_nr;
        int ss = s;
        for (int64_t row = start; row < end; row++) {
            while (j->seg_start[ss + 1] <= row) ss++;
            const cg_seg *sg = &j->segs[ss];
            int64_t local = row - j->seg_start[ss];
            int64_t src = sg->row_ids ? sg->row_ids[local] : local;
            int which = act_qb(sg->type) == 256;
            const uint8_t *act = j->act[which] + (size_t)r0 * j->act_stride[which];
            dots[sg->type](j->k, sg->w + src * sg->row_bytes, act, j->act_stride[which], nr,
                             tmp + (row - start), MAX_CHUNK);
        }
        for (int r = 0; r < nr; r++) {
            float *y = j->y + (int64_t)(r0 + r) * j->ldy, a = j->alpha ? j->alpha[r0 + r] : 1.0f;
            const float *t = tmp + r * MAX_CHUNK - start;
            for (int64_t row = start; row < end; row++) {
                float v = j->alpha ? t[row] * a : t[row];
                if (j->bias) v += j->bias[row];
                y[row] = j->accumulate ? y[row] + v : v;
            }
        }
    }
}

/* claim and run chunks of job number gen until none are left */
static void run_job(const job_t *j, unsigned gen) {
    for (;;) {
        unsigned long long v = atomic_load(&g_claim);
        int64_t start;
        do {
            start = (int64_t)(v & 0xffffffffu);
            if ((unsigned)(v >> 32) != gen || start >= j->total) return;
        } while (!atomic_compare_exchange_weak(&g_claim, &v, v + (unsigned long long)j->chunk));
        int64_t end = start + j->chunk < j->total ? start + j->chunk : j->total;
        j->run(j, start, end);
        atomic_fetch_add(&g_rows_done, end - start);
    }
}

/* While the caller runs the Python between two products, a worker that has finished its part
 * reads the first WARM_BYTES of the product expected next, so they are in cache when it starts:
 * the memory bus would otherwise idle through those gaps (~5 ms a token on Qwen2.5-1.5B). It
 * stops as soon as a job is posted, or when cg_stop_warming says the memory may be freed. */
#define WARM_BYTES (4u << 20)
static atomic_uint g_warm_epoch;      /* bumped by cg_stop_warming: warming begun before it stops */
static atomic_int g_warming;          /* workers warming now */

static void warm_next(const job_t *j, unsigned gen) {
    atomic_fetch_add(&g_warming, 1);
    /* after the count is up, so that cg_stop_warming either waits for this or is seen here */
    unsigned epoch = atomic_load(&g_warm_epoch);
    size_t budget = WARM_BYTES;
    unsigned acc = 0;
    if (epoch != j->warm_epoch) goto done;
    for (int s = 0; s < j->next_nseg && budget; s++) {
        const cg_seg *sg = &j->next[s];
        size_t bytes = (size_t)sg->n_rows * (size_t)sg->row_bytes;
        bytes = bytes < budget ? bytes : budget;
        for (size_t off = 0; off < bytes; off += 64) {
            acc += sg->w[off];
            if (!(off & 4095) && (atomic_load_explicit(&g_gen, memory_order_relaxed) != gen
                                  || atomic_load(&g_warm_epoch) != epoch)) goto done;
        }
        budget -= bytes;
    }
done:
    __asm__ volatile("" : : "r"(acc));      /* the loads are kept */
    atomic_fetch_sub(&g_warming, 1);
}

/* Returns once no worker reads a product it was told comes next: called before the memory of
 * such a product may be freed (a bound product's last call can be followed by none). */
void cg_stop_warming(void) {
    atomic_fetch_add(&g_warm_epoch, 1);
    while (atomic_load(&g_warming)) cpu_relax();
}

static void *worker(void *arg) {
    (void)arg;
    unsigned seen = atomic_load(&g_gen);
    for (;;) {
        int spins = 0;
        while (atomic_load(&g_gen) == seen && !atomic_load(&g_quit) && spins < SPIN_ROUNDS) { cpu_relax(); spins++; }
        if (atomic_load(&g_gen) == seen && !atomic_load(&g_quit)) {
            pthread_mutex_lock(&g_mu);
            while (atomic_load(&g_gen) == seen && !atomic_load(&g_quit)) pthread_cond_wait(&g_cv, &g_mu);
            pthread_mutex_unlock(&g_mu);
        }
        if (atomic_load(&g_quit)) return NULL;
        /* the job as written for number `seen`: read between two reads of the number, so a job
         * replaced meanwhile is read again (its chunks are then claimed under the new number) */
        job_t j;
        do {
            seen = atomic_load(&g_gen);
            j = g_job;
            atomic_thread_fence(memory_order_seq_cst);
        } while (atomic_load(&g_gen) != seen);
        run_job(&j, seen);
        if (j.next) warm_next(&j, seen);
    }
}

static void stop_workers(void) {
    pthread_mutex_lock(&g_mu);
    atomic_store(&g_quit, 1);
    pthread_cond_broadcast(&g_cv);
    pthread_mutex_unlock(&g_mu);
    for (int i = 0; i < g_workers; i++) pthread_join(g_threads[i], NULL);
    g_workers = 0;
    atomic_store(&g_quit, 0);
}

/* use n threads in all (the caller and n - 1 workers); returns the number in use */
int cg_set_threads(int n) {
    pthread_mutex_lock(&g_call_mu);
    n = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    if (n - 1 != g_workers) {
        stop_workers();
        for (int i = 0; i < n - 1; i++) {
            if (pthread_create(&g_threads[i], NULL, worker, NULL) != 0) break;
            g_workers++;
        }
    }
    int used = g_workers + 1;
    pthread_mutex_unlock(&g_call_mu);
    return used;
}

int cg_threads(void) { return g_workers + 1; }

/* run job j on the pool and the calling thread (which holds g_call_mu) until every unit is done */
static void launch(job_t j) {
    unsigned gen = atomic_load(&g_gen) + 1;
    /* a stale worker may still be reading g_job under the old number: it then reads again */
    atomic_store(&g_claim, (unsigned long long)gen << 32);
    atomic_store(&g_rows_done, 0);
    g_job = j;
    if (g_workers && j.total > j.chunk) {
        pthread_mutex_lock(&g_mu);
        atomic_store(&g_gen, gen);
        pthread_cond_broadcast(&g_cv);
        pthread_mutex_unlock(&g_mu);
    } else {
        atomic_store(&g_gen, gen);
    }
    run_job(&g_job, gen);
    while (atomic_load(&g_rows_done) < j.total) cpu_relax();     /* chunks others are finishing */
}

/* ---- the product ---------------------------------------------------------------------------- */
static uint8_t *g_scratch = NULL;
static size_t g_scratch_size = 0;

/* y[i, :] (ldy apart) = alpha[i] * (segments' rows . x[i, :] (ldx apart)) + bias (+ y[i, :] where
 * accumulate) for i < m; alpha and bias may be NULL (1, 0); next (NULL: none): the segments of the
 * product expected next, warmed meanwhile (warm_next). Returns 0, or a negative error:
 * -1 bad type or shape, -2 out of memory. */
int cg_linear_ex(int nseg, const cg_seg *segs, int k, const float *x, int m, int64_t ldx, float *y, int64_t ldy,
                 const float *alpha, const float *bias, int accumulate, const cg_seg *next, int next_nseg) {
    if (nseg < 1 || nseg > 16 || k <= 0 || k % 32 || m < 0) return -1;
    int64_t seg_start[17];
    seg_start[0] = 0;
    for (int s = 0; s < nseg; s++) {
        int t = segs[s].type;
        if (t < 0 || t >= T_COUNT || k % BLOCK_ELEMS[t] || segs[s].row_bytes != (int64_t)k / BLOCK_ELEMS[t] * BLOCK_BYTES[t])
            return -1;
        seg_start[s + 1] = seg_start[s] + segs[s].n_rows;
    }
    if (m == 0 || seg_start[nseg] == 0) return 0;
    if (!g_path) cg_select(PATH_AUTO);
    int need[2] = {0, 0};               /* which activation layouts the segments read */
    for (int s = 0; s < nseg; s++) need[act_qb(segs[s].type) == 256] = 1;
    if (need[1] && k % 256) return -1;
    pthread_mutex_lock(&g_call_mu);
    size_t stride[2] = {act_row_bytes(k, 32), act_row_bytes(k, 256)};
    /* + 64: a kernel's last group of blocks may load a vector reaching past the last row's end */
    size_t bytes = (size_t)m * (need[0] * stride[0] + need[1] * stride[1]) + 64;
    if (bytes > g_scratch_size) {
        free(g_scratch);
        g_scratch_size = bytes;
        g_scratch = malloc(g_scratch_size);
        if (!g_scratch) { g_scratch_size = 0; pthread_mutex_unlock(&g_call_mu); return -2; }
    }
    const uint8_t *act[2] = {g_scratch, g_scratch + (size_t)m * need[0] * stride[0]};
    for (int w = 0; w < 2; w++)
        if (need[w])
            for (int i = 0; i < m; i++) {
                uint8_t *row = (uint8_t *)act[w] + (size_t)i * stride[w];
                g_quant(x + (int64_t)i * ldx, k, w ? 256 : 32, row, m > 1);
                if (w) act_fill_f(row, k);
            }
    int64_t total = seg_start[nseg], threads = g_workers + 1;
    int64_t chunk = total / (threads * 8);                     /* 8 chunks a thread: uneven cores even out */
    chunk = chunk < 4 ? 4 : chunk > MAX_CHUNK ? MAX_CHUNK : chunk;
    launch((job_t){.run = run_rows, .total = total, .chunk = chunk, .segs = segs, .nseg = nseg,
                   .seg_start = seg_start, .k = k, .m = m, .act = {act[0], act[1]},
                   .act_stride = {stride[0], stride[1]}, .y = y, .ldy = ldy, .alpha = alpha, .bias = bias,
                   .accumulate = accumulate, .next = next, .next_nseg = next_nseg,
                   .warm_epoch = atomic_load(&g_warm_epoch)});
    pthread_mutex_unlock(&g_call_mu);
    return 0;
}

int cg_linear(int nseg, const cg_seg *segs, int k, const float *x, int m, int64_t ldx, float *y, int64_t ldy) {
    return cg_linear_ex(nseg, segs, k, x, m, ldx, y, ldy, NULL, NULL, 0, NULL, 0);
}

/* ---- one decode step's attention ------------------------------------------------------------ */
static float *g_parts = NULL;
static size_t g_parts_size = 0;

static void run_attend(const job_t *j, int64_t start, int64_t end) {
    float scores[ATT_MAX_G * ATT_CHUNK], row[ATT_MAX_HD];
    for (int64_t t = start; t < end; t++) {
        int64_t head = t / j->n_chunks, c = t % j->n_chunks;
        int64_t p0 = j->lo + c * ATT_CHUNK, p1 = p0 + ATT_CHUNK < j->lo + j->n ? p0 + ATT_CHUNK : j->lo + j->n;
        float *part = j->parts + t * (int64_t)j->g * (j->hd + 2);
        size_t off = (size_t)(head * j->head_stride) * (j->bf16 ? 2 : 4);
        g_attend(j->q + head * j->g * j->hd, j->g, j->hd, j->scale, (const uint8_t *)j->kc + off, (const uint8_t *)j->vc + off,
                 j->bf16, p0, p1, scores, row, part, part + j->g, part + 2 * j->g);
    }
}

/* out[h, j, :] = softmax_p(q[h, j] . k[h, p] * scale) v[h, p] over positions p in [lo, lo + n)
 * of each key/value head h < nkv, for its g queries (q, out: [nkv][g][hd] float32).
 * k, v: [nkv] heads head_stride elements apart, rows hd apart, float32 or bfloat16 (kv_bf16).
 * Returns 0, or -1 for shapes it does not take (the caller then uses torch). */
int cg_attend(int nkv, int g, int hd, float scale, const float *q, const void *k, const void *v, int kv_bf16,
              int64_t head_stride, int64_t lo, int64_t n, float *out);

static void store_row(void *base, int bf16, int64_t index, const float *x, int hd) {
    if (!bf16) { memcpy((float *)base + index, x, (size_t)hd * 4); return; }
    uint16_t *h = (uint16_t *)base + index;
    for (int d = 0; d < hd; d++) {          /* to the nearest bfloat16, ties to even (as torch) */
        uint32_t b;
        memcpy(&b, &x[d], 4);
        h[d] = (b & 0x7fffffffu) > 0x7f800000u ? (uint16_t)((b >> 16) | 0x40) : (uint16_t)((b + 0x7fffu + ((b >> 16) & 1)) >> 16);
    }
}

/* As cg_attend, after writing the new position's keys and values (k_new, v_new: [nkv][hd]
 * float32) into slot `slot` of each head: the decode step's cache write and attention in one call. */
int cg_attend_new(int nkv, int g, int hd, float scale, const float *q, void *k, void *v, int kv_bf16,
                  int64_t head_stride, int64_t lo, int64_t n, float *out, const float *k_new, const float *v_new,
                  int64_t slot) {
    if (nkv < 1 || hd < 16 || hd > ATT_MAX_HD || slot < 0) return -1;
    for (int h = 0; h < nkv; h++) {
        store_row(k, kv_bf16, h * head_stride + slot * hd, k_new + (int64_t)h * hd, hd);
        store_row(v, kv_bf16, h * head_stride + slot * hd, v_new + (int64_t)h * hd, hd);
    }
    return cg_attend(nkv, g, hd, scale, q, k, v, kv_bf16, head_stride, lo, n, out);
}

int cg_attend(int nkv, int g, int hd, float scale, const float *q, const void *k, const void *v, int kv_bf16,
              int64_t head_stride, int64_t lo, int64_t n, float *out) {
    if (nkv < 1 || g < 1 || g > ATT_MAX_G || hd < 16 || hd > ATT_MAX_HD || hd % 16 || n < 1 || lo < 0) return -1;
    if (!g_path) cg_select(PATH_AUTO);
    int64_t n_chunks = (n + ATT_CHUNK - 1) / ATT_CHUNK, tasks = nkv * n_chunks, per = (int64_t)g * (hd + 2);
    pthread_mutex_lock(&g_call_mu);
    size_t bytes = (size_t)(tasks * per) * sizeof(float);
    if (bytes > g_parts_size) {
        free(g_parts);
        g_parts_size = bytes;
        g_parts = malloc(bytes);
        if (!g_parts) { g_parts_size = 0; pthread_mutex_unlock(&g_call_mu); return -2; }
    }
    launch((job_t){.run = run_attend, .total = tasks, .chunk = 1, .q = q, .kc = k, .vc = v, .bf16 = kv_bf16,
                   .g = g, .hd = hd, .scale = scale, .n_chunks = (int)n_chunks, .head_stride = head_stride, .lo = lo, .n = n,
                   .parts = g_parts});
    /* the chunks' pieces combined in chunk order */
    for (int h = 0; h < nkv; h++)
        for (int j = 0; j < g; j++) {
            float mx = -INFINITY, sum = 0.0f, *o = out + ((int64_t)h * g + j) * hd;
            for (int64_t c = 0; c < n_chunks; c++) {
                float mc = g_parts[(h * n_chunks + c) * per + j];
                mx = mc > mx ? mc : mx;
            }
            memset(o, 0, (size_t)hd * 4);
            for (int64_t c = 0; c < n_chunks; c++) {
                const float *part = g_parts + (h * n_chunks + c) * per;
                float w = expf(part[j] - mx);
                sum += part[g + j] * w;
                const float *acc = part + 2 * g + (int64_t)j * hd;
                for (int d = 0; d < hd; d++) o[d] += w * acc[d];
            }
            float inv = 1.0f / sum;
            for (int d = 0; d < hd; d++) o[d] *= inv;
        }
    pthread_mutex_unlock(&g_call_mu);
    return 0;
}

/* Windows builds export a module init; the library is loaded with ctypes, never imported */
void *PyInit__cgkernels(void) { return NULL; }
