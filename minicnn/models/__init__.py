"""``minicnn.models``: classic CNN architectures built from minicnn's own layers.

Each model is a function ``models.<name>(**kwargs)`` returning an ``nn.Module``; the registry
gives ``list_models()`` and ``get_model(name, **kwargs)``. Where torchvision (timm for
Inception-v4) defines the model, parameter names, shapes, order and numerics are its own, so
its state dict loads with ``load_state_dict(..., strict=True)`` (timm's ``legacy_xception``
for Xception). ``REFERENCE`` lists the
published parameter counts and GMACs (at ``input_size``) that the tests hold the zoo to.

>>> import minicnn.models as models
>>> net = models.get_model("resnet18", num_classes=10)
"""
import difflib

from .alexnet import AlexNet, AlexNetBN, AlexNetTwoStream, alexnet, alexnet_bn, alexnet_two_stream
from .enet import ENet, enet
from .googlenet import GoogLeNet, googlenet
from .inception import Inception3, inception_v3
from .inception_v4 import InceptionV4, inception_v4
from .nin import NIN, nin_bn
from .resnet import ResNet, resnet18, resnet34, resnet50, resnet101, resnet152
from .unet import UNet, unet, unet_same
from .vgg import VGG, vgg16, vgg16_bn, vgg19, vgg19_bn
from .xception import Xception, xception

_MODELS = {f.__name__: f for f in (
    alexnet, alexnet_two_stream, alexnet_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, googlenet,
    inception_v3, inception_v4, nin_bn, resnet18, resnet34, resnet50, resnet101, resnet152,
    enet, unet, unet_same, xception,
)}

# name -> (keyword arguments, input size (C, H, W), parameters, GMACs, source of the figure).
# GMACs count conv and linear multiply-accumulates in eval mode (auxiliary heads excluded).
REFERENCE = {
    "alexnet": ({}, (3, 224, 224), 61_100_840, 0.714, "torchvision"),
    "alexnet_two_stream": ({}, (3, 227, 227), 60_965_224, 0.724, "Krizhevsky 2012 / BVLC"),
    "alexnet_bn": ({}, (3, 224, 224), 61_119_528, 0.714, "soumith alexnetowtbn"),
    "vgg16": ({}, (3, 224, 224), 138_357_544, 15.470, "torchvision"),
    "vgg19": ({}, (3, 224, 224), 143_667_240, 19.632, "torchvision"),
    "googlenet": ({"aux_logits": False}, (3, 224, 224), 6_624_904, 1.498, "torchvision"),
    "inception_v3": ({"aux_logits": True}, (3, 299, 299), 27_161_264, 5.713, "torchvision"),
    "inception_v4": ({}, (3, 299, 299), 42_679_816, 12.254, "timm"),
    "nin_bn": ({}, (3, 224, 224), 8_655_336, 1.260, "soumith ninbn"),
    "resnet18": ({}, (3, 224, 224), 11_689_512, 1.814, "torchvision"),
    "resnet34": ({}, (3, 224, 224), 21_797_672, 3.664, "torchvision"),
    "resnet50": ({}, (3, 224, 224), 25_557_032, 4.089, "torchvision"),
    "resnet101": ({}, (3, 224, 224), 44_549_160, 7.801, "torchvision"),
    "resnet152": ({}, (3, 224, 224), 60_192_808, 11.514, "torchvision"),
    "enet": ({"num_classes": 19}, (3, 512, 512), 364_311, 1.961, "e-lab/ENet-training"),
    "unet": ({"in_channels": 1, "num_classes": 2}, (1, 572, 572), 31_030_658, 150.43,
             "Ronneberger 2015"),
    "unet_same": ({"in_channels": 1, "num_classes": 1}, (1, 256, 256), 31_031_685, 54.61,
                  "zhixuhao/unet"),
    "xception": ({}, (3, 299, 299), 22_855_952, 8.357, "timm legacy_xception (8.4 quoted)"),
}


def list_models():
    """Names accepted by ``get_model``, sorted."""
    return sorted(_MODELS)


def get_model(name, **kwargs):
    """Build the model called ``name`` with keyword arguments passed to its constructor."""
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"get_model: unknown model {name!r}{hint} (see list_models())")
    return _MODELS[name](**kwargs)


__all__ = ["list_models", "get_model", "REFERENCE", *_MODELS,
           "AlexNet", "AlexNetBN", "AlexNetTwoStream", "ENet", "GoogLeNet", "Inception3",
           "InceptionV4", "NIN", "ResNet", "UNet", "VGG", "Xception"]
