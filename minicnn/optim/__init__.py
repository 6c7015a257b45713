"""``minicnn.optim``: optimizers and learning-rate schedules with PyTorch's names and semantics."""
from . import lr_scheduler  # noqa: F401
from .adagrad import Adadelta, Adagrad  # noqa: F401
from .adam import Adam, AdamW  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
