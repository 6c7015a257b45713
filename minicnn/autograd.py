"""Define-by-run autograd: ``Function`` records itself on its outputs; ``backward``
walks the recorded graph from the outputs back to the leaves.

A ``Function`` works on raw arrays (NumPy or CuPy) only. Its ``forward`` keeps on
``self`` exactly what its ``backward`` needs, and the engine drops those
attributes as soon as the node has been back-propagated through, so memory is
returned while backward is still running.

The graph is a DAG of ``Function`` nodes. A node does not hold its input
tensors, only *edges*: for each input, where that input's gradient must go (the
node that produced it and which of its outputs it was, or the leaf tensor
itself). So an intermediate array lives only as long as some node saved it for
its backward, never merely because it was an input.
"""
import contextlib
import inspect
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
    """Context manager (or decorator): ops inside record no graph (inference, optimizer steps)."""
    return _grad_mode(False)


def enable_grad():
    """Context manager (or decorator) that records graphs again inside a ``no_grad`` block."""
    return _grad_mode(True)


def set_grad_enabled(mode):
    """Context manager that records graphs or not, as ``mode`` says (``torch.set_grad_enabled``)."""
    return _grad_mode(bool(mode))


def inference_mode(mode=True):
    """``no_grad`` under PyTorch's other name (minicnn has no separate inference tensors)."""
    return _grad_mode(not mode)


@contextlib.contextmanager
def module_scope(module):
    """Ops recorded inside the block remember that they ran in ``module`` (inside the modules
    around it): ``Module.__call__`` opens one, and the graph drawings group ops by it."""
    stack = _state.__dict__.setdefault("modules", [])
    stack.append(module)
    try:
        yield
    finally:
        stack.pop()


class _Apply:
    """``Function.apply`` in both of its spellings: ``MyOp(args).apply(x)`` on an instance
    (minicnn's style: forward/backward on arrays), ``MyOp.apply(x)`` on a class whose
    ``forward``/``backward`` are static methods taking ``ctx`` (PyTorch's style)."""

    def __get__(self, fn, cls):
        if fn is not None:
            return fn._apply
        if not isinstance(inspect.getattr_static(cls, "forward"), staticmethod):
            raise TypeError(f"{cls.__name__}.apply: call it on an instance ({cls.__name__}(...).apply(x)), or "
                            "make forward(ctx, ...) and backward(ctx, ...) static methods, as in PyTorch")
        return lambda *args: _CtxNode(cls, args)._apply(*[a for a in args if _is_tensor(a)])


@contextlib.contextmanager
def trace(callback):
    """Inside the block, every op that runs calls ``callback(fn, inputs, outputs)`` (Function,
    input Tensors, output Tensors) and keeps its attributes: ``minicnn.onnx.export`` reads a
    forward pass this way."""
    prev = getattr(_state, "tracer", None)
    _state.tracer = callback
    try:
        yield
    finally:
        _state.tracer = prev


class Function:
    """One differentiable op.

    Subclasses implement ``forward(*arrays) -> array | tuple`` and
    ``backward(*grad_outputs) -> grad | tuple of grads`` (``None`` for an input
    that needs no gradient). ``self.xp`` is the array module of the inputs and
    ``self.needs_input_grad`` says which inputs want a gradient.

    PyTorch's style works too: ``@staticmethod forward(ctx, *args)`` on Tensors (any other
    arguments pass through), ``ctx.save_for_backward(...)``, ``@staticmethod backward(ctx,
    *grads)`` returning one gradient (or None) per argument of forward, then ``MyOp.apply(...)``.
    """

    apply = _Apply()

    #: outputs that carry no gradient (e.g. the indices of max_pool2d)
    non_differentiable_outputs = ()

    def _apply(self, *inputs):
        """Run ``forward`` on the inputs' arrays and, if any input requires grad, record the node."""
        from .tensor import Tensor, as_tensor

        tensors = [x for x in inputs if isinstance(x, Tensor)]
        if not tensors:
            raise TypeError(f"{self.name}: expected at least one Tensor input")
        like = tensors[0]
        if len(tensors) > 1 and any(t.device != like.device for t in tensors):
            raise RuntimeError(
                f"{self.name}: inputs are on different devices "
                f"({', '.join(t.device for t in tensors)}); move them with .to(device) first"
            )
        if len(tensors) < len(inputs):
            inputs = [x if isinstance(x, Tensor) else as_tensor(x, like=like, op=self.name) for x in inputs]
        self.xp = backend.array_module(like.array)
        self.needs_input_grad = tuple(t.requires_grad for t in inputs)
        outs = self.forward(*[t.array for t in inputs])
        single = not isinstance(outs, tuple)
        outs = (outs,) if single else outs
        record = is_grad_enabled() and any(self.needs_input_grad)
        results = tuple(
            Tensor._make(o, requires_grad=record and i not in self.non_differentiable_outputs
                         and o.dtype.kind == "f")
            for i, o in enumerate(outs)
        )
        tracer = getattr(_state, "tracer", None)
        if tracer is not None:  # an exporter is watching: it reads the op, its inputs and outputs
            tracer(self, inputs, results)
        if record:
            self._edges = [_edge(t) for t in inputs]
            self._in_meta = [(t.array.shape, t.array.dtype) for t in inputs]
            self._out_meta = [(o.shape, o.dtype) for o in outs]
            self._scope = tuple(getattr(_state, "modules", ()))  # the modules it ran in, outermost first
            self._retained = {}
            for i, r in enumerate(results):
                if r.requires_grad:
                    r._creator, r._out_index = self, i
        elif tracer is None:
            self.release()
        return results[0] if single else results

    @property
    def name(self):
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name} object at {id(self):#x}>"

    @property
    def next_functions(self):
        """Where each input's gradient goes, as PyTorch's ``grad_fn.next_functions``: (node, output
        index) for an input made by an op, (AccumulateGrad, 0) for a leaf, (None, 0) for no gradient."""
        return tuple(e if isinstance(e, tuple) else (None if e is None else AccumulateGrad(e), 0)
                     for e in self._edges)

    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    def release(self):
        """Forget everything saved for backward (the graph is freed)."""
        self.__dict__.clear()
        self._freed = True


class AccumulateGrad:
    """The end of a path in the graph: the gradient is added to the leaf ``variable``'s ``.grad``."""

    name = "AccumulateGrad"
    next_functions = ()

    def __init__(self, variable):
        self.variable = variable

    def __repr__(self):
        return f"<AccumulateGrad of a leaf of shape {self.variable.shape}>"


class FunctionCtx:
    """The ``ctx`` of a PyTorch-style Function: what forward leaves for backward."""

    def save_for_backward(self, *tensors):
        self._saved = tensors

    @property
    def saved_tensors(self):
        return getattr(self, "_saved", ())

    def mark_non_differentiable(self, *outputs):
        self._non_differentiable = {id(t) for t in outputs}


def _is_tensor(x):
    from .tensor import Tensor
    return isinstance(x, Tensor)


class _CtxNode(Function):
    """The graph node of one call of a PyTorch-style Function ``cls`` with arguments ``args``."""

    def __init__(self, cls, args):
        self.cls, self.args, self.ctx = cls, args, FunctionCtx()

    @property
    def name(self):
        return self.cls.__name__

    def forward(self, *arrays):
        from .tensor import Tensor

        it = iter(self.needs_input_grad)
        self.ctx.needs_input_grad = tuple(next(it) if _is_tensor(a) else False for a in self.args)
        it = iter(arrays)
        args = [Tensor._make(next(it)) if _is_tensor(a) else a for a in self.args]
        self.positions = [i for i, a in enumerate(self.args) if _is_tensor(a)]
        self.args = None  # the inputs live on only if forward saved them
        with no_grad():
            out = self.cls.forward(self.ctx, *args)
        single = not isinstance(out, tuple)
        outs = (out,) if single else out
        if not all(isinstance(o, Tensor) for o in outs):
            raise TypeError(f"{self.name}.forward must return Tensors, got {[type(o).__name__ for o in outs]}")
        dropped = getattr(self.ctx, "_non_differentiable", ())
        self.non_differentiable_outputs = tuple(i for i, o in enumerate(outs) if id(o) in dropped)
        arrays = tuple(o.array for o in outs)
        return arrays[0] if single else arrays

    def backward(self, *gys):
        from .tensor import Tensor

        with no_grad():
            grads = self.cls.backward(self.ctx, *[Tensor._make(g) for g in gys])
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.ctx.needs_input_grad):
            raise RuntimeError(f"{self.name}.backward returned {len(grads)} gradients for "
                               f"{len(self.ctx.needs_input_grad)} arguments of forward")
        return tuple(g.array if isinstance(g, Tensor) else g for g in (grads[i] for i in self.positions))


def _edge(t):
    """Where input ``t``'s gradient goes: nowhere (None), the leaf ``t`` itself, or
    (producing node, output slot)."""
    if not t.requires_grad:
        return None
    if t._creator is None:
        return t
    return (t._creator, t._out_index)


def functions(roots):
    """Every node reachable from the Functions ``roots``, each once, in no particular order
    (a node freed by an earlier backward raises)."""
    seen, stack = set(), list(roots)
    while stack:
        fn = stack.pop()
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        if getattr(fn, "_freed", False):
            raise _freed_error(fn)
        yield fn
        stack.extend(e[0] for e in fn._edges if isinstance(e, tuple))


def _nodes_in_order(roots):
    """The nodes reachable from ``roots``, each listed after every node that consumes it.

    Kahn's algorithm: count for every node how many edges from reachable nodes
    point at it, then release a node once all of its consumers have been listed.
    (A plain depth-first post-order gets shared sub-graphs wrong.)
    """
    pending = {}
    for fn in functions(roots):
        for e in fn._edges:
            if isinstance(e, tuple):
                pending[id(e[0])] = pending.get(id(e[0]), 0) + 1
    ready = [fn for fn in {id(f): f for f in roots}.values() if id(fn) not in pending]
    order = []
    while ready:
        fn = ready.pop()
        order.append(fn)
        for e in fn._edges:
            if isinstance(e, tuple):
                child = e[0]
                pending[id(child)] -= 1
                if pending[id(child)] == 0:
                    ready.append(child)
    return order


class _Owner:
    """Makes sure that no two ``.grad`` arrays share memory, and none is a read-only view.

    Ops may pass one gradient array to several inputs (``a + b`` hands ``gy`` to
    both) or return views; a leaf's ``.grad`` is user-visible and may be changed in
    place later, so the second claimant of the same memory gets a copy.
    """

    def __init__(self, user_arrays):
        self.taken = {id(_base(a)) for a in user_arrays}

    def own(self, g):
        base = _base(g)
        # CuPy arrays have no ``writeable`` flag: they are always writeable
        if id(base) in self.taken or not getattr(g.flags, "writeable", True) or not g.flags.c_contiguous:
            g = backend.array_module(g).array(g, order="C")
            base = g
        self.taken.add(id(base))
        return g


def _base(a):
    while getattr(a, "base", None) is not None:
        a = a.base
    return a


def backward(tensors, grads, retain_graph=False, user_grads=()):
    """Back-propagate: ``grads[k]`` (an array shaped like ``tensors[k]``) is d(loss)/d(tensors[k]).

    Every leaf that requires grad receives the sum over all paths in ``.grad``;
    ``user_grads`` lists seed arrays owned by the caller (never stored as a ``.grad``).
    Without ``retain_graph`` every node is freed right after its own backward.
    """
    _state.callbacks = []  # queue_callback's, run when this backward is done
    try:
        _backward(tensors, grads, retain_graph, _Owner(user_grads))
        for callback in _state.callbacks:
            callback()
    finally:
        _state.callbacks = None


def queue_callback(fn):
    """Run ``fn()`` once the backward pass now running has finished (called from a hook during
    backward, e.g. to wait for gradients sent to other processes)."""
    if getattr(_state, "callbacks", None) is None:
        raise RuntimeError("queue_callback: no backward pass is running")
    _state.callbacks.append(fn)


def _backward(tensors, grads, retain_graph, owner):
    roots = []
    seeds = []
    for t, g in zip(tensors, grads):
        if t._creator is None:  # a leaf: its gradient is the seed itself
            t._accumulate_grad(owner.own(g))
        else:
            roots.append(t._creator)
            seeds.append((t._creator, t._out_index, g))
    if not roots:
        return
    order = _nodes_in_order(roots)
    for f in order:
        f._grad_out = [None] * len(f._out_meta)
    for f, k, g in seeds:
        f._grad_out[k] = _accumulate(f._grad_out[k], g)

    for f in order:
        xp = f.xp
        gys = tuple(
            g if g is not None else xp.zeros(shape, dtype)
            for g, (shape, dtype) in zip(f._grad_out, f._out_meta)
        )
        f._grad_out = None
        hooks = getattr(f, "_hooks", None)
        if hooks:  # Tensor.register_hook on an output of f: it sees, and may replace, its gradient
            gys = tuple(_run_hooks(hooks.get(i, ()), g) for i, g in enumerate(gys))
        for i, t in f._retained.items():
            t._accumulate_grad(owner.own(gys[i]))
        gxs = f.backward(*gys)
        if not isinstance(gxs, tuple):
            gxs = (gxs,)
        if len(gxs) != len(f._edges):
            raise RuntimeError(f"{f.name}.backward returned {len(gxs)} gradients for {len(f._edges)} inputs")
        for edge, gx, (shape, dtype) in zip(f._edges, gxs, f._in_meta):
            if edge is None or gx is None:
                continue
            if tuple(gx.shape) != shape or gx.dtype != dtype:
                raise RuntimeError(
                    f"{f.name}.backward produced a gradient of shape {tuple(gx.shape)} and dtype {gx.dtype} "
                    f"for an input of shape {shape} and dtype {dtype}"
                )
            if isinstance(edge, tuple):
                node, k = edge
                node._grad_out[k] = _accumulate(node._grad_out[k], gx)
            else:
                edge._accumulate_grad(owner.own(gx))
        if not retain_graph:
            f.release()


def _run_hooks(hooks, g):
    """``g`` passed through ``hook(grad) -> new grad or None`` in order (Tensors in, arrays out)."""
    from .tensor import Tensor

    for hook in hooks:
        out = hook(Tensor._make(g))
        if out is not None:
            g = out.array if isinstance(out, Tensor) else out
    return g


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False, allow_unused=False):
    """d(outputs)/d(inputs) as a tuple of Tensors, without touching any ``.grad`` (as
    ``torch.autograd.grad``). ``grad_outputs``: the upstream gradients (default ones, for
    one-element outputs). ``create_graph`` (graphs of the gradients) is not supported."""
    from .tensor import Tensor, _to_array

    if create_graph:
        raise NotImplementedError("autograd.grad: create_graph=True (second derivatives) is not supported")
    outputs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    single = isinstance(inputs, Tensor)
    inputs = [inputs] if single else list(inputs)
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    elif isinstance(grad_outputs, Tensor):
        grad_outputs = [grad_outputs]
    seeds = []
    for t, g in zip(outputs, grad_outputs):
        if g is None:
            if t.array.size != 1:
                raise RuntimeError(f"autograd.grad: grad_outputs needed for an output of shape {t.shape}")
            g = backend.array_module(t.array).ones_like(t.array)
        seeds.append(_to_array(g, t.dtype, t.device, op="autograd.grad"))
    # every leaf the walk will reach keeps its .grad; the inputs' gradients are caught on the way
    leaves = {id(e): e for fn in functions(t._creator for t in outputs if t._creator is not None)
              for e in fn._edges if e is not None and not isinstance(e, tuple)}
    saved = {i: (t, t.grad) for i, t in leaves.items()}
    caught = [None] * len(inputs)
    handles = []
    for k, t in enumerate(inputs):
        if not t.requires_grad:
            raise RuntimeError(f"autograd.grad: input {k} does not require grad")

        def catch(g, k=k):
            caught[k] = g.array if caught[k] is None else caught[k] + g.array

        handles.append(t.register_hook(catch))
    try:
        for t in leaves.values():
            t.grad = None
        backward(outputs, seeds, retain_graph=bool(retain_graph))
    finally:
        for h in handles:
            h.remove()
        for t, g in saved.values():
            t.grad = g
    for k, g in enumerate(caught):
        if g is None and not allow_unused:
            raise RuntimeError(f"autograd.grad: input {k} was not used to compute the outputs "
                               "(allow_unused=True returns None for it)")
    result = tuple(None if g is None else Tensor._make(g) for g in caught)
    return result


def _accumulate(old, new):
    return new if old is None else old + new


def _freed_error(fn):
    return RuntimeError(
        f"backward through a graph that has already been freed (at {type(fn).__name__}; a second backward call, "
        "or an output of a no_grad block); call backward(retain_graph=True) the first time "
        "if you need to back-propagate twice"
    )
