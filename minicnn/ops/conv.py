"""2-D convolution and transposed convolution as im2col + one batched GEMM.

conv2d, for group g with Cg = C/G input and Og = O/G output channels::

    y[n, g*Og + o, y_, x_] = b[g*Og + o] + sum_{c<Cg, i, j} w[g*Og + o, c, i, j]
                             * x[n, g*Cg + c, y_*sh - ph + i*dh, x_*sw - pw + j*dw]

With col = im2col(x) viewed as (N, G, Cg*kh*kw, L), L = oh*ow, this is one GEMM per
group, and its output already is y in NCHW::

    W (G, Og, Cg*kh*kw) @ col (N, G, Cg*kh*kw, L) -> y (N, G, Og, L)
    backward:  gW = sum_n gy_n @ col_n^T,   gx = col2im(W^T @ gy),   gb = sum_{n,y,x} gy

On the host, where every tile is one image (or a band of one), the bias rides in the GEMM:
col gets one more row of ones and W one more column, b, so the GEMM adds the bias and the
weight gradient's GEMM sums gb = sum gy (that row of gW) while gy is in the cache; no pass
of its own over y or gy (7x7/2 stem, 4 images on one core, f+b: 26.2 -> 25.2 ms).

With stride 1 the input gradient is itself a convolution, gy correlated with the flipped
kernel, so backward builds it like a forward pass (im2col of gy, one GEMM) and skips the
col2im fold; that pays once the maps are big enough (N*oh*ow >= 1024).

conv_transpose2d is the adjoint of conv2d with respect to its input (the same GEMM
and col2im the conv2d backward runs): y = col2im(W^T @ x); its backward uses im2col.

The columns are kh*kw times bigger than the image, so they are never kept for
backward (backward rebuilds them) and are built in tiles of at most
``get_workspace_limit()`` bytes (the cap on the column buffer's memory): chunks of the
batch, or bands of output rows when a single image is too big. A chunk of images is
also at most ``_CACHE_TILE`` bytes (8 MiB), so that the GEMM reads the columns from the
cache right after im2col wrote them (a 64 MiB chunk goes out to memory and back: ~25%
slower). Bands are not cut smaller than the limit asks where a threaded BLAS runs the
GEMMs: every band is one more BLAS call, and on a busy machine each call can stall on a
descheduled thread (U-Net's 64 channels at 256x256, 2 threads: 157 ms with 64 MiB bands,
223 ms with 8 MiB ones; 229 vs 213 ms with 1 thread). Where the GEMMs run on one thread
(in a share of a batch split, or with a 1-thread BLAS) an image whose columns pass
``_BAND_TILE`` (2 MiB) is cut into bands that fit it: a stem's GEMM, with few output
channels and a short inner dimension (64 x 147 by 147 x 12544 at 7x7/2), does little work
per column read, and runs 10-15% faster on columns that are still in the core's cache.

On the host two faster routes replace im2col where they apply: 3x3 stride-1 convolutions
run as Winograd F(2x2, 3x3) (``ops/winograd.py``), and strided ones whose stride phases make
a 3x3 kernel (AlexNet's 11x11/4 stem) as Winograd over those phases (``ops/phases.py``).
And the batch is split over the cores (``minicnn/cpu/threads.py``): each thread runs the
whole pipeline on its own images with a single-threaded BLAS, and gets its share of the
workspace limit.
"""
import math
import threading
from collections import namedtuple

import numpy as np

from .. import backend
from ..autograd import Function
from ..cpu import threads
from ..tensor import Tensor
from . import phases, winograd

# 64 MiB: big enough that BLAS sees long matrices, small enough that the buffer (kept between
# calls) does not dominate a training step's peak memory; bands of rows cost little more time
_workspace_limit = 64 * 2**20
_buffers = {}  # thread id -> that thread's reusable host buffer for column matrices
# whole images are grouped into tiles of columns that stay in the last-level cache (32 MiB L3 here;
# 1 MiB L2 per core) between im2col writing them and the GEMM reading them; per-image tiles of 2-8
# MiB measured the same
_CACHE_TILE = 8 * 2**20
# bands of one image's columns where BLAS runs single-threaded: 7x7/2 stem, batch 8, 2 threads
# (a batch split), f+b 31.8 ms with whole images, 29.7 with 1 MiB bands, 28.1 with 2 MiB (1 thread:
# 52.6 -> 50.8 ms of CPU); a strided 3x3 (128 channels at 56x56, 3.6 MiB of columns an image) the same
_BAND_TILE = 2 * 2**20


def set_workspace_limit(nbytes):
    """Cap the im2col column buffers at ``nbytes`` in all (default 64 MiB; the threads of a
    batch split share it); returns the previous cap."""
    global _workspace_limit
    if int(nbytes) < 1:
        raise ValueError(f"set_workspace_limit: the limit must be a positive number of bytes, got {nbytes}")
    previous, _workspace_limit = _workspace_limit, int(nbytes)
    clear_workspace()
    return previous


def get_workspace_limit():
    return _workspace_limit


def clear_workspace():
    """Free the column buffers (they are otherwise kept for the next convolution)."""
    _buffers.clear()


def thread_workspace_limit():
    """This thread's part of the workspace limit: all of it, or its share in a batch split."""
    return max(1, _workspace_limit // threads.share())


# A share of a batch split needs this many pixels of GEMM grid at least: with fewer the
# GEMMs are too narrow for one thread and each share reads all the weights (2 cores, batch 8,
# 1x1 2048->512 at 7x7, forward: 5.0 ms threaded BLAS, 6.2-6.7 split); at 14x14 the split
# wins (3x3 256->256 f+b 37.4 -> 24.5 ms)
_MIN_SHARE_PIXELS = 256


def _over_batch(xp, fn, n, work, pixels):
    """``fn(n0, n1)`` over the batch (images of ``pixels`` grid pixels): split over the cores
    on the host, else in one call."""
    if xp is not np:
        return [fn(0, n)]
    return threads.over_batch(fn, n, work, min_images=-(-_MIN_SHARE_PIXELS // max(1, pixels)))


def _column_buffer(xp, shape, dtype):
    """Scratch for one tile of columns, or None for "let the kernel allocate".

    On the host one buffer per thread is reused across calls: glibc hands big blocks
    back to the OS when they are freed, so a fresh buffer would page-fault in again on
    every call. That is safe because a column matrix never outlives the call that fills
    it. On the GPU CuPy's memory pool already recycles blocks.
    """
    if xp is not np:
        return None
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    me = threading.get_ident()
    buffer = _buffers.get(me)
    if buffer is None or buffer.nbytes < nbytes:
        _buffers.pop(me, None)  # let the smaller buffer go before the bigger one is allocated
        buffer = _buffers[me] = np.empty(nbytes, np.uint8)
    return buffer[:nbytes].view(dtype).reshape(shape)


def _kernel(name, like, *args, out=None):
    """Run hot spot ``name`` (im2col/col2im) of ``like``'s device, writing into ``out`` if given."""
    return getattr(backend.kernels(like), name)(*args, out=out)


Window = namedtuple("Window", "kh kw sh sw ph pw dh dw")


class _ColumnPlan:
    """How the column matrix of one convolution geometry is built, tile by tile.

    The *image* (N, C, h, w) is what im2col reads (the input of conv2d, the output of
    conv_transpose2d); the *grid* (N, channels, oh, ow) is the GEMM side (the output of
    conv2d, the input of conv_transpose2d). A tile (n0, n1, y0, y1) covers images
    n0:n1 and grid rows y0:y1; it reads the image band r0:r1 (see ``_band``).

    A 1x1, stride-1, unpadded convolution needs no im2col at all: the image already is
    its own column matrix, so ``columns`` and ``scratch`` are views of the image and
    ``col2im`` has nothing left to do.
    """

    def __init__(self, image_shape, win, oh, ow, groups):
        _, self.c, self.h, self.w = image_shape
        self.win, self.oh, self.ow, self.groups = win, oh, ow, groups
        self.pointwise = ((win.kh, win.kw, win.sh, win.sw, win.ph, win.pw) == (1, 1, 1, 1, 0, 0)
                          and (self.h, self.w) == (oh, ow))  # output_padding can make the image bigger

    def tiles(self, xp, n, itemsize, fold=False):
        """Split the batch into chunks whose columns fit the cache tile (on the host; a GPU has
        no such cache, and more tiles only mean more kernel launches there) and the workspace
        limit, or (one image bigger than the limit) the grid rows into bands that fit the limit.
        Where BLAS runs on one thread (``threads.single_blas``) an image whose columns pass
        ``_BAND_TILE`` is cut into bands that fit it, unless the columns are to be folded by
        ``col2im`` (``fold``): bands would add into the image there."""
        row_bytes = self.c * self.win.kh * self.win.kw * self.ow * itemsize
        image_bytes = row_bytes * self.oh
        workspace = thread_workspace_limit()
        if threads.single_blas() and not fold and image_bytes > _BAND_TILE:
            workspace = min(workspace, _BAND_TILE)
        if self.pointwise or image_bytes <= workspace:  # whole images, as many as fit
            limit = min(_CACHE_TILE, workspace) if xp is np else workspace
            step = n if self.pointwise or image_bytes == 0 else max(1, limit // image_bytes)
            return [(n0, min(n, n0 + step), 0, self.oh) for n0 in range(0, n, max(step, 1))]
        # bands of rows of one image, of (nearly) equal heights
        bands = -(-self.oh // max(1, workspace // row_bytes))
        bounds = [self.oh * b // bands for b in range(bands + 1)]
        return [(i, i + 1, y0, y1) for i in range(n) for y0, y1 in zip(bounds, bounds[1:])]

    def banded(self, tiles):
        return any(y1 - y0 < self.oh for _, _, y0, y1 in tiles)

    def _band(self, y0, y1):
        """Image rows [r0, r1) that grid rows [y0, y1) touch, and the top padding inside that band."""
        k = self.win
        if (y0, y1) == (0, self.oh):
            return 0, self.h, k.ph
        top = y0 * k.sh - k.ph
        r0 = max(0, top)
        r1 = max(r0, min(self.h, (y1 - 1) * k.sh - k.ph + (k.kh - 1) * k.dh + 1))
        return r0, r1, r0 - top

    def _col_shape(self, tile):
        n0, n1, y0, y1 = tile
        kg = self.c // self.groups * self.win.kh * self.win.kw
        return (n1 - n0, self.groups, kg, (y1 - y0) * self.ow)

    def grid(self, a, tile):
        """The (nb, G, channels/G, rows*ow) view of grid-shaped ``a`` (N, channels, oh, ow) in this tile."""
        n0, n1, y0, y1 = tile
        return a[n0:n1, :, y0:y1].reshape(n1 - n0, self.groups, -1, (y1 - y0) * self.ow)

    def columns(self, image, tile, ones=False):
        """im2col of the tile: (nb, G, Cg*kh*kw, rows*ow); with ``ones`` (see ``folds_bias``)
        one more row, of ones, at the end: (1, 1, C*kh*kw + 1, rows*ow)."""
        n0, n1, y0, y1 = tile
        shape = self._col_shape(tile)
        if self.pointwise:
            return image[n0:n1].reshape(shape)
        k = self.win
        r0, r1, ph = self._band(y0, y1)
        band = image[n0:n1, :, r0:r1]  # a view: the host's im2col reads it in place
        rows = shape[1] * shape[2]
        out = _column_buffer(backend.array_module(image), (shape[0], rows + ones, shape[3]), image.dtype)
        if ones:  # out[:, :rows] is contiguous: one image
            _kernel("im2col", band, band, k.kh, k.kw, k.sh, k.sw, ph, k.pw, k.dh, k.dw, y1 - y0, self.ow,
                    out=out[:, :rows])
            out[:, rows] = 1
            return out.reshape(1, 1, rows + 1, shape[3])
        col = _kernel("im2col", band, band, k.kh, k.kw, k.sh, k.sw, ph, k.pw, k.dh, k.dw, y1 - y0, self.ow, out=out)
        return col.reshape(shape)

    def folds_bias(self, xp, tiles):
        """Whether the bias can ride in the GEMM as a row of ones in the columns (on the host,
        one group, and every tile one image: the row then follows contiguous columns)."""
        return xp is np and self.groups == 1 and not self.pointwise and all(n1 - n0 == 1 for n0, n1, _, _ in tiles)

    def scratch(self, image, tile):
        """Where a GEMM puts the columns that ``col2im`` then folds into ``image``."""
        n0, n1, _, _ = tile
        if self.pointwise:
            return image[n0:n1].reshape(self._col_shape(tile))
        return _column_buffer(backend.array_module(image), self._col_shape(tile), image.dtype)

    def col2im(self, col, tile, image):
        """Fold the tile's columns into ``image`` (assigning whole images, adding into bands)."""
        if self.pointwise:
            return
        k = self.win
        n0, n1, y0, y1 = tile
        r0, r1, ph = self._band(y0, y1)
        col = col.reshape(n1 - n0, -1, (y1 - y0) * self.ow)
        args = (col, r1 - r0, self.w, k.kh, k.kw, k.sh, k.sw, ph, k.pw, k.dh, k.dw, y1 - y0, self.ow)
        if (y0, y1) == (0, self.oh):  # whole images: no other tile touches them
            _kernel("col2im", col, *args, out=image[n0:n1])
        else:  # a band overlaps its neighbours where the kernel is taller than the stride
            image[n0:n1, :, r0:r1] += _kernel("col2im", col, *args)


class _BatchSplit(Function):
    """What conv2d and conv_transpose2d share: a batch that splits over the cores, and a
    backward that runs ``_backward`` on every share and sums the shares' parameter gradients.
    A subclass keeps ``self.x`` and ``self.w`` and defines ``_work`` (multiply-adds of the
    forward pass), ``_pixels`` (pixels of one image's GEMM grid) and ``_backward``, which
    returns a share's (gw, gb), gb None where the sum of gy is left to this class."""

    def _split(self, fn):
        return _over_batch(self.xp, fn, self.x.shape[0], self._work(), self._pixels())

    def _source(self, n0, n1):
        """What ``_backward`` reads for images n0:n1 (their input)."""
        return self.x[n0:n1]

    def backward(self, gy):
        x = self.x
        gy = self.xp.ascontiguousarray(gy)
        need_x, need_w = self.needs_input_grad[:2]
        need_b = len(self.needs_input_grad) == 3 and self.needs_input_grad[2]
        gx = self.xp.empty(x.shape, x.dtype) if need_x else None

        def images(n0, n1):  # gx[n0:n1] and this share's sums for gw and gb
            gw, gb = self._backward(self._source(n0, n1), gy[n0:n1], None if gx is None else gx[n0:n1],
                                    need_w, need_b)
            if need_b and gb is None:
                gb = gy[n0:n1].sum(axis=(0, 2, 3))
            return gw, gb

        parts = self._split(images)
        grads = (gx, _sum(gw for gw, _ in parts))
        return grads + (_sum(gb for _, gb in parts),) if len(self.needs_input_grad) == 3 else grads


def _sum(parts):
    """The sum of the shares' partial results (None when they are None: not asked for)."""
    parts = list(parts)
    if parts[0] is None:
        return None
    for p in parts[1:]:
        parts[0] += p
    return parts[0]


class Conv2d(_BatchSplit):
    """y = conv2d(x, w) + b; x (N, C, H, W), w (O, C/G, kh, kw), b (O,) -> y (N, O, oh, ow)."""

    def __init__(self, win, oh, ow, groups):
        self.win, self.oh, self.ow, self.groups = win, oh, ow, groups

    def forward(self, x, w, b=None):
        xp, win = self.xp, self.win
        self.x, self.w = x, w  # the columns are rebuilt in backward rather than kept
        # 3x3 stride-1 convolutions on the CPU: Winograd's 16 multiplies per 2x2 outputs
        # instead of 36 beat any GEMM on the im2col matrix (see ops/winograd.py)
        host = xp is np and x.dtype in (np.float32, np.float64)
        geometry = (x.shape, w.shape, (win.sh, win.sw), (win.ph, win.pw), (win.dh, win.dw), self.groups)
        self.winograd = host and winograd.supports(*geometry)
        # strided ones whose phases make a 3x3 stride-1 convolution, too (see ops/phases.py)
        self.phases = phases.Phases(*geometry[:4]) if host and phases.supports(*geometry) else None
        if self.phases is not None:  # backward reads the phases (the input's size) instead of x
            self.w_phases, self.x_phases = self.phases.weight(w), xp.empty(self.phases.x_shape, x.dtype)
        y = xp.empty((x.shape[0], w.shape[0], self.oh, self.ow), x.dtype)
        self._split(lambda n0, n1: self._forward(x[n0:n1], w, b, y[n0:n1], n0))
        return y

    def _work(self):
        """Multiply-adds of the forward pass (the backward's two products cost as much each)."""
        return self.x.shape[0] * self.w.size * self.oh * self.ow

    def _pixels(self):
        return self.oh * self.ow

    def _source(self, n0, n1):
        """The input of images n0:n1, or on the phase path their phases."""
        return self.x[n0:n1] if self.phases is None else self.x_phases[n0:n1]

    def _forward(self, x, w, b, y, n0=0):
        """y[:] = conv2d(x, w) + b for one part of the batch (its images from n0 on)."""
        xp, g, win = self.xp, self.groups, self.win
        if self.winograd:
            winograd.conv2d(x, w, (win.ph, win.pw), b, out=y)
            return
        if self.phases is not None:
            xs = self.phases.split(x, out=self.x_phases[n0:n0 + x.shape[0]])
            winograd.conv2d(xs, self.w_phases, (0, 0), b, out=y)
            return
        plan = _ColumnPlan(x.shape, win, self.oh, self.ow, g)
        tiles = plan.tiles(xp, x.shape[0], x.itemsize)
        wmat = w.reshape(g, w.shape[0] // g, -1)  # (G, Og, Cg*kh*kw)
        fold = b is not None and plan.folds_bias(xp, tiles)
        if fold:  # [W | b] (1, O, C*kh*kw + 1)
            wmat = xp.concatenate([wmat, b.reshape(1, -1, 1)], axis=2)
        for tile in tiles:
            y_tile = xp.matmul(wmat, plan.columns(x, tile, ones=fold), out=plan.grid(y, tile))
            if b is not None and not fold:  # while the tile is still in the cache
                y_tile += b.reshape(1, g, -1, 1)

    def _backward(self, x, gy, gx, need_w, need_b):
        """Writes gx (if not None) for one share of the batch; returns its (gw, gb), gb None
        unless the GEMM summed it. ``x`` is that share's ``_source``."""
        xp, g, w = self.xp, self.groups, self.w
        if self.winograd:
            return winograd.conv2d_backward(x, gy, w, (self.win.ph, self.win.pw), gx is not None, need_w, gx)[1], None
        if self.phases is not None:
            gxs, gws = winograd.conv2d_backward(x, gy, self.w_phases, (0, 0), gx is not None, need_w)
            if gx is not None:
                self.phases.merge(gxs, gx)
            return None if gws is None else self.phases.weight_grad(gws), None
        plan = _ColumnPlan(x.shape, self.win, self.oh, self.ow, g)
        gw = gb = None
        if need_w:  # first, as the input gradient may reuse the column buffer
            tall = _tall(w, g, self.oh * self.ow)
            tiles = plan.tiles(xp, x.shape[0], x.itemsize)
            fold = need_b and plan.folds_bias(xp, tiles)
            for tile in tiles:
                gw = _add_weight_grad(xp, plan.columns(x, tile, ones=fold), plan.grid(gy, tile), gw, tall)
            if fold and gw is not None:  # the ones row's gradient is gb: (1, K+1, O) tall, (1, O, K+1) wide
                gb = (gw[0, -1] if tall else gw[0, :, -1]).copy()
                gw = gw[:, :-1] if tall else gw[:, :, :-1]
            gw = _weight_grad_result(xp, gw, w, tall)
        if gx is not None and x.shape[0] * self.oh * self.ow >= 1024 and _correlation_window(self.win) is not None:
            _input_grad_by_correlation(xp, gy, w, gx, self.win, g)
        elif gx is not None:
            _fold_into(xp, plan, w, g, gy, gx)
        return gw, gb


def _fold_into(xp, plan, w, g, grid, image):
    """image = col2im(W^T @ grid), tile by tile: conv2d's input gradient (grid gy) and
    conv_transpose2d's output (grid x) alike; w (G*Og, Cg, kh, kw) is read as (G, Cg*kh*kw, Og)."""
    tiles = plan.tiles(xp, grid.shape[0], grid.itemsize, fold=True)
    if plan.banded(tiles):  # bands add into the image
        image[...] = 0
    w_t = w.reshape(g, w.shape[0] // g, -1).transpose(0, 2, 1)
    for tile in tiles:
        plan.col2im(xp.matmul(w_t, plan.grid(grid, tile), out=plan.scratch(image, tile)), tile, image)


_SMALL_MAP_PIXELS = 1024  # maps with fewer pixels (oh*ow) put a tile's images into one GEMM


def _tall(w, groups, pixels):
    """Whether to compute the weight gradient as col @ gy^T (K, Og) rather than gy @ col^T: with
    OpenBLAS, 5-25% faster for few output channels (Og <= 128; gy @ col^T then has few rows) on
    the per-image products of big maps, but 10-15% slower on the wide products of small maps and
    up to 25% slower with many output channels (9216x512 via 1024 pixels); and a product with
    few rows (K < 128, e.g. a 1-channel image) is slow and erratic in a threaded BLAS."""
    return math.prod(w.shape[1:]) >= 128 and w.shape[0] // groups <= 128 and pixels >= _SMALL_MAP_PIXELS


def _weight_grad_result(xp, acc, w, tall):
    """The sum from ``_add_weight_grad`` in the weight's shape (zeros for an empty batch)."""
    if acc is None:  # an empty batch has no tiles
        return xp.zeros(w.shape, w.dtype)
    return xp.ascontiguousarray(acc.transpose(0, 2, 1) if tall else acc).reshape(w.shape)


def _add_weight_grad(xp, col, gy_t, acc, tall):
    """acc + sum_n gy_t[n] @ col[n]^T (G, Og, K) for col (nb, G, K, L), gy_t (nb, G, Og, L);
    ``acc`` may be None. With ``tall`` it is the transpose, col @ gy^T (G, K, Og), which BLAS
    runs faster on the per-image products of big maps. Small maps put all images into one
    GEMM with inner dimension nb*L instead of nb thin ones (the copies are cheap there).
    """
    nb, g, k, length = col.shape
    if nb > 1 and length < _SMALL_MAP_PIXELS:
        col = col.transpose(1, 2, 0, 3).reshape(1, g, k, nb * length)
        gy_t = gy_t.transpose(1, 2, 0, 3).reshape(1, g, -1, nb * length)
    for n in range(col.shape[0]):
        a, b = (col[n], gy_t[n]) if tall else (gy_t[n], col[n])
        product = xp.matmul(a, b.transpose(0, 2, 1))
        acc = product if acc is None else xp.add(acc, product, out=acc)
    return acc


def _correlation_window(win):
    """For a stride-1 convolution the input gradient is itself a convolution: gy correlated
    with the flipped kernel, padded by (extent - 1 - padding). Returns that window, or None
    when it does not apply (strides, or padding wider than the kernel's extent)."""
    ph, pw = win.dh * (win.kh - 1) - win.ph, win.dw * (win.kw - 1) - win.pw
    if (win.sh, win.sw) != (1, 1) or ph < 0 or pw < 0:
        return None
    return Window(win.kh, win.kw, 1, 1, ph, pw, win.dh, win.dw)


def _input_grad_by_correlation(xp, gy, w, gx, win, g):
    """gx[n, c] = sum_o gy[n, o] (*) flip(w[o, c]) (stride 1), written into gx: im2col of gy
    and one GEMM per tile, like a forward pass, instead of a GEMM into columns and a col2im fold.

    The flipped, transposed weight wf (G, Cg, Og*kh*kw) has wf[g, c, (o*kh + i)*kw + j] =
    w[g*Og + o, c, kh-1-i, kw-1-j].
    """
    o, cg, kh, kw = w.shape
    wf = w.reshape(g, o // g, cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    wf = xp.ascontiguousarray(wf).reshape(g, cg, -1)
    plan = _ColumnPlan(gy.shape, _correlation_window(win), gx.shape[2], gx.shape[3], g)
    for tile in plan.tiles(xp, gy.shape[0], gy.itemsize):
        xp.matmul(wf, plan.columns(gy, tile), out=plan.grid(gx, tile))


class ConvTranspose2d(_BatchSplit):
    """y = conv_transpose2d(x, w) + b; x (N, Cin, H, W), w (Cin, Cout/G, kh, kw), b (Cout,)
    -> y (N, Cout, Hout, Wout): the input-gradient of conv2d with that weight, plus b."""

    def __init__(self, win, out_hw, groups):
        self.win, self.out_hw, self.groups = win, out_hw, groups

    def forward(self, x, w, b=None):
        xp = self.xp
        self.x, self.w = x, w
        y = xp.empty((x.shape[0], w.shape[1] * self.groups) + self.out_hw, x.dtype)
        self._split(lambda n0, n1: self._forward(x[n0:n1], w, y[n0:n1]))
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def _work(self):
        return self.x.size * self.w[0].size

    def _pixels(self):  # the GEMM grid is the input
        return self.x.shape[2] * self.x.shape[3]

    def _forward(self, x, w, y):
        plan = _ColumnPlan(y.shape, self.win, x.shape[2], x.shape[3], self.groups)
        _fold_into(self.xp, plan, w, self.groups, x, y)

    def _backward(self, x, gy, gx, need_w, need_b):
        """Writes gx (if not None) for one share of the batch; returns its (gw, None)."""
        xp, g, w = self.xp, self.groups, self.w
        plan = _ColumnPlan(gy.shape, self.win, x.shape[2], x.shape[3], g)
        gw = None
        tall = _tall(w, g, x.shape[2] * x.shape[3])
        wmat = w.reshape(g, w.shape[0] // g, -1)  # (G, Cing, Coutg*kh*kw)
        for tile in plan.tiles(xp, x.shape[0], x.itemsize):
            col = plan.columns(gy, tile)  # (nb, G, Coutg*kh*kw, L)
            if gx is not None:
                xp.matmul(wmat, col, out=plan.grid(gx, tile))
            if need_w:  # gW = sum_n x_n @ col_n^T: conv2d's weight gradient with x in the place of gy
                gw = _add_weight_grad(xp, col, plan.grid(x, tile), gw, tall)
        return _weight_grad_result(xp, gw, w, tall) if need_w else None, None


# -- argument checking and output sizes ---------------------------------------------------

def _pair(value, name, op):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")


def _positive(pair, name, op, minimum=1):
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {pair}")
    return pair


def _check_tensors(op, x, w, b):
    for t, name in ((x, "input"), (w, "weight"), (b, "bias")):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: {name} must be a Tensor, got {type(t).__name__}")
    if x.ndim not in (3, 4):
        raise ValueError(f"{op}: expected a 4-D input (N, C, H, W) or a 3-D one (C, H, W), "
                         f"got {x.ndim}-D input of shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got shape {w.shape}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating point input, got dtype {x.dtype}")
    if w.dtype != x.dtype or (b is not None and b.dtype != x.dtype):
        bias = "" if b is None else f", bias {b.dtype}"
        raise TypeError(f"{op}: input, weight and bias must have the same dtype, got input {x.dtype}, "
                        f"weight {w.dtype}{bias}")


def _check_groups(op, groups, x, w, weight_channels, weight_what):
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    for what, channels in (("input channels", x.shape[-3]), (weight_what, weight_channels)):
        if channels % groups:
            raise ValueError(f"{op}: {what} ({channels}) are not divisible by groups={groups} "
                             f"(input {x.shape}, weight {w.shape})")


def _check_bias(op, b, channels, w):
    if b is not None and b.shape != (channels,):
        raise ValueError(f"{op}: bias of shape {b.shape} does not match the {channels} output channels "
                         f"of weight {w.shape}; expected ({channels},)")


def _apply(fn, x, w, b):
    """Apply ``fn`` to a batch; a 3-D (C, H, W) input runs as a batch of one."""
    wb = (w,) if b is None else (w, b)
    if x.ndim == 4:
        return fn.apply(x, *wb)
    return fn.apply(x.unsqueeze(0), *wb).squeeze(0)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation, as PyTorch).

    input (N, C, H, W) or (C, H, W), weight (O, C/groups, kh, kw), bias (O,) or None.
    ``padding`` is an int, a pair, 'valid' (none) or 'same' (stride 1 only; an odd total
    padding puts the extra row/column at the bottom/right, as PyTorch).
    Output size: oh = (H + 2*ph - dh*(kh - 1) - 1) // sh + 1, likewise ow.
    """
    op = "conv2d"
    _check_tensors(op, input, weight, bias)
    sh, sw = _positive(_pair(stride, "stride", op), "stride", op)
    dh, dw = _positive(_pair(dilation, "dilation", op), "dilation", op)
    o, cg, kh, kw = weight.shape
    _check_groups(op, groups, input, weight, o, "weight's out_channels")
    c, h, w = input.shape[-3:]
    if c != cg * groups:
        raise ValueError(f"{op}: input has {c} channels (shape {input.shape}) but weight {weight.shape} "
                         f"with groups={groups} expects {cg * groups}")
    _check_bias(op, bias, o, weight)
    ext_h, ext_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1  # the dilated kernel's extent
    if isinstance(padding, str):
        if padding == "valid":
            ph = pw = 0
            oh, ow = (h - ext_h) // sh + 1, (w - ext_w) // sw + 1
        elif padding == "same":
            if (sh, sw) != (1, 1):
                raise ValueError(f"{op}: padding='same' is not supported for strided convolutions (stride {(sh, sw)})")
            ph, pw, oh, ow = (ext_h - 1) // 2, (ext_w - 1) // 2, h, w
        else:
            raise ValueError(f"{op}: padding must be 'valid', 'same', an int or a pair, got {padding!r}")
        pad_desc = repr(padding)
    else:
        ph, pw = _positive(_pair(padding, "padding", op), "padding", op, minimum=0)
        oh, ow = (h + 2 * ph - ext_h) // sh + 1, (w + 2 * pw - ext_w) // sw + 1
        pad_desc = str((ph, pw))
    if padding != "same" and (h + 2 * ph < ext_h or w + 2 * pw < ext_w):
        raise ValueError(f"{op}: kernel {kh}x{kw} (dilation {(dh, dw)}, extent {ext_h}x{ext_w}) is larger than "
                         f"the padded input {h + 2 * ph}x{w + 2 * pw} (input {input.shape}, padding {pad_desc})")
    if oh < 1 or ow < 1:
        raise ValueError(f"{op}: output size {oh}x{ow} is not positive (input {input.shape}, weight "
                         f"{weight.shape}, stride {(sh, sw)}, padding {pad_desc}, dilation {(dh, dw)})")
    fn = Conv2d(Window(kh, kw, sh, sw, ph, pw, dh, dw), oh, ow, int(groups))
    return _apply(fn, input, weight, bias)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """2-D transposed convolution: the adjoint of conv2d with respect to its input.

    input (N, Cin, H, W) or (Cin, H, W), weight (Cin, Cout/groups, kh, kw), bias (Cout,).
    Output size: Hout = (H - 1)*sh - 2*ph + dh*(kh - 1) + output_padding_h + 1, likewise Wout;
    output_padding (< stride or < dilation) adds rows/columns at the bottom/right.
    """
    op = "conv_transpose2d"
    _check_tensors(op, input, weight, bias)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a pair, got {padding!r}")
    sh, sw = _positive(_pair(stride, "stride", op), "stride", op)
    dh, dw = _positive(_pair(dilation, "dilation", op), "dilation", op)
    ph, pw = _positive(_pair(padding, "padding", op), "padding", op, minimum=0)
    oph, opw = _positive(_pair(output_padding, "output_padding", op), "output_padding", op, minimum=0)
    if oph >= max(sh, dh) or opw >= max(sw, dw):
        raise ValueError(f"{op}: output_padding {(oph, opw)} must be smaller than either stride {(sh, sw)} "
                         f"or dilation {(dh, dw)}")
    cin, coutg, kh, kw = weight.shape
    _check_groups(op, groups, input, weight, cin, "weight's in_channels")
    c, h, w = input.shape[-3:]
    if c != cin:
        raise ValueError(f"{op}: input has {c} channels (shape {input.shape}) but weight {weight.shape} "
                         f"with groups={groups} expects {cin}")
    _check_bias(op, bias, coutg * groups, weight)
    hout = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    wout = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    if hout < 1 or wout < 1 or h < 1 or w < 1:
        raise ValueError(f"{op}: output size {hout}x{wout} is not positive (input {input.shape}, weight "
                         f"{weight.shape}, stride {(sh, sw)}, padding {(ph, pw)}, dilation {(dh, dw)}, "
                         f"output_padding {(oph, opw)})")
    fn = ConvTranspose2d(Window(kh, kw, sh, sw, ph, pw, dh, dw), (hout, wout), int(groups))
    return _apply(fn, input, weight, bias)
