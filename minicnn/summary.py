"""``summary``: a Keras-style table of a model's layers, parameters and multiply-accumulates,
with an estimate of the memory one training step needs.

One forward pass at batch 1, in eval mode and without autograd, with a forward hook on every
layer records each output shape. MACs (multiply-accumulates) are counted for the layers that
do them, per image, from the weight shapes:

- ``Conv2d``, weight (C_out, C_in/groups, kh, kw): MACs = (C_out * H_out * W_out) * C_in/groups * kh * kw
- ``ConvTranspose2d``, weight (C_in, C_out/groups, kh, kw): every input pixel scatters a kernel:
  MACs = (C_in * H_in * W_in) * C_out/groups * kh * kw
- ``Linear``, weight (out, in): MACs = (output elements) * in

Everything else (BatchNorm, pooling, activations) counts 0, the usual convention (and the
one of torchvision's "GFLOPS" column, which is in fact GMACs). One MAC is two FLOPs.

Training memory at batch size B (an estimate):

    B * (input + every layer's output)   forward activations kept for the backward pass
  + parameters + their gradients + optimizer state (0 slots for SGD, 1 for momentum, 2 for Adam)

It errs on the high side for plain chains (a BatchNorm output read only by a ReLU can be freed)
and misses outputs of operations that are not layers (``cat``, ``+``); measured minicnn CPU peaks
of a training step were 70-95 % of it (U-Net 256x256, ResNet-50 and GoogLeNet at batch 4).
Frameworks on a GPU add workspace and allocator slack, so leave some headroom.
"""
from dataclasses import dataclass

import numpy as np

from . import backend
from .autograd import no_grad
from .tensor import Tensor

OPTIMIZER_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
MiB = 2 ** 20
GiB = 2 ** 30


@dataclass
class LayerInfo:
    """One row: a layer call (a layer called twice gives two rows)."""
    name: str            # dotted path in the model, e.g. "layer1.0.conv1"
    kind: str            # class name, e.g. "Conv2d"
    output_shape: tuple  # per image (batch dimension left out); a list of shapes for tuple outputs
    params: int          # parameters owned by this layer itself
    macs: int            # multiply-accumulates per image
    output_bytes: int    # bytes of the output per image


@dataclass
class ModelSummary:
    """The result of ``summary``; ``str()`` is the table. Counts are per image unless noted."""
    model_name: str
    input_size: tuple
    batch_size: int
    layers: list
    total_params: int
    trainable_params: int
    itemsize: int           # bytes per parameter value (4 for float32)
    input_bytes: int        # per image
    optimizer: str

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params

    @property
    def total_macs(self):
        return sum(layer.macs for layer in self.layers)

    @property
    def gmacs(self):
        return self.total_macs / 1e9

    @property
    def activation_bytes_per_image(self):
        """Forward activations kept for backward, per image: the input and every layer output."""
        return self.input_bytes + sum(layer.output_bytes for layer in self.layers)

    @property
    def param_bytes(self):
        return self.total_params * self.itemsize

    @property
    def grad_bytes(self):
        return self.trainable_params * self.itemsize

    @property
    def optimizer_bytes(self):
        return OPTIMIZER_SLOTS[self.optimizer] * self.trainable_params * self.itemsize

    def training_bytes(self, batch_size=None):
        """Estimated memory of one training step at ``batch_size`` (default: the summary's)."""
        b = self.batch_size if batch_size is None else batch_size
        fixed = self.param_bytes + self.grad_bytes + self.optimizer_bytes
        return b * self.activation_bytes_per_image + fixed

    def max_batch_size(self, memory_gb):
        """Largest batch whose estimated training step fits in ``memory_gb`` GiB (0 if none)."""
        free = memory_gb * GiB - (self.param_bytes + self.grad_bytes + self.optimizer_bytes)
        return max(0, int(free // self.activation_bytes_per_image))

    def __str__(self):
        b = self.batch_size

        def shape(s):
            if isinstance(s, list):
                return ", ".join(shape(x) for x in s)
            return str([b, *s])

        rows = [(f"{r.name} ({r.kind})", shape(r.output_shape), f"{r.params:,}",
                 f"{r.macs:,}") for r in self.layers]
        head = ("Layer (type)", "Output shape", "Param #", "MACs")
        w = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(4)]
        width = sum(w) + 6

        def line(cells):
            return f"{cells[0]:<{w[0]}}  {cells[1]:<{w[1]}}  {cells[2]:>{w[2]}}  {cells[3]:>{w[3]}}"

        mb = lambda n: f"{n / MiB:,.2f}"  # noqa: E731
        out = [f"{self.model_name}, input {shape(self.input_size)}", "=" * width, line(head), "=" * width]
        out += [line(r) for r in rows]
        out += ["=" * width,
                f"Total params: {self.total_params:,}",
                f"Trainable params: {self.trainable_params:,}",
                f"Non-trainable params: {self.non_trainable_params:,}",
                f"Total MACs: {self.gmacs:,.3f} G per image ({self.total_macs:,})",
                "-" * width,
                f"Training-step memory estimate at batch size {b} (MiB):",
                f"  input:                         {mb(b * self.input_bytes):>12}",
                f"  forward activations (kept):    {mb(b * (self.activation_bytes_per_image - self.input_bytes)):>12}",
                f"  parameters:                    {mb(self.param_bytes):>12}",
                f"  parameter gradients:           {mb(self.grad_bytes):>12}",
                f"  optimizer state ({self.optimizer + '):':<14}{mb(self.optimizer_bytes):>12}",
                f"  total:                         {mb(self.training_bytes()):>12}",
                "=" * width]
        return "\n".join(out)

    __repr__ = __str__


def _conv_like():
    from . import nn  # imported here so that ``import minicnn`` stays light
    return nn.Conv2d, nn.ConvTranspose2d, nn.Linear


def _layer_macs(module, inputs, output):
    conv, conv_t, linear = _conv_like()
    w = getattr(module, "weight", None)
    if isinstance(module, conv):
        return output.array.size * int(np.prod(w.shape[1:]))
    if isinstance(module, conv_t):
        return inputs[0].array.size * int(np.prod(w.shape[1:]))
    if isinstance(module, linear):
        return output.array.size * w.shape[1]
    return 0


def _tensors(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    return []


def summary(model, input_size, batch_size=1, device="cpu", optimizer="adam"):
    """Run one image of shape ``input_size`` (C, H, W) through ``model`` and tabulate it.

    ``batch_size`` scales the shapes shown and the memory estimate; ``optimizer`` ("sgd",
    "momentum", "adam", "adamw") sets how many values of state each parameter carries.
    Returns a ``ModelSummary``; ``print`` it for the table. The model must already be on
    ``device``; its train/eval modes are restored afterwards.
    """
    if optimizer not in OPTIMIZER_SLOTS:
        raise ValueError(f"summary: optimizer must be one of {sorted(OPTIMIZER_SLOTS)}, got {optimizer!r}")
    input_size = tuple(int(s) for s in input_size)
    if len(input_size) < 1 or min(input_size) < 1:
        raise ValueError(f"summary: input_size must be positive sizes without the batch, e.g. "
                         f"(3, 224, 224); got {input_size}")
    params = list(model.parameters())
    first_conv = next((m for m in model.modules() if hasattr(m, "in_channels")), None)
    if first_conv is not None and len(input_size) == 2:  # (H, W): the channels were left out
        raise ValueError(f"summary: input_size {input_size} has no channels; {type(model).__name__} takes "
                         f"(C, H, W), e.g. ({first_conv.in_channels}, {input_size[0]}, {input_size[1]})")
    dtype = params[0].dtype if params else np.float32
    x = np.random.default_rng(0).standard_normal((1, *input_size)).astype(dtype)
    x = Tensor(backend.to_device(x, backend.normalize_device(device)))

    layers, handles = [], []

    def record(name):
        def hook(module, inputs, output):
            outs = _tensors(output)
            shapes = [tuple(t.shape[1:]) for t in outs]
            layers.append(LayerInfo(
                name=name or type(module).__name__, kind=type(module).__name__,
                output_shape=shapes[0] if len(shapes) == 1 else shapes,
                params=sum(p.array.size for p in module.parameters(recurse=False)),
                macs=_layer_macs(module, inputs, outs[0]) if outs else 0,
                output_bytes=sum(t.array.nbytes for t in outs)))
        return hook

    modes = {id(m): m.training for m in model.modules()}
    for name, m in model.named_modules():
        has_children = any(True for _ in m.children())
        if not has_children or any(True for _ in m.parameters(recurse=False)):
            handles.append(m.register_forward_hook(record(name)))
    try:
        model.eval()
        with no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        for m in model.modules():
            m.training = modes[id(m)]

    return ModelSummary(
        model_name=type(model).__name__, input_size=input_size, batch_size=batch_size,
        layers=layers, total_params=sum(p.array.size for p in params),
        trainable_params=sum(p.array.size for p in params if p.requires_grad),
        itemsize=np.dtype(dtype).itemsize, input_bytes=x.array.nbytes, optimizer=optimizer)


def max_batch_size(model, input_size, memory_gb, optimizer="adam", device="cpu"):
    """How many images of ``input_size`` fit in a training step within ``memory_gb`` GiB,
    by the estimate of ``summary`` (activations scale with the batch, the rest does not)."""
    return summary(model, input_size, device=device, optimizer=optimizer).max_batch_size(memory_gb)
