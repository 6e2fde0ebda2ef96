/* arignote C backend: the runtime every generated program includes (what does not depend on the graph). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdio.h>
#include <pthread.h>
#include <unistd.h>

/* Vector variants of the math functions from glibc's libmvec, so that loops calling them vectorize
   (what <math.h> declares itself under -ffast-math, which would break NaN semantics here). */
#if defined(__x86_64__) && defined(__GLIBC__) && defined(ARI_VECMATH)
#define ARI_SIMD __attribute__((simd("notinbranch"), const, nothrow))
ARI_SIMD float expf(float); ARI_SIMD double exp(double); ARI_SIMD float logf(float); ARI_SIMD double log(double);
ARI_SIMD float sinf(float); ARI_SIMD double sin(double); ARI_SIMD float cosf(float); ARI_SIMD double cos(double);
ARI_SIMD float tanhf(float); ARI_SIMD double tanh(double); ARI_SIMD float powf(float, float); ARI_SIMD double pow(double, double);
ARI_SIMD float expm1f(float); ARI_SIMD double expm1(double); ARI_SIMD float log1pf(float); ARI_SIMD double log1p(double);
#endif

/* The independent lanes a reduction keeps over a contiguous run, each holding `bytes` of state: two
   vector registers' worth, so that two chains of operations run at once (one chain waits on the adder's
   latency: the float32 sum of squares of a 784 x 500 matrix, in float64, took 32 us in 8 lanes and 19 in
   16 under AVX-512; its maximum 25 and 15 us). More state than two registers spills to the stack (that
   sum in 32 lanes: 42 us; in 16 under AVX2: 69 us); 8 lanes at least, 16 at most. */
#ifdef __AVX512F__
#define ARI_VECTOR_BYTES 64
#else
#define ARI_VECTOR_BYTES 32
#endif
#define ARI_LANES(bytes) (2 * ARI_VECTOR_BYTES / (bytes) > 16 ? 16 : 2 * ARI_VECTOR_BYTES / (bytes) < 8 ? 8 : 2 * ARI_VECTOR_BYTES / (bytes))

typedef _Bool b1; typedef int8_t i8; typedef int16_t i16; typedef int32_t i32; typedef int64_t i64;
typedef uint8_t u8; typedef uint16_t u16; typedef uint32_t u32; typedef uint64_t u64;
typedef float f32; typedef double f64;
/* unsigned integers that may alias any type: a value's bits, masked without a branch */
typedef uint8_t __attribute__((__may_alias__)) ari_bits8; typedef uint16_t __attribute__((__may_alias__)) ari_bits16;
typedef uint32_t __attribute__((__may_alias__)) ari_bits32; typedef uint64_t __attribute__((__may_alias__)) ari_bits64;

/* An array: data, then shape and strides (in elements, not bytes) of its first ndim axes. */
typedef struct { char *data; int64_t shape[16]; int64_t strides[16]; } arr_t;

/* Reading NumPy arrays straight from their objects, so that a call marshals no Python: the layout of
   PyArrayObject_fields and of PyArray_Descr's first fields has been stable since NumPy 1.7 (checked
   when the backend loads; anything unusual is sent back to the slow path by returning 0). */
typedef struct { intptr_t refcnt; void *type; char *data; int nd; intptr_t *dims; intptr_t *strides; } ari_pyarray;
/* The type objects of numpy.ndarray, list and tuple (set when the module is loaded): an input that is
   not exactly an ndarray, or arguments not in a list or tuple, take the slow path. */
static const void *ari_ndarray_type, *ari_list_type, *ari_tuple_type;
void ari_set_types(intptr_t ndarray, intptr_t list, intptr_t tuple) {
    ari_ndarray_type = (const void *)ndarray; ari_list_type = (const void *)list; ari_tuple_type = (const void *)tuple;
}
/* The n items of a Python list or tuple, read as CPython lays them out (a list points to its items,
   a tuple holds them inline), so that Python passes all the arrays of a call as one pointer; NULL when
   seq is neither or has another length. */
typedef struct { intptr_t refcnt; const void *type; intptr_t size; } ari_pyvar;
static void *const *ari_items(const void *seq, intptr_t n) {
    const ari_pyvar *v = (const ari_pyvar *)seq;
    static void *const none[1] = {NULL};
    if (!v || !ari_list_type || v->size != n) return NULL;
    if (n == 0) return none;  /* an empty list has no item array */
    if (v->type == ari_list_type) return *(void *const *const *)((const char *)seq + sizeof(ari_pyvar));
    if (v->type == ari_tuple_type) return (void *const *)((const char *)seq + sizeof(ari_pyvar));
    return NULL;
}
static int ari_from_numpy(arr_t *a, const void *obj, int nd, int64_t isz, int type_num) {
    const ari_pyarray *p = (const ari_pyarray *)obj;
    if (p->type != ari_ndarray_type) return 0;
    const char *descr = *(char *const *)((const char *)obj + sizeof(ari_pyarray) + sizeof(void *));
    if (p->nd != nd || *(const int *)(descr + 28) != type_num || descr[26] == '>') return 0;
    a->data = p->data;
    for (int k = 0; k < nd; k++) {
        if (p->strides[k] % isz) return 0;
        a->shape[k] = p->dims[k]; a->strides[k] = p->strides[k] / isz;
    }
    return 1;
}
void ari_free(void *data);
/* Copy each small output into the NumPy array made for it (objs[j], NULL: keep the buffer), free it. */
void ari_collect(intptr_t *objs, arr_t *out, int n, int64_t *sizes) {
    for (int j = 0; j < n; j++) if (objs[j]) {
        memcpy(((ari_pyarray *)(void *)objs[j])->data, out[j].data, sizes[j]); ari_free(out[j].data);
    }
}
/* What ari_call reads besides its arguments, the same at every call of a program (CProgram.state): one
   argument instead of five, each costing some 50 ns through cffi */
typedef struct { arr_t *in; arr_t *out; char *err; int *where; int64_t *shapes; } ari_state;
/* Copy an output into the NumPy array Python made for it (obj), when that array has the output's
   shape (Python makes it from the last call's shape: a C-contiguous array of the output's dtype), and
   free the program's buffer: 1. Else 0, the buffer kept for Python to take (ari_call returns ARI_KEPT). */
#define ARI_KEPT (-2)
static int ari_deliver(const void *obj, arr_t *out, int nd, int64_t isz) {
    const ari_pyarray *p = (const ari_pyarray *)obj;
    if (!out->data || p->type != ari_ndarray_type || p->nd != nd) return 0;
    int64_t bytes = isz;
    for (int k = 0; k < nd; k++) {
        if (p->dims[k] != out->shape[k]) return 0;
        bytes *= out->shape[k];
    }
    memcpy(p->data, out->data, bytes); ari_free(out->data); out->data = NULL;
    return 1;
}
/* The shapes of the outputs, for Python: shapes[j * 16 + k]. */
static void ari_shapes(arr_t *out, int n, int64_t *shapes) {
    for (int j = 0; j < n; j++) memcpy(shapes + 16 * j, out[j].shape, sizeof(int64_t) * 16);
}

/* Run kernel(context, lo, hi) over [0, n) items of `per` elements each: split between the cores when
   there are enough elements to pay for starting threads. The threads take chunks (multiples of `align`
   items, about ARI_CHUNK elements) from a shared counter until none are left, so a thread that the
   system holds back (a busy machine) leaves its share to the others instead of making them wait.
   The threads are the program's crew (below). ARIGNOTE_THREADS caps their number. */
/* The program's crew: worker threads made on first use and kept, to which a parallel region hands its
   shares, instead of creating and joining threads for every region (30 us a region on a 2-vCPU
   virtual machine, about a dozen regions in a LeNet training step). A region is published by bumping
   a generation counter; a worker that ended its share polls the counter for ARI_POLL_NS, yielding the
   core between polls (a BLAS thread or another process that wants it gets it), then sleeps on a
   condition variable; the caller waits for the workers' shares the same way. Polling keeps a short
   wait off the futex: waking a sleeping thread costs tens of microseconds on a virtual machine, whose
   idle vCPU must be scheduled again. One region at a time: a caller that finds the crew busy (another
   thread running the program, or a region inside a region) runs every share itself. A forked child
   makes a crew of its own; ari_release_spares stops the crew before the program is unloaded. */
#include <sched.h>
#include <signal.h>
#include <time.h>
#ifndef ARI_POLL_NS
#define ARI_POLL_NS 500000
#endif
typedef void (*ari_share_fn)(void *, int);
static struct {
    pthread_mutex_t lock; pthread_cond_t wake, ended;
    pthread_t threads[8]; int made; pid_t pid;
    int64_t posted;  /* the generation of the region being run (workers poll it) */
    int64_t done;    /* workers that ended their share of it */
    int active;      /* threads 1 .. active run shares of it; the others only count themselves done */
    int sleepers, stop;
    ari_share_fn share; void *context;
} ari_crew = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER };
static pthread_mutex_t ari_crew_busy = PTHREAD_MUTEX_INITIALIZER;
static int64_t ari_now_ns(void) {
    struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}
/* Wait until *word == target: polling, then asleep on cond. */
static void ari_crew_await(int64_t *word, int64_t target, pthread_cond_t *cond) {
    int64_t deadline = 0;
    for (int polls = 0; __atomic_load_n(word, __ATOMIC_SEQ_CST) != target; polls++) {
        if ((polls & 15) == 15) {  /* the clock now and then: a poll is a yield, about a microsecond */
            int64_t now = ari_now_ns();
            if (!deadline) deadline = now + ARI_POLL_NS;
            else if (now > deadline) {
                pthread_mutex_lock(&ari_crew.lock);
                __atomic_add_fetch(&ari_crew.sleepers, 1, __ATOMIC_SEQ_CST);
                while (__atomic_load_n(word, __ATOMIC_SEQ_CST) != target) pthread_cond_wait(cond, &ari_crew.lock);
                __atomic_sub_fetch(&ari_crew.sleepers, 1, __ATOMIC_SEQ_CST);
                pthread_mutex_unlock(&ari_crew.lock);
                return;
            }
        }
        sched_yield();
    }
}
/* After a word changed: wake whoever sleeps on cond (a sleeper counts itself under the lock before it
   looks at the word, so a writer that saw no sleeper wrote before the sleeper looked). */
static void ari_crew_wake(pthread_cond_t *cond) {
    if (__atomic_load_n(&ari_crew.sleepers, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&ari_crew.lock); pthread_cond_broadcast(cond); pthread_mutex_unlock(&ari_crew.lock);
    }
}
static void *ari_crew_worker(void *arg) {
    int me = (int)(intptr_t)arg;
    sigset_t all; sigfillset(&all); pthread_sigmask(SIG_BLOCK, &all, NULL);  /* signals go to Python's threads */
    /* every region (and the stop) adds one to posted, and the next comes only once every worker is done */
    for (int64_t generation = 1;; generation++) {
        ari_crew_await(&ari_crew.posted, generation, &ari_crew.wake);
        if (__atomic_load_n(&ari_crew.stop, __ATOMIC_SEQ_CST)) return NULL;
        if (me <= ari_crew.active) ari_crew.share(ari_crew.context, me);
        __atomic_add_fetch(&ari_crew.done, 1, __ATOMIC_SEQ_CST);
        ari_crew_wake(&ari_crew.ended);
    }
}
/* Stop the crew and wait for its threads to leave: before the library is closed (registered with atexit,
   which glibc runs at dlclose for a library's handlers, whoever closes it, and at exit). */
static void ari_crew_stop(void) {
    if (ari_crew.pid != getpid() || !ari_crew.made) return;
    pthread_mutex_lock(&ari_crew.lock);
    __atomic_store_n(&ari_crew.stop, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&ari_crew.posted, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&ari_crew.wake);
    pthread_mutex_unlock(&ari_crew.lock);
    for (int t = 0; t < ari_crew.made; t++) pthread_join(ari_crew.threads[t], NULL);
    ari_crew.made = 0; ari_crew.stop = 0;
}

/* share(context, t) for t in [0, nt): t = 0 on this thread, the others on the crew's workers. */
static void ari_crew_run(ari_share_fn share, void *context, int nt) {
    if (nt > 8) nt = 8;
    if (nt <= 1 || pthread_mutex_trylock(&ari_crew_busy) != 0) {
        for (int t = 0; t < nt; t++) share(context, t);
        return;
    }
    if (ari_crew.pid != getpid()) {  /* first use, or a forked child: its parent's workers are not here */
        pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER; pthread_cond_t idle = PTHREAD_COND_INITIALIZER;
        ari_crew.lock = fresh; ari_crew.wake = idle; ari_crew.ended = idle;
        ari_crew.made = 0; ari_crew.sleepers = 0; ari_crew.stop = 0;
        ari_crew.pid = getpid();
    }
    if (!ari_crew.made) ari_crew.posted = 0;  /* workers about to be made count regions from 1 */
    static int registered = 0;  /* (kept across a fork: the child inherits the registration) */
    if (!registered) registered = atexit(ari_crew_stop) == 0;
    while (ari_crew.made < nt - 1 &&
           pthread_create(&ari_crew.threads[ari_crew.made], NULL, ari_crew_worker, (void *)(intptr_t)(ari_crew.made + 1)) == 0)
        ari_crew.made++;
    int active = ari_crew.made < nt - 1 ? ari_crew.made : nt - 1;
    ari_crew.share = share; ari_crew.context = context; ari_crew.active = active;
    __atomic_store_n(&ari_crew.done, 0, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&ari_crew.posted, 1, __ATOMIC_SEQ_CST);
    ari_crew_wake(&ari_crew.wake);
    share(context, 0);
    for (int t = active + 1; t < nt; t++) share(context, t);  /* threads that could not be made */
    ari_crew_await(&ari_crew.done, ari_crew.made, &ari_crew.ended);
    pthread_mutex_unlock(&ari_crew_busy);
}

typedef void (*ari_kernel)(void *, int64_t, int64_t);
typedef struct { ari_kernel kernel; void *context; int64_t n, chunk, next; } ari_work;
static void ari_worker_share(void *work, int thread) {
    ari_work *w = (ari_work *)work;
    (void)thread;
    for (;;) {
        int64_t lo = __atomic_fetch_add(&w->next, w->chunk, __ATOMIC_RELAXED);
        if (lo >= w->n) return;
        w->kernel(w->context, lo, lo + w->chunk < w->n ? lo + w->chunk : w->n);
    }
}
static int ari_nthreads = 0;
/* The threads a program may use: the cores online, or ARIGNOTE_THREADS; at most 8. */
static int ari_cores(void) {
    if (!ari_nthreads) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN); const char *env = getenv("ARIGNOTE_THREADS");
        if (env && atoi(env) > 0) cpus = atoi(env);
        ari_nthreads = cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    }
    return ari_nthreads;
}
/* kernel(context, lo, hi) over [0, n), each index `per` elements, in chunks of about ARI_CHUNK elements
   (starting at multiples of `align`) that the cores take in turn. Below `least` elements (the node's
   core.plan.Plan.parallel_min) it runs on this thread: starting threads would cost more than they save. */
#define ARI_CHUNK (1 << 16)
static void ari_parallel(ari_kernel kernel, void *context, int64_t n, int64_t per, int64_t align, int64_t least) {
    if (n <= 0) return;
    if (n * per < least || n < 2) { kernel(context, 0, n); return; }
    int nt = ari_cores();
    if (nt == 1) { kernel(context, 0, n); return; }
    int64_t chunk = (ARI_CHUNK / (per > 0 ? per : 1) + align - 1) / align * align;
    if (chunk < align) chunk = align;
    if (chunk * nt > n) chunk = ((n + nt - 1) / nt + align - 1) / align * align;  /* at least one chunk each */
    ari_work work = { kernel, context, n, chunk, 0 };
    ari_crew_run(ari_worker_share, &work, nt);  /* each thread takes chunks until none are left */
}

/* Tasks that call the BLAS themselves (blocks of images of a convolution: core.plan.Plan.image_threads):
   kernel(context, thread, lo, hi) runs tasks [lo, hi) as thread `thread` of nt (0 is this one), which
   owns its slice of the caller's scratch. The BLAS runs single-threaded meanwhile (ari_blas_solo,
   arignote.backends.blas: its own threads would take turns, one GEMM at a time). fixed = 1 gives
   thread t the tasks [n * t / nt, n * (t + 1) / nt) in one call (a sum over the tasks is then the
   same from run to run); else the threads take one task at a time from a shared counter. */
typedef void (*ari_task_kernel)(void *, int, int64_t, int64_t);
typedef struct { ari_task_kernel kernel; void *context; int64_t n, next; int nt, fixed; } ari_task_pool;
static void (*ari_blas_solo)(int) = NULL;
#ifndef ARI_IMAGE_THREADS_MIN
#define ARI_IMAGE_THREADS_MIN (1 << 22)
#endif
#ifndef ARI_PRODUCT_STORE_WORK
#define ARI_PRODUCT_STORE_WORK 16
#endif
/* How many threads tasks doing `work` multiply-adds in all get: 1 below ARI_IMAGE_THREADS_MIN, or when
   the BLAS's thread count cannot be set; else the cores, at most one per task. */
static int ari_task_threads(int64_t n, int64_t work) {
    if (!ari_blas_solo || work < ARI_IMAGE_THREADS_MIN || n < 2) return 1;
    int nt = ari_cores();
    return n < nt ? (int)n : nt;
}
static void ari_task_share(void *pool, int thread) {
    ari_task_pool *p = (ari_task_pool *)pool;
    if (p->fixed) { p->kernel(p->context, thread, p->n * thread / p->nt, p->n * (thread + 1) / p->nt); return; }
    for (;;) {
        int64_t i = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (i >= p->n) return;
        p->kernel(p->context, thread, i, i + 1);
    }
}
static void ari_tasks(ari_task_kernel kernel, void *context, int64_t n, int nt, int fixed) {
    if (n <= 0) return;
    if (nt <= 1 || !ari_blas_solo) { kernel(context, 0, 0, n); return; }
    if (nt > 8) nt = 8;
    ari_task_pool pool = { kernel, context, n, 0, nt, fixed };
    ari_blas_solo(1);
    ari_crew_run(ari_task_share, &pool, nt);  /* thread t owns its slice of the scratch, whoever runs it */
    ari_blas_solo(0);
}

/* Softmax rows shorter than ARI_SHORT_ROW run in blocks of ARI_ROWS_SCRATCH elements, their exps one
   flat loop (backends/c/nnet.py) */
#define ARI_SHORT_ROW 64
#define ARI_ROWS_SCRATCH 1024

/* Leave the program with an error: code 1 ValueError, 2 IndexError, 3 MemoryError. err holds ARI_ERR
   bytes (CProgram.err); *where is the failing node's index in its graph, -1 when no node is to blame. */
#define ARI_ERR 2048
#define FAIL(code, node, ...) do { snprintf(err, ARI_ERR, __VA_ARGS__); *where = (node); rc = (code); goto done; } while (0)
/* ari_fast (a call without Python's lock) fails into these, one pair per thread; Python, on the same
   thread, then copies them into CProgram.err and .where with ari_take_error. */
static __thread char ari_fast_err[ARI_ERR];
static __thread int ari_fast_where;
void ari_take_error(char *err, int *where) { memcpy(err, ari_fast_err, ARI_ERR); *where = ari_fast_where; }


/* BLAS (Fortran interface, column-major), set once when the module is loaded: NumPy's own OpenBLAS
   when it can be found (64-bit integers), else SciPy's (32-bit). ari_gemm/ari_gemv take int64 sizes and
   call through the width the library has, so the generated source is the same either way; they return
   nonzero when a size does not fit a 32-bit BLAS. */
typedef void (*ari_gemm32_t)(const char *, const char *, const int *, const int *, const int *, const void *, const void *,
                             const int *, const void *, const int *, const void *, void *, const int *);
typedef void (*ari_gemm64_t)(const char *, const char *, const int64_t *, const int64_t *, const int64_t *, const void *,
                             const void *, const int64_t *, const void *, const int64_t *, const void *, void *, const int64_t *);
typedef void (*ari_gemv32_t)(const char *, const int *, const int *, const void *, const void *, const int *, const void *,
                             const int *, const void *, void *, const int *);
typedef void (*ari_gemv64_t)(const char *, const int64_t *, const int64_t *, const void *, const void *, const int64_t *,
                             const void *, const int64_t *, const void *, void *, const int64_t *);
static void *ari_gemm_fn[2], *ari_gemv_fn[2];  /* [0] single, [1] double precision */
static int ari_ilp64;
void ari_set_blas(void *s, void *d, void *sv, void *dv, int ilp64, void *solo) {
    ari_gemm_fn[0] = s; ari_gemm_fn[1] = d; ari_gemv_fn[0] = sv; ari_gemv_fn[1] = dv; ari_ilp64 = ilp64;
    ari_blas_solo = (void (*)(int))solo;
}
#define ARI_FITS32(x) ((x) <= 2147483647LL)
static int ari_gemm(int dbl, char ta, char tb, int64_t m, int64_t n, int64_t k, const void *alpha, const void *a, int64_t lda,
                    const void *b, int64_t ldb, const void *beta, void *c, int64_t ldc) {
    if (ari_ilp64) { ((ari_gemm64_t)ari_gemm_fn[dbl])(&ta, &tb, &m, &n, &k, alpha, a, &lda, b, &ldb, beta, c, &ldc); return 0; }
    if (!(ARI_FITS32(m) && ARI_FITS32(n) && ARI_FITS32(k) && ARI_FITS32(lda) && ARI_FITS32(ldb) && ARI_FITS32(ldc))) return 1;
    int M = (int)m, N = (int)n, K = (int)k, LA = (int)lda, LB = (int)ldb, LC = (int)ldc;
    ((ari_gemm32_t)ari_gemm_fn[dbl])(&ta, &tb, &M, &N, &K, alpha, a, &LA, b, &LB, beta, c, &LC);
    return 0;
}
static int ari_gemv(int dbl, char t, int64_t m, int64_t n, const void *alpha, const void *a, int64_t lda,
                    const void *x, int64_t incx, const void *beta, void *y, int64_t incy) {
    if (ari_ilp64) { ((ari_gemv64_t)ari_gemv_fn[dbl])(&t, &m, &n, alpha, a, &lda, x, &incx, beta, y, &incy); return 0; }
    if (!(ARI_FITS32(m) && ARI_FITS32(n) && ARI_FITS32(lda) && ARI_FITS32(incx) && ARI_FITS32(incy))) return 1;
    int M = (int)m, N = (int)n, LA = (int)lda, IX = (int)incx, IY = (int)incy;
    ((ari_gemv32_t)ari_gemv_fn[dbl])(&t, &M, &N, alpha, a, &LA, x, &IX, beta, y, &IY);
    return 0;
}

/* Array buffers. Each starts ARI_HEAD bytes into a malloc'd block whose head holds its capacity. A
   large buffer that is freed waits in a few spare slots for the next allocation of about its size, so
   that a program called again and again reuses its memory: memory that glibc hands back to the system
   and maps again costs page faults, and unmapping it stops the other cores for a TLB flush (a training
   step of a small MLP took twice as long, depending on glibc's state). Slots are taken and filled
   atomically: buffers are freed by whichever thread drops the NumPy array that wraps them. */
#define ARI_HEAD 64
#define ARI_SPARES 32
#define ARI_SPARE_MIN (1 << 17)        /* smaller buffers: glibc's own free lists serve them well */
#define ARI_SPARE_BYTES (1LL << 30)   /* at most this much memory waits in the slots */
static void *ari_spare[ARI_SPARES];
static int64_t ari_spare_bytes;
static char *ari_buffer(size_t bytes) {
    if (bytes >= ARI_SPARE_MIN)
        for (int i = 0; i < ARI_SPARES; i++) {
            char *p = __atomic_load_n((char **)&ari_spare[i], __ATOMIC_ACQUIRE);
            if (!p || *(size_t *)p < bytes || *(size_t *)p > 2 * bytes) continue;
            if (__atomic_compare_exchange_n((char **)&ari_spare[i], &p, NULL, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                __atomic_fetch_sub(&ari_spare_bytes, (int64_t)*(size_t *)p, __ATOMIC_RELAXED);
                return p + ARI_HEAD;
            }
        }
    char *p = malloc(bytes + ARI_HEAD);
    if (!p) return NULL;
    *(size_t *)p = bytes;
    return p + ARI_HEAD;
}
void ari_free(void *data) {
    if (!data) return;
    char *p = (char *)data - ARI_HEAD;
    int64_t cap = (int64_t)*(size_t *)p;
    if (cap >= ARI_SPARE_MIN && __atomic_add_fetch(&ari_spare_bytes, cap, __ATOMIC_RELAXED) <= ARI_SPARE_BYTES) {
        for (int i = 0; i < ARI_SPARES; i++) {
            void *empty = NULL;
            if (__atomic_compare_exchange_n(&ari_spare[i], &empty, p, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) return;
        }
    }
    if (cap >= ARI_SPARE_MIN) __atomic_fetch_sub(&ari_spare_bytes, cap, __ATOMIC_RELAXED);
    free(p);
}

/* Products of few rows: C (n x m, rows ldo apart) = alpha A . B + beta C (C unread when beta is 0) for
   3 <= n <= ARI_FEW_ROWS and a B of unit column stride with at least a panel (two vectors) of columns.
   A block of up to ARI_ROW_BLOCK rows by a panel of columns stays in registers while the sum runs down
   k, B read in place, each panel once for every block of rows. OpenBLAS packs all of B on every call,
   which with 20 rows costs more than the multiply-adds: mlp-train-b20's (20 x 784) . (784 x 500)
   float32 product took 90 us on OpenBLAS's two threads with its AVX-512 kernels (116 us with its AVX2
   ones) and 63 us on one thread this way. It stays on one thread: the crew's workers would meet
   OpenBLAS's, which spin for a while after the graph's other products (the step took 0.71-0.79 x
   NumPy's time on two threads, 0.49-0.52 on one). */
#if defined(__AVX512F__)
#define ARI_VBYTES 64
#define ARI_ROW_BLOCK 10  /* 20 accumulators of the 32 registers */
#define ARI_FMA_f32(a, b, c) __builtin_ia32_vfmaddps512_mask(a, b, c, (unsigned short)-1, 4)
#define ARI_FMA_f64(a, b, c) __builtin_ia32_vfmaddpd512_mask(a, b, c, (unsigned char)-1, 4)
#elif defined(__FMA__)
#define ARI_VBYTES 32
#define ARI_ROW_BLOCK 6   /* 12 accumulators of the 16 registers */
#define ARI_FMA_f32(a, b, c) __builtin_ia32_vfmaddps256(a, b, c)
#define ARI_FMA_f64(a, b, c) __builtin_ia32_vfmaddpd256(a, b, c)
#else
#define ARI_VBYTES 16
#define ARI_ROW_BLOCK 6
#define ARI_FMA_f32(a, b, c) ((a) * (b) + (c))
#define ARI_FMA_f64(a, b, c) ((a) * (b) + (c))
#endif
/* two blocks of rows at most: more rows are faster through OpenBLAS (32 rows took 101 us there, 142 us
   here); so are 2 rows (22 us against 38: a block computes ARI_ROW_BLOCK rows whatever it keeps) */
#define ARI_FEW_ROWS (2 * ARI_ROW_BLOCK)
#define ARI_KC 384                  /* a long sum's chunks: at most this many terms */
#define ARI_CHUNK_BYTES (2 << 20)   /* chunked once A's rows take more bytes than this (about L2) */
#define ARI_NC 1024                 /* the columns of B packed at a time */
#define ARI_COPY_ROWS 64            /* a B without unit column stride goes to the blocks copied from */
#define ARI_COPY_BYTES (64 << 10)   /* this many rows of A, when it takes at most this many bytes */
#ifndef ARI_OWN_ROWS
#define ARI_OWN_ROWS ARI_FEW_ROWS
#endif
#define ARI_FEW_ROWS_PRODUCT(T)                                                                     \
typedef T ari_vec_##T __attribute__((vector_size(ARI_VBYTES), aligned(sizeof(T))));                 \
enum { ari_panel_##T = 2 * ARI_VBYTES / sizeof(T) };  /* the columns of a block: two vectors */     \
/* `rows` (at most ARI_ROW_BLOCK) rows of C: the last `cols` of the panel's columns from b on */    \
static void ari_row_block_##T(int64_t rows, int64_t k, const T *a, int64_t as0, int64_t as1, const T *b, \
                              int64_t bs0, T *c, int64_t ldo, int64_t cols, T alpha, T beta) {      \
    enum { L = ari_panel_##T / 2 };                                                                 \
    const T *row[ARI_ROW_BLOCK];                                                                    \
    for (int r = 0; r < ARI_ROW_BLOCK; r++) row[r] = a + (r < rows ? r : rows - 1) * as0;  /* a short block repeats its last row */ \
    ari_vec_##T acc[ARI_ROW_BLOCK][2];                                                              \
    for (int r = 0; r < ARI_ROW_BLOCK; r++) acc[r][0] = acc[r][1] = (ari_vec_##T){0};               \
    for (int64_t l = 0; l < k; l++) {                                                               \
        ari_vec_##T b0, b1;                                                                         \
        memcpy(&b0, b + l * bs0, sizeof b0); memcpy(&b1, b + l * bs0 + L, sizeof b1);               \
        _Pragma("GCC unroll 16")                                                                    \
        for (int r = 0; r < ARI_ROW_BLOCK; r++) {                                                   \
            ari_vec_##T s = row[r][l * as1] - (ari_vec_##T){0};  /* a broadcast: x - 0 is x, -0 too */ \
            acc[r][0] = ARI_FMA_##T(s, b0, acc[r][0]); acc[r][1] = ARI_FMA_##T(s, b1, acc[r][1]);   \
        }                                                                                           \
    }                                                                                               \
    if (cols == 2 * L) {  /* a whole panel, straight from the registers (short sums spend much time here) */ \
        _Pragma("GCC unroll 16")                                                                    \
        for (int r = 0; r < ARI_ROW_BLOCK; r++) if (r < rows) {                                     \
            T *out = c + r * ldo;                                                                   \
            ari_vec_##T s0 = acc[r][0] * alpha, s1 = acc[r][1] * alpha, o0, o1;                     \
            if (beta != 0) { memcpy(&o0, out, sizeof o0); memcpy(&o1, out + L, sizeof o1); s0 = beta * o0 + s0; s1 = beta * o1 + s1; } \
            memcpy(out, &s0, sizeof s0); memcpy(out + L, &s1, sizeof s1);                           \
        }                                                                                           \
        return;                                                                                     \
    }                                                                                               \
    T sums[ARI_ROW_BLOCK][2 * L];  /* stored by constant indices: acc stays in registers in the loop */ \
    _Pragma("GCC unroll 16")                                                                        \
    for (int r = 0; r < ARI_ROW_BLOCK; r++) { memcpy(sums[r], &acc[r][0], sizeof acc[r][0]); memcpy(sums[r] + L, &acc[r][1], sizeof acc[r][1]); } \
    for (int64_t r = 0; r < rows; r++) {                                                            \
        T *out = c + r * ldo;                                                                       \
        if (beta == 0) for (int64_t j = 2 * L - cols; j < 2 * L; j++) out[j] = alpha * sums[r][j];  \
        else for (int64_t j = 2 * L - cols; j < 2 * L; j++) out[j] = beta * out[j] + alpha * sums[r][j]; \
    }                                                                                               \
}                                                                                                   \
/* Panel after panel of columns (a short last one computed whole, overlapping the one before, and only \
   its own columns written), the rows in blocks of equal size. A long sum over rows of A that outgrow \
   ARI_CHUNK_BYTES runs in chunks of at most ARI_KC terms: up to ARI_NC columns of B over a chunk are \
   copied packed, panel after panel, and each block of A's rows over it too, so that the packed      \
   panels stay in L2 across the blocks and the block in L1 across the panels (a 2048 x 2048 float32   \
   product ran at 110 GFLOP/s on one core unchunked, 210 in chunks). */                              \
static void ari_few_rows_##T(int64_t n, int64_t m, int64_t k, const T *pa, int64_t as0, int64_t as1, const T *pb, \
                             int64_t bs0, T *po, int64_t ldo, T alpha, T beta) {                    \
    const int64_t P = ari_panel_##T, blocks = (n + ARI_ROW_BLOCK - 1) / ARI_ROW_BLOCK, per = (n + blocks - 1) / blocks; \
    const int64_t chunks = (k + ARI_KC - 1) / ARI_KC, kc = (k + chunks - 1) / chunks;               \
    const int64_t nc = m < ARI_NC ? m : ARI_NC;                                                     \
    T *slab = chunks > 1 && n * k * (int64_t)sizeof(T) > ARI_CHUNK_BYTES                            \
        ? (T *)ari_buffer(sizeof(T) * kc * P * ((nc + P - 1) / P)) : NULL;  /* reused from call to call */ \
    if (!slab) {  /* a short sum (or no memory for the packed copy): B read in place */             \
        for (int64_t j0 = 0; j0 < m; j0 += P) {                                                     \
            int64_t cols = m - j0 < P ? m - j0 : P, start = j0 + cols - P;                          \
            for (int64_t i0 = 0; i0 < n; i0 += per)                                                 \
                ari_row_block_##T(n - i0 < per ? n - i0 : per, k, pa + i0 * as0, as0, as1, pb + start, bs0, \
                                  po + i0 * ldo + start, ldo, cols, alpha, beta);                   \
        }                                                                                           \
        return;                                                                                     \
    }                                                                                               \
    T block[ARI_KC * ARI_ROW_BLOCK] __attribute__((aligned(64)));                                   \
    for (int64_t l0 = 0; l0 < k; l0 += kc) {                                                        \
        const int64_t terms = k - l0 < kc ? k - l0 : kc;                                            \
        const T scale = l0 ? 1 : beta;  /* later chunks add to the first */                        \
        for (int64_t c0 = 0; c0 < m; c0 += nc) {                                                    \
            const int64_t c1 = m - c0 < nc ? m : c0 + nc, panels = (c1 - c0 + P - 1) / P;           \
            for (int64_t q = 0; q < panels; q++) {                                                  \
                int64_t j0 = c0 + q * P, start = j0 + P <= c1 ? j0 : c1 - P;                        \
                for (int64_t l = 0; l < terms; l++) memcpy(slab + (q * kc + l) * P, pb + (l0 + l) * bs0 + start, sizeof(T) * P); \
            }                                                                                       \
            for (int64_t i0 = 0; i0 < n; i0 += per) {                                               \
                const int64_t rows = n - i0 < per ? n - i0 : per;                                   \
                for (int64_t l = 0; l < terms; l++) for (int64_t r = 0; r < rows; r++)              \
                    block[l * rows + r] = pa[(i0 + r) * as0 + (l0 + l) * as1];                      \
                for (int64_t q = 0; q < panels; q++) {                                              \
                    int64_t j0 = c0 + q * P, cols = c1 - j0 < P ? c1 - j0 : P, start = j0 + cols - P; \
                    ari_row_block_##T(rows, terms, block, 1, rows, slab + q * kc * P, P,            \
                                      po + i0 * ldo + start, ldo, cols, alpha, scale);              \
                }                                                                                   \
            }                                                                                       \
        }                                                                                           \
    }                                                                                               \
    ari_free(slab);                                                                                 \
}
ARI_FEW_ROWS_PRODUCT(f32)
ARI_FEW_ROWS_PRODUCT(f64)

/* Few columns (3 to one vector's worth: a softmax layer's 10 classes) of a product of many rows: B is
   copied one vector wide, its m columns last and zeros before them, and blocks of up to
   ARI_NARROW_BLOCK rows keep one vector each in the registers while the sum runs down k. A panel of
   two vectors would compute three times the columns wanted; OpenBLAS took 74 us for MLP training's
   (500 x 500) . (500 x 10) on one core, this 45-50. */
#define ARI_NARROW_BLOCK (2 * ARI_ROW_BLOCK)
#define ARI_NARROW_PRODUCT(T)                                                                       \
static void ari_narrow_block_##T(int64_t rows, int64_t k, const T *a, int64_t as0, int64_t as1, const T *packed, \
                                 T *c, int64_t ldo, int64_t m, T alpha, T beta) {                   \
    enum { L = ari_panel_##T / 2 };                                                                 \
    const T *row[ARI_NARROW_BLOCK];                                                                 \
    for (int r = 0; r < ARI_NARROW_BLOCK; r++) row[r] = a + (r < rows ? r : rows - 1) * as0;        \
    ari_vec_##T acc[ARI_NARROW_BLOCK];                                                              \
    for (int r = 0; r < ARI_NARROW_BLOCK; r++) acc[r] = (ari_vec_##T){0};                           \
    for (int64_t l = 0; l < k; l++) {                                                               \
        ari_vec_##T b0;                                                                             \
        memcpy(&b0, packed + l * L, sizeof b0);                                                     \
        _Pragma("GCC unroll 32")                                                                    \
        for (int r = 0; r < ARI_NARROW_BLOCK; r++)                                                  \
            acc[r] = ARI_FMA_##T(row[r][l * as1] - (ari_vec_##T){0}, b0, acc[r]);                  \
    }                                                                                               \
    T sums[ARI_NARROW_BLOCK][L];                                                                    \
    _Pragma("GCC unroll 32")                                                                        \
    for (int r = 0; r < ARI_NARROW_BLOCK; r++) memcpy(sums[r], &acc[r], sizeof acc[r]);             \
    for (int64_t r = 0; r < rows; r++) {                                                            \
        T *out = c + r * ldo; const T *sum = sums[r] + L - m;                                       \
        if (beta == 0) for (int64_t j = 0; j < m; j++) out[j] = alpha * sum[j];                     \
        else for (int64_t j = 0; j < m; j++) out[j] = beta * out[j] + alpha * sum[j];               \
    }                                                                                               \
}                                                                                                   \
/* A small B whose columns are not of unit stride (x . W^T) copied for the blocks: each element then  \
   serves ARI_COPY_ROWS rows or more. The copies live in the frames of functions of their own: one in \
   ari_matmul's frame, on every product's call and thread, slowed MLP training's big products by 25%. */ \
static __attribute__((noinline)) void ari_copied_##T(int64_t n, int64_t m, int64_t k, const T *pa, int64_t as0, int64_t as1, \
                                                     const T *pb, int64_t bs0, int64_t bs1, T *po, int64_t ldo, T alpha, T beta) { \
    T packed[ARI_COPY_BYTES / sizeof(T)] __attribute__((aligned(64)));                              \
    for (int64_t l = 0; l < k; l++) for (int64_t j = 0; j < m; j++) packed[l * m + j] = pb[l * bs0 + j * bs1]; \
    ari_few_rows_##T(n, m, k, pa, as0, as1, packed, m, po, ldo, alpha, beta);                       \
}                                                                                                   \
/* C = alpha A . B + beta C for 3 <= m <= L columns, k * L elements of B fitting ARI_COPY_BYTES */   \
static __attribute__((noinline)) void ari_narrow_##T(int64_t n, int64_t m, int64_t k, const T *pa, int64_t as0, int64_t as1, const T *pb, \
                           int64_t bs0, int64_t bs1, T *po, int64_t ldo, T alpha, T beta) {          \
    enum { L = ari_panel_##T / 2 };                                                                 \
    T packed[ARI_COPY_BYTES / sizeof(T)] __attribute__((aligned(64)));                              \
    for (int64_t l = 0; l < k; l++) {                                                               \
        for (int64_t j = 0; j < L - m; j++) packed[l * L + j] = 0;                                  \
        for (int64_t j = 0; j < m; j++) packed[l * L + L - m + j] = pb[l * bs0 + j * bs1];          \
    }                                                                                               \
    const int64_t blocks = (n + ARI_NARROW_BLOCK - 1) / ARI_NARROW_BLOCK, per = (n + blocks - 1) / blocks; \
    for (int64_t i0 = 0; i0 < n; i0 += per)                                                         \
        ari_narrow_block_##T(n - i0 < per ? n - i0 : per, k, pa + i0 * as0, as0, as1, packed, po + i0 * ldo, ldo, m, alpha, beta); \
}
ARI_NARROW_PRODUCT(f32)
ARI_NARROW_PRODUCT(f64)

/* C = A . B for float (dbl = 0) or double (dbl = 1) matrices: A (n x k) and B (k x m) given by their
   data and strides (in elements, any layout), C (n x m) with unit column stride and rows ldo apart (m
   for a C-contiguous one). BLAS is column-major, so it computes
   C^T (m x n) = B^T (m x k) . A^T (k x n): each operand is passed as it lies when it has a unit stride
   along one axis (transposed or not), else copied packed first; a row vector times a matrix is a gemv.
   Returns 0, 1 when a size does not fit a 32-bit BLAS, 3 when out of memory. */
#define ARI_MATMUL(T, DBL)                                                                           \
static int ari_matmul_##T(int64_t n, int64_t m, int64_t k, const T *pa, int64_t as0, int64_t as1,      \
                          const T *pb, int64_t bs0, int64_t bs1, T *po, int64_t ldo, T alpha, T beta) { \
    if (n * m * k == 0 || k < 1) {                                                                  \
        for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < m; j++)                             \
            po[i * ldo + j] = beta == 0 ? 0 : beta * po[i * ldo + j];                               \
        return 0;                                                                                   \
    }                                                                                               \
    if (n >= 3 && n <= ARI_OWN_ROWS && bs1 == 1 && m >= ari_panel_##T) {                           \
        ari_few_rows_##T(n, m, k, pa, as0, as1, pb, bs0, po, ldo, alpha, beta);                     \
        return 0;                                                                                   \
    }                                                                                               \
    if (n >= ARI_COPY_ROWS && n <= ARI_OWN_ROWS && m >= ari_panel_##T                               \
        && k * m <= ARI_COPY_BYTES / (int64_t)sizeof(T)) {                                          \
        ari_copied_##T(n, m, k, pa, as0, as1, pb, bs0, bs1, po, ldo, alpha, beta);                  \
        return 0;                                                                                   \
    }                                                                                               \
    if (m >= 3 && m <= ARI_OWN_ROWS && n >= ari_panel_##T && as0 == 1) {                           \
        /* few columns and an A of unit row stride: C^T = B^T A^T by the blocks, A^T read in place, */ \
        /* into a scratch (m rows of n), then added to C (a softmax layer's weight gradient) */    \
        T *turned = (T *)ari_buffer(sizeof(T) * m * n);                                             \
        if (!turned) return 3;                                                                      \
        ari_few_rows_##T(m, n, k, pb, bs1, bs0, pa, as1, turned, n, 1, 0);                          \
        for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < m; j++)                             \
            po[i * ldo + j] = (beta == 0 ? 0 : beta * po[i * ldo + j]) + alpha * turned[j * n + i]; \
        ari_free(turned);                                                                           \
        return 0;                                                                                   \
    }                                                                                               \
    if (m >= 3 && m <= ari_panel_##T / 2 && n >= ARI_COPY_ROWS && n <= ARI_OWN_ROWS                \
        && k * (ari_panel_##T / 2) <= ARI_COPY_BYTES / (int64_t)sizeof(T)) {                        \
        ari_narrow_##T(n, m, k, pa, as0, as1, pb, bs0, bs1, po, ldo, alpha, beta);                   \
        return 0;                                                                                   \
    }                                                                                               \
    T *ca = NULL, *cb = NULL; char ta, tb; int64_t lda, ldb;                                        \
    if ((as1 == 1 || k == 1) && as0 >= k && n > 0 && (n == 1 || as0 > 0)) { ta = 'N'; lda = n == 1 ? k : as0; } \
    else if ((as0 == 1 || n == 1) && as1 >= n && as1 > 0) { ta = 'T'; lda = as1; }                 \
    else { ca = malloc(sizeof(T) * n * k); if (!ca) return 3;                                       \
           for (int64_t i = 0; i < n; i++) for (int64_t l = 0; l < k; l++) ca[i * k + l] = pa[i * as0 + l * as1]; \
           pa = ca; ta = 'N'; lda = k; }                                                            \
    if ((bs1 == 1 || m == 1) && bs0 >= m && (k == 1 || bs0 > 0)) { tb = 'N'; ldb = k == 1 ? m : bs0; } \
    else if ((bs0 == 1 || k == 1) && bs1 >= k && bs1 > 0) { tb = 'T'; ldb = bs1; }                 \
    else { cb = malloc(sizeof(T) * k * m); if (!cb) { free(ca); return 3; }                         \
           for (int64_t l = 0; l < k; l++) for (int64_t j = 0; j < m; j++) cb[l * m + j] = pb[l * bs0 + j * bs1]; \
           pb = cb; tb = 'N'; ldb = m; }                                                            \
    if (lda < 1) lda = 1; if (ldb < 1) ldb = 1;                                                     \
    int big;                                                                                        \
    if (n == 1 && tb == 'N')  /* row vector times matrix: gemv on B^T */                            \
        big = ari_gemv(DBL, 'N', m, k, &alpha, pb, ldb, pa, ta == 'N' ? 1 : lda, &beta, po, 1);     \
    else                                                                                            \
        big = ari_gemm(DBL, tb, ta, m, n, k, &alpha, pb, ldb, pa, lda, &beta, po, ldo);             \
    free(ca); free(cb);                                                                             \
    return big ? 1 : 0;                                                                             \
}
ARI_MATMUL(f32, 0)
ARI_MATMUL(f64, 1)
/* inlined, so that a program whose products have one dtype compiles only that dtype's code (gcc drops
   the other's: the few-rows blocks made a program with a product 0.04 s slower to compile otherwise) */
static inline __attribute__((always_inline)) int ari_matmul(int dbl, int64_t n, int64_t m, int64_t k, const void *a,
                      int64_t as0, int64_t as1, const void *b, int64_t bs0, int64_t bs1, void *c) {
    return dbl ? ari_matmul_f64(n, m, k, (const f64 *)a, as0, as1, (const f64 *)b, bs0, bs1, (f64 *)c, m, 1, 0)
               : ari_matmul_f32(n, m, k, (const f32 *)a, as0, as1, (const f32 *)b, bs0, bs1, (f32 *)c, m, 1, 0);
}
/* c (n, m, rows ldo apart) = beta c + alpha a b (gemm). BLAS reads no c when beta is 0 and no product
   when alpha is 0; NumPy's beta * c + alpha * (a b) keeps their NaN there, so those two cases scale or
   add by loops, the product in a buffer of its own. 3: out of memory, 1: a size BLAS cannot take. */
#define ARI_GEMM_SCALED(T)                                                                          \
static int ari_matmul_scaled_##T(int64_t n, int64_t m, int64_t k, const T *pa, int64_t as0, int64_t as1, \
                                 const T *pb, int64_t bs0, int64_t bs1, T *pc, int64_t ldo, T alpha, T beta) { \
    if (alpha != 0 && beta != 0) return ari_matmul_##T(n, m, k, pa, as0, as1, pb, bs0, bs1, pc, ldo, alpha, beta); \
    if (alpha != 0) {  /* beta 0: c's NaN and infinities stay, times 0 */                          \
        for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < m; j++) pc[i * ldo + j] *= beta;    \
        return ari_matmul_##T(n, m, k, pa, as0, as1, pb, bs0, bs1, pc, ldo, alpha, 1);              \
    }                                                                                               \
    T *p = malloc(sizeof(T) * (n * m > 0 ? n * m : 1)); if (!p) return 3;                           \
    int rc = ari_matmul_##T(n, m, k, pa, as0, as1, pb, bs0, bs1, p, m, 1, 0);                       \
    for (int64_t i = 0; i < n; i++) for (int64_t j = 0; j < m; j++)                                 \
        pc[i * ldo + j] = beta * pc[i * ldo + j] + alpha * p[i * m + j];                            \
    free(p);                                                                                        \
    return rc;                                                                                      \
}
ARI_GEMM_SCALED(f32)
ARI_GEMM_SCALED(f64)

/* A product of core.plan.Plan.product_threads (a graph whose BLAS stays on one core): C = beta C + alpha
   A . B (scaled: ari_matmul_scaled's rules; else beta 0, alpha 1, as ari_matmul) with the columns of B
   and C shared out between threads as ari_tasks (one share each, starting at multiples of 32 columns,
   whole panels of the register blocks), once n * m * (k + ARI_PRODUCT_STORE_WORK) reaches
   ARI_IMAGE_THREADS_MIN multiply-adds (core.plan.PRODUCT_STORE_WORK: a result's stores count).
   Each share runs its own product (the register blocks, or the BLAS packing its part of B and all of
   A): two threads on the second dense layer of LeNet take 0.52-0.60 ms against 0.80-0.95 ms on one
   core. Returns the first failing share's code (1 or 3), else 0. */
typedef struct { int dbl, scaled, tasks, rc; int64_t n, m, k, as0, as1, bs0, bs1; const void *a, *b; void *c; double alpha, beta; } ari_product_job;
static void ari_product_share(void *context, int thread, int64_t lo, int64_t hi) {
    ari_product_job *job = (ari_product_job *)context; (void)thread;
    for (int64_t t = lo; t < hi; t++) {
        int64_t panels = (job->m + 31) / 32, j0 = panels * t / job->tasks * 32, j1 = panels * (t + 1) / job->tasks * 32;
        if (j1 > job->m) j1 = job->m;
        if (j1 <= j0) continue;
        int rc;
        if (job->dbl) rc = (job->scaled ? ari_matmul_scaled_f64 : ari_matmul_f64)(job->n, j1 - j0, job->k, (const f64 *)job->a, job->as0, job->as1,
                               (const f64 *)job->b + j0 * job->bs1, job->bs0, job->bs1, (f64 *)job->c + j0, job->m, (f64)job->alpha, (f64)job->beta);
        else rc = (job->scaled ? ari_matmul_scaled_f32 : ari_matmul_f32)(job->n, j1 - j0, job->k, (const f32 *)job->a, job->as0, job->as1,
                               (const f32 *)job->b + j0 * job->bs1, job->bs0, job->bs1, (f32 *)job->c + j0, job->m, (f32)job->alpha, (f32)job->beta);
        if (rc) __atomic_store_n(&job->rc, rc, __ATOMIC_RELAXED);
    }
}
static int ari_matmul_columns(int dbl, int scaled, int64_t n, int64_t m, int64_t k, const void *a, int64_t as0, int64_t as1,
                              const void *b, int64_t bs0, int64_t bs1, void *c, double alpha, double beta) {
    int nt = ari_task_threads((m + 31) / 32, n * m * (k + ARI_PRODUCT_STORE_WORK));
    ari_product_job job = { dbl, scaled, nt, 0, n, m, k, as0, as1, bs0, bs1, a, b, c, alpha, beta };
    ari_tasks(ari_product_share, &job, nt, nt, 1);
    return job.rc;
}

/* Stop the crew and free the spare buffers: called before the program is unloaded (build.py), when
   nothing runs it. */
void ari_release_spares(void) {
    ari_crew_stop();
    for (int i = 0; i < ARI_SPARES; i++) {
        void *p = __atomic_exchange_n(&ari_spare[i], NULL, __ATOMIC_ACQ_REL);
        if (p) { __atomic_fetch_sub(&ari_spare_bytes, (int64_t)*(size_t *)p, __ATOMIC_RELAXED); free(p); }
    }
}
/* Sizes. Every size a program computes from values (a shape read from an input, repeat counts, joined
   axes, a loop's rows) is added and multiplied with overflow checks, never wrapped around: a wrapped
   size would allocate a small buffer that the loops then overrun. NumPy's rule for a new shape: no
   negative size, and the nonzero sizes times the item size fit in an int64 (NumPy's "array is too
   big"). ari_shape_fault: 0 for a valid shape, 1 for a negative size, 2 for one too big to count. */
static inline int ari_add_size(int64_t *total, int64_t n) { return __builtin_add_overflow(*total, n, total); }
static inline int ari_mul_size(int64_t *total, int64_t n) { return __builtin_mul_overflow(*total, n, total); }
static inline int64_t ari_add_sat(int64_t a, int64_t b) { int64_t r; return __builtin_add_overflow(a, b, &r) ? INT64_MAX : r; }
static int ari_shape_fault(const int64_t *shape, int nd, int64_t isz) {
    int64_t bytes = isz;
    for (int k = 0; k < nd; k++) if (shape[k] < 0) return 1;
    for (int k = 0; k < nd; k++) if (shape[k] && ari_mul_size(&bytes, shape[k])) return 2;
    return 0;
}
/* C-contiguous strides for a->shape, and a buffer for it (never NULL for size 0), zeroed if asked; NULL
   for a shape NumPy refuses or memory the system refuses (ari_alloc_failure says which). */
static char *ari_alloc(arr_t *a, int nd, int64_t isz, int zero) {
    if (ari_shape_fault(a->shape, nd, isz)) return a->data = NULL;
    int64_t n = 1;  /* the products below cannot overflow once the shape is valid */
    for (int k = nd - 1; k >= 0; k--) { a->strides[k] = n; n *= a->shape[k]; }
    size_t bytes = (size_t)(n * isz) + 1;
    a->data = ari_buffer(bytes);
    if (a->data && zero) memset(a->data, 0, bytes);
    return a->data;
}
static int64_t ari_size(const arr_t *a, int nd) { int64_t n = 1; for (int k = 0; k < nd; k++) n *= a->shape[k]; return n; }
static int ari_contiguous(const arr_t *a, int nd) {
    int64_t n = 1;
    for (int k = nd - 1; k >= 0; k--) { if (a->shape[k] != 1 && a->strides[k] != n) return 0; n *= a->shape[k]; }
    return 1;
}
/* "(2, 3)" into buf */
static const char *ari_shape(char *buf, const arr_t *a, int nd) {
    int at = snprintf(buf, 128, "(");
    for (int k = 0; k < nd && at < 100; k++) at += snprintf(buf + at, 128 - at, k ? ", %lld" : "%lld", (long long)a->shape[k]);
    snprintf(buf + at, 128 - at, nd == 1 ? ",)" : ")");
    return buf;
}
/* Why ari_alloc gave no buffer, as the program's error (the code FAIL takes): ValueError for a shape
   NumPy refuses (a negative size; more bytes than an int64 counts), MemoryError when the system has
   not the memory. FAIL_ALLOC(node, &a, nd, isz) leaves the program with it. */
static int ari_alloc_failure(char *err, const arr_t *a, int nd, int64_t isz) {
    char shape[128];
    ari_shape(shape, a, nd);
    switch (ari_shape_fault(a->shape, nd, isz)) {
        case 1: snprintf(err, ARI_ERR, "negative dimensions are not allowed: shape %s", shape); return 1;
        case 2: snprintf(err, ARI_ERR, "array is too big: shape %s of %lld-byte items needs more than 2**63 - 1 bytes",
                         shape, (long long)isz); return 1;
    }
    double bytes = (double)isz;
    for (int k = 0; k < nd; k++) bytes *= (double)a->shape[k];
    snprintf(err, ARI_ERR, "out of memory: cannot allocate %.1f GiB for an array of shape %s", bytes / (1 << 30), shape);
    return 3;
}
#define FAIL_ALLOC(node, a, nd, isz) do { rc = ari_alloc_failure(err, (a), (nd), (isz)); *where = (node); goto done; } while (0)
/* Copy src (any strides) into dst, already allocated C-contiguous with the same shape. The axes are
   merged first where src runs on from one to the next (a time-reversed sequence of (steps, batch, units)
   copies whole steps), and a run of unit stride is one memcpy: element by element, an LSTM's reversed
   800 KB of hidden states took 113 us to copy on a Xeon. */
static void ari_copy(arr_t *dst, const arr_t *src, int nd, int isz) {
    int64_t n = ari_size(src, nd);
    if (n == 0) return;
    if (ari_contiguous(src, nd)) { memcpy(dst->data, src->data, n * isz); return; }
    arr_t merged;  /* src's axes, those of length 1 dropped, each merged into the next where it runs on */
    int m = 0;
    for (int k = 0; k < nd; k++) {
        if (src->shape[k] == 1) continue;
        if (m && merged.strides[m - 1] == src->strides[k] * src->shape[k]) {
            merged.shape[m - 1] *= src->shape[k]; merged.strides[m - 1] = src->strides[k];
        } else {
            merged.shape[m] = src->shape[k]; merged.strides[m] = src->strides[k]; m++;
        }
    }
    merged.data = src->data;
    src = &merged; nd = m;
    int64_t inner = src->shape[nd - 1], st = src->strides[nd - 1], idx[16] = {0}, off = 0;
    char *out = dst->data;
    for (int64_t done = 0; done < n; done += inner) {
        const char *in = src->data + off * isz;
        if (st == 1) memcpy(out, in, inner * isz);
        else switch (isz) {  /* the innermost axis as a typed strided loop */
            case 1: for (int64_t i = 0; i < inner; i++) ((u8 *)out)[i] = ((const u8 *)in)[i * st]; break;
            case 2: for (int64_t i = 0; i < inner; i++) ((u16 *)out)[i] = ((const u16 *)in)[i * st]; break;
            case 4: for (int64_t i = 0; i < inner; i++) ((u32 *)out)[i] = ((const u32 *)in)[i * st]; break;
            case 8: for (int64_t i = 0; i < inner; i++) ((u64 *)out)[i] = ((const u64 *)in)[i * st]; break;
            default: for (int64_t i = 0; i < inner; i++) memcpy(out + i * isz, in + i * st * isz, isz);
        }
        out += inner * isz;
        for (int k = nd - 2; k >= 0; k--) {
            if (++idx[k] < src->shape[k]) { off += src->strides[k]; break; }
            off -= src->strides[k] * (idx[k] - 1); idx[k] = 0;
        }
    }
}
/* Python's slice.indices: the first index and the length of start:stop:step on an axis of n. */
static void ari_slice(int64_t n, int has_start, int64_t start, int has_stop, int64_t stop, int64_t step,
                      int64_t *first, int64_t *len) {
    if (step > 0) {
        start = !has_start ? 0 : start < 0 ? (start + n < 0 ? 0 : start + n) : (start > n ? n : start);
        stop = !has_stop ? n : stop < 0 ? (stop + n < 0 ? 0 : stop + n) : (stop > n ? n : stop);
        *len = stop > start ? (stop - start - 1) / step + 1 : 0;  /* no overflow for a step near 2**63 */
    } else {
        start = !has_start ? n - 1 : start < 0 ? (start + n < 0 ? -1 : start + n) : (start >= n ? n - 1 : start);
        stop = !has_stop ? -1 : stop < 0 ? (stop + n < 0 ? -1 : stop + n) : (stop >= n ? n - 1 : stop);
        *len = start > stop ? (int64_t)((uint64_t)(start - stop - 1) / (0 - (uint64_t)step)) + 1 : 0;  /* step may be -2**63 */
    }
    *first = start;
}

/* Loops and branches (loops.py, branches.py). An inner graph is a static function of the program,
   int f(arr_t *in, arr_t *out, char *err, int *where): on entry out[j].data == NULL asks it to hand
   over a buffer of its own for output j; otherwise out[j] is the destination the caller owns (its shape
   is the shape output j must have; C-contiguous) and the function writes the result there.
   ari_into points a (its shape set) at the destination d: 0 when the shapes differ. */
static inline int ari_into(arr_t *a, const arr_t *d, int nd) {
    int64_t n = 1;
    for (int k = nd - 1; k >= 0; k--) { if (a->shape[k] != d->shape[k]) return 0; a->strides[k] = n; n *= a->shape[k]; }
    a->data = d->data;
    return 1;
}
static inline int ari_same_shape(const arr_t *a, const arr_t *b, int nd) {
    for (int k = 0; k < nd; k++) if (a->shape[k] != b->shape[k]) return 0;
    return 1;
}
/* An inner function failed: its message (err) and its node (*where, an index into `names`, the inner
   nodes' "Op (built at ...)", or -1) become the failure of node `node` of the caller:
   "<context><inner op> (built at ...): <message>". */
static void ari_inner_fail(char *err, int *where, int node, const char *const *names, int nnames, const char *context) {
    char message[ARI_ERR];
    snprintf(message, ARI_ERR, "%s", err);
    if (*where >= 0 && *where < nnames) snprintf(err, ARI_ERR, "%s%s: %s", context, names[*where], message);
    else snprintf(err, ARI_ERR, "%s%s", context, message);
    *where = node;
}
static inline int64_t ari_min_i64(int64_t a, int64_t b) { return a < b ? a : b; }
/* a: the rows of x (its first axis dropped: shape and strides), pointing at its first row. */
static inline void ari_row_of(arr_t *a, const arr_t *x, int nd) {
    for (int k = 1; k < nd; k++) { a->shape[k - 1] = x->shape[k]; a->strides[k - 1] = x->strides[k]; }
    a->data = x->data;
}
/* A loop's buffer a (rows of `row` bytes) grown to hold `rows` rows, its first `used` rows kept
   (while-loops, whose number of steps is known only at the end); NULL when out of memory. */
static char *ari_grow(arr_t *a, void **own, int nd, int64_t isz, int64_t rows, int64_t used, int64_t row) {
    arr_t b = *a;
    b.shape[0] = rows;
    if (!ari_alloc(&b, nd, isz, 0)) return NULL;
    if (used * row) memcpy(b.data, a->data, used * row);
    ari_free(*own);
    *own = b.data;
    *a = b;
    return b.data;
}

/* NumPy's semantics for the scalar functions C spells differently. */
#define ARI_FLOAT(T, S)                                                                              \
static inline T ari_max_##T(T a, T b) { return (a != a || a >= b) ? a : b; }                        \
static inline T ari_min_##T(T a, T b) { return (a != a || a <= b) ? a : b; }                        \
static inline T ari_mod_##T(T a, T b) {                                                             \
    T m = fmod##S(a, b); if (!b) return m;                                                          \
    if (m) { if ((b < 0) != (m < 0)) m += b; } else m = copysign##S(0, b); return m; }              \
static inline T ari_floordiv_##T(T a, T b) {                                                        \
    if (!b) return a / b;                                                                           \
    T m = fmod##S(a, b), d = (a - m) / b;                                                           \
    if (m && ((b < 0) != (m < 0))) d -= 1;                                                          \
    if (d) { T f = floor##S(d); if (d - f > 0.5) f += 1; return f; } return copysign##S(0, a / b); } \
static inline T ari_sigmoid_##T(T x) { T e = exp##S(-fabs##S(x)); return x >= 0 ? 1 / (1 + e) : e / (1 + e); } \
static inline T ari_softplus_##T(T x) { return x != x ? x : x > 0 ? x + log1p##S(exp##S(-x)) : log1p##S(exp##S(x)); } \
static inline T ari_sign_##T(T x) { return x != x ? x : (T)((x > 0) - (x < 0)); }
ARI_FLOAT(f32, f)
ARI_FLOAT(f64, )

#define ARI_INT(T, SIGNED, MIN)                                                                      \
static inline T ari_floordiv_##T(T a, T b) {                                                        \
    if (!b) return 0; if (SIGNED && b == (T)-1) return (T)(0 - (u64)a);                             \
    T q = a / b; if (SIGNED && (a % b) && ((a < 0) != (b < 0))) q--; return q; }                    \
static inline T ari_mod_##T(T a, T b) {                                                             \
    if (!b || (SIGNED && b == (T)-1)) return 0;                                                     \
    T r = a % b; if (SIGNED && r && ((r < 0) != (b < 0))) r += b; return r; }                       \
static inline T ari_pow_##T(T a, T b, int *negative) {                                              \
    if (SIGNED && b < 0) { *negative = 1; return 0; }                                               \
    T r = 1; while (b) { if (b & 1) r *= a; a *= a; b >>= 1; } return r; }
ARI_INT(i8, 1, 0) ARI_INT(i16, 1, 0) ARI_INT(i32, 1, 0) ARI_INT(i64, 1, 0)
ARI_INT(u8, 0, 0) ARI_INT(u16, 0, 0) ARI_INT(u32, 0, 0) ARI_INT(u64, 0, 0)
static inline b1 ari_floordiv_b1(b1 a, b1 b) { return b ? a : 0; }
static inline b1 ari_mod_b1(b1 a, b1 b) { return 0; }
static inline b1 ari_pow_b1(b1 a, b1 b, int *negative) { return b ? a : 1; }

/* The index of the first max (min) of a row of m floats sx apart, the first NaN if it holds one: in two
   passes, the extremum (a plain select and a NaN flag, which vectorize), then the first index holding it.
   One compare-and-select chain ran 15 times slower than NumPy. */
#define ARI_ARG_ROW(T, NAME, BETTER, START, SIMD)                                                    \
static int64_t ari_##NAME##_row_##T(const T *row, int64_t m, int64_t sx) {                           \
    T mx = START; int nan = 0; int64_t j;                                                           \
    if (sx == 1) {                                                                                  \
        _Pragma(SIMD)                                                                               \
        for (j = 0; j < m; j++) { const T v = row[j]; mx = v BETTER mx ? v : mx; nan |= v != v; }   \
    } else for (j = 0; j < m; j++) { const T v = row[j * sx]; mx = v BETTER mx ? v : mx; nan |= v != v; } \
    if (nan) { for (j = 0; j < m; j++) if (row[j * sx] != row[j * sx]) break; }                     \
    else for (j = 0; j < m; j++) if (row[j * sx] == mx) break;                                      \
    return j;                                                                                       \
}
ARI_ARG_ROW(f32, argmax, >, -INFINITY, "omp simd reduction(max:mx) reduction(|:nan)")
ARI_ARG_ROW(f64, argmax, >, -INFINITY, "omp simd reduction(max:mx) reduction(|:nan)")
ARI_ARG_ROW(f32, argmin, <, INFINITY, "omp simd reduction(min:mx) reduction(|:nan)")
ARI_ARG_ROW(f64, argmin, <, INFINITY, "omp simd reduction(min:mx) reduction(|:nan)")

/* SplitMix64 of (key, counter), as core/random.py specifies. */
static inline uint64_t ari_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
