"""GoogLeNet / Inception-v1 (Szegedy et al. 2014), as ``torchvision.models.googlenet``.

torchvision's version differs from the paper in two documented ways, kept here for exact
agreement: every conv is followed by BatchNorm (``BasicConv2d``), and the "5x5" branch of an
Inception module uses a 3x3 conv (as in the weights Google released).
"""
from collections import namedtuple

from .. import nn
from ..nn import init
from ..ops import cat

GoogLeNetOutputs = namedtuple("GoogLeNetOutputs", ["logits", "aux_logits2", "aux_logits1"])


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; the unit every Inception net is built from."""

    def __init__(self, in_channels, out_channels, **kwargs):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, bias=False, **kwargs)
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.bn(self.conv(x)))


class Inception(nn.Module):
    """Four parallel branches concatenated along channels (paper's Figure 2b):

    1x1 | 1x1 -> 3x3 | 1x1 -> 3x3 (the paper's 5x5) | 3x3 max pool -> 1x1.
    Output channels: ch1x1 + ch3x3 + ch5x5 + pool_proj.
    """

    def __init__(self, in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj):
        super().__init__()
        self.branch1 = BasicConv2d(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            BasicConv2d(in_channels, ch3x3red, kernel_size=1),
            BasicConv2d(ch3x3red, ch3x3, kernel_size=3, padding=1),
        )
        self.branch3 = nn.Sequential(
            BasicConv2d(in_channels, ch5x5red, kernel_size=1),
            BasicConv2d(ch5x5red, ch5x5, kernel_size=3, padding=1),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1, ceil_mode=True),
            BasicConv2d(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x):
        return cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], 1)


class InceptionAux(nn.Module):
    """Auxiliary classifier on 4a / 4d (training only): 4x4 avg pool, 1x1 conv 128, fc 1024, fc."""

    def __init__(self, in_channels, num_classes, dropout=0.7):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = BasicConv2d(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(2048, 1024)
        self.relu = nn.ReLU(inplace=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.conv(self.pool(x))            # (N, 128, 4, 4)
        x = self.relu(self.fc1(x.flatten(1)))  # (N, 1024)
        return self.fc2(self.dropout(x))


class GoogLeNet(nn.Module):
    """The paper's Table 1 (input (N, 3, 224, 224)):

    ===============  ======  ====================================
    stage            output  layers
    ===============  ======  ====================================
    conv1, maxpool1  56x56   7x7/2 64, 3x3/2 max
    conv2/3, pool2   28x28   1x1 64, 3x3 192, 3x3/2 max
    inception3a/b    28x28   -> 256, 480; 3x3/2 max
    inception4a-e    14x14   -> 512, 512, 512, 528, 832; 2x2/2 max
    inception5a/b    7x7     -> 832, 1024
    avgpool, fc      1x1     global average, dropout 0.2, fc
    ===============  ======  ====================================

    Pools use ``ceil_mode=True`` (the Caffe convention). With ``aux_logits`` two auxiliary
    classifiers are built; in training mode ``forward`` then returns ``GoogLeNetOutputs``
    (logits, aux_logits2, aux_logits1), in eval mode only the logits. ``transform_input``
    re-normalises ImageNet-normalised input to the [-1, 1] scaling Google's weights expect.
    """

    def __init__(self, num_classes=1000, aux_logits=True, transform_input=False,
                 init_weights=True, dropout=0.2, dropout_aux=0.7):
        super().__init__()
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        self.conv1 = BasicConv2d(3, 64, kernel_size=7, stride=2, padding=3)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = BasicConv2d(64, 64, kernel_size=1)
        self.conv3 = BasicConv2d(64, 192, kernel_size=3, padding=1)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception3a = Inception(192, 64, 96, 128, 16, 32, 32)
        self.inception3b = Inception(256, 128, 128, 192, 32, 96, 64)
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = Inception(480, 192, 96, 208, 16, 48, 64)
        self.inception4b = Inception(512, 160, 112, 224, 24, 64, 64)
        self.inception4c = Inception(512, 128, 128, 256, 24, 64, 64)
        self.inception4d = Inception(512, 112, 144, 288, 32, 64, 64)
        self.inception4e = Inception(528, 256, 160, 320, 32, 128, 128)
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = Inception(832, 256, 160, 320, 32, 128, 128)
        self.inception5b = Inception(832, 384, 192, 384, 48, 128, 128)

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            self.aux1 = self.aux2 = None

        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights:
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    init.trunc_normal_(m.weight, mean=0.0, std=0.01, a=-2, b=2)
                elif isinstance(m, nn.BatchNorm2d):
                    init.constant_(m.weight, 1)
                    init.constant_(m.bias, 0)

    def _transform_input(self, x):
        return imagenet_to_inception_range(x) if self.transform_input else x

    def forward(self, x):
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if self.aux1 is not None and self.training else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if self.aux2 is not None and self.training else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = self.avgpool(x).flatten(1)
        x = self.fc(self.dropout(x))
        if self.training and self.aux_logits:
            return GoogLeNetOutputs(x, aux2, aux1)
        return x


def googlenet(**kwargs):
    """GoogLeNet as torchvision: 6,624,904 parameters without the auxiliary heads
    (13,004,888 with, the default ``aux_logits=True``), 1.498 GMACs at 224x224."""
    return GoogLeNet(**kwargs)


def imagenet_to_inception_range(x):
    """x_c * std_c / 0.5 + (mean_c - 0.5) / 0.5: undo ImageNet normalisation, map to Google's [-1, 1]
    (torchvision's ``transform_input`` for GoogLeNet and Inception-v3). x (N, 3, H, W)."""
    return cat([x[:, 0:1] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5,
                x[:, 1:2] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5,
                x[:, 2:3] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5], 1)
