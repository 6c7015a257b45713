"""Xception (Chollet 2017, "Xception: Deep Learning with Depthwise Separable Convolutions").

The Inception idea taken to its end: a convolution is split into a 3x3 convolution of each
channel on its own (depthwise, ``groups = channels``) and a 1x1 convolution that mixes the
channels (pointwise). 36 such separable convolutions, in residual blocks, make the network:

    entry flow    conv 3x3/2 32, conv 3x3 64, blocks 1-3 (128, 256, 728; each halves the map)
    middle flow   blocks 4-11, each three separable 728 -> 728 convolutions and a shortcut
    exit flow     block 12 (728 -> 1024, halves the map), separable 1536 and 2048, global
                  average pool, fc

Input (N, 3, 299, 299): 149, 147, 74, 37, 19 (middle flow), 10 pixels at the end. The names of
every parameter are those of timm's ``legacy_xception`` (``xception`` in older timm), so its
state dict loads with ``load_state_dict(..., strict=True)``: ``block1.rep.0.conv1`` (a
depthwise weight), ``block1.rep.0.pointwise``, ``block1.skip``, ``block1.skipbn``, ...
"""
from .. import nn
from ..nn import init


class SeparableConv2d(nn.Module):
    """Depthwise k x k (``conv1``, groups = in) then pointwise 1x1 (``pointwise``), both without
    bias: (N, in, H, W) -> (N, out, H', W'). Not a PyTorch layer: kept here, as timm does."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0, dilation=1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, dilation,
                               groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x):
        x = self.conv1(x)
        return self.pointwise(x)


class Block(nn.Module):
    """``reps`` x [ReLU, SeparableConv2d 3x3, BN] (``rep``), a 3x3/2 max pool when ``stride`` is
    2, plus a shortcut: the input itself, or a 1x1/stride convolution and BN (``skip``,
    ``skipbn``) where the shape changes. ``grow_first``: the first separable convolution
    widens to ``out`` (else the last); without ``start_with_relu`` the first ReLU is left out
    (block 1 follows a ReLU already)."""

    def __init__(self, in_channels, out_channels, reps, stride=1, start_with_relu=True, grow_first=True):
        super().__init__()
        if out_channels != in_channels or stride != 1:
            self.skip = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
            self.skipbn = nn.BatchNorm2d(out_channels)
        else:
            self.skip = None
        rep = []
        for i in range(reps):
            if grow_first:
                cin, cout = (in_channels if i == 0 else out_channels), out_channels
            else:
                cin, cout = in_channels, (in_channels if i < reps - 1 else out_channels)
            rep += [nn.ReLU(), SeparableConv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout)]
        if not start_with_relu:
            rep = rep[1:]
        if stride != 1:
            rep.append(nn.MaxPool2d(3, stride, 1))
        self.rep = nn.Sequential(*rep)

    def forward(self, x):
        shortcut = x if self.skip is None else self.skipbn(self.skip(x))
        return self.rep(x) + shortcut


class Xception(nn.Module):
    """Xception for 299x299 images: (N, in_channels, 299, 299) -> (N, num_classes) logits."""

    def __init__(self, num_classes=1000, in_channels=3):
        super().__init__()
        # entry flow
        self.conv1 = nn.Conv2d(in_channels, 32, 3, 2, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(32, 64, 3, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.act2 = nn.ReLU()
        self.block1 = Block(64, 128, 2, 2, start_with_relu=False)
        self.block2 = Block(128, 256, 2, 2)
        self.block3 = Block(256, 728, 2, 2)
        # middle flow
        self.block4 = Block(728, 728, 3)
        self.block5 = Block(728, 728, 3)
        self.block6 = Block(728, 728, 3)
        self.block7 = Block(728, 728, 3)
        self.block8 = Block(728, 728, 3)
        self.block9 = Block(728, 728, 3)
        self.block10 = Block(728, 728, 3)
        self.block11 = Block(728, 728, 3)
        # exit flow
        self.block12 = Block(728, 1024, 2, 2, grow_first=False)
        self.conv3 = SeparableConv2d(1024, 1536, 3, 1, 1)
        self.bn3 = nn.BatchNorm2d(1536)
        self.act3 = nn.ReLU()
        self.conv4 = SeparableConv2d(1536, 2048, 3, 1, 1)
        self.bn4 = nn.BatchNorm2d(2048)
        self.act4 = nn.ReLU()
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.block1(x)
        x = self.block2(x)
        x = self.block3(x)
        x = self.block4(x)
        x = self.block5(x)
        x = self.block6(x)
        x = self.block7(x)
        x = self.block8(x)
        x = self.block9(x)
        x = self.block10(x)
        x = self.block11(x)
        x = self.block12(x)
        x = self.act3(self.bn3(self.conv3(x)))
        x = self.act4(self.bn4(self.conv4(x)))
        x = self.global_pool(x).flatten(1)
        return self.fc(x)


def xception(num_classes=1000, in_channels=3):
    """Xception (timm ``legacy_xception`` layout); 22,855,952 parameters with 1000 classes."""
    return Xception(num_classes=num_classes, in_channels=in_channels)
