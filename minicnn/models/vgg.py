"""VGG-16 and VGG-19 (Simonyan & Zisserman 2014), configurations D and E, as torchvision.

Only 3x3 convolutions (stride 1, padding 1) and 2x2 max pools; the numbers in a
configuration are the output channels of successive convs, "M" a pool. Parameter names,
initialisation and numerics follow ``torchvision.models.vgg16/vgg19(_bn)``.
"""
from .. import nn
from ..nn import init

CONFIGS = {
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M",
          512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(cfg, batch_norm=False):
    """The convolutional part of a configuration: conv3x3 [+ BN] + ReLU, and "M" pools."""
    layers, in_channels = [], 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            if batch_norm:
                layers.append(nn.BatchNorm2d(v))
            layers.append(nn.ReLU(inplace=True))
            in_channels = v
    return nn.Sequential(*layers)


class VGG(nn.Module):
    """features (see ``CONFIGS``) -> 7x7 average pool -> fc 4096 -> fc 4096 -> fc classes.

    Input (N, 3, 224, 224); the features end in a (N, 512, 7, 7) map.
    """

    def __init__(self, features, num_classes=1000, init_weights=True, dropout=0.5):
        super().__init__()
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                    init.constant_(m.bias, 0)
                elif isinstance(m, nn.BatchNorm2d):
                    init.constant_(m.weight, 1)
                    init.constant_(m.bias, 0)
                elif isinstance(m, nn.Linear):
                    init.normal_(m.weight, 0, 0.01)
                    init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


def _vgg(cfg, batch_norm, **kwargs):
    return VGG(make_layers(CONFIGS[cfg], batch_norm=batch_norm), **kwargs)


def vgg16(**kwargs):
    """VGG-16 (configuration D): 138,357,544 parameters, 15.47 GMACs at 224x224."""
    return _vgg("D", False, **kwargs)


def vgg16_bn(**kwargs):
    """VGG-16 with BatchNorm after every conv (torchvision ``vgg16_bn``): 138,365,992 parameters."""
    return _vgg("D", True, **kwargs)


def vgg19(**kwargs):
    """VGG-19 (configuration E): 143,667,240 parameters, 19.63 GMACs at 224x224."""
    return _vgg("E", False, **kwargs)


def vgg19_bn(**kwargs):
    """VGG-19 with BatchNorm after every conv (torchvision ``vgg19_bn``): 143,678,248 parameters."""
    return _vgg("E", True, **kwargs)
