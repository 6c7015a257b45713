"""What the training apps (``minicnn.apps.train_*``) share: common command-line
options and the setup and reporting around ``fit``."""
import argparse
import contextlib
import math
import os
import sys
import time

from .. import backend, backends, distributed, random
from ..data import DataLoader, DistributedSampler


def number(kind, minimum=None, above=None):
    """An argparse type: ``kind`` (int or float), finite, >= ``minimum`` or > ``above``; anything
    else is one line and exit 2 (argparse's own error)."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not math.isfinite(value) or (minimum is not None and value < minimum) or (above is not None
                                                                                     and value <= above):
            bound = f">= {minimum}" if minimum is not None else f"> {above}"
            raise argparse.ArgumentTypeError(f"must be {'an integer' if kind is int else 'a finite number'} {bound}, "
                                             f"got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


POSITIVE_INT, POSITIVE, NON_NEGATIVE_INT = number(int, 1), number(float, above=0), number(int, 0)


def common_arguments(parser, epochs, lr, batch_size):
    """Add the options every recipe has (``--epochs``, ``--device``, ``--checkpoint-dir``, ...)."""
    g = parser.add_argument_group("training")
    g.add_argument("--epochs", type=POSITIVE_INT, default=epochs,
                   help="number of epochs (default: " + ("the dataset's, see above)" if epochs is None else "%(default)s)"))
    g.add_argument("--lr", type=POSITIVE, default=lr, help="peak learning rate (default: %(default)s)")
    g.add_argument("--batch-size", type=POSITIVE_INT, default=batch_size, help="(default: %(default)s)")
    g.add_argument("--seed", type=NON_NEGATIVE_INT, default=0, help="seed of every random choice (default: %(default)s)")
    g.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cuda needs CuPy and an NVIDIA GPU (default: %(default)s)")
    g.add_argument("--checkpoint-dir", default=None,
                   help="write last.ckpt, log.csv and history.json here after every epoch")
    g.add_argument("--resume", action="store_true", help="continue from CHECKPOINT_DIR/last.ckpt")
    g.add_argument("--plot", action="store_true",
                   help="save history.png (loss and metrics per epoch; needs matplotlib)")
    g.add_argument("--plot-gradients", action="store_true",
                   help="--plot, and gradient_flow.png (mean and max |grad| per parameter) after every epoch")
    g.add_argument("--quick", action="store_true",
                   help="smoke test: tiny data, 2 epochs of 3 batches (seconds; for CI)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--blas-threads", type=NON_NEGATIVE_INT, default=1,
                   help="threads for NumPy's BLAS during the run, 0 = leave as is (default: %(default)s; "
                        "needs threadpoolctl)")
    return parser


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr (and exit 2), without the
    usage block: ``--help`` shows that."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def make_parser(doc):
    return OneLineParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)


def setup(args):
    """Check the device, seed everything, opt in to sleeping threads (``backends.tune_cpu_threads``),
    and pick the output folder (``--plot`` needs one)."""
    if args.device == "cuda" and not backend.cuda_available():
        try:
            backend.cupy_module()
        except RuntimeError as e:  # no CuPy, or no GPU: the reason, in one line
            raise SystemExit(f"error: --device cuda: {e}") from None
    if args.resume and not args.checkpoint_dir:
        sys.exit("error: --resume needs --checkpoint-dir (where the last run wrote last.ckpt)")
    if args.checkpoint_dir and os.path.exists(args.checkpoint_dir) and not os.path.isdir(args.checkpoint_dir):
        sys.exit(f"error: --checkpoint-dir {args.checkpoint_dir} is a file, not a folder")
    if args.resume and not os.path.isfile(os.path.join(args.checkpoint_dir, "last.ckpt")):
        sys.exit(f"error: --resume: no checkpoint to resume from at {os.path.join(args.checkpoint_dir, 'last.ckpt')}")
    random.manual_seed(args.seed)
    backends.tune_cpu_threads()
    args.parallel = launched_by_mpi()
    if args.parallel:  # mpiexec -n N minicnn train ...: data-parallel, rank 0 alone prints
        distributed.init_process_group("nccl" if args.device == "cuda" else "mpi")
        if distributed.get_rank() != 0:
            sys.stdout = open(os.devnull, "w")
    if args.quick and args.epochs:
        args.epochs = min(args.epochs, 2)
    args.plot = args.plot or args.plot_gradients
    args.out_dir = args.checkpoint_dir or (os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
                                           if args.plot else None)
    if args.out_dir:
        os.makedirs(args.out_dir, exist_ok=True)
    return args


@contextlib.contextmanager
def blas_threads(n):
    """Limit the BLAS library's threads inside the block (a no-op without threadpoolctl or for n = 0).

    On a small machine, BLAS worker threads that keep spinning after each matrix
    product compete with numba's parallel loops for the same cores; one BLAS thread
    made training steps of the small recipe models steady (0.15 s instead of 0.2 to
    6 s per U-Net batch on 2 busy cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        threadpool_limits = None
    if not n or threadpool_limits is None:
        yield
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def launched_by_mpi():
    """Whether this process is one of several that ``mpiexec`` started (MPICH's or Open MPI's)."""
    return int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))) > 1


def data_parallel(args, model, train, **loader_kwargs):
    """(model, training loader): as they are, or, under mpiexec, the model with SyncBatchNorm in
    DistributedDataParallel and a loader of this rank's share of ``train``."""
    if not args.parallel:
        return model, DataLoader(train, args.batch_size, shuffle=True, drop_last=True, generator=args.seed,
                                 **loader_kwargs)
    from ..nn import SyncBatchNorm
    from ..nn.parallel import DistributedDataParallel

    model = DistributedDataParallel(SyncBatchNorm.convert_sync_batchnorm(model))
    sampler = DistributedSampler(train, shuffle=True, seed=args.seed)
    return model, DataLoader(train, args.batch_size, sampler=sampler, drop_last=True, generator=args.seed,
                             **loader_kwargs)


def fit_kwargs(args, model):
    """The ``fit`` arguments that come straight from the command line."""
    return dict(epochs=args.epochs, checkpoint_dir=args.checkpoint_dir, resume=args.resume,
                device=args.device, max_batches=3 if args.quick else None, show_progress=not args.no_progress,
                on_epoch_end=_gradient_plotter(args, model))


def _gradient_plotter(args, model):
    """With ``--plot-gradients``: a hook that draws OUT_DIR/gradient_flow.png after each epoch."""
    if not args.plot_gradients or distributed.get_rank() != 0:
        return None
    from ..viz import gradient_flow

    path = os.path.join(args.out_dir, "gradient_flow.png")
    return lambda epoch, row: gradient_flow(model, path)


def run_fit(fit, *a, **kw):
    """``fit`` that turns a diverged run into a one-line error and exit status 1."""
    from ..train.loop import ResumeError, TrainingDiverged

    try:
        return fit(*a, **kw)
    except ResumeError as e:
        sys.exit(f"error: {e}")
    except TrainingDiverged as e:
        if distributed.get_world_size() > 1:  # the other ranks may wait for this one: end them too
            print(f"error: {e}", file=sys.stderr)
            distributed.abort_job(1)
        sys.exit(f"error: {e}")


def maybe_plot(args, history):
    if args.plot and history and distributed.get_rank() == 0:
        from ..train.history import plot_history

        path = plot_history(history, os.path.join(args.out_dir, "history.png"))
        print(f"saved {path}")
