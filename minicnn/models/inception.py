"""Inception-v3 (Szegedy et al. 2015, "Rethinking the Inception Architecture"),
as ``torchvision.models.inception_v3``.

Module names follow Google's TensorFlow graph (``Conv2d_1a_3x3``, ``Mixed_5b`` ...), so the
blocks are InceptionA (35x35 grid), InceptionB (35 -> 17 reduction), InceptionC (17x17 with
factorised 7x7), InceptionD (17 -> 8 reduction), InceptionE (8x8, expanded filter bank) and
InceptionAux. Every conv is ``BasicConv2d``: conv without bias, BatchNorm eps 1e-3, ReLU.
Branch average pools count the zero padding (``count_include_pad=True``), as torchvision.
"""
from collections import namedtuple

from .. import nn
from ..nn import init
from ..ops import cat
from .googlenet import BasicConv2d, imagenet_to_inception_range

InceptionOutputs = namedtuple("InceptionOutputs", ["logits", "aux_logits"])


class InceptionA(nn.Module):
    """35x35 module (paper Fig. 5): 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1."""

    def __init__(self, in_channels, pool_features):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(in_channels, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.avg_pool = nn.AvgPool2d(kernel_size=3, stride=1, padding=1)
        self.branch_pool = BasicConv2d(in_channels, pool_features, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(self.avg_pool(x))
        return cat([b1, b5, b3, bp], 1)  # 64 + 64 + 96 + pool_features


class InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (paper Fig. 10): 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool 3/2."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3 = BasicConv2d(in_channels, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)
        self.max_pool = nn.MaxPool2d(kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        b3d = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return cat([b3, b3d, self.max_pool(x)], 1)  # 384 + 96 + in_channels


class InceptionC(nn.Module):
    """17x17 module with 7x7 convs factorised into 1x7 and 7x1 (paper Fig. 6)."""

    def __init__(self, in_channels, channels_7x7):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(in_channels, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.avg_pool = nn.AvgPool2d(kernel_size=3, stride=1, padding=1)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        b7d = self.branch7x7dbl_1(x)
        for conv in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            b7d = conv(b7d)
        bp = self.branch_pool(self.avg_pool(x))
        return cat([b1, b7, b7d, bp], 1)  # 4 x 192 = 768


class InceptionD(nn.Module):
    """Grid reduction 17 -> 8: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool 3/2."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(in_channels, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)
        self.max_pool = nn.MaxPool2d(kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return cat([b3, b7, self.max_pool(x)], 1)  # 320 + 192 + in_channels


class InceptionE(nn.Module):
    """8x8 module with expanded filter banks (paper Fig. 7): the 3x3s split into parallel
    1x3 and 3x1 convs whose outputs are concatenated."""

    def __init__(self, in_channels):
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(in_channels, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(in_channels, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.avg_pool = nn.AvgPool2d(kernel_size=3, stride=1, padding=1)
        self.branch_pool = BasicConv2d(in_channels, 192, kernel_size=1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        b3d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        b3d = cat([self.branch3x3dbl_3a(b3d), self.branch3x3dbl_3b(b3d)], 1)
        bp = self.branch_pool(self.avg_pool(x))
        return cat([b1, b3, b3d, bp], 1)  # 320 + 768 + 768 + 192 = 2048


class InceptionAux(nn.Module):
    """Auxiliary classifier on the 17x17 grid: avg pool 5/3, 1x1 128, 5x5 768, fc."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.avg_pool = nn.AvgPool2d(kernel_size=5, stride=3)
        self.conv0 = BasicConv2d(in_channels, 128, kernel_size=1)
        # torchvision also sets conv1.stddev = 0.01, but on the wrapper, where its init loop
        # never looks: that conv starts with std 0.1 like the others, and so does ours.
        self.conv1 = BasicConv2d(128, 768, kernel_size=5)
        self.global_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(768, num_classes)
        self.fc.stddev = 0.001  # initialisation std, read by Inception3

    def forward(self, x):
        x = self.conv1(self.conv0(self.avg_pool(x)))  # (N, 768, 1, 1) at 17x17 input
        return self.fc(self.global_pool(x).flatten(1))


class Inception3(nn.Module):
    """Inception-v3, the paper's Table 1 as torchvision builds it. Input (N, 3, 299, 299).

    ===========================  ===========  =====================================
    layers                       output       note
    ===========================  ===========  =====================================
    Conv2d_1a/2a/2b_3x3          147x147x64   3x3/2 32, 3x3 32, 3x3 p1 64
    maxpool1, Conv2d_3b/4a       71x71x192    3x3/2 max, 1x1 80, 3x3 192
    maxpool2                     35x35x192
    Mixed_5b, 5c, 5d             35x35x288    3 x InceptionA
    Mixed_6a                     17x17x768    InceptionB (reduction)
    Mixed_6b .. 6e               17x17x768    4 x InceptionC (AuxLogits reads 6e)
    Mixed_7a                     8x8x1280     InceptionD (reduction)
    Mixed_7b, 7c                 8x8x2048     2 x InceptionE
    avgpool, dropout 0.5, fc     classes
    ===========================  ===========  =====================================

    Training mode with ``aux_logits`` returns ``InceptionOutputs(logits, aux_logits)``;
    eval mode returns the logits. Weights start truncated-normal (std 0.1, or the module's
    ``stddev``), BatchNorm weight 1 / bias 0, as torchvision.
    """

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False,
                 init_weights=True, dropout=0.5):
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.maxpool1 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(kernel_size=3, stride=2)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.AuxLogits = InceptionAux(768, num_classes) if aux_logits else None
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(2048, num_classes)
        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    std = float(getattr(m, "stddev", 0.1))
                    init.trunc_normal_(m.weight, mean=0.0, std=std, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    init.constant_(m.weight, 1)
                    init.constant_(m.bias, 0)

    def _transform_input(self, x):
        return imagenet_to_inception_range(x) if self.transform_input else x

    def forward(self, x):
        x = self._transform_input(x)
        for stem in (self.Conv2d_1a_3x3, self.Conv2d_2a_3x3, self.Conv2d_2b_3x3, self.maxpool1,
                     self.Conv2d_3b_1x1, self.Conv2d_4a_3x3, self.maxpool2):
            x = stem(x)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a,
                      self.Mixed_6b, self.Mixed_6c, self.Mixed_6d, self.Mixed_6e):
            x = block(x)
        aux = self.AuxLogits(x) if self.AuxLogits is not None and self.training else None
        x = self.Mixed_7c(self.Mixed_7b(self.Mixed_7a(x)))
        x = self.dropout(self.avgpool(x)).flatten(1)
        x = self.fc(x)
        if self.training and self.aux_logits:
            return InceptionOutputs(x, aux)
        return x


def inception_v3(**kwargs):
    """Inception-v3 as torchvision: 27,161,264 parameters with the auxiliary head (the
    default), 23,834,568 without; 5.713 GMACs at 299x299."""
    return Inception3(**kwargs)
