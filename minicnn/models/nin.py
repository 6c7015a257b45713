"""Network in Network (Lin, Chen, Yan 2013) with batch normalisation, ``nin_bn``.

The definition follows ``ninbn.lua`` of soumith/imagenet-multiGPU.torch (the "BN-NIN" of
Canziani et al. 2016): each "mlpconv" block is a spatial conv followed by two 1x1 convs (the
paper's micro network, a per-pixel MLP), each conv followed by BatchNorm (eps 1e-3) and ReLU.
The classifier is the Torch model's: global average pool, then one fc layer.
"""
from .. import nn


class MLPConv(nn.Module):
    """conv k x k -> BN -> ReLU -> [1x1 conv -> BN -> ReLU] x 2, all at ``out_channels``."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0):
        super().__init__()
        layers = []
        for cin, k, s, p in ((in_channels, kernel_size, stride, padding),
                             (out_channels, 1, 1, 0), (out_channels, 1, 1, 0)):
            layers += [nn.Conv2d(cin, out_channels, k, stride=s, padding=p),
                       nn.BatchNorm2d(out_channels, eps=1e-3), nn.ReLU(inplace=True)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        return self.layers(x)


class NIN(nn.Module):
    """BN-NIN. Input (N, 3, 224, 224).

    ======  ==========================  ==========
    block   layers                      output
    ======  ==========================  ==========
    1       mlpconv 96, 11x11/4 p5      96x56x56
            max pool 3/2 p1             96x28x28
    2       mlpconv 256, 5x5 p2; pool   256x14x14
    3       mlpconv 384, 3x3 p1; pool   384x7x7
    4       mlpconv 1024, 3x3 p1        1024x7x7
    head    global avg pool, fc         classes
    ======  ==========================  ==========

    The Torch model averages with a fixed 7x7 window; ``AdaptiveAvgPool2d(1)`` is the same at
    224x224 and also accepts other sizes.
    """

    def __init__(self, num_classes=1000):
        super().__init__()
        self.features = nn.Sequential(
            MLPConv(3, 96, 11, stride=4, padding=5),
            nn.MaxPool2d(3, stride=2, padding=1),
            MLPConv(96, 256, 5, padding=2),
            nn.MaxPool2d(3, stride=2, padding=1),
            MLPConv(256, 384, 3, padding=1),
            nn.MaxPool2d(3, stride=2, padding=1),
            MLPConv(384, 1024, 3, padding=1),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.classifier = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.avgpool(self.features(x)).flatten(1)
        return self.classifier(x)


def nin_bn(**kwargs):
    """BN-NIN: 8,655,336 parameters, 1.26 GMACs at 224x224."""
    return NIN(**kwargs)
