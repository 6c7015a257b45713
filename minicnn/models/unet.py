"""U-Net (Ronneberger, Fischer, Brox 2015) for per-pixel segmentation.

- ``unet``: the paper's network (Fig. 1): unpadded ("valid") 3x3 convs, so every conv trims
  a 1-pixel border; the skip connection is centre-cropped to the upsampled map before the
  concatenation. 572x572 in, 388x388 out; 31,030,658 parameters for 1 -> 2 channels.
- ``unet_same``: the widely used Keras re-implementation (zhixuhao/unet): zero-padded
  ("same") convs keep the size (256 in, 256 out, no crop); upsampling is nearest-neighbour
  2x followed by a 2x2 conv + ReLU; dropout 0.5 after the two deepest levels; the head is a
  3x3 conv to 2 channels + ReLU then a 1x1 conv; 31,031,685 parameters for 1 -> 1 channel.
  zhixuhao ends in a sigmoid; here the model returns the logits (apply ``mc.sigmoid`` or
  train with ``F.binary_cross_entropy_with_logits``, which is the numerically stable form).

Both are ``UNet`` with different options; ``in_channels``, ``num_classes``, ``base_width``
(64 in the paper: channels per level are base_width * 2**level) and ``depth`` (5 levels in
the paper, i.e. 4 poolings) are free. Initialisation is the paper's: Gaussian weights with
std sqrt(2 / fan_in) (He et al.), zero biases.
"""
from .. import nn
from ..nn import functional as F
from ..nn import init
from ..ops import cat


class DoubleConv(nn.Module):
    """(3x3 conv -> ReLU) x 2; ``padding`` 0 trims 2 pixels per side, 1 keeps the size."""

    def __init__(self, in_channels, out_channels, padding=0, dropout=0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=padding)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=padding)
        self.relu2 = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x):
        return self.dropout(self.relu2(self.conv2(self.relu1(self.conv1(x)))))


class UpConv(nn.Module):
    """Keras-style "up-convolution": nearest 2x upsampling -> 2x2 conv -> ReLU,
    (N, C, H, W) -> (N, C', 2H, 2W). 'same' padding for an even kernel adds the single zero
    row/column after the map, as TensorFlow does."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest")
        self.conv = nn.Conv2d(in_channels, out_channels, 2, padding="same")
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.conv(self.upsample(x)))


class Up(nn.Module):
    """One expansive step: upsample and halve channels, crop the skip to match, concatenate
    [skip, up], then ``DoubleConv``.

    ``mode`` "transposed": the paper's 2x2 stride-2 up-convolution; "upsample": ``UpConv``.
    """

    def __init__(self, in_channels, out_channels, padding=0, mode="transposed"):
        super().__init__()
        if mode == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, out_channels, 2, stride=2)
        elif mode == "upsample":
            self.up = UpConv(in_channels, out_channels)
        else:
            raise ValueError(f"UNet: up mode must be 'transposed' or 'upsample', got {mode!r}")
        self.conv = DoubleConv(2 * out_channels, out_channels, padding)

    def forward(self, x, skip):
        x = self.up(x)
        if skip.shape[-2:] != x.shape[-2:]:
            skip = F.center_crop(skip, x.shape[-2:])  # valid convs shrank the deeper path more
        return self.conv(cat([skip, x], 1))


class UNet(nn.Module):
    """U-Net with ``depth`` levels of widths base_width * 2**i (the paper: 64 .. 1024).

    Contracting path: ``DoubleConv`` per level, 2x2 max pool between levels; expansive path:
    ``depth - 1`` ``Up`` steps; head: [3x3 conv to ``head_channels`` + ReLU] then a 1x1 conv
    to ``num_classes``. ``padding`` "valid" (paper) or "same". ``dropout`` applies after the
    two deepest levels (the paper's "drop-out layers at the end of the contracting path").

    With valid padding the output is smaller than the input (572 -> 388 at depth 5); with
    same padding it is the input size when height and width are multiples of 2**(depth-1).
    Returns logits (N, num_classes, H', W').
    """

    def __init__(self, in_channels=1, num_classes=2, base_width=64, depth=5, padding="valid",
                 up_mode="transposed", dropout=0.0, head_channels=None):
        super().__init__()
        if padding not in ("valid", "same"):
            raise ValueError(f"UNet: padding must be 'valid' or 'same', got {padding!r}")
        if depth < 2:
            raise ValueError(f"UNet: depth must be at least 2, got {depth}")
        p = 0 if padding == "valid" else 1
        widths = [base_width * 2 ** i for i in range(depth)]
        self.down = nn.ModuleList()
        c = in_channels
        for i, w in enumerate(widths):
            self.down.append(DoubleConv(c, w, p, dropout if i >= depth - 2 else 0.0))
            c = w
        self.pool = nn.MaxPool2d(2, stride=2)
        self.up = nn.ModuleList([Up(widths[i + 1], widths[i], p, up_mode)
                                 for i in reversed(range(depth - 1))])
        layers = []
        c = widths[0]
        if head_channels:
            layers += [nn.Conv2d(c, head_channels, 3, padding=p), nn.ReLU(inplace=True)]
            c = head_channels
        layers.append(nn.Conv2d(c, num_classes, 1))
        self.head = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                init.zeros_(m.bias)

    def accepts(self, size):
        """Whether a side of ``size`` pixels works: with valid convolutions each level's two 3x3
        convolutions take 4 pixels and the 2x2 pool needs an even size; with same padding every
        pool needs an even size."""
        depth, shrink = len(self.down), 4 if self.down[0].conv1.padding == (0, 0) else 0
        for level in range(depth):
            size -= shrink
            if size < 1 or (level < depth - 1 and size % 2):
                return False
            size //= 2 if level < depth - 1 else 1
        return True

    def _check_size(self, x):
        for side in x.shape[-2:]:
            if not self.accepts(side):
                below = next((s for s in range(side - 1, 0, -1) if self.accepts(s)), None)
                above = next(s for s in range(side + 1, side + 2 ** len(self.down) * 8) if self.accepts(s))
                nearest = f"{below} or {above}" if below else f"{above}"
                raise ValueError(f"UNet (depth {len(self.down)}): an input side of {side} pixels does not pool evenly "
                                 f"at every level (input {tuple(x.shape)}); the nearest sizes that do: {nearest}")

    def forward(self, x):
        self._check_size(x)
        skips = []
        for i, block in enumerate(self.down):
            if i:
                x = self.pool(x)
            x = block(x)
            skips.append(x)
        skips.pop()  # the bottom level feeds the expansive path directly
        for up in self.up:
            x = up(x, skips.pop())
        return self.head(x)


def unet(in_channels=1, num_classes=2, base_width=64, depth=5, **kwargs):
    """The original U-Net (valid convs, crop-and-concat, transposed-conv upsampling).

    1 -> 2 channels: 31,030,658 parameters, 150.43 GMACs for a 572x572 input (388x388 out).
    """
    return UNet(in_channels, num_classes, base_width, depth, **kwargs)


def unet_same(in_channels=1, num_classes=1, base_width=64, depth=5, **kwargs):
    """zhixuhao/unet's Keras U-Net (same padding, upsample + 2x2 conv, dropout 0.5, 2-channel
    3x3 head): 31,031,685 parameters, 54.61 GMACs at 256x256 (1 -> 1 channel, logits)."""
    kwargs = {"padding": "same", "up_mode": "upsample", "dropout": 0.5, "head_channels": 2, **kwargs}
    return UNet(in_channels, num_classes, base_width, depth, **kwargs)
