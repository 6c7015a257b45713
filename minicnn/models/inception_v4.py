"""Inception-v4 (Szegedy, Ioffe, Vanhoucke, Alemi 2016), as ``timm``'s ``inception_v4``.

Parameter names and layer order match timm (itself a port of Google's TensorFlow model via
Cadene's pretrainedmodels), so a timm state dict loads with ``strict=True``. Every conv is
conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU (``BasicConv2d``, timm's ``ConvNormAct``);
branch average pools exclude the padding (``count_include_pad=False``, TensorFlow's rule).
Initialisation is PyTorch's layer default, as timm leaves it.
"""
from .. import nn
from ..ops import cat
from .googlenet import BasicConv2d


class Mixed3a(nn.Module):
    """Stem, 147 -> 73: max pool 3/2 | 3x3/2 conv 96; 64 + 96 = 160 channels."""

    def __init__(self):
        super().__init__()
        self.maxpool = nn.MaxPool2d(3, stride=2)
        self.conv = BasicConv2d(64, 96, kernel_size=3, stride=2)

    def forward(self, x):
        return cat([self.maxpool(x), self.conv(x)], 1)


class Mixed4a(nn.Module):
    """Stem, 73 -> 71: 1x1 64 -> 3x3 96 | 1x1 64 -> 1x7 64 -> 7x1 64 -> 3x3 96; 192 channels."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(160, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(160, 64, kernel_size=1),
            BasicConv2d(64, 64, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(64, 64, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(64, 96, kernel_size=3),
        )

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x)], 1)


class Mixed5a(nn.Module):
    """Stem, 71 -> 35: 3x3/2 conv 192 | max pool 3/2; 384 channels."""

    def __init__(self):
        super().__init__()
        self.conv = BasicConv2d(192, 192, kernel_size=3, stride=2)
        self.maxpool = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.conv(x), self.maxpool(x)], 1)


class InceptionA(nn.Module):
    """35x35, 384 -> 384 (paper Fig. 4): 1x1 96 | 1x1 64 -> 3x3 96 | 1x1 64 -> 3x3 96 -> 3x3 96
    | avg pool -> 1x1 96."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(384, 96, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(384, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3, padding=1),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(384, 64, kernel_size=1),
            BasicConv2d(64, 96, kernel_size=3, padding=1),
            BasicConv2d(96, 96, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(384, 96, kernel_size=1),
        )

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class ReductionA(nn.Module):
    """35 -> 17, 384 -> 1024 (paper Fig. 7, k=192 l=224 m=256 n=384)."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(384, 384, kernel_size=3, stride=2)
        self.branch1 = nn.Sequential(
            BasicConv2d(384, 192, kernel_size=1),
            BasicConv2d(192, 224, kernel_size=3, padding=1),
            BasicConv2d(224, 256, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class InceptionB(nn.Module):
    """17x17, 1024 -> 1024 (paper Fig. 5): 7x7 convs factorised into 1x7 and 7x1."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(1024, 384, kernel_size=1)
        self.branch1 = nn.Sequential(
            BasicConv2d(1024, 192, kernel_size=1),
            BasicConv2d(192, 224, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(224, 256, kernel_size=(7, 1), padding=(3, 0)),
        )
        self.branch2 = nn.Sequential(
            BasicConv2d(1024, 192, kernel_size=1),
            BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(192, 224, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(224, 224, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(224, 256, kernel_size=(1, 7), padding=(0, 3)),
        )
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(1024, 128, kernel_size=1),
        )

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class ReductionB(nn.Module):
    """17 -> 8, 1024 -> 1536 (paper Fig. 8)."""

    def __init__(self):
        super().__init__()
        self.branch0 = nn.Sequential(
            BasicConv2d(1024, 192, kernel_size=1),
            BasicConv2d(192, 192, kernel_size=3, stride=2),
        )
        self.branch1 = nn.Sequential(
            BasicConv2d(1024, 256, kernel_size=1),
            BasicConv2d(256, 256, kernel_size=(1, 7), padding=(0, 3)),
            BasicConv2d(256, 320, kernel_size=(7, 1), padding=(3, 0)),
            BasicConv2d(320, 320, kernel_size=3, stride=2),
        )
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x):
        return cat([self.branch0(x), self.branch1(x), self.branch2(x)], 1)


class InceptionC(nn.Module):
    """8x8, 1536 -> 1536 (paper Fig. 6): 3x3s split into parallel 1x3 and 3x1 outputs."""

    def __init__(self):
        super().__init__()
        self.branch0 = BasicConv2d(1536, 256, kernel_size=1)
        self.branch1_0 = BasicConv2d(1536, 384, kernel_size=1)
        self.branch1_1a = BasicConv2d(384, 256, kernel_size=(1, 3), padding=(0, 1))
        self.branch1_1b = BasicConv2d(384, 256, kernel_size=(3, 1), padding=(1, 0))
        self.branch2_0 = BasicConv2d(1536, 384, kernel_size=1)
        self.branch2_1 = BasicConv2d(384, 448, kernel_size=(3, 1), padding=(1, 0))
        self.branch2_2 = BasicConv2d(448, 512, kernel_size=(1, 3), padding=(0, 1))
        self.branch2_3a = BasicConv2d(512, 256, kernel_size=(1, 3), padding=(0, 1))
        self.branch2_3b = BasicConv2d(512, 256, kernel_size=(3, 1), padding=(1, 0))
        self.branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
            BasicConv2d(1536, 256, kernel_size=1),
        )

    def forward(self, x):
        x1 = self.branch1_0(x)
        x1 = cat([self.branch1_1a(x1), self.branch1_1b(x1)], 1)
        x2 = self.branch2_2(self.branch2_1(self.branch2_0(x)))
        x2 = cat([self.branch2_3a(x2), self.branch2_3b(x2)], 1)
        return cat([self.branch0(x), x1, x2, self.branch3(x)], 1)


class InceptionV4(nn.Module):
    """Inception-v4 (paper Fig. 9). Input (N, 3, 299, 299).

    ========================  ===========  ==================================
    features index            output       blocks
    ========================  ===========  ==================================
    0-2 (stem convs)          147x147x64   3x3/2 32, 3x3 32, 3x3 p1 64
    3-5 (Mixed3a/4a/5a)       35x35x384    rest of the stem
    6-9                       35x35x384    4 x InceptionA
    10                        17x17x1024   ReductionA
    11-17                     17x17x1024   7 x InceptionB
    18                        8x8x1536     ReductionB
    19-21                     8x8x1536     3 x InceptionC
    global_pool, last_linear  classes      global average, dropout (0), fc
    ========================  ===========  ==================================
    """

    def __init__(self, num_classes=1000, in_channels=3, drop_rate=0.0):
        super().__init__()
        self.features = nn.Sequential(
            BasicConv2d(in_channels, 32, kernel_size=3, stride=2),
            BasicConv2d(32, 32, kernel_size=3),
            BasicConv2d(32, 64, kernel_size=3, padding=1),
            Mixed3a(), Mixed4a(), Mixed5a(),
            *[InceptionA() for _ in range(4)],
            ReductionA(),
            *[InceptionB() for _ in range(7)],
            ReductionB(),
            *[InceptionC() for _ in range(3)],
        )
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.head_drop = nn.Dropout(drop_rate)
        self.last_linear = nn.Linear(1536, num_classes)

    def forward(self, x):
        x = self.global_pool(self.features(x)).flatten(1)
        return self.last_linear(self.head_drop(x))


def inception_v4(**kwargs):
    """Inception-v4 as timm: 42,679,816 parameters, 12.25 GMACs at 299x299."""
    return InceptionV4(**kwargs)
