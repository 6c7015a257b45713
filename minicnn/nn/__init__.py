"""``minicnn.nn``: Module, Parameter and the layers, with PyTorch's names."""
from . import functional, init  # noqa: F401
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh  # noqa: F401
from .containers import ModuleDict, ModuleList, Sequential  # noqa: F401
from .linear import Flatten, Identity, Linear  # noqa: F401
from .module import Module  # noqa: F401
from .parameter import Parameter  # noqa: F401
from . import utils  # noqa: F401
from .pooling import AdaptiveAvgPool2d, AdaptiveMaxPool2d, AvgPool2d, MaxPool2d, MaxUnpool2d  # noqa: F401
from .activation import PReLU  # noqa: F401
from .dropout import Dropout, Dropout2d  # noqa: F401
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss  # noqa: F401
from .normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm, SyncBatchNorm  # noqa: F401
from . import parallel  # noqa: F401
from .upsampling import Upsample  # noqa: F401
from .conv import Conv2d, ConvTranspose2d  # noqa: F401
