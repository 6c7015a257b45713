"""Convolution by im2col in tiles: the textbook algorithm of ``ops/conv.py``, made fast.

The same three steps (im2col, one GEMM per group, col2im), but the column matrix, kh*kw
times bigger than the image, is never built whole:

* **Tiles.** It is built in tiles of at most ``workspace.thread_limit()`` bytes in a reused
  buffer: chunks of the batch, or bands of output rows where one image is too big. On the
  host a chunk is also at most ``tuning.CACHE_TILE`` bytes, so the GEMM reads the columns
  from the cache right after im2col wrote them; where BLAS runs on one thread, an image
  whose columns pass ``tuning.BAND_TILE`` is cut into bands that fit the core's own cache.
* **The batch split over cores** (``threads.BatchSplit``): each thread runs the whole
  pipeline on its own images with a single-threaded BLAS.
* **The bias in the GEMM** (host, one group, one image per tile): col gets one more row of
  ones and W one more column, b, so the forward GEMM adds the bias, and the weight
  gradient's GEMM sums gb = sum gy (that row of gW) while gy is in the cache.
* **The weight gradient's orientation**: col @ gy^T or gy @ col^T, whichever BLAS runs
  faster for the shapes (``_tall``); small maps put a tile's images into one GEMM.
* **The stride-1 input gradient as a correlation**: gy correlated with the flipped kernel,
  built like a forward pass (im2col of gy, one GEMM) instead of a GEMM and a col2im fold,
  on big maps.
* A 1x1, stride-1, unpadded convolution needs no im2col at all: the image is its own column
  matrix.

conv_transpose2d is the adjoint of conv2d with respect to its input: y = col2im(W^T @ x)
(conv2d's input-gradient steps), and its backward uses im2col.
"""
import math

import numpy as np

from .. import backend, tuning, workspace
from ..cpu import threads
from ..geometry import Window


def cannot(op, fn, x, w):
    """Why this algorithm cannot run ``op`` (None: it runs every geometry, on both devices)."""
    return None


def _kernel(name, like, *args, out=None):
    """Run hot spot ``name`` (im2col/col2im) of ``like``'s device, writing into ``out`` if given."""
    return getattr(backend.kernels(like), name)(*args, out=out)


def _column_buffer(xp, shape, dtype):
    """Scratch for one tile of columns: the host's reused buffer, or None ("let the kernel allocate")."""
    return workspace.host_buffer(shape, dtype) if xp is np else None


class ColumnPlan:
    """How the column matrix of one convolution geometry is built, tile by tile.

    The *image* (N, C, h, w) is what im2col reads (the input of conv2d, the output of
    conv_transpose2d); the *grid* (N, channels, oh, ow) is the GEMM side (the output of
    conv2d, the input of conv_transpose2d). A tile (n0, n1, y0, y1) covers images
    n0:n1 and grid rows y0:y1; it reads the image band r0:r1 (see ``_band``).
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
        Where BLAS runs on one thread an image whose columns pass the band tile is cut into
        bands that fit it, unless the columns are to be folded by ``col2im`` (``fold``): bands
        would add into the image there. Bands are not cut smaller than the limit asks where a
        threaded BLAS runs the GEMMs: every band is one more BLAS call, each a fork and join."""
        row_bytes = self.c * self.win.kh * self.win.kw * self.ow * itemsize
        image_bytes = row_bytes * self.oh
        limit = workspace.thread_limit()
        if xp is np and not fold and image_bytes > tuning.BAND_TILE and threads.single_blas():
            limit = min(limit, tuning.BAND_TILE)
        if self.pointwise or image_bytes <= limit:  # whole images, as many as fit
            chunk = min(tuning.CACHE_TILE, limit) if xp is np else limit
            step = n if self.pointwise or image_bytes == 0 else max(1, chunk // image_bytes)
            return [(n0, min(n, n0 + step), 0, self.oh) for n0 in range(0, n, max(step, 1))]
        # bands of rows of one image, of (nearly) equal heights
        bands = -(-self.oh // max(1, limit // row_bytes))
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


class Conv2d(threads.BatchSplit):
    """conv2d of the Function ``fn`` (its window, output size and groups) by tiled im2col."""

    def forward(self, x, w, b=None):
        fn = self.fn
        self.x, self.w, self.pixels = x, w, fn.oh * fn.ow  # the columns are rebuilt in backward, not kept
        y = self.xp.empty((x.shape[0], w.shape[0], fn.oh, fn.ow), x.dtype)
        self.split(lambda n0, n1: self._forward(x[n0:n1], w, b, y[n0:n1]))
        return y

    def work(self):
        return self.x.shape[0] * self.w.size * self.fn.oh * self.fn.ow

    def _forward(self, x, w, b, y):
        """y[:] = conv2d(x, w) + b for one share of the batch."""
        xp, fn, g = self.xp, self.fn, self.fn.groups
        plan = ColumnPlan(x.shape, fn.win, fn.oh, fn.ow, g)
        tiles = plan.tiles(xp, x.shape[0], x.itemsize)
        wmat = w.reshape(g, w.shape[0] // g, -1)  # (G, Og, Cg*kh*kw)
        fold = b is not None and plan.folds_bias(xp, tiles)
        if fold:  # [W | b] (1, O, C*kh*kw + 1)
            wmat = xp.concatenate([wmat, b.reshape(1, -1, 1)], axis=2)
        for tile in tiles:
            y_tile = xp.matmul(wmat, plan.columns(x, tile, ones=fold), out=plan.grid(y, tile))
            if b is not None and not fold:  # while the tile is still in the cache
                y_tile += b.reshape(1, g, -1, 1)

    def share_backward(self, x, gy, gx, need_w, need_b):
        """Writes gx (if not None) for one share of the batch; returns its (gw, gb), gb None
        unless the GEMM summed it."""
        xp, fn, w = self.xp, self.fn, self.w
        g = fn.groups
        plan = ColumnPlan(x.shape, fn.win, fn.oh, fn.ow, g)
        gw = gb = None
        if need_w:  # first, as the input gradient may reuse the column buffer
            tall = _tall(w, g, fn.oh * fn.ow)
            tiles = plan.tiles(xp, x.shape[0], x.itemsize)
            fold = need_b and plan.folds_bias(xp, tiles)
            for tile in tiles:
                gw = _add_weight_grad(xp, plan.columns(x, tile, ones=fold), plan.grid(gy, tile), gw, tall)
            if fold and gw is not None:  # the ones row's gradient is gb: (1, K+1, O) tall, (1, O, K+1) wide
                gb = (gw[0, -1] if tall else gw[0, :, -1]).copy()
                gw = gw[:, :-1] if tall else gw[:, :, :-1]
            gw = _weight_grad_result(xp, gw, w, tall)
        window = _correlation_window(fn.win)
        if gx is not None and window is not None and x.shape[0] * fn.oh * fn.ow >= tuning.CORRELATION_MIN_PIXELS:
            _input_grad_by_correlation(xp, gy, w, gx, window, g)
        elif gx is not None:
            _fold_into(xp, plan, w, g, gy, gx)
        return gw, gb


class ConvTranspose2d(threads.BatchSplit):
    """conv_transpose2d of the Function ``fn`` (window, output size, groups) by tiled im2col."""

    def forward(self, x, w, b=None):
        self.x, self.w, self.pixels = x, w, x.shape[2] * x.shape[3]  # the GEMM grid is the input
        y = self.xp.empty((x.shape[0], w.shape[1] * self.fn.groups) + self.fn.out_hw, x.dtype)
        self.split(lambda n0, n1: self._forward(x[n0:n1], w, y[n0:n1]))
        if b is not None:
            y += b.reshape(1, -1, 1, 1)
        return y

    def work(self):
        return self.x.size * self.w[0].size

    def _forward(self, x, w, y):
        plan = ColumnPlan(y.shape, self.fn.win, x.shape[2], x.shape[3], self.fn.groups)
        _fold_into(self.xp, plan, w, self.fn.groups, x, y)

    def share_backward(self, x, gy, gx, need_w, need_b):
        """Writes gx (if not None) for one share of the batch; returns its (gw, None)."""
        xp, g, w = self.xp, self.fn.groups, self.w
        plan = ColumnPlan(gy.shape, self.fn.win, x.shape[2], x.shape[3], g)
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


def _fold_into(xp, plan, w, g, grid, image):
    """image = col2im(W^T @ grid), tile by tile: conv2d's input gradient (grid gy) and
    conv_transpose2d's output (grid x) alike; w (G*Og, Cg, kh, kw) is read as (G, Cg*kh*kw, Og)."""
    tiles = plan.tiles(xp, grid.shape[0], grid.itemsize, fold=True)
    if plan.banded(tiles):  # bands add into the image
        image[...] = 0
    w_t = w.reshape(g, w.shape[0] // g, -1).transpose(0, 2, 1)
    for tile in tiles:
        plan.col2im(xp.matmul(w_t, plan.grid(grid, tile), out=plan.scratch(image, tile)), tile, image)


def _tall(w, groups, pixels):
    """Whether to compute the weight gradient as col @ gy^T (K, Og) rather than gy @ col^T: for
    few output channels on the per-image products of big maps; and a product with few rows
    (K < 128, e.g. a 1-channel image) is slow and erratic in a threaded BLAS."""
    return (math.prod(w.shape[1:]) >= 128 and w.shape[0] // groups <= tuning.TALL_MAX_OUT_CHANNELS
            and pixels >= tuning.SMALL_MAP_PIXELS)


def _weight_grad_result(xp, acc, w, tall):
    """The sum from ``_add_weight_grad`` in the weight's shape (zeros for an empty batch)."""
    if acc is None:  # an empty batch has no tiles
        return xp.zeros(w.shape, w.dtype)
    return xp.ascontiguousarray(acc.transpose(0, 2, 1) if tall else acc).reshape(w.shape)


def _add_weight_grad(xp, col, gy_t, acc, tall):
    """acc + sum_n gy_t[n] @ col[n]^T (G, Og, K) for col (nb, G, K, L), gy_t (nb, G, Og, L);
    ``acc`` may be None. With ``tall`` it is the transpose, col @ gy^T (G, K, Og). Small maps
    put all images into one GEMM with inner dimension nb*L instead of nb thin ones (the copies
    are cheap there)."""
    nb, g, k, length = col.shape
    if nb > 1 and length < tuning.SMALL_MAP_PIXELS:
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


def _input_grad_by_correlation(xp, gy, w, gx, window, g):
    """gx[n, c] = sum_o gy[n, o] (*) flip(w[o, c]) (stride 1), written into gx: im2col of gy
    and one GEMM per tile, like a forward pass, instead of a GEMM into columns and a col2im fold.

    The flipped, transposed weight wf (G, Cg, Og*kh*kw) has wf[g, c, (o*kh + i)*kw + j] =
    w[g*Og + o, c, kh-1-i, kw-1-j].
    """
    o, cg, kh, kw = w.shape
    wf = w.reshape(g, o // g, cg, kh, kw)[:, :, :, ::-1, ::-1].transpose(0, 2, 1, 3, 4)
    wf = xp.ascontiguousarray(wf).reshape(g, cg, -1)
    plan = ColumnPlan(gy.shape, window, gx.shape[2], gx.shape[3], g)
    for tile in plan.tiles(xp, gy.shape[0], gy.itemsize):
        xp.matmul(wf, plan.columns(gy, tile), out=plan.grid(gx, tile))
