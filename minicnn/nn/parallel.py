"""``nn.parallel.DistributedDataParallel``: one model, trained by several processes at once.

Every process holds a full copy of the model and runs its own share of each batch. After
``backward`` the gradients of all copies are averaged, so each ``optimizer.step()`` makes the
same update everywhere, the update of the whole batch.

Averaging waits for no one: the parameters are grouped into buckets (in reverse order, the
order backward produces their gradients), and as soon as every gradient of a bucket is final,
the bucket is flattened into one contiguous buffer and its all-reduce is started
(non-blocking), while backward goes on with the layers before. At the end of backward
(``autograd.queue_callback``) the reductions are waited for and the averages written back
into ``.grad``. Which parameters a forward pass used, and how often, is read from its graph,
so a gradient is final when it has been accumulated that many times.
"""
import contextlib
import time

from .. import autograd, backend, distributed
from ..tensor import Tensor
from .module import Module

_MiB = 2 ** 20


class _Bucket:
    def __init__(self, params):
        self.params = params
        self.sizes = [p.array.size for p in params]
        xp = backend.array_module(params[0].array)  # on the GPU the buckets stay there (NCCL)
        self.buffer = xp.empty(sum(self.sizes), params[0].array.dtype)
        self.pending, self.work = 0, None


class DistributedDataParallel(Module):
    """Wrap ``module`` for data-parallel training over ``minicnn.distributed``'s processes.

    At wrap time every parameter and buffer is broadcast from rank 0. ``bucket_cap_mb``: the
    size of a gradient bucket (the first one is 1 MiB, to start communicating early, as
    PyTorch). ``broadcast_buffers``: copy rank 0's buffers (batch-norm statistics) to every
    rank at each forward. ``no_sync()``: accumulate gradients locally (gradient accumulation);
    the next backward outside it averages the sum. State-dict keys carry the prefix
    ``module.``, as PyTorch's. ``device_ids``, ``output_device``, ``find_unused_parameters``
    and ``gradient_as_bucket_view`` are accepted for PyTorch's scripts: a process uses the
    module's device, and unused parameters are found from each forward's graph anyway.
    """

    def __init__(self, module, device_ids=None, output_device=None, broadcast_buffers=True, bucket_cap_mb=25,
                 find_unused_parameters=False, gradient_as_bucket_view=False):
        super().__init__()
        if not distributed.is_initialized():
            raise RuntimeError("DistributedDataParallel: call minicnn.distributed.init_process_group() first")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.require_backward_grad_sync = True
        self._params = [p for p in module.parameters() if p.requires_grad]
        for t in self._params + [b for b in module.buffers() if b is not None]:
            distributed.broadcast(t, src=0)
        self._buckets, self._bucket_of = self._make_buckets(bucket_cap_mb)
        self._uses = {}  # id(param) -> gradients it still expects in this backward
        self._finalizing = False
        self.comm_wait = 0.0  # seconds spent waiting for reductions at the end of backward (exposed)
        for p in self._params:
            p.register_post_accumulate_grad_hook(self._grad_ready)

    def _make_buckets(self, cap_mb):
        buckets, current, size = [], [], 0
        cap = min(1, cap_mb) * _MiB
        for p in reversed(self._params):
            if current and (size + p.array.nbytes > cap or p.array.dtype != current[0].array.dtype):
                buckets.append(_Bucket(current))
                current, size, cap = [], 0, cap_mb * _MiB
            current.append(p)
            size += p.array.nbytes
        if current:
            buckets.append(_Bucket(current))
        return buckets, {id(p): b for b in buckets for p in b.params}

    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside only accumulate ``.grad`` locally."""
        previous, self.require_backward_grad_sync = self.require_backward_grad_sync, False
        try:
            yield
        finally:
            self.require_backward_grad_sync = previous

    def forward(self, *inputs, **kwargs):
        if self.broadcast_buffers and self.training:
            for b in self.module.buffers():
                if b is not None:
                    distributed.broadcast(b, src=0)
        out = self.module(*inputs, **kwargs)
        if autograd.is_grad_enabled() and self.require_backward_grad_sync:
            self._prepare(out)
        return out

    def _prepare(self, out):
        """Count how often this forward used each parameter (its gradient arrives that often)."""
        uses = {id(p): 0 for p in self._params}
        outputs = out if isinstance(out, (tuple, list)) else (out,)
        for fn in autograd.functions(t._creator for t in outputs if isinstance(t, Tensor) and t._creator is not None):
            for edge in fn._edges:
                if edge is not None and not isinstance(edge, tuple) and id(edge) in uses:
                    uses[id(edge)] += 1
        self._uses = uses
        self._finalizing = False
        for bucket in self._buckets:  # unused parameters are final from the start (their gradient: 0)
            bucket.pending = sum(1 for p in bucket.params if uses[id(p)] > 0)
            bucket.work = None
            if bucket.pending == 0:
                self._reduce(bucket)

    def _grad_ready(self, p):
        if not self.require_backward_grad_sync or id(p) not in self._uses:
            return
        if not self._finalizing:
            self._finalizing = True
            autograd.queue_callback(self._finish)
        self._uses[id(p)] -= 1
        if self._uses[id(p)] == 0:
            bucket = self._bucket_of[id(p)]
            bucket.pending -= 1
            if bucket.pending == 0:
                self._reduce(bucket)
        for bucket in self._buckets:  # MPI makes progress on started reductions while we call it
            if bucket.work is not None:
                bucket.work.is_completed()

    def _reduce(self, bucket):
        """Flatten the bucket's gradients and start their sum over the processes."""
        offset = 0
        for p, n in zip(bucket.params, bucket.sizes):
            view = bucket.buffer[offset:offset + n]
            if p.grad is None:
                view[...] = 0
            else:
                view[...] = p.grad.array.reshape(-1)
            offset += n
        bucket.work = distributed.all_reduce(bucket.buffer, async_op=True)

    def _finish(self):
        """End of backward: wait for every bucket, write the averages into ``.grad``."""
        start = time.perf_counter()
        world = distributed.get_world_size()
        for bucket in self._buckets:
            if bucket.work is None:  # a parameter backward did not reach although forward used it
                self._reduce(bucket)
            bucket.work.wait()
            bucket.work = None
            bucket.buffer /= world
            offset = 0
            for p, n in zip(bucket.params, bucket.sizes):
                p.grad = Tensor._make(bucket.buffer[offset:offset + n].reshape(p.array.shape).copy())
                offset += n
        self.comm_wait += time.perf_counter() - start
        self._uses = {}


__all__ = ["DistributedDataParallel"]
