"""Convolutions (core/conv.py): Corr2d and its two gradients, lowered to im2col and BLAS.

A block of ``B`` images at a time, for each group: im2col lays the taps of the block's input out as the
rows of a column matrix col (K = channels x kh x kw rows, B x rows x columns columns), and one GEMM does
the block's work:

- Corr2d:            out (Og, B*P) = w_g (Og, K) . col (K, B*P), then copied to out[n, o] (NCHW);
- Corr2dGradInputs:  col (K, B*P) = w_g^T (K, Og) . g_g (Og, B*P), then col2im adds it back into gx;
- Corr2dGradWeights: acc_g (K, Og) += col (K, B*P) . g_g^T (B*P, Og), accumulated over the blocks
                     (each thread's own accumulator), then summed and transposed into gw (Og, K),

where g_g is the block's output gradient gathered into (Og, B*P). A 1x1 kernel with stride 1 and no
padding needs no column matrix: each image already is one, and one GEMM per image and group reads it
in place. Every input is read through its strides (negative ones included); the filters are packed
when they are not C-contiguous. The scratch memory (column matrix, gathered gradient, packed filters)
is one buffer per call from the runtime's ari_buffer, whose spare slots hand the same memory back on
the next call (no malloc per image, nothing shared between threads). The geometry is checked as
``_Corr2dBase.check`` states it, with the same messages.
"""

from string import Template

from .ctext import ct, read_int

# elements of scratch a block aims at (column matrix and gathered output), so that the GEMM's operands
# stay in the core's cache (LeNet's 20->50 layer, P = 64, was fastest with blocks of 4 to 8 images);
# images of at least ONE_IMAGE output positions go one at a time: a GEMM per image is large enough,
# and the output (gradient) is read and written in place, not gathered (LeNet's first layer, P = 576,
# took 0.9 ms a pass instead of 1.4)
BLOCK_ELEMENTS = 1 << 18
ONE_IMAGE = 256
SIZE_MAX = 1 << 40  # a size above this: ValueError (no arithmetic overflows, whatever the dilation)


def _sub(template, **values):
    return Template(template).substitute(values)


# ---- helpers shared by the program: im2col and col2im, one per dtype, stride and dilation

_IM2COL = """
/* im2col, stride ($SH, $SW), dilation ($DH, $DW), $T: the taps of nb images (cg channels of x, any
   strides) as the rows of col, nb * rows * cols wide:
   col[(c * kh + a) * kw + b][n * rows * cols + i * cols + j] = x_padded[n, c, i * $SH + a * $DH, j * $SW + b * $DW]
   (zero where that lies in the padding). col2im (add = 1) adds col back into x instead. */
static void ari_$NAME(const $T *x, int64_t xs0, int64_t xs1, int64_t xs2, int64_t xs3, int64_t nb, int64_t cg,
                      int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t pt, int64_t pl, int64_t rows, int64_t cols,
                      $T *restrict col, int add) {
    const int64_t P = rows * cols, ld = nb * P;
    for (int64_t c = 0; c < cg; c++) for (int64_t a = 0; a < kh; a++) {
        /* the output rows [i0, i1) whose input row i * $SH + a * $DH - pt lies inside the image */
        const int64_t top = a * $DH - pt;
        int64_t i0 = top >= 0 ? 0 : (-top + $SH - 1) / $SH, i1 = h - 1 - top < 0 ? 0 : (h - 1 - top) / $SH + 1;
        if (i1 > rows) i1 = rows;
        if (i0 > i1) i0 = i1;
        for (int64_t b = 0; b < kw; b++) {
            /* likewise the output columns [j0, j1) that read inside the image */
            const int64_t left = b * $DW - pl;
            int64_t j0 = left >= 0 ? 0 : (-left + $SW - 1) / $SW, j1 = w - 1 - left < 0 ? 0 : (w - 1 - left) / $SW + 1;
            if (j1 > cols) j1 = cols;
            if (j0 > j1) j0 = j1;
            $T *restrict row = col + ((c * kh + a) * kw + b) * ld;
            for (int64_t n = 0; n < nb; n++) {
                $T *img = ($T *)x + n * xs0 + c * xs1;
                $T *restrict d = row + n * P;
                if (add && xs3 == 1 && j0 == 0 && j1 == cols && i0 == 0 && i1 == rows) {  /* col2im, no padding */
                    $T *dst = img + top * xs2 + left;
                    for (int64_t i = 0; i < rows; i++, dst += $SH * xs2, d += cols)
                        for (int64_t j = 0; j < cols; j++) dst[j * $SW] += d[j];
                    continue;
                }
                if (add) {  /* col2im: the taps inside the image add back where they were read */
                    for (int64_t i = i0; i < i1; i++) {
                        $T *src = img + (i * $SH + top) * xs2 + left * xs3;
                        const $T *restrict di = d + i * cols;
                        if (xs3 == 1) for (int64_t j = j0; j < j1; j++) src[j * $SW] += di[j];
                        else for (int64_t j = j0; j < j1; j++) src[j * $SW * xs3] += di[j];
                    }
                    continue;
                }
                if (xs3 == 1 && j0 == 0 && j1 == cols && i0 == 0 && i1 == rows) {  /* no padding read: a plain 2-d copy */
                    const $T *src = img + top * xs2 + left;
                    /* short rows (LeNet's: 8 and 24): a loop of unknown length spent its time entering and leaving */
                    if ($SW == 1 && cols == 8)  /* one vector each */
                        for (int64_t i = 0; i < rows; i++, src += $SH * xs2, d += 8) memcpy(d, src, 8 * sizeof($T));
                    else if ($SW == 1)
                        for (int64_t i = 0; i < rows; i++, src += $SH * xs2, d += cols) memcpy(d, src, cols * sizeof($T));
                    else
                        for (int64_t i = 0; i < rows; i++, src += $SH * xs2, d += cols)
                            for (int64_t j = 0; j < cols; j++) d[j] = src[j * $SW];
                    continue;
                }
                for (int64_t k = 0; k < i0 * cols; k++) d[k] = 0;  /* rows in the padding */
                for (int64_t i = i0; i < i1; i++) {
                    const $T *src = img + (i * $SH + top) * xs2 + left * xs3;
                    $T *restrict di = d + i * cols;
                    for (int64_t j = 0; j < j0; j++) di[j] = 0;
                    if (xs3 == 1 && $SW == 1) memcpy(di + j0, src + j0, (j1 - j0) * sizeof($T));
                    else if (xs3 == 1) for (int64_t j = j0; j < j1; j++) di[j] = src[j * $SW];
                    else for (int64_t j = j0; j < j1; j++) di[j] = src[j * $SW * xs3];
                    for (int64_t j = j1; j < cols; j++) di[j] = 0;
                }
                for (int64_t k = i1 * cols; k < P; k++) d[k] = 0;
            }
        }
    }
}
"""


def _im2col(g, op, T):
    """The name of the im2col/col2im helper for ``op``'s strides and dilations in type T (added once)."""
    (sh, sw), (dh, dw) = op.stride, op.dilation
    name = f"im2col_{T}_s{sh}x{sw}_d{dh}x{dw}"
    if not any(f"ari_{name}(" in text for text in g.helpers):
        g.helpers.append(_sub(_IM2COL, NAME=name, T=T, SH=sh, SW=sw, DH=dh, DW=dw))
    return f"ari_{name}"


# ---- the geometry: sizes, padding, the output's shape, the checks of _Corr2dBase.check


def _size_vector(index, v, var, names, what):
    """C reading the 2 sizes of the vector ``v`` into ``names``: ValueError unless 2 non-negative ints."""
    a, b = names
    return "\n".join([
        f"if ({v}.shape[0] != 2) FAIL(1, {index}, \"expected {what} of 2 non-negative ints, got %lld value(s)\", (long long){v}.shape[0]);",
        f"const int64_t {a} = {read_int(v, var, '0')}, {b} = {read_int(v, var, '1')};",
        f"if ({a} < 0 || {b} < 0) FAIL(1, {index}, \"expected {what} of 2 non-negative ints, got [%lld, %lld]\", (long long){a}, (long long){b});",
        f"if ({a} > {SIZE_MAX}LL || {b} > {SIZE_MAX}LL) FAIL(1, {index}, \"{what} [%lld, %lld] is too large\", (long long){a}, (long long){b});",
    ])


def _padding(op, axis, k):
    """C expressions (before, after) of the padding along ``axis`` for a kernel of ``k`` taps."""
    d = op.dilation[axis]
    if op.pad == "full":
        return (f"{d} * ({k} - 1)",) * 2
    if op.pad == "half":
        return (f"({d} * ({k} - 1) + 1) / 2",) * 2
    return tuple(str(p) for p in op.pad[axis])


_GEOMETRY = """
/* the geometry (core/conv.py, _Corr2dBase.check): padding, the dilated kernel's span, the output */
char geom[320];  /* the shapes, for messages */
snprintf(geom, sizeof geom, "input (%lld, %lld, %lld, %lld) and filters (%lld, %lld, %lld, %lld)", (long long)N,
         (long long)C, (long long)H, (long long)W, (long long)O, (long long)Cg, (long long)KH, (long long)KW);
if (C != Cg * $G) FAIL(1, $index, "%s: the input has %lld channel(s), the filters take %lld per group x $G group(s)",
                       geom, (long long)C, (long long)Cg);
if (O % $G) FAIL(1, $index, "%s: %lld filter(s) do not divide into $G group(s)", geom, (long long)O);
if (KH < 1 || KW < 1) FAIL(1, $index, "%s: the filters have no taps", geom);
if (H > $limit || W > $limit || KH > $limit || KW > $limit) FAIL(1, $index, "%s: a size is too large", geom);
const int64_t PT = $PT, PB = $PB, PL = $PL, PR = $PR;
const int64_t EH = $DH * (KH - 1) + 1, EW = $DW * (KW - 1) + 1;
if (H + PT + PB < EH) FAIL(1, $index, "%s: the filter spans %lld rows (dilation $DH), more than the padded input's %lld",
                           geom, (long long)EH, (long long)(H + PT + PB));
if (W + PL + PR < EW) FAIL(1, $index, "%s: the filter spans %lld columns (dilation $DW), more than the padded input's %lld",
                           geom, (long long)EW, (long long)(W + PL + PR));
const int64_t R = (H + PT + PB - EH) / $SH + 1, Q = (W + PL + PR - EW) / $SW + 1;  /* output rows, columns */
const int64_t G = $G, Og = O / G, P = R * Q, K = Cg * KH * KW;  /* K: the taps of one filter */
"""

_GRADIENT_SHAPE = """
if ($g.shape[0] != N || $g.shape[1] != O || $g.shape[2] != R || $g.shape[3] != Q)
    FAIL(1, $index, "%s: the output gradient has shape (%lld, %lld, %lld, %lld), the convolution's output has (%lld, %lld, %lld, %lld)",
         geom, (long long)$g.shape[0], (long long)$g.shape[1], (long long)$g.shape[2], (long long)$g.shape[3],
         (long long)N, (long long)O, (long long)R, (long long)Q);
"""


def _geometry(op, index, gradient=None):
    (sh, sw), (dh, dw) = op.stride, op.dilation
    (pt, pb), (pl, pr) = _padding(op, 0, "KH"), _padding(op, 1, "KW")
    limit = f"{min(SIZE_MAX, (1 << 61) // max(op.dilation + op.stride))}LL"  # no overflow below it
    text = _sub(_GEOMETRY, G=op.groups, index=index, limit=limit, PT=pt, PB=pb, PL=pl, PR=pr, SH=sh, SW=sw, DH=dh, DW=dw)
    if gradient is not None:
        text += _sub(_GRADIENT_SHAPE, g=gradient, index=index)
    return text


# ---- scratch memory and the GEMMs


_JOB = """
/* A convolution's work, split by blocks of B images between threads (ari_tasks; core.plan.Plan.image_threads):
   each node's kernel unpacks it, reads x and g through their strides and writes its own blocks of out
   (the filters' gradient: its own accumulator). Thread t's scratch starts at scratch + t * per_thread. */
typedef struct {
    arr_t x, g;               /* the image (read by im2col, or written by col2im) and the output gradient */
    char *w, *out, *scratch;  /* the filters as an (O, K) matrix, the output, every thread's scratch */
    int64_t N, C, H, W, O, Cg, KH, KW, PT, PL, R, Q, G, Og, P, K, B, per_thread;
    int failed;               /* a GEMM refused its sizes (a 32-bit BLAS) */
} ari_conv_job;
#define ARI_CONV_UNPACK(j) \\
    const int64_t N = job->N, C = job->C, H = job->H, W = job->W, Cg = job->Cg, KH = job->KH, KW = job->KW, PT = job->PT, \\
        PL = job->PL, R = job->R, Q = job->Q, G = job->G, Og = job->Og, P = job->P, K = job->K, B = job->B, O = job->O; \\
    (void)N; (void)C; (void)H; (void)W; (void)Cg; (void)KH; (void)KW; (void)PT; (void)PL; (void)R; (void)Q; \\
    (void)G; (void)Og; (void)P; (void)K; (void)B; (void)O;
"""

_SCRATCH = """
/* scratch, for each thread: a block of B images at a time, its column matrix (K x B * P) and the gathered
   output (gradient) (Og x B * P)$acc_note; then the packed filters. One buffer (ari_buffer keeps it for the next call) */
int64_t B = P >= $one ? 1 : $block / ((K + Og) * P > 0 ? (K + Og) * P : 1);
if (B < 1) B = 1;
if (B > N) B = N;
const int64_t blocks = (N + B - 1) / B;
const int nt = $threads;
const int wpacked = $pack;
int64_t per_thread = 0, scratch_n = 0, bytes = 0;
if (__builtin_mul_overflow(K + Og, B * P, &per_thread) || __builtin_add_overflow(per_thread, $acc, &per_thread)
    || __builtin_mul_overflow(per_thread, (int64_t)nt, &scratch_n) || __builtin_add_overflow(scratch_n, wpacked ? O * K : 0, &scratch_n)
    || __builtin_mul_overflow(scratch_n, (int64_t)sizeof($T), &bytes) || !(own[$slot] = ari_buffer((size_t)bytes + 1)))
    FAIL(3, $index, "out of memory (a scratch buffer of %d x %lld elements)", nt, (long long)per_thread);
$T *wm = ($T *)$w_data;  /* the filters as an (O, K) matrix: packed when not C-contiguous */
$pack_code
ari_conv_job job = { $x, $g, (char *)wm, $o.data, own[$slot], N, C, H, W, O, Cg, KH, KW, PT, PL, R, Q, G, Og, P, K, B, per_thread, 0 };
"""

_PACK = """if (wpacked) { arr_t packed = $w; packed.data = (char *)(($T *)own[$slot] + nt * per_thread); ari_copy(&packed, &$w, 4, sizeof($T)); wm = ($T *)packed.data; }"""

_RUN = """ari_tasks($kernel, &job, blocks, nt, $fixed);
if (job.failed) FAIL(1, $index, "%s: a size exceeds what this 32-bit BLAS takes", geom);"""


def _scratch(g, node, index, T, x, gr, o, w=None, accumulate=False):
    """C allocating every thread's scratch (and packing the filters ``w`` when given) and filling
    ``job``; its own[] slot. ``accumulate``: each thread also gets an (O, K) accumulator."""
    if not any("} ari_conv_job;" in text for text in g.helpers):
        g.helpers.append(_JOB)
    name, slot = g.temp()
    work = "N * O * P * K" if node in g.image_threads else "0"
    text = _sub(_SCRATCH, block=BLOCK_ELEMENTS, one=ONE_IMAGE, pack=f"!ari_contiguous(&{w}, 4)" if w else "0", T=T,
                slot=slot, index=index, threads=f"ari_task_threads(blocks, {work})", acc="O * K" if accumulate else "0",
                acc_note=", and an (O, K) accumulator" if accumulate else "",
                w_data=f"{w}.data" if w else "NULL", pack_code=_sub(_PACK, T=T, w=w, slot=slot) if w else "",
                x=x, g=gr or x, o=o)
    return text, slot


def _kernel(g, index, kind, T, prelude, body):
    """The static function that runs blocks [lo, hi) of images of node ``index`` (``prelude``, then
    ``body`` per block) as thread t: added to the program's helpers; its name."""
    name = f"{g.function}_node{index}_{kind}"
    g.helpers.append(f"\n/* node {index} of {g.function}: {kind}, blocks [lo, hi) of B images, as thread t */\n"
                     f"static void {name}(void *context, int t, int64_t lo, int64_t hi) {{\n"
                     f"    ari_conv_job *job = (ari_conv_job *)context;\n    ARI_CONV_UNPACK(job)\n"
                     f"    {T} *col = ({T} *)job->scratch + t * job->per_thread, *gathered = col + K * B * P;\n"
                     f"    const {T} one = 1, zero = 0; (void)one; (void)zero;\n    {prelude}\n"
                     f"    for (int64_t blk = lo; blk < hi; blk++) {{\n"
                     f"        const int64_t n0 = blk * B, nb = N - n0 < B ? N - n0 : B;\n"
                     f"{_indent(body, 8)}\n    }}\n}}\n")
    return name


def _gemm(index, dbl, *args):
    """C calling ari_gemm (column-major BLAS); a size a 32-bit BLAS cannot take is a ValueError."""
    return (f"if (ari_gemm({dbl}, {', '.join(args)})) FAIL(1, {index}, \"%s: a size exceeds what this 32-bit BLAS "
            f"takes\", geom);")


def _block_gemm(dbl, *args):
    """C calling ari_gemm from a block's kernel: a size a 32-bit BLAS cannot take marks the job failed."""
    return f"if (ari_gemm({dbl}, {', '.join(args)})) {{ job->failed = 1; return; }}"


def _block_product(T, *args):
    """C calling runtime.h's row-major product from a block's kernel, c = a . b given (n, m, k, a, as0,
    as1, b, bs0, c, ldo), b's columns and c's of unit stride: the register blocks up to the plan's
    ARI_OWN_ROWS rows (docs/products.md), else the BLAS; a size a 32-bit BLAS cannot take marks the job
    failed."""
    n, m, k, a, as0, as1, b, bs0, c, ldo = args
    return (f"if (ari_matmul_{T}({n}, {m}, {k}, {a}, {as0}, {as1}, {b}, {bs0}, 1, {c}, {ldo}, 1, 0)) "
            f"{{ job->failed = 1; return; }}")


def _free(slot):
    return f"ari_free(own[{slot}]); own[{slot}] = NULL;"




def _indent(text, depth):
    return "\n".join(" " * depth + line if line else line for line in text.strip("\n").split("\n"))


_GATHER = """
/* the block's output gradient for group gi as an (Og, nb * P) matrix gm, ldg apart: read in place
   for one image whose planes are contiguous, else gathered */
const $T *gm = gathered; int64_t ldg = nb * P;
if (nb == 1 && $g.strides[3] == 1 && $g.strides[2] == Q && $g.strides[1] >= P) {
    gm = (const $T *)$g.data + n0 * $g.strides[0] + gi * Og * $g.strides[1]; ldg = $g.strides[1];
} else for (int64_t oc = 0; oc < Og; oc++) for (int64_t n = 0; n < nb; n++) {
    const $T *src = (const $T *)$g.data + (n0 + n) * $g.strides[0] + (gi * Og + oc) * $g.strides[1];
    $T *restrict d = gathered + (oc * nb + n) * P;
    if ($g.strides[3] == 1 && $g.strides[2] == Q) memcpy(d, src, sizeof($T) * P);
    else for (int64_t i = 0; i < R; i++) for (int64_t j = 0; j < Q; j++) d[i * Q + j] = src[i * $g.strides[2] + j * $g.strides[3]];
}
"""


def _direct(op, *planes):
    """C true when a 1x1 kernel with stride 1 and no padding lets every (image, group) of the arrays
    ``planes`` (name, plane size) be read in place as a matrix: unit column stride, rows of the plane
    contiguous, channels at least a plane apart."""
    if op.stride != (1, 1):
        return "0"
    tests = ["KH == 1 && KW == 1 && PT == 0 && PB == 0 && PL == 0 && PR == 0"]
    tests += [f"{v}.strides[3] == 1 && {v}.strides[2] == Q && {v}.strides[1] >= P" for v in planes]
    return " && ".join(tests)


_CORR2D = """
const int64_t N = $x.shape[0], C = $x.shape[1], H = $x.shape[2], W = $x.shape[3];
const int64_t O = $w.shape[0], Cg = $w.shape[1], KH = $w.shape[2], KW = $w.shape[3];
$geometry
$o.shape[0] = N; $o.shape[1] = O; $o.shape[2] = R; $o.shape[3] = Q;
$alloc
$T *po = ($T *)$o.data; const $T one = 1, zero = 0;
if (K == 0) memset(po, 0, sizeof($T) * N * O * P);  /* no channels: every output sums nothing */
else if (N * O * P > 0 && $direct && $w.strides[1] == 1 && $w.strides[0] >= Cg) {
    /* 1x1, stride 1, no padding: each image is its own column matrix, read in place (column-major GEMM):
       out[n, group] (Og x P) = w_g (Og x Cg) . x[n, group] (Cg x P) */
    for (int64_t n = 0; n < N; n++) for (int64_t gi = 0; gi < G; gi++)
        $gemm_direct
} else if (N * O * P > 0) {
$scratch
$run
    $free
}
"""

_CORR2D_BLOCK = """
for (int64_t gi = 0; gi < G; gi++) {
    $im2col(($T *)job->x.data + n0 * job->x.strides[0] + gi * Cg * job->x.strides[1], job->x.strides[0], job->x.strides[1],
            job->x.strides[2], job->x.strides[3], nb, Cg, H, W, KH, KW, PT, PL, R, Q, col, 0);
    /* (Og, nb * P) = w_g (Og x K) . col (K x nb * P): for one image straight into out */
    $T *dst = nb == 1 ? po + (n0 * O + gi * Og) * P : gathered;
    $gemm
    if (nb > 1) for (int64_t oc = 0; oc < Og; oc++) for (int64_t n = 0; n < nb; n++)  /* (Og, nb, P) -> out[n, o] */
        memcpy(po + ((n0 + n) * O + gi * Og + oc) * P, gathered + (oc * nb + n) * P, sizeof($T) * P);
}
"""


def emit_corr2d(g, node, index, ins, outs):
    """Corr2d: per block of images and group, im2col then one GEMM, the result copied into NCHW."""
    (x, w), (o,) = ins, outs
    op, ov = node.op, node.outputs[0]
    T = ct(ov.dtype)
    dbl = int(T == "f64")
    scratch, slot = _scratch(g, node, index, T, x, x, o, w)
    kernel = _kernel(g, index, "corr2d", T, f"{T} *po = ({T} *)job->out; const {T} *wm = (const {T} *)job->w;", _sub(
        _CORR2D_BLOCK, T=T, im2col=_im2col(g, op, T),
        gemm=_block_product(T, "Og", "nb * P", "K", "wm + gi * Og * K", "K", "1", "col", "nb * P", "dst", "nb * P")))
    return _sub(
        _CORR2D, x=x, w=w, o=o, T=T, geometry=_geometry(op, index), alloc=g.alloc(ov, index),
        direct=_direct(op, x), scratch=_indent(scratch, 4), free=_free(slot),
        run=_indent(_sub(_RUN, kernel=kernel, fixed=0, index=index), 4),
        gemm_direct=_gemm(index, dbl, "'N'", "'N'", "P", "Og", "Cg", "&one",
                          f"({T} *){x}.data + n * {x}.strides[0] + gi * Cg * {x}.strides[1]", f"{x}.strides[1]",
                          f"({T} *){w}.data + gi * Og * {w}.strides[0]", f"{w}.strides[0]", "&zero",
                          "po + (n * O + gi * Og) * P", "P"))


_GRAD_INPUTS = """
const int64_t O = $w.shape[0], Cg = $w.shape[1], KH = $w.shape[2], KW = $w.shape[3];
$size
const int64_t N = $g.shape[0], C = Cg * $G;
$geometry
$o.shape[0] = N; $o.shape[1] = C; $o.shape[2] = H; $o.shape[3] = W;
$alloc
$T *px = ($T *)$o.data; const $T one = 1, zero = 0;  /* gx, zeroed: col2im adds into it */
if (N * C * H * W == 0 || O == 0) {}  /* nothing to add */
else if ($direct && $w.strides[1] == 1 && $w.strides[0] >= Cg) {
    /* 1x1, stride 1, no padding: gx[n, group] (Cg x P) = w_g^T (Cg x Og) . g[n, group] (Og x P), no col2im */
    for (int64_t n = 0; n < N; n++) for (int64_t gi = 0; gi < G; gi++)
        $gemm_direct
} else {
$scratch
$run
    $free
}
"""

_GRAD_INPUTS_BLOCK = """
for (int64_t gi = 0; gi < G; gi++) {
$gather
    /* col (K x nb * P) = w_g^T (K x Og) . g_g (Og x nb * P), then added back over the image (col2im) */
    $gemm
    $im2col(px + (n0 * C + gi * Cg) * H * W, C * H * W, H * W, W, 1, nb, Cg, H, W, KH, KW, PT, PL, R, Q, col, 1);
}
"""


def emit_corr2d_grad_inputs(g, node, index, ins, outs):
    """Corr2dGradInputs: per block of images and group, one GEMM (w^T . g) then col2im."""
    (w, gr, image), (o,) = ins, outs
    op, ov = node.op, node.outputs[0]
    T = ct(ov.dtype)
    dbl = int(T == "f64")
    scratch, slot = _scratch(g, node, index, T, gr, gr, o, w)
    kernel = _kernel(g, index, "corr2d_grad_inputs", T, f"{T} *px = ({T} *)job->out; const {T} *wm = (const {T} *)job->w;", _sub(
        _GRAD_INPUTS_BLOCK, T=T, im2col=_im2col(g, op, T), gather=_indent(_sub(_GATHER, T=T, g="job->g"), 4),
        gemm=_block_product(T, "K", "nb * P", "Og", "wm + gi * Og * K", "1", "K", "gm", "ldg", "col", "nb * P")))
    return _sub(
        _GRAD_INPUTS, w=w, g=gr, o=o, T=T, G=op.groups,
        size=_size_vector(index, image, node.inputs[2], ("H", "W"), "an image size"),
        geometry=_geometry(op, index, gr), alloc=g.alloc(ov, index, zero=True), direct=_direct(op, gr),
        scratch=_indent(scratch, 4), free=_free(slot), run=_indent(_sub(_RUN, kernel=kernel, fixed=0, index=index), 4),
        gemm_direct=_gemm(index, dbl, "'N'", "'T'", "P", "Cg", "Og", "&one",
                          f"({T} *){gr}.data + n * {gr}.strides[0] + gi * Og * {gr}.strides[1]", f"{gr}.strides[1]",
                          f"({T} *){w}.data + gi * Og * {w}.strides[0]", f"{w}.strides[0]", "&zero",
                          "px + (n * C + gi * Cg) * P", "P"))


_GRAD_WEIGHTS = """
const int64_t N = $x.shape[0], C = $x.shape[1], H = $x.shape[2], W = $x.shape[3];
$size
const int64_t O = $g.shape[1], Cg = C / $G;
$geometry
$o.shape[0] = O; $o.shape[1] = Cg; $o.shape[2] = KH; $o.shape[3] = KW;
$alloc
$T *pw = ($T *)$o.data; const $T one = 1;  /* gw, zeroed: every block adds into it */
if (N * P == 0 || O * K == 0) {}  /* sums of nothing */
else if ($direct) {
    /* 1x1, stride 1, no padding: gw_g (Og x Cg) += g[n, group] (Og x P) . x[n, group]^T (P x Cg) */
    for (int64_t n = 0; n < N; n++) for (int64_t gi = 0; gi < G; gi++)
        $gemm_direct
} else {
$scratch
    /* each thread adds into an accumulator of its own that holds, per group, the transpose of the
       filters' gradient (K x Og): BLAS computes that product about 35 % faster than the filters'
       layout (Og x K) with AVX-512 kernels (docs/conv.md). Summed and transposed into gw at the end. */
    for (int t = 0; t < nt; t++) memset(($T *)own[$slot] + t * per_thread + (K + Og) * B * P, 0, sizeof($T) * O * K);
$run
    for (int t = 0; t < nt; t++) {
        const $T *acc = ($T *)own[$slot] + t * per_thread + (K + Og) * B * P;
        for (int64_t gi = 0; gi < G; gi++) for (int64_t oc = 0; oc < Og; oc++) {
            $T *row = pw + (gi * Og + oc) * K;
            const $T *column = acc + gi * Og * K + oc;
            for (int64_t k = 0; k < K; k++) row[k] += column[k * Og];
        }
    }
    $free
}
"""

_GRAD_WEIGHTS_BLOCK = """
for (int64_t gi = 0; gi < G; gi++) {
    $im2col(($T *)job->x.data + n0 * job->x.strides[0] + gi * Cg * job->x.strides[1], job->x.strides[0], job->x.strides[1],
            job->x.strides[2], job->x.strides[3], nb, Cg, H, W, KH, KW, PT, PL, R, Q, col, 0);
$gather
    /* acc_g (K x Og) += col (K x nb * P) . g_g^T (nb * P x Og) */
    $gemm
}
"""


def emit_corr2d_grad_weights(g, node, index, ins, outs):
    """Corr2dGradWeights: per block of images and group, im2col then one GEMM accumulated into gw (each
    thread's blocks into an accumulator of its own, the same blocks on every run: the same sums)."""
    (x, gr, kernel_size), (o,) = ins, outs
    op, ov = node.op, node.outputs[0]
    T = ct(ov.dtype)
    dbl = int(T == "f64")
    scratch, slot = _scratch(g, node, index, T, x, gr, o, accumulate=True)
    kernel = _kernel(g, index, "corr2d_grad_weights", T,
                     f"{T} *acc = ({T} *)job->scratch + t * job->per_thread + (K + Og) * B * P;", _sub(
        _GRAD_WEIGHTS_BLOCK, T=T, im2col=_im2col(g, op, T), gather=_indent(_sub(_GATHER, T=T, g="job->g"), 4),
        gemm=_block_gemm(dbl, "'T'", "'N'", "Og", "K", "nb * P", "&one", "gm", "ldg", "col", "nb * P", "&one",
                         "acc + gi * Og * K", "Og")))
    return _sub(
        _GRAD_WEIGHTS, x=x, g=gr, o=o, T=T, G=op.groups, slot=slot,
        size=_size_vector(index, kernel_size, node.inputs[2], ("KH", "KW"), "a kernel size"),
        geometry=_geometry(op, index, gr), alloc=g.alloc(ov, index, zero=True), direct=_direct(op, x, gr),
        scratch=_indent(scratch, 4), free=_free(slot), run=_indent(_sub(_RUN, kernel=kernel, fixed=1, index=index), 4),
        gemm_direct=_gemm(index, dbl, "'T'", "'N'", "Cg", "Og", "P", "&one",
                          f"({T} *){x}.data + n * {x}.strides[0] + gi * Cg * {x}.strides[1]", f"{x}.strides[1]",
                          f"({T} *){gr}.data + n * {gr}.strides[0] + gi * Og * {gr}.strides[1]", f"{gr}.strides[1]", "&one",
                          "pw + gi * Og * Cg", "Cg"))
