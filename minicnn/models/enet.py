"""ENet (Paszke, Chaurasia, Kim, Culurciello 2016), a real-time semantic segmentation network.

The definition follows the authors' Torch code (e-lab/ENet-training, ``encoder.lua`` and
``decoder.lua``), which fixes the details the paper leaves open: which convs have a bias,
BatchNorm eps 1e-3, PReLU in the encoder and ReLU in the decoder, and the decoder's
upsampling shortcut (1x1 conv + BN + max-unpooling with the encoder's pooling indices).
With 19 classes (Cityscapes) it has 364,311 parameters and 1.961 GMACs at 512x512.
"""
from .. import nn
from ..nn import functional as F
from ..ops import cat


def _activation(channels, relu):
    return nn.ReLU(inplace=True) if relu else nn.PReLU(channels)


class InitialBlock(nn.Module):
    """concat[3x3/2 conv with (out - in) filters, 2x2/2 max pool of the input] -> BN -> PReLU.

    (N, 3, H, W) -> (N, 16, H/2, W/2): 13 learned maps next to the pooled RGB.
    """

    def __init__(self, in_channels=3, out_channels=16):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.prelu = nn.PReLU(out_channels)

    def forward(self, x):
        return self.prelu(self.bn(cat([self.conv(x), self.pool(x)], 1)))


class Bottleneck(nn.Module):
    """ENet's residual bottleneck at constant size and width (paper Fig. 2b).

    branch: 1x1 to channels/4 -> BN -> act -> middle conv -> BN -> act -> 1x1 back -> BN
    -> spatial dropout; output act(x + branch). The middle conv is a regular 3x3, a dilated 3x3
    (``dilation``) or an asymmetric pair (``asymmetric`` = 5: a 1x5 conv without bias, then a
    5x1 conv; Torch's ``SpatialConvolution(w, w, 5, 1, ...)`` is width 5, height 1).
    ``relu`` selects ReLU (decoder) instead of per-channel PReLU (encoder).
    """

    def __init__(self, channels, dilation=1, asymmetric=None, dropout=0.1, relu=False):
        super().__init__()
        w = channels // 4
        self.conv1 = nn.Conv2d(channels, w, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w, eps=1e-3)
        self.act1 = _activation(w, relu)
        if asymmetric:
            k = asymmetric
            self.conv2 = nn.Sequential(
                nn.Conv2d(w, w, (1, k), padding=(0, k // 2), bias=False),
                nn.Conv2d(w, w, (k, 1), padding=(k // 2, 0)),
            )
        else:
            self.conv2 = nn.Conv2d(w, w, 3, padding=dilation, dilation=dilation)
        self.bn2 = nn.BatchNorm2d(w, eps=1e-3)
        self.act2 = _activation(w, relu)
        self.conv3 = nn.Conv2d(w, channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.act = _activation(channels, relu)

    def forward(self, x):
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.dropout(self.bn3(self.conv3(y)))
        return self.act(x + y)


class DownsamplingBottleneck(nn.Module):
    """Halves the size and widens the channels (paper Fig. 2b with max pooling).

    main: 2x2/2 max pool (indices kept for the decoder), zero channels appended up to
    ``out_channels``; branch: 2x2/2 conv to out/4 -> BN -> PReLU -> 3x3 -> BN -> PReLU -> 1x1 ->
    BN -> spatial dropout. Returns ``(PReLU(main + branch), indices)``.
    """

    def __init__(self, in_channels, out_channels, dropout=0.1):
        super().__init__()
        w = out_channels // 4
        self.extra_channels = out_channels - in_channels
        self.pool = nn.MaxPool2d(2, stride=2, return_indices=True)
        self.conv1 = nn.Conv2d(in_channels, w, 2, stride=2, bias=False)
        self.bn1 = nn.BatchNorm2d(w, eps=1e-3)
        self.act1 = nn.PReLU(w)
        self.conv2 = nn.Conv2d(w, w, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(w, eps=1e-3)
        self.act2 = nn.PReLU(w)
        self.conv3 = nn.Conv2d(w, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)
        self.act = nn.PReLU(out_channels)

    def forward(self, x):
        main, indices = self.pool(x)
        main = F.pad(main, (0, 0, 0, 0, 0, self.extra_channels))  # zeros after the channels
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.dropout(self.bn3(self.conv3(y)))
        return self.act(main + y), indices


class UpsamplingBottleneck(nn.Module):
    """Doubles the size and narrows the channels (decoder, ReLU).

    main: 1x1 conv to ``out_channels`` -> BN -> 2x2 max-unpooling with the indices of the
    matching encoder pool; branch: 1x1 to out/4 -> BN -> ReLU -> 3x3/2 transposed conv ->
    BN -> ReLU -> 1x1 -> BN. Output ReLU(main + branch).
    """

    def __init__(self, in_channels, out_channels):
        super().__init__()
        w = out_channels // 4
        self.main_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.main_bn = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.unpool = nn.MaxUnpool2d(2, stride=2)
        self.conv1 = nn.Conv2d(in_channels, w, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w, eps=1e-3)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = nn.ConvTranspose2d(w, w, 3, stride=2, padding=1, output_padding=1)
        self.bn2 = nn.BatchNorm2d(w, eps=1e-3)
        self.act2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(w, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels, eps=1e-3)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, indices):
        main = self.unpool(self.main_bn(self.main_conv(x)), indices)
        y = self.act1(self.bn1(self.conv1(x)))
        y = self.act2(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.act(main + y)


class ENet(nn.Module):
    """The paper's Table 1 for a (N, 3, 512, 512) input:

    ===========================  =====================  ===========
    stage                        blocks                 output
    ===========================  =====================  ===========
    initial                      InitialBlock           16x256x256
    bottleneck1.0 (down1)        downsampling           64x128x128
    bottleneck1.1-1.4 (stage1)   4 x regular            64x128x128
    bottleneck2.0 (down2)        downsampling           128x64x64
    bottleneck2.1-2.8 (stage2)   regular, dilated 2,    128x64x64
                                 asym 5, dilated 4,
                                 regular, dilated 8,
                                 asym 5, dilated 16
    bottleneck3.1-3.8 (stage3)   as stage 2             128x64x64
    bottleneck4.0 (up4)          upsampling             64x128x128
    bottleneck4.1-4.2 (stage4)   2 x regular            64x128x128
    bottleneck5.0 (up5)          upsampling             16x256x256
    bottleneck5.1 (stage5)       regular                16x256x256
    fullconv                     2x2/2 transposed conv  Cx512x512
    ===========================  =====================  ===========

    Spatial dropout is 0.01 in stage 1 and 0.1 in stages 2-3; the decoder has none.
    Height and width must be multiples of 8 (three halvings that the decoder undoes).
    Returns per-pixel class scores (N, num_classes, H, W).
    """

    def __init__(self, num_classes=19, in_channels=3):
        super().__init__()
        self.initial = InitialBlock(in_channels, 16)
        self.down1 = DownsamplingBottleneck(16, 64, dropout=0.01)
        self.stage1 = nn.Sequential(*[Bottleneck(64, dropout=0.01) for _ in range(4)])
        self.down2 = DownsamplingBottleneck(64, 128, dropout=0.1)
        self.stage2 = self._dilated_stage(128)
        self.stage3 = self._dilated_stage(128)
        self.up4 = UpsamplingBottleneck(128, 64)
        self.stage4 = nn.Sequential(Bottleneck(64, dropout=0, relu=True),
                                    Bottleneck(64, dropout=0, relu=True))
        self.up5 = UpsamplingBottleneck(64, 16)
        self.stage5 = nn.Sequential(Bottleneck(16, dropout=0, relu=True))
        self.fullconv = nn.ConvTranspose2d(16, num_classes, 2, stride=2)

    @staticmethod
    def _dilated_stage(c):
        return nn.Sequential(
            Bottleneck(c), Bottleneck(c, dilation=2), Bottleneck(c, asymmetric=5),
            Bottleneck(c, dilation=4), Bottleneck(c), Bottleneck(c, dilation=8),
            Bottleneck(c, asymmetric=5), Bottleneck(c, dilation=16),
        )

    def forward(self, x):
        h, w = x.shape[-2:]
        if h % 8 or w % 8:
            raise ValueError(f"ENet: input height and width must be multiples of 8, got shape {x.shape}")
        x = self.initial(x)
        x, indices1 = self.down1(x)
        x = self.stage1(x)
        x, indices2 = self.down2(x)
        x = self.stage3(self.stage2(x))
        x = self.stage4(self.up4(x, indices2))
        x = self.stage5(self.up5(x, indices1))
        return self.fullconv(x)


def enet(**kwargs):
    """ENet (e-lab Torch definition): 364,311 parameters for 19 classes, 1.961 GMACs at 512x512."""
    return ENet(**kwargs)
