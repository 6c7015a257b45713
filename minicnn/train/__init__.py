"""``minicnn.train``: the training loop, checkpoints, logs, plots and a progress bar."""
from .checkpoint import load_checkpoint, save_checkpoint  # noqa: F401
from .history import plot_history, write_history  # noqa: F401
from .loop import ResumeError, TrainingDiverged, evaluate, fit  # noqa: F401
from .progress import progress  # noqa: F401
