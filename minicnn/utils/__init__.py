"""``minicnn.utils``: PyTorch's module layout, so that ``from torch.utils.data import ...`` ports."""
from . import data  # noqa: F401
