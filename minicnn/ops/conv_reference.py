"""Convolution by its definition, a sum over the kernel's taps: the reference of every other path.

For group g of G, with Cg = C/G input and Og = O/G output channels, and x zero-padded::

    y[n, g*Og + o, oy, ox] = b[g*Og + o] + sum_{c < Cg, i < kh, j < kw}
                             w[g*Og + o, c, i, j] * xpad[n, g*Cg + c, oy*sh + i*dh, ox*sw + j*dw]

For one tap (i, j) the pixels read, over all (oy, ox), are one strided slice of xpad, so the
sum is a loop over the kh*kw taps of one small product each; no im2col, no tiles. Its
gradients are the same loop, each product's two factors receiving the other times gy, and
conv_transpose2d is conv2d's input gradient (its adjoint in x). Runs on both devices, slowly:
it is what the fast paths are tested against, and ``conv_algorithm("reference")`` selects it.
"""
from .. import backend


def cannot(op, fn, x, w):
    """Why the reference cannot run ``op`` (None: it runs every geometry, on both devices)."""
    return None


def _reach(win, oh, ow):
    """Rows and columns of the padded image that the windows of an (oh, ow) output read."""
    return (oh - 1) * win.sh + (win.kh - 1) * win.dh + 1, (ow - 1) * win.sw + (win.kw - 1) * win.dw + 1


def _taps(win):
    """(i, j, rows, cols): each tap and the strided slices of the padded image it reads."""
    for i in range(win.kh):
        for j in range(win.kw):
            yield i, j, slice(i * win.dh, None, win.sh), slice(j * win.dw, None, win.sw)


def _pad(x, win, oh, ow):
    """x (N, C, H, W) zero-padded to the reach of the windows (ph, pw at the top and left)."""
    xp = backend.array_module(x)
    n, c, h, w = x.shape
    rows, cols = _reach(win, oh, ow)
    hh, ww = max(0, min(h, rows - win.ph)), max(0, min(w, cols - win.pw))
    xpad = xp.zeros((n, c, rows, cols), x.dtype)
    xpad[:, :, win.ph:win.ph + hh, win.pw:win.pw + ww] = x[:, :, :hh, :ww]
    return xpad


def _unpad(gxpad, win, shape):
    """The adjoint of ``_pad``: the gradient of the image of ``shape`` from that of its padding."""
    xp = backend.array_module(gxpad)
    gx = xp.zeros(shape, gxpad.dtype)
    rows, cols = gxpad.shape[2:]
    hh, ww = max(0, min(shape[2], rows - win.ph)), max(0, min(shape[3], cols - win.pw))
    gx[:, :, :hh, :ww] = gxpad[:, :, win.ph:win.ph + hh, win.pw:win.pw + ww]
    return gx


def conv2d(x, w, win, groups, oh, ow):
    """y (N, O, oh, ow) = conv2d(x (N, C, H, W), w (O, C/G, kh, kw)), no bias."""
    xp = backend.array_module(x)
    n, o = x.shape[0], w.shape[0]
    xpad = _pad(x, win, oh, ow).reshape(n, groups, x.shape[1] // groups, *_reach(win, oh, ow))
    wg = w.reshape(groups, o // groups, *w.shape[1:])  # (G, Og, Cg, kh, kw)
    y = xp.zeros((n, groups, o // groups, oh, ow), x.dtype)
    for i, j, rows, cols in _taps(win):
        tap = xpad[:, :, :, rows, cols][..., :oh, :ow]  # (N, G, Cg, oh, ow)
        y += xp.einsum("goc,ngcyx->ngoyx", wg[..., i, j], tap)
    return y.reshape(n, o, oh, ow)


def conv2d_input_grad(gy, w, win, groups, x_shape):
    """gx (N, C, H, W) of sum(conv2d(x, w) * gy): every tap adds w times gy back where it read."""
    xp = backend.array_module(gy)
    (n, c, _, _), o = x_shape, w.shape[0]
    oh, ow = gy.shape[2:]
    wg = w.reshape(groups, o // groups, *w.shape[1:])
    gyg = gy.reshape(n, groups, o // groups, oh, ow)
    gxpad = xp.zeros((n, groups, c // groups, *_reach(win, oh, ow)), gy.dtype)
    for i, j, rows, cols in _taps(win):
        gxpad[:, :, :, rows, cols][..., :oh, :ow] += xp.einsum("goc,ngoyx->ngcyx", wg[..., i, j], gyg)
    return _unpad(gxpad.reshape(n, c, *gxpad.shape[3:]), win, x_shape)


def conv2d_weight_grad(x, gy, win, groups):
    """gw (O, C/G, kh, kw) of sum(conv2d(x, w) * gy): every tap's pixels times gy, summed."""
    xp = backend.array_module(x)
    (n, c), (o, oh, ow) = x.shape[:2], gy.shape[1:]
    xpad = _pad(x, win, oh, ow).reshape(n, groups, c // groups, *_reach(win, oh, ow))
    gyg = gy.reshape(n, groups, o // groups, oh, ow)
    gw = xp.zeros((groups, o // groups, c // groups, win.kh, win.kw), x.dtype)
    for i, j, rows, cols in _taps(win):
        gw[..., i, j] = xp.einsum("ngoyx,ngcyx->goc", gyg, xpad[:, :, :, rows, cols][..., :oh, :ow])
    return gw.reshape(o, c // groups, win.kh, win.kw)


class Conv2d:
    """conv2d of the Function ``fn`` (its window, output size and groups) by the definition."""

    def __init__(self, fn):
        self.fn = fn

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        y = conv2d(x, w, self.fn.win, self.fn.groups, self.fn.oh, self.fn.ow)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        (need_x, need_w, *bias), win, g = self.fn.needs_input_grad, self.fn.win, self.fn.groups
        gx = conv2d_input_grad(gy, self.w, win, g, self.x.shape) if need_x else None
        gw = conv2d_weight_grad(self.x, gy, win, g) if need_w else None
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) for _ in bias)


class ConvTranspose2d:
    """conv_transpose2d of the Function ``fn``: conv2d's input gradient, with x in the place of gy."""

    def __init__(self, fn):
        self.fn = fn

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        g = self.fn.groups
        y = conv2d_input_grad(x, w, self.fn.win, g, (x.shape[0], w.shape[1] * g) + self.fn.out_hw)
        return y if b is None else y + b.reshape(1, -1, 1, 1)

    def backward(self, gy):
        (need_x, need_w, *bias), win, g = self.fn.needs_input_grad, self.fn.win, self.fn.groups
        gx = conv2d(gy, self.w, win, g, *self.x.shape[2:]) if need_x else None
        gw = conv2d_weight_grad(gy, self.x, win, g) if need_w else None
        return (gx, gw) + tuple(gy.sum(axis=(0, 2, 3)) for _ in bias)
