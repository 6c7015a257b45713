"""Loss functions, in numerically stable forms, with PyTorch's reductions and conventions.

Class-index losses (cross_entropy, nll_loss) take input (N, C, *d) and an integer target
(N, *d); ``weight`` (C,) weighs each element by the weight of its target class, elements whose
target equals ``ignore_index`` count for nothing, and the "mean" reduction divides by the sum
of the weights of the counted elements (not by their number), as PyTorch does.
"""
import numpy as np

from .. import backend
from ..autograd import Function
from ..tensor import Tensor
from .elementwise import abs as _abs
from .reduction import mean as _mean
from .reduction import sum as _sum

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def _raw(v, like):
    """A Tensor or array-like as a raw array on ``like``'s device."""
    if isinstance(v, Tensor):
        v = v.array
    elif not backend.is_cupy_array(v):
        v = np.asarray(v)
    return backend.to_device(v, backend.device_of(like.array))


# -- class-index targets ----------------------------------------------------------------------

class _ClassLoss(Function):
    """Shared part of the class-index losses: per-element weights and the reductions.

    target (N, *d) int64 with ignored entries replaced by 0 (so it can index), w (N, *d) the
    weight of each element's target class (0 where ignored), valid (N, *d) 1.0 where counted.
    """

    def __init__(self, target, w, valid, reduction):
        self.target, self.w, self.valid, self.reduction = target, w, valid, reduction

    def reduce(self, loss):
        if self.reduction == "none":
            return loss
        if self.reduction == "sum":
            return loss.sum()
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored -> nan, as PyTorch
            return loss.sum() / self.w.sum()

    def upstream(self, gy):
        """d(reduced loss)/d(loss_i) times gy, shaped (N, *d)."""
        if self.reduction == "none":
            return gy
        if self.reduction == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                gy = gy / self.w.sum()
        return self.xp.broadcast_to(gy, self.w.shape)

    def onehot(self, channels):
        """(N, C, *d) bool: True at each element's target class."""
        cls = self.xp.arange(channels).reshape((1, channels) + (1,) * (self.target.ndim - 1))
        return cls == self.target[:, None]

    def picked(self, a):
        """a[n, target[n, ...], ...] -> (N, *d)."""
        return self.xp.take_along_axis(a, self.target[:, None], axis=1)[:, 0]


class CrossEntropy(_ClassLoss):
    """Fused log_softmax + nll over axis 1 of the logits z (N, C, *d).

    log p = z - max - log sum exp(z - max)   (stable for any logits)
    loss_n = (1 - s) w_n (-log p[n, t_n]) + (s / C) sum_c weight_c (-log p[n, c])   (s = label smoothing)
    d loss_n / d z[n, c] = p[n, c] * sum_c' a[n, c'] - a[n, c], with a the coefficients of -log p above.
    """

    def __init__(self, target, w, valid, reduction, class_weight, smoothing):
        super().__init__(target, w, valid, reduction)
        self.class_weight, self.smoothing = class_weight, smoothing

    def forward(self, z):
        xp = self.xp
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        loss = -(1 - self.smoothing) * self.w * self.picked(logp)
        if self.smoothing:
            cw = 1 if self.class_weight is None else self._per_class(self.class_weight, z.ndim)
            loss -= self.smoothing / z.shape[1] * self.valid * (logp * cw).sum(axis=1)
        self.p = xp.exp(logp, out=logp)  # softmax, reusing log p's memory
        return self.reduce(loss)

    @staticmethod
    def _per_class(v, ndim):
        return v.reshape((1, -1) + (1,) * (ndim - 2))

    def backward(self, gy):
        p, s, c = self.p, self.smoothing, self.p.shape[1]
        gl = self.upstream(gy)[:, None]  # (N, 1, *d)
        hard = gl * ((1 - s) * self.w)[:, None]  # coefficient of the target class
        total = hard  # sum over classes of the coefficients a[n, c]
        if s:
            soft = gl * (s / c * self.valid)[:, None]
            cw_sum = c if self.class_weight is None else self.class_weight.sum()
            total = hard + soft * cw_sum
        g = p * total
        g -= self.onehot(c) * hard
        if s:
            g -= soft if self.class_weight is None else soft * self._per_class(self.class_weight, p.ndim)
        return g


class NLL(_ClassLoss):
    """loss_n = -w_n * x[n, t_n] for log-probabilities x (N, C, *d)."""

    def forward(self, x):
        self.x_meta = (x.shape, x.dtype)
        return self.reduce(-self.w * self.picked(x))

    def backward(self, gy):
        shape, dtype = self.x_meta
        return self.onehot(shape[1]) * (-self.upstream(gy) * self.w)[:, None].astype(dtype, copy=False)


def _class_targets(input, target, weight, ignore_index, op):
    """Check input (N, C, *d) against target (N, *d); -> (target with ignored set to 0,
    per-element weights (0 where ignored), valid mask, class weights or None)."""
    shape = tuple(input.shape)
    t = _raw(target, input)
    if t.dtype.kind not in "iu":
        raise TypeError(f"{op}: target has dtype {t.dtype}, but class targets must be integers "
                        f"(int64 class indices; use target.long())")
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {input.dtype}")
    expected = shape[:1] + shape[2:]
    if input.ndim < 2 or tuple(t.shape) != expected:
        raise ValueError(f"{op}: input of shape {shape} needs a target of shape "
                         f"{expected if input.ndim >= 2 else '(N, *d) with input (N, C, *d)'}, "
                         f"got target of shape {tuple(t.shape)}")
    c = shape[1]
    valid = t != ignore_index
    bad = valid & ((t < 0) | (t >= c))
    if bad.any():
        raise IndexError(f"{op}: target value {int(t[bad][0])} is out of range for {c} classes "
                         f"(expected 0 <= target < {c}, or ignore_index={ignore_index})")
    xp = backend.array_module(input.array)
    t = xp.where(valid, t, 0).astype(np.int64)
    valid = valid.astype(input.dtype)
    cw = None
    if weight is not None:
        cw = _raw(weight, input).astype(input.dtype, copy=False)
        if tuple(cw.shape) != (c,):
            raise ValueError(f"{op}: weight has shape {tuple(cw.shape)} but the input {shape} has {c} classes")
    return t, valid if cw is None else cw[t] * valid, valid, cw


def _unbatched(input, target):
    """PyTorch accepts a single sample: input (C,) with a 0-d target."""
    return input.reshape(1, -1), _raw(target, input).reshape(1)


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0.0):
    """Softmax cross-entropy of logits input (N, C, *d) against class indices target (N, *d),
    or against class probabilities target (N, C, *d) (floating point, input's shape)."""
    _check_reduction(reduction, "cross_entropy")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    if getattr(target, "dtype", None) is not None and target.dtype.kind == "f":
        return _probability_cross_entropy(input, target, weight, reduction, label_smoothing)
    if input.ndim == 1:
        out = cross_entropy(*_unbatched(input, target), weight, ignore_index, reduction, label_smoothing)
        return out.reshape(()) if reduction == "none" else out
    t, w, valid, cw = _class_targets(input, target, weight, ignore_index, "cross_entropy")
    return CrossEntropy(t, w, valid, reduction, cw, label_smoothing).apply(input)


def _probability_cross_entropy(input, target, weight, reduction, label_smoothing):
    """loss[n, *d] = -sum_c weight[c] * target[n, c, *d] * log_softmax(input)[n, c, *d]; the mean is
    over N and *d (weights do not divide, as in PyTorch). Built from other ops, so the target
    gets a gradient too."""
    from .activation import log_softmax

    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"cross_entropy: probability targets must have the input's shape {tuple(input.shape)}, "
                         f"got {tuple(target.shape)} (class indices must be integers)")
    c = input.shape[1] if input.ndim > 1 else input.shape[0]
    axis = 1 if input.ndim > 1 else 0
    if label_smoothing:
        target = target * (1 - label_smoothing) + label_smoothing / c
    terms = log_softmax(input, axis) * target
    if weight is not None:
        if tuple(weight.shape) != (c,):
            raise ValueError(f"cross_entropy: weight has shape {tuple(weight.shape)}, expected ({c},)")
        terms = terms * weight.reshape((c,) + (1,) * (input.ndim - axis - 1))
    loss = -terms.sum(axis)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities input (N, C, *d) at class indices target (N, *d)."""
    _check_reduction(reduction, "nll_loss")
    if input.ndim == 1:
        out = nll_loss(*_unbatched(input, target), weight, ignore_index, reduction)
        return out.reshape(()) if reduction == "none" else out
    t, w, valid, _ = _class_targets(input, target, weight, ignore_index, "nll_loss")
    return NLL(t, w, valid, reduction).apply(input)


# -- binary targets ---------------------------------------------------------------------------

class _Pointwise(Function):
    """An element-wise loss of (input, target), optionally times a constant ``weight`` that
    broadcasts to the input (as in PyTorch, weight and pos_weight get no gradient), then reduced."""

    def __init__(self, reduction, weight=None):
        self.reduction, self.weight = reduction, weight

    def reduce(self, loss):
        if self.weight is not None:
            loss = loss * self.weight
        self.loss_shape = loss.shape
        if self.reduction == "none":
            return loss
        return loss.sum() if self.reduction == "sum" else loss.mean()

    def chain(self, gy, dl_dx, dl_dt):
        """(dL/dinput, dL/dtarget) from the element-wise derivatives and the upstream gy."""
        if self.reduction == "mean":
            gy = gy / gy.dtype.type(max(int(np.prod(self.loss_shape)), 1))
        g = self.xp.broadcast_to(gy, self.loss_shape)
        if self.weight is not None:
            g = g * self.weight
        return (g * dl_dx if self.needs_input_grad[0] else None,
                g * dl_dt if self.needs_input_grad[1] else None)


class BCEWithLogits(_Pointwise):
    """l = (1 - y) x + (1 + (pw - 1) y) softplus(-x) for logits x, targets y, pos_weight pw.

    softplus(-x) = log(1 + e^-x) = logaddexp(0, -x) never overflows, so |x| = 100 or more stays finite.
    dl/dx = (1 - y) - (1 + (pw - 1) y) sigmoid(-x)   (= sigmoid(x) - y without pos_weight)
    dl/dy = -x + (pw - 1) softplus(-x)
    """

    def __init__(self, reduction, weight=None, pos_weight=None):
        super().__init__(reduction, weight)
        self.pos_weight = pos_weight

    def forward(self, x, y):
        xp, pw = self.xp, self.pos_weight
        sp = xp.logaddexp(x.dtype.type(0), -x)
        lw = 1 if pw is None else 1 + (pw - 1) * y
        self.x, self.y, self.sp, self.lw = x, y, sp, lw
        return self.reduce((1 - y) * x + lw * sp)

    def backward(self, gy):
        x, y, sp, pw = self.x, self.y, self.sp, self.pos_weight
        sig_neg = self.xp.exp(-(sp + x))  # sigmoid(-x) = exp(-softplus(x)), softplus(x) = softplus(-x) + x
        return self.chain(gy, (1 - y) - self.lw * sig_neg, -x if pw is None else (pw - 1) * sp - x)


class BCE(_Pointwise):
    """l = -(y log p + (1 - y) log(1 - p)) for probabilities p, logs clamped at -100 as PyTorch
    (so p = 0 or 1 gives a finite loss); dl/dp = (p - y) / max(p (1 - p), 1e-12)."""

    def forward(self, p, y):
        xp = self.xp
        with np.errstate(divide="ignore"):
            log_p, log_q = xp.maximum(xp.log(p), -100), xp.maximum(xp.log(1 - p), -100)
        self.p, self.y, self.log_p, self.log_q = p, y, log_p, log_q
        return self.reduce(-(y * log_p + (1 - y) * log_q))

    def backward(self, gy):
        p, y = self.p, self.y
        dl_dp = (p - y) / self.xp.maximum(p * (1 - p), p.dtype.type(1e-12))
        return self.chain(gy, dl_dp, self.log_q - self.log_p)


def _binary_inputs(input, target, op, **constants):
    """Check shapes and dtypes; -> (target Tensor, {name: raw array or None})."""
    shape = tuple(input.shape)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got {input.dtype}")
    if not isinstance(target, Tensor):
        target = Tensor(_raw(target, input))
    if tuple(target.shape) != shape:
        raise ValueError(f"{op}: target of shape {tuple(target.shape)} must have the input's shape {shape}")
    if target.dtype != input.dtype:  # integer 0/1 labels are fine: they become the input's dtype
        target = target.to(dtype=input.dtype)
    raw = {}
    for name, v in constants.items():
        if v is not None:
            v = _raw(v, input).astype(input.dtype, copy=False)
            try:
                fits = np.broadcast_shapes(tuple(v.shape), shape) == shape
            except ValueError:
                fits = False
            if not fits:
                raise ValueError(f"{op}: {name} of shape {tuple(v.shape)} does not broadcast to the input's shape {shape}")
        raw[name] = v
    return target, raw


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross-entropy in one stable formula; input are logits, target in [0, 1].
    ``weight`` scales each element; ``pos_weight`` (broadcast along the last axes, e.g. (C,))
    weighs the positive term."""
    op = "binary_cross_entropy_with_logits"
    _check_reduction(reduction, op)
    target, c = _binary_inputs(input, target, op, weight=weight, pos_weight=pos_weight)
    return BCEWithLogits(reduction, c["weight"], c["pos_weight"]).apply(input, target)


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities input in [0, 1] (e.g. after a sigmoid)."""
    op = "binary_cross_entropy"
    _check_reduction(reduction, op)
    target, c = _binary_inputs(input, target, op, weight=weight)
    x = input.array
    if x.size and not bool(((x >= 0) & (x <= 1)).all()):  # NaN fails too
        raise ValueError(f"{op}: all elements of input should be probabilities in [0, 1]; "
                         f"for logits use binary_cross_entropy_with_logits")
    return BCE(reduction, c["weight"]).apply(input, target)


# -- regression ---------------------------------------------------------------------------------

def _regression(input, target, op):
    if not isinstance(target, Tensor):
        target = Tensor(_raw(target, input), dtype=input.dtype)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(f"{op}: target of shape {tuple(target.shape)} must have the input's shape "
                         f"{tuple(input.shape)} (no silent broadcasting)")
    return input - target


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    return _sum(loss) if reduction == "sum" else _mean(loss)


def mse_loss(input, target, reduction="mean"):
    """Mean squared error: (input - target)^2, reduced."""
    _check_reduction(reduction, "mse_loss")
    d = _regression(input, target, "mse_loss")
    return _reduce(d * d, reduction)


def l1_loss(input, target, reduction="mean"):
    """Mean absolute error: |input - target|, reduced."""
    _check_reduction(reduction, "l1_loss")
    return _reduce(_abs(_regression(input, target, "l1_loss")), reduction)
