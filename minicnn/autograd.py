"""Define-by-run autograd: ``Function`` records itself on its outputs; ``backward``
walks the recorded graph in reverse topological order.

A ``Function`` works on raw arrays (NumPy or CuPy) only. Its ``forward`` keeps on
``self`` exactly what its ``backward`` needs, and the engine drops those
attributes as soon as the node has been back-propagated through, so memory is
returned while backward is still running.
"""
import contextlib
import threading

from . import backend

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled):
    prev = is_grad_enabled()
    _state.enabled = enabled
    try:
        yield
    finally:
        _state.enabled = prev


def no_grad():
    """Context manager: ops inside record no graph (inference, optimizer steps)."""
    return _grad_mode(False)


def enable_grad():
    return _grad_mode(True)


class Function:
    """One differentiable op.

    Subclasses implement ``forward(*arrays) -> array | tuple`` and
    ``backward(*grad_outputs) -> grad | tuple of grads`` (``None`` for an input
    that needs no gradient). ``self.xp`` is the array module of the inputs and
    ``self.needs_input_grad`` says which inputs want a gradient.
    """

    #: outputs that carry no gradient (e.g. the indices of max_pool2d)
    non_differentiable_outputs = ()

    def apply(self, *inputs):
        from .tensor import Tensor, as_tensor

        tensors = [x for x in inputs if isinstance(x, Tensor)]
        if not tensors:
            raise TypeError(f"{self.name}: expected at least one Tensor input")
        devices = {t.device for t in tensors}
        if len(devices) > 1:
            raise RuntimeError(
                f"{self.name}: inputs are on different devices "
                f"({', '.join(t.device for t in tensors)}); move them with .to(device) first"
            )
        like = tensors[0]
        inputs = [x if isinstance(x, Tensor) else as_tensor(x, like=like) for x in inputs]
        self.xp = backend.array_module(like.data)
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        outs = self.forward(*[t.data for t in inputs])
        single = not isinstance(outs, tuple)
        outs = (outs,) if single else outs
        record = is_grad_enabled() and any(self.needs_input_grad)
        results = tuple(
            Tensor._make(o, requires_grad=record and i not in self.non_differentiable_outputs)
            for i, o in enumerate(outs)
        )
        if record:
            self._inputs = inputs
            self._out_meta = [(o.shape, o.dtype) for o in outs]
            self._retained = {}
            for i, r in enumerate(results):
                if r.requires_grad:
                    r._creator, r._out_index = self, i
        else:
            self.release()
        return results[0] if single else results

    @property
    def name(self):
        return type(self).__name__

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    def release(self):
        """Forget everything saved for backward (the graph is freed)."""
        self.__dict__.clear()
        self._freed = True


def _topological_functions(root_fn):
    """Functions reachable from ``root_fn``, each after every function that consumes it."""
    order, seen = [], {id(root_fn)}
    stack = [(root_fn, False)]
    while stack:
        fn, done = stack.pop()
        if done:
            order.append(fn)
            continue
        stack.append((fn, True))
        for t in fn._inputs:
            c = t._creator
            if c is not None and id(c) not in seen:
                seen.add(id(c))
                stack.append((c, False))
    order.reverse()  # post-order reversed: consumers before producers
    return order


def _accumulate(old, new):
    return new if old is None else old + new


def backward(root, grad, retain_graph=False):
    """Back-propagate ``grad`` (an array shaped like ``root``) through the graph of ``root``."""
    fn = root._creator
    if fn is None:  # a leaf: its gradient is the seed itself
        root._accumulate_grad(grad)
        return
    if getattr(fn, "_freed", False):
        raise _freed_error(fn)
    order = _topological_functions(fn)
    for f in order:
        if getattr(f, "_freed", False):
            raise _freed_error(f)
        f._grad_out = [None] * len(f._out_meta)
    fn._grad_out[root._out_index] = grad

    for f in order:
        xp = f.xp
        gys = tuple(
            g if g is not None else xp.zeros(shape, dtype)
            for g, (shape, dtype) in zip(f._grad_out, f._out_meta)
        )
        for i, t in f._retained.items():
            t._accumulate_grad(gys[i])
        gxs = f.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        if len(gxs) != len(f._inputs):
            raise RuntimeError(f"{f.name}.backward returned {len(gxs)} gradients for {len(f._inputs)} inputs")
        for x, gx in zip(f._inputs, gxs):
            if gx is None or not x.requires_grad:
                continue
            if gx.shape != x.shape:
                raise RuntimeError(
                    f"{f.name}.backward produced a gradient of shape {tuple(gx.shape)} "
                    f"for an input of shape {tuple(x.shape)}"
                )
            c = x._creator
            if c is None:
                x._accumulate_grad(gx)
            else:
                c._grad_out[x._out_index] = _accumulate(c._grad_out[x._out_index], gx)
        f._grad_out = None
        if not retain_graph:
            f.release()


def _freed_error(fn):
    return RuntimeError(
        f"backward through a graph that has already been freed (at {type(fn).__name__}; a second backward call, "
        "or an output of a no_grad block); call backward(retain_graph=True) the first time "
        "if you need to back-propagate twice"
    )
