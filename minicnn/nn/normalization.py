"""Normalisation layers: BatchNorm1d, BatchNorm2d and LocalResponseNorm (PyTorch's names,
arguments, parameters and buffers, so torchvision state dicts load by key)."""
import numpy as np

from ..ops.normalization import batch_norm, local_response_norm, sync_batch_norm
from .module import Module
from .parameter import Parameter


class _BatchNorm(Module):
    """Learned per-channel scale ``weight`` (ones) and shift ``bias`` (zeros) when ``affine``;
    buffers ``running_mean`` (zeros), ``running_var`` (ones) and ``num_batches_tracked`` (int64)
    when ``track_running_stats``. Training normalises with batch statistics and updates the running
    ones (``momentum=None``: a cumulative average over all batches seen); eval uses the running ones.
    """

    _dims = ()  # the input ranks this layer accepts

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 dtype=np.float32):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype))
            self.bias = Parameter(np.zeros(num_features, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        if self.track_running_stats:
            self.running_mean.array[...] = 0
            self.running_var.array[...] = 1
            self.num_batches_tracked.array[...] = 0

    def reset_parameters(self):
        self.reset_running_stats()
        if self.affine:
            self.weight.array[...] = 1
            self.bias.array[...] = 0

    def _check_input(self, x):
        name = type(self).__name__
        if x.ndim not in self._dims:
            want = " or ".join(f"{d}-D" for d in self._dims)
            raise ValueError(f"{name}: expected a {want} input, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}({self.num_features}): input has {x.shape[1]} channels "
                             f"(shape {tuple(x.shape)}), expected {self.num_features}")

    def forward(self, x):
        self._check_input(x)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:  # cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        # Without running statistics, even eval normalises with the batch's own.
        use_batch = self.training or self.running_mean is None
        track = not self.training or self.track_running_stats  # never update untracked buffers
        return batch_norm(x, self.running_mean if track else None, self.running_var if track else None,
                          self.weight, self.bias, use_batch, factor, self.eps)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm over (N, C) or (N, C, L) inputs."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch norm over (N, C, H, W) inputs, statistics per channel over N, H and W."""

    _dims = (4,)


class SyncBatchNorm(_BatchNorm):
    """Batch norm over (N, C, *) whose training statistics are those of the whole batch across
    every process of ``minicnn.distributed`` (for the small per-process batches of data-parallel
    U-Net or ENet training). Without a process group, or with one process, it is BatchNorm."""

    _dims = (2, 3, 4, 5)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True,
                 process_group=None, dtype=np.float32):
        super().__init__(num_features, eps, momentum, affine, track_running_stats, dtype)
        self.process_group = process_group

    def forward(self, x):
        from .. import distributed

        if not (self.training and distributed.get_world_size() > 1):
            return super().forward(x)
        self._check_input(x)
        factor = self.momentum
        if self.track_running_stats:
            self.num_batches_tracked.array += 1
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked.item())
        return sync_batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, factor, self.eps,
                               lambda a: distributed.all_reduce(a))

    @classmethod
    def convert_sync_batchnorm(cls, module, process_group=None):
        """``module`` with every BatchNorm*d replaced by a SyncBatchNorm holding the same
        parameters and buffers (the module itself if it is one); as PyTorch's."""
        if isinstance(module, _BatchNorm) and not isinstance(module, SyncBatchNorm):
            sync = cls(module.num_features, module.eps, module.momentum, module.affine, module.track_running_stats,
                       process_group)
            for name in ("weight", "bias"):
                if getattr(module, name) is not None:
                    setattr(sync, name, getattr(module, name))
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                if getattr(module, name) is not None:
                    sync.register_buffer(name, getattr(module, name))
            sync.train(module.training)
            return sync
        for name, child in list(module._modules.items()):
            if child is not None:
                module._modules[name] = cls.convert_sync_batchnorm(child, process_group)
        return module


class LocalResponseNorm(Module):
    """b_c = a_c (k + alpha/size * sum of a^2 over ``size`` neighbouring channels)^-beta."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0):
        super().__init__()
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def forward(self, x):
        return local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self):
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"
