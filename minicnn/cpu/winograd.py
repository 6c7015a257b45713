"""Winograd F(2x2, 3x3) transforms on the CPU: the memory-bound passes around the GEMMs.

``conv_winograd.py`` explains the algorithm; these numba loops are its four
transforms written out with the matrices' zeros and ones removed (only additions remain)::

    B^T = [[1, 0, -1, 0],      A^T = [[1, 1, 1, 0],
           [0, 1, 1, 0],              [0, 1, -1, -1]]
           [0, -1, 1, 0],
           [0, 1, 0, -1]]

    input_transform             V_t  = B^T d_t B     (4x4 input patch -> 4x4)
    output_transform            Y_t  = A^T M_t A     (4x4 -> 2x2 output tile)
    output_transform_adjoint    gM_t = A gY_t A^T    (its adjoint: 2x2 -> 4x4)
    input_transform_adjoint     gd_t = B gV_t B^T    (4x4 -> 4x4, summed where patches overlap)

A *chunk* is images n0:n0+nb and tile rows ty0:ty1 of the (th, tw) grid of tiles. Tile
(ty, tx) covers output rows 2ty, 2ty+1 and columns 2tx, 2tx+1, and reads the 4x4 input
patch at rows 2ty - ph .. 2ty - ph + 3, columns 2tx - pw .. 2tx - pw + 3 (zero outside the
image). Within a chunk, tile (i, ty, tx) is column t = (i*(ty1 - ty0) + ty - ty0)*tw + tx of
the Winograd-domain arrays, which are (16, channels, tiles) with row index xi*4 + nu.

Every function loops over (image, channel) planes and first copies a plane's rows into a
zero-padded band (or collects its results in one), so the tile loops need no bounds tests
for padding or partial tiles.

The loops are serial, and release the GIL: the convolution splits its batch over the cores
(``minicnn/cpu/threads.py``), and every thread runs its images' transforms and GEMMs on its
own. Parallel loops inside a transform do not pay: a chunk's transform takes about as long as
waking numba's and OpenBLAS's threads for it (benchmarks/README.md has the measurement).
"""
import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _band_limits(extent, start, size):
    """Band rows [r0, r1) that lie inside an image axis of ``extent``, for a band of ``size``
    rows whose first row is image row ``start`` (negative inside the top padding)."""
    return max(0, -start), max(max(0, -start), min(size, extent - start))


# Each tile loop below is split in two: first the combinations along the rows of a tile
# for a whole row of tiles at once, then the ones along its columns, one output stream at a
# time. Loops of that shape compile to vector instructions; one loop writing the 16 streams
# of the Winograd domain together does not (it ran several times slower).
# The outputs are indexed as v[k, c, t0:t0 + tw] (a slice of the C-contiguous array) rather
# than through a view v[:, c]: numba vectorises loops over the former, not the latter.


@numba.njit(cache=True, nogil=True)
def input_transform(x, ph, pw, n0, ty0, ty1, tw, v):
    """x (N, C, H, W) -> v (16, C, nb*(ty1 - ty0)*tw): v[xi*4 + nu, c, t] = (B^T d_t B)[xi, nu]."""
    _, c_, h, w = x.shape
    nty = ty1 - ty0
    top, rows, cols = 2 * ty0 - ph, 2 * nty + 2, 2 * tw + 2
    r0, r1 = _band_limits(h, top, rows)
    s0, s1 = _band_limits(w, -pw, cols)
    band = np.empty((rows, cols), x.dtype)
    bd = np.empty((4, cols), x.dtype)  # B^T d for a tile row: the whole width at once
    for i in range(v.shape[2] // (nty * tw)):
        for c in range(c_):
            band[:] = 0
            band[r0:r1, s0:s1] = x[n0 + i, c, top + r0:top + r1, s0 - pw:s1 - pw]
            for ty in range(nty):
                d0, d1, d2, d3 = band[2 * ty], band[2 * ty + 1], band[2 * ty + 2], band[2 * ty + 3]
                for s in range(cols):
                    bd[0, s] = d0[s] - d2[s]
                    bd[1, s] = d1[s] + d2[s]
                    bd[2, s] = d2[s] - d1[s]
                    bd[3, s] = d1[s] - d3[s]
                t0 = (i * nty + ty) * tw
                for a in range(4):  # (B^T d) B: row a of every patch gives v[4a .. 4a + 3]
                    r = bd[a]
                    v0, v1 = v[4 * a, c, t0:t0 + tw], v[4 * a + 1, c, t0:t0 + tw]
                    v2, v3 = v[4 * a + 2, c, t0:t0 + tw], v[4 * a + 3, c, t0:t0 + tw]
                    for tx in range(tw):
                        s = 2 * tx
                        v0[tx] = r[s] - r[s + 2]
                        v1[tx] = r[s + 1] + r[s + 2]
                        v2[tx] = r[s + 2] - r[s + 1]
                        v3[tx] = r[s + 1] - r[s + 3]
    return v


@numba.njit(cache=True, nogil=True)
def output_transform(m, n0, ty0, ty1, tw, bias, y):
    """m (16, O, nb*(ty1 - ty0)*tw) -> rows 2ty0 .. 2ty1 - 1 of y[n0:n0+nb] (N, O, oh, ow):
    each tile's Y_t = A^T M_t A + bias[o] (bias (O,): the bias is added here, while the rows
    are in registers, not in another pass over y); the rows and columns of partial tiles past
    oh, ow are dropped."""
    _, o_, oh, ow = y.shape
    nty = ty1 - ty0
    top = 2 * ty0
    r1, s1 = min(2 * nty, oh - top), min(2 * tw, ow)
    band = np.empty((2 * nty, 2 * tw), m.dtype)
    am = np.empty((2, 4, tw), m.dtype)  # A^T M for a tile row: (row, column, tile)
    for i in range(m.shape[2] // (nty * tw)):
        for o in range(o_):
            bo = bias[o]
            for ty in range(nty):
                t0 = (i * nty + ty) * tw
                for j in range(4):  # A^T M, column j: M0 + M1 + M2 and M1 - M2 - M3 (Mk = row k)
                    m0, m1 = m[j, o, t0:t0 + tw], m[4 + j, o, t0:t0 + tw]
                    m2, m3 = m[8 + j, o, t0:t0 + tw], m[12 + j, o, t0:t0 + tw]
                    a, b = am[0, j], am[1, j]
                    for tx in range(tw):
                        a[tx] = m0[tx] + m1[tx] + m2[tx]
                        b[tx] = m1[tx] - m2[tx] - m3[tx]
                for r in range(2):  # (A^T M) A: the same combinations along each row
                    row, q = band[2 * ty + r], am[r]
                    for tx in range(tw):
                        row[2 * tx] = q[0, tx] + q[1, tx] + q[2, tx] + bo
                        row[2 * tx + 1] = q[1, tx] - q[2, tx] - q[3, tx] + bo
            y[n0 + i, o, top:top + r1] = band[:r1, :s1]
    return y


@numba.njit(cache=True, nogil=True)
def output_transform_adjoint(gy, n0, ty0, ty1, tw, gm):
    """The adjoint of ``output_transform``: gy (N, O, oh, ow) -> gm (16, O, nb*(ty1 - ty0)*tw)
    with gM_t = A gY_t A^T (gY_t is zero past oh, ow)."""
    _, o_, oh, ow = gy.shape
    nty = ty1 - ty0
    top = 2 * ty0
    r1, s1 = min(2 * nty, oh - top), min(2 * tw, ow)
    band = np.zeros((2 * nty, 2 * tw), gy.dtype)  # rows/columns past r1, s1 stay zero
    ag = np.empty((4, 2 * tw), gy.dtype)  # A gY for a tile row
    for i in range(gm.shape[2] // (nty * tw)):
        for o in range(o_):
            band[:r1, :s1] = gy[n0 + i, o, top:top + r1, :s1]
            for ty in range(nty):
                g0, g1 = band[2 * ty], band[2 * ty + 1]
                for s in range(2 * tw):  # the rows of A gY: g0, g0 + g1, g0 - g1, -g1
                    ag[0, s] = g0[s]
                    ag[1, s] = g0[s] + g1[s]
                    ag[2, s] = g0[s] - g1[s]
                    ag[3, s] = -g1[s]
                t0 = (i * nty + ty) * tw
                for a in range(4):  # (A gY) A^T: each row (p, q) becomes (p, p + q, p - q, -q)
                    r = ag[a]
                    v0, v1 = gm[4 * a, o, t0:t0 + tw], gm[4 * a + 1, o, t0:t0 + tw]
                    v2, v3 = gm[4 * a + 2, o, t0:t0 + tw], gm[4 * a + 3, o, t0:t0 + tw]
                    for tx in range(tw):
                        p, q = r[2 * tx], r[2 * tx + 1]
                        v0[tx] = p
                        v1[tx] = p + q
                        v2[tx] = p - q
                        v3[tx] = -q
    return gm


@numba.njit(cache=True, nogil=True)
def input_transform_adjoint(gv, ph, pw, n0, ty0, ty1, tw, accumulate, gx):
    """The adjoint of ``input_transform``: gv (16, C, nb*(ty1 - ty0)*tw) -> gx[n0:n0+nb]
    (N, C, H, W), each patch's gd_t = B gV_t B^T summed where patches overlap; the parts that
    fall on the padding are dropped. ``accumulate`` adds into gx (bands of rows share their
    edge rows) instead of assigning (whole images)."""
    _, c_, h, w = gx.shape
    nty = ty1 - ty0
    top, rows, cols = 2 * ty0 - ph, 2 * nty + 2, 2 * tw + 2
    r0, r1 = _band_limits(h, top, rows)
    s0, s1 = _band_limits(w, -pw, cols)
    band = np.empty((rows, cols), gv.dtype)
    bg = np.empty((4, 4, tw), gv.dtype)  # B gV for a tile row: (patch row, column, tile)
    f = np.zeros((4, tw + 1), gv.dtype)  # one patch row times B^T, zero-extended by a tile
    for i in range(gv.shape[2] // (nty * tw)):
        for c in range(c_):
            band[:] = 0
            for ty in range(nty):
                t0 = (i * nty + ty) * tw
                for j in range(4):  # the rows of B gV: v0, v1 - v2 + v3, v1 + v2 - v0, -v3 (vk = row k)
                    v0, v1 = gv[j, c, t0:t0 + tw], gv[4 + j, c, t0:t0 + tw]
                    v2, v3 = gv[8 + j, c, t0:t0 + tw], gv[12 + j, c, t0:t0 + tw]
                    for tx in range(tw):
                        bg[0, j, tx] = v0[tx]
                        bg[1, j, tx] = v1[tx] - v2[tx] + v3[tx]
                        bg[2, j, tx] = v1[tx] + v2[tx] - v0[tx]
                        bg[3, j, tx] = -v3[tx]
                for r in range(4):  # (B gV) B^T: each row (q0, q1, q2, q3) -> (q0, q1 - q2 + q3, q1 + q2 - q0, -q3)
                    q = bg[r]
                    for tx in range(tw):
                        f[0, tx] = q[0, tx]
                        f[1, tx] = q[1, tx] - q[2, tx] + q[3, tx]
                        f[2, tx + 1] = q[1, tx] + q[2, tx] - q[0, tx]  # shifted one tile right: the
                        f[3, tx + 1] = -q[3, tx]  # patch's columns 2, 3 are the next one's 0, 1
                    row = band[2 * ty + r]
                    for tx in range(tw + 1):  # band columns 2tx, 2tx + 1 get patch tx's and tx - 1's
                        row[2 * tx] += f[0, tx] + f[2, tx]
                        row[2 * tx + 1] += f[1, tx] + f[3, tx]
            target = gx[n0 + i, c, top + r0:top + r1, s0 - pw:s1 - pw]
            if accumulate:
                target += band[r0:r1, s0:s1]
            else:
                target[:] = band[r0:r1, s0:s1]
    return gx
