"""What the layers do, as pictures (matplotlib): feature maps, filters, gradient flow.

    viz.feature_maps(model, x, ["conv1", "layer1"], "maps.png")   # activations of one image
    viz.filters(model.conv1, "filters.png")                       # the kernels themselves
    loss.backward(); viz.gradient_flow(model, "grads.png")        # are the gradients vanishing?
"""
import numpy as np

from ..autograd import no_grad


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ImportError("minicnn.viz draws with matplotlib, which is not installed: "
                          "pip install matplotlib (or minicnn[plot])") from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def _grid(n):
    """(rows, columns) of a near-square grid of n panels."""
    cols = int(np.ceil(np.sqrt(n)))
    return int(np.ceil(n / cols)), cols


def feature_maps(model, x, layers=None, path="feature_maps.png", max_channels=16):
    """Run ``model`` on one image ``x`` (C, H, W) or (1, C, H, W) and draw, for each named layer
    (default: every Conv2d), the first ``max_channels`` channels of its output as images, one row
    per layer. Returns ``path``."""
    from .. import nn

    named = dict(model.named_modules())
    if layers is None:
        layers = [name for name, m in named.items() if isinstance(m, nn.Conv2d)]
    unknown = [name for name in layers if name not in named]
    if unknown:
        raise ValueError(f"feature_maps: no layer named {unknown[0]!r} in {type(model).__name__}; "
                         f"its layers: {', '.join(n for n in named if n)[:300]}")
    x = x if x.ndim == 4 else x.unsqueeze(0)
    if x.shape[0] != 1:
        raise ValueError(f"feature_maps: expected one image, got a batch of {x.shape[0]} ({tuple(x.shape)})")
    seen = {}
    handles = [named[name].register_forward_hook(lambda m, inp, out, name=name: seen.__setitem__(name, out))
               for name in layers]
    was_training = model.training
    model.eval()
    try:
        with no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    plt = _pyplot()
    cols = max_channels
    fig, axes = plt.subplots(len(layers), cols, figsize=(1.1 * cols, 1.25 * len(layers) + 0.4), squeeze=False)
    for row, name in enumerate(layers):
        maps = seen[name].numpy()[0]
        for c in range(cols):
            ax = axes[row][c]
            ax.axis("off")
            if c < maps.shape[0] and maps.ndim == 3:
                ax.imshow(maps[c], cmap="viridis")
        axes[row][0].set_title(f"{name}  {tuple(maps.shape)}", fontsize=8, loc="left")
    fig.suptitle("feature maps (first channels of each layer's output, one image)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def filters(conv, path="filters.png", max_filters=64):
    """Draw the kernels of a Conv2d: one panel per output channel, as an RGB image where the
    layer reads 3 channels, else its first input channel in grey. Returns ``path``."""
    w = conv.weight.numpy()[:max_filters]  # (O, C/G, kh, kw)
    plt = _pyplot()
    rows, cols = _grid(len(w))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.9 + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(w):
            f = w[k]
            lo, hi = f.min(), f.max()
            f = (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)
            if f.shape[0] == 3:
                ax.imshow(f.transpose(1, 2, 0), interpolation="nearest")
            else:
                ax.imshow(f[0], cmap="gray", interpolation="nearest")
    fig.suptitle(f"{len(w)} kernels {tuple(conv.weight.shape[1:])}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def gradient_flow(model, path="gradient_flow.png"):
    """After ``backward()``: mean and max |grad| of every parameter, in the model's order, on a
    log scale; gradients that shrink towards the input show up as a falling curve. Parameters
    without a gradient are left out. Returns ``path``."""
    names, means, maxima = [], [], []
    for name, p in model.named_parameters():
        if p.grad is not None:
            g = np.abs(p.grad.numpy())
            names.append(name)
            means.append(g.mean())
            maxima.append(g.max())
    if not names:
        raise ValueError("gradient_flow: no parameter has a gradient; call loss.backward() first")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(names)), 4.5))
    x = np.arange(len(names))
    floor = np.finfo(np.float64).tiny  # log scale: an all-zero gradient is drawn at the bottom
    ax.bar(x, np.maximum(maxima, floor), color="#9ecae1", label="max |grad|")
    ax.bar(x, np.maximum(means, floor), color="#3182bd", label="mean |grad|")
    ax.set_yscale("log")
    ax.set_xticks(x)
    ax.set_xticklabels(names, rotation=90, fontsize=6)
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylabel("|gradient|")
    ax.set_title("gradient flow, input side on the left")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
