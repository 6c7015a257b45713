"""3x3 stride-1 convolution by Winograd's minimal filtering algorithm F(2x2, 3x3) (CPU).

Why: im2col + GEMM spends 9 multiply-adds per output pixel and input channel, and the GEMM
already runs near the BLAS peak, so the only way to go faster is to multiply less. Winograd's
F(2x2, 3x3) computes a 2x2 block of outputs of a 3x3 filter from a 4x4 input patch with 16
multiplications instead of 2*2*9 = 36: 2.25x fewer, paid for with additions.

The 1-D idea, F(2, 3): two outputs y0 = d0 g0 + d1 g1 + d2 g2, y1 = d1 g0 + d2 g1 + d3 g2 of a
3-tap filter g over 4 inputs d need only 4 products::

    m0 = (d0 - d2) g0                m1 = (d1 + d2) (g0 + g1 + g2)/2
    m3 = (d1 - d3) g2                m2 = (d2 - d1) (g0 - g1 + g2)/2
    y0 = m0 + m1 + m2                y1 = m1 - m2 - m3

In matrix form y = A^T [(G g) ⊙ (B^T d)] with the matrices below; nesting it along rows and
columns gives the 2-D algorithm for one 4x4 patch d and one 3x3 filter g::

    Y = A^T [ (G g G^T) ⊙ (B^T d B) ] A          (⊙: elementwise, all 4x4 inside the brackets)

A convolution layer sums over input channels, and the sum commutes with A^T (.) A. So with
U = G g G^T for every filter (o, c), V = B^T d B for every patch (c, tile) and the 16
positions (xi, nu) of the 4x4 Winograd domain kept apart, a whole layer is::

    U[xi*4 + nu] (O, C)     the transformed filters
    V[xi*4 + nu] (C, T)     the transformed input patches, T tiles (2x2 output blocks)
    M[k] = U[k] @ V[k]      16 independent GEMMs (O, C) x (C, T), k = xi*4 + nu
    Y_t = A^T M_t A         back to a 2x2 block of output for every tile t and channel o

Neighbouring patches overlap by 2 rows/columns (the tiles step by 2). For oh or ow odd the
last tile is partial: its missing outputs are computed from zero input and dropped.

Backward runs the same steps transposed, in reverse order. With gM_t = A gY_t A^T (the
adjoint of the output transform)::

    gU[k] = sum_t gM[k] V[k]^T   then   gw = G^T gU G     (weight gradient)
    gV[k] = U[k]^T gM[k]         then   gd_t = B gV_t B^T (input gradient: the patches'
                                                           gradients summed where they overlap)

so one transform of gy serves both gradients, and the GEMM counts equal the forward's.

Cost: the GEMMs do 16/4 = 4 multiply-adds per output pixel and channel pair instead of 9;
each transform is a few additions per element but writes or reads 4x the image (16 values
per 2x2 tile). Few channels or few tiles do not pay for the transforms: see ``pays``.

Accuracy: B and A hold only 0 and +-1, G halves, so float32 errors stay those of direct
convolution. F(4x4, 3x3) would do 2.25 instead of 4 multiply-adds per output, but its
matrices hold 1/4, 1/6, 1/24, 8 ... and its float32 error is 15-25x im2col's: not used.

The transforms run as numba loops (``minicnn/cpu/winograd.py``); the 16 GEMMs per tile
chunk run in BLAS through ``np.matmul``. Scratch (V and M for a chunk of tiles) stays under
the workspace limit and reuses the im2col path's host buffer (``minicnn/workspace.py``).

A batch too small to split over the cores by images (batch 1: U-Net) shares its chunks
between the threads instead (``_over_chunks``), each with a single-threaded BLAS, so the
transforms run in parallel too.
"""
import numpy as np

from .. import tuning, workspace
from ..geometry import output_size
from . import threads
from . import winograd as kernels

# F(2x2, 3x3): m = 2 outputs per tile side, r = 3 filter taps, alpha = m + r - 1 = 4
B_T = np.array([[1, 0, -1, 0],
                [0, 1, 1, 0],
                [0, -1, 1, 0],
                [0, 1, 0, -1]], dtype=np.float64)  # input transform: V = B^T d B
G = np.array([[1, 0, 0],
              [0.5, 0.5, 0.5],
              [0.5, -0.5, 0.5],
              [0, 0, 1]], dtype=np.float64)  # filter transform: U = G g G^T
A_T = np.array([[1, 1, 1, 0],
                [0, 1, -1, -1]], dtype=np.float64)  # output transform: Y = A^T M A


def cannot(op, fn, x, w):
    """Why Winograd F(2x2, 3x3) cannot run ``op`` for the Function ``fn`` (None: it can)."""
    return unfit(op, x, w, fn.win, fn.groups)


def unfit(op, x, w, win, groups):
    """``cannot`` for an explicit geometry (the phase path asks it of its phase convolution)."""
    if op != "conv2d":
        return f"it computes conv2d only, not {op}"
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.float64):
        return "it runs on the CPU, in float32 or float64"
    if (win.kh, win.kw, win.sh, win.sw, win.dh, win.dw, groups) != (3, 3, 1, 1, 1, 1, 1):
        return "it needs a 3x3 kernel, stride 1, dilation 1 and groups=1"
    if not (win.ph <= 2 and win.pw <= 2):
        return f"it pads by at most 2, not {(win.ph, win.pw)}"
    return None


def pays(x_shape, w_shape, padding):
    """Whether the transforms pay for the saved multiplies: enough channels each way, and
    enough 2x2 output tiles in the batch to amortise the filter transform."""
    _, _, th, tw = _tile_grid(x_shape, padding)
    return (min(x_shape[1], w_shape[0]) >= tuning.WINOGRAD_MIN_CHANNELS
            and x_shape[0] * th * tw >= tuning.WINOGRAD_MIN_TILES)


class Conv2d(threads.BatchSplit):
    """conv2d of the Function ``fn`` (3x3, stride 1) by Winograd F(2x2, 3x3), its batch split over the cores."""

    def forward(self, x, w, b=None):
        fn = self.fn
        self.x, self.w, self.pixels = x, w, fn.oh * fn.ow
        self.padding = (fn.win.ph, fn.win.pw)
        y = np.empty((x.shape[0], w.shape[0], fn.oh, fn.ow), x.dtype)
        self.split(lambda n0, n1: conv2d(x[n0:n1], w, self.padding, b, out=y[n0:n1]))
        return y

    def work(self):
        return self.x.shape[0] * self.w.size * self.fn.oh * self.fn.ow

    def share_backward(self, x, gy, gx, need_w, need_b):
        return conv2d_backward(x, gy, self.w, self.padding, gx is not None, need_w, gx)[1], None


# U = G g G^T for all O*C filters as one GEMM: flattened, U[xi*4 + nu] = sum_{i,j}
# G[xi, i] G[nu, j] g[i, j], i.e. the 16x9 matrix kron(G, G) times the 9 taps
_KRON_G = np.kron(G, G)  # (16, 9): row xi*4 + nu, column i*3 + j


def filter_transform(w):
    """w (O, C, 3, 3) -> U (16, O, C): U[xi*4 + nu, o, c] = (G w[o, c] G^T)[xi, nu]."""
    o, c = w.shape[:2]
    u = _KRON_G.astype(w.dtype) @ w.reshape(o * c, 9).T
    return u.reshape(16, o, c)


def filter_transform_adjoint(gu):
    """gU (16, O, C) -> gw (O, C, 3, 3) with gw[o, c] = G^T gU[:, o, c] G (the 4x4 index
    unfolded): the adjoint of ``filter_transform``."""
    _, o, c = gu.shape
    gw = gu.reshape(16, o * c).T @ _KRON_G.astype(gu.dtype)
    return gw.reshape(o, c, 3, 3)


def _tile_grid(x_shape, padding):
    """Output size (oh, ow) and the grid of 2x2 tiles (th, tw) that covers it."""
    oh, ow = (output_size(size, 3, 1, p) for size, p in zip(x_shape[2:], padding))
    return oh, ow, (oh + 1) // 2, (ow + 1) // 2


def _chunks(n, th, tw, tile_bytes, parts=1):
    """Split the tiles into pieces (n0, n1, ty0, ty1) whose scratch (``tile_bytes`` per tile)
    is about ``tuning.WINOGRAD_CHUNK_BYTES`` and at most a ``parts``-th of this thread's
    workspace limit: as many whole images as fit, else bands of tile rows of one image."""
    limit = workspace.thread_limit() // parts
    target = max(1, min(limit, max(tuning.WINOGRAD_CHUNK_BYTES, tuning.WINOGRAD_MIN_CHUNK_TILES * tile_bytes)))
    image_bytes = tile_bytes * th * tw
    if image_bytes <= target:
        step = max(1, target // image_bytes)
        return [(n0, min(n, n0 + step), 0, th) for n0 in range(0, n, step)]
    rows = max(1, target // (tile_bytes * tw))
    return [(i, i + 1, ty0, min(th, ty0 + rows)) for i in range(n) for ty0 in range(0, th, rows)]


def _chunk_parts():
    """How many threads may share the chunks: one per BLAS thread, unless this already is
    one share of a batch split (then the images are what the cores share)."""
    return 1 if threads.share() > 1 else max(1, threads.blas_threads() or 1)


def _over_chunks(run, chunks, work, rounds=1):
    """``run(group)`` for contiguous groups of the chunks, the groups spread over the cores
    (``threads.over_batch``), and the results of all groups as a list. A batch of one image
    has only its bands of tile rows to share. Neighbouring bands both add into the two image
    rows they share in the input gradient, so with ``rounds=2`` the chunks are cut into
    2 * threads groups and the even ones run first, then the odd ones: groups that run at
    the same time are never neighbours. Fewer chunks than groups run in one call."""
    groups = rounds * _chunk_parts()
    if len(chunks) < groups:  # too few to share: one call, whose GEMMs BLAS threads
        return [run(chunks)]
    bounds = [len(chunks) * g // groups for g in range(groups + 1)]
    results = []
    for r in range(rounds):
        mine = [chunks[bounds[g]:bounds[g + 1]] for g in range(r, groups, rounds)]
        for part in threads.over_batch(lambda i0, i1: [run(group) for group in mine[i0:i1]], len(mine), work):
            results += part
    return results


def _scratch(dtype, c, o, tiles):
    """Two views of the reusable host buffer: a (16, c, tiles) and a (16, o, tiles) array."""
    buf = workspace.host_buffer((16 * (c + o) * tiles,), dtype)
    return buf[:16 * c * tiles].reshape(16, c, tiles), buf[16 * c * tiles:].reshape(16, o, tiles)


def conv2d(x, w, padding, bias=None, out=None):
    """y = conv2d(x, w) + bias, stride 1: x (N, C, H, W), w (O, C, 3, 3), padding (ph, pw),
    bias (O,) or None -> y (N, O, H + 2ph - 2, W + 2pw - 2), as 16 GEMMs M[k] = U[k] @ V[k]
    per chunk of tiles; written into ``out`` (C-contiguous) if given."""
    n, c, _, _ = x.shape
    o = w.shape[0]
    ph, pw = padding
    oh, ow, th, tw = _tile_grid(x.shape, padding)
    x = np.ascontiguousarray(x)  # the kernels are compiled for C-contiguous arrays
    y = np.empty((n, o, oh, ow), x.dtype) if out is None else out
    with threads.one_blas_thread():
        u = filter_transform(w)
    bias = np.zeros(o, x.dtype) if bias is None else bias.astype(x.dtype, copy=False)

    def run(group):  # disjoint rows of y for every chunk
        for n0, n1, ty0, ty1 in group:
            v, m = _scratch(x.dtype, c, o, (n1 - n0) * (ty1 - ty0) * tw)
            kernels.input_transform(x, ph, pw, n0, ty0, ty1, tw, v)
            np.matmul(u, v, out=m)
            kernels.output_transform(m, n0, ty0, ty1, tw, bias, y)
    parts = _chunk_parts()
    _over_chunks(run, _chunks(n, th, tw, 16 * (c + o) * x.itemsize, parts), 16 * c * o * n * th * tw)
    return y


def conv2d_backward(x, gy, w, padding, need_input=True, need_weight=True, gx=None):
    """Both gradients of ``conv2d`` at once, from one transform of gy per chunk:
    returns (gx, gw), None where not asked for; gx is written into ``gx`` if given."""
    return _gradients(gy, padding, x.shape, x if need_weight else None, w if need_input else None, gx)


def conv2d_input_grad(gy, w, x_shape, padding):
    """gx (N, C, H, W) = d sum(conv2d(x, w, padding) * gy) / dx: gV[k] = U[k]^T gM[k], then
    each patch's gd_t = B gV_t B^T added onto the place it was read from."""
    return _gradients(gy, padding, tuple(x_shape), None, w)[0]


def conv2d_weight_grad(x, gy, w_shape, padding):
    """gw (O, C, 3, 3) = d sum(conv2d(x, w, padding) * gy) / dw: gU[k] = sum_t gM[k] V[k]^T
    over all tiles, then gw = G^T gU G."""
    if tuple(w_shape) != (gy.shape[1], x.shape[1], 3, 3):
        raise ValueError(f"winograd.conv2d_weight_grad: weight shape {tuple(w_shape)} does not match "
                         f"input {x.shape} and output gradient {gy.shape}")
    return _gradients(gy, padding, x.shape, x, None)[1]


def _gradients(gy, padding, x_shape, x, w, gx=None):
    """(gx or None, gw or None): the input gradient needs w (and goes into ``gx`` if given),
    the weight gradient needs x.

    Per chunk of tiles: gM = A gY A^T once; gU += gM V^T (V = B^T d B rebuilt from x);
    gV = U^T gM (written over V, no longer needed) folded back into gx."""
    n, c, h, wd = x_shape
    o = gy.shape[1]
    ph, pw = padding
    _, _, th, tw = _tile_grid(x_shape, padding)
    gy = np.ascontiguousarray(gy)  # gradients may arrive as broadcast views
    x = None if x is None else np.ascontiguousarray(x)
    chunks = _chunks(n, th, tw, 16 * (c + o) * gy.itemsize, _chunk_parts())
    banded = any(ty1 - ty0 < th for _, _, ty0, ty1 in chunks)  # bands share edge rows: add up
    if w is None:
        gx = None
    else:
        with threads.one_blas_thread():
            u_t = filter_transform(w).transpose(0, 2, 1)  # (16, C, O)
        if gx is None:
            gx = np.empty(x_shape, gy.dtype)
        if banded:
            gx[...] = 0

    def run(group):  # this group's part of gU (None without x); adds its bands into gx
        gu = None
        for n0, n1, ty0, ty1 in group:
            v, gm = _scratch(gy.dtype, c, o, (n1 - n0) * (ty1 - ty0) * tw)
            kernels.output_transform_adjoint(gy, n0, ty0, ty1, tw, gm)
            if x is not None:
                kernels.input_transform(x, ph, pw, n0, ty0, ty1, tw, v)
                product = np.matmul(gm, v.transpose(0, 2, 1))  # (16, O, C)
                gu = product if gu is None else np.add(gu, product, out=gu)
            if w is not None:
                np.matmul(u_t, gm, out=v)
                kernels.input_transform_adjoint(v, ph, pw, n0, ty0, ty1, tw, banded, gx)
        return gu
    rounds = 2 if banded and w is not None else 1
    gu = None
    for part in _over_chunks(run, chunks, 16 * c * o * n * th * tw, rounds):
        if part is not None:
            gu = part if gu is None else np.add(gu, part, out=gu)
    if x is not None and gu is None:  # an empty batch has no tiles
        gu = np.zeros((16, o, c), gy.dtype)
    if gu is None:
        return gx, None
    with threads.one_blas_thread():
        return gx, filter_transform_adjoint(gu)
