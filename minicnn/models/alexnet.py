"""AlexNet (Krizhevsky, Sutskever, Hinton 2012) in three forms.

- ``alexnet``: torchvision's one-stream version (64-192-384-256-256 filters, no LRN);
  parameter names and numerics identical to ``torchvision.models.alexnet``.
- ``alexnet_two_stream``: the paper's network as trained on two GPUs: 96-256-384-384-256
  filters, conv2/4/5 see only their own GPU's half of the channels (``groups=2``), local
  response normalisation after conv1 and conv2, 227x227 input (BVLC's Caffe definition).
- ``alexnet_bn``: the one-stream layout with batch normalisation after every conv and hidden
  fc layer (soumith/imagenet-multiGPU.torch, ``alexnetowtbn``).

All three end in ``AdaptiveAvgPool2d((6, 6))`` as torchvision does: it is the identity at the
native input size (a 6x6 map) and lets smaller images through.
"""
from .. import nn
from ..nn import init


class AlexNet(nn.Module):
    """torchvision's AlexNet ("one weird trick" single-stream variant). Input (N, 3, 224, 224).

    =======  ======================  ==========
    layer    filters                 output
    =======  ======================  ==========
    conv1    64 x 11x11 /4 p2, pool  64x27x27
    conv2    192 x 5x5 p2, pool      192x13x13
    conv3    384 x 3x3 p1            384x13x13
    conv4    256 x 3x3 p1            256x13x13
    conv5    256 x 3x3 p1, pool      256x6x6
    fc6/7/8  4096, 4096, classes     (dropout before fc6 and fc7)
    =======  ======================  ==========
    """

    def __init__(self, num_classes=1000, dropout=0.5):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


# (size, alpha, beta, k) in PyTorch's form b = a * (k + alpha/size * sum a^2)^-beta
LRN_PAPER = (5, 5e-4, 0.75, 2.0)   # Krizhevsky 2012, Section 3.3: k=2, n=5, alpha=1e-4 (sum not / n)
LRN_CAFFE = (5, 1e-4, 0.75, 1.0)   # BVLC's bvlc_alexnet deploy.prototxt


class AlexNetTwoStream(nn.Module):
    """The original two-GPU AlexNet (Krizhevsky et al. 2012, Figure 2; BVLC's Caffe model).

    Each GPU held half of the filters of every layer; conv2, conv4 and conv5 only see the
    channels on their own GPU, which is exactly a grouped convolution with ``groups=2``.
    conv3 and the fc layers read from both GPUs (groups=1). Input (N, 3, 227, 227).

    =====  ==================================  ==========
    layer  filters                             output
    =====  ==================================  ==========
    conv1  96 x 11x11 /4, ReLU, LRN, pool 3/2  96x27x27
    conv2  256 x 5x5 p2 g2, ReLU, LRN, pool    256x13x13
    conv3  384 x 3x3 p1, ReLU                  384x13x13
    conv4  384 x 3x3 p1 g2, ReLU               384x13x13
    conv5  256 x 3x3 p1 g2, ReLU, pool         256x6x6
    fc6/7  4096, ReLU, dropout 0.5
    fc8    classes
    =====  ==================================  ==========

    ``lrn``: ``"paper"`` (k=2, the paper's constants) or ``"caffe"`` (k=1, BVLC's).
    ``init_weights`` as the paper: weights N(0, 0.01); biases 1 in conv2, conv4, conv5 and
    the hidden fc layers (so ReLUs start in their positive region), 0 elsewhere.
    """

    def __init__(self, num_classes=1000, dropout=0.5, lrn="paper", init_weights=True):
        super().__init__()
        if lrn not in ("paper", "caffe"):
            raise ValueError(f"alexnet_two_stream: lrn must be 'paper' or 'caffe', got {lrn!r}")
        size, alpha, beta, k = LRN_PAPER if lrn == "paper" else LRN_CAFFE
        self.features = nn.Sequential(
            nn.Conv2d(3, 96, kernel_size=11, stride=4),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size, alpha, beta, k),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2, groups=2),
            nn.ReLU(inplace=True),
            nn.LocalResponseNorm(size, alpha, beta, k),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1, groups=2),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Linear(256 * 6 * 6, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, num_classes),
        )
        if init_weights:
            ones = {id(m) for m in (self.features[4], self.features[10], self.features[12],
                                    self.classifier[0], self.classifier[3])}
            for m in self.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    init.normal_(m.weight, 0.0, 0.01)
                    init.constant_(m.bias, 1.0 if id(m) in ones else 0.0)

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


class AlexNetBN(nn.Module):
    """AlexNet with batch normalisation (``alexnetowtbn``, soumith/imagenet-multiGPU.torch).

    The torchvision layer sizes, with BN (eps 1e-3, as Torch7's default there) after each
    conv (which keeps its bias) and after fc6 and fc7; dropout before fc6 and fc7.
    Input (N, 3, 224, 224).
    """

    def __init__(self, num_classes=1000, dropout=0.5):
        super().__init__()

        def conv_bn(cin, cout, **kw):
            return [nn.Conv2d(cin, cout, **kw), nn.BatchNorm2d(cout, eps=1e-3), nn.ReLU(inplace=True)]

        self.features = nn.Sequential(
            *conv_bn(3, 64, kernel_size=11, stride=4, padding=2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            *conv_bn(64, 192, kernel_size=5, padding=2),
            nn.MaxPool2d(kernel_size=3, stride=2),
            *conv_bn(192, 384, kernel_size=3, padding=1),
            *conv_bn(384, 256, kernel_size=3, padding=1),
            *conv_bn(256, 256, kernel_size=3, padding=1),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout),
            nn.Linear(256 * 6 * 6, 4096),
            nn.BatchNorm1d(4096, eps=1e-3),
            nn.ReLU(inplace=True),
            nn.Dropout(p=dropout),
            nn.Linear(4096, 4096),
            nn.BatchNorm1d(4096, eps=1e-3),
            nn.ReLU(inplace=True),
            nn.Linear(4096, num_classes),
        )

    def forward(self, x):
        x = self.features(x)
        x = self.avgpool(x)
        x = x.flatten(1)
        return self.classifier(x)


def alexnet(**kwargs):
    """torchvision's AlexNet: 61,100,840 parameters, 0.714 GMACs at 224x224."""
    return AlexNet(**kwargs)


def alexnet_two_stream(**kwargs):
    """The original two-GPU AlexNet (groups=2, LRN): 60,965,224 parameters, 0.724 GMACs at 227."""
    return AlexNetTwoStream(**kwargs)


def alexnet_bn(**kwargs):
    """AlexNet with batch norm (alexnetowtbn): 61,119,528 parameters, 0.714 GMACs at 224."""
    return AlexNetBN(**kwargs)
