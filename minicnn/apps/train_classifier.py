"""Train an image classifier: a small ResNet on scikit-learn's handwritten digits by default.

    python -m minicnn.apps.train_classifier                 # digits (8x8), about a minute on 2 cores
    python -m minicnn.apps.train_classifier --data shapes   # generated shapes, no scikit-learn needed
    python -m minicnn.apps.train_classifier --data ~/mnist  # MNIST IDX files or CIFAR-10 python batches
    python -m minicnn.apps.train_classifier --model resnet18 --data ~/cifar10

The network (``SmallResNet``): a 3x3 conv stem, then one ResNet ``BasicBlock`` per
stage with widths w, 2w, 4w (the later stages halve the resolution), global
average pooling and a linear classifier. Training: AdamW, one epoch of linear
warm-up then cosine decay (stepped every batch), random-crop augmentation for
the real datasets; 10% of the training set is held out for validation, and the
last line printed is the accuracy on the test set, e.g. ``test_accuracy=0.981``.
"""
import os

import numpy as np

from .. import models, nn, optim
from ..data import (CIFAR10, MNIST, DataLoader, Digits, ShapesClassification, Subset, random_split,
                    transforms as T)
from ..metrics import Accuracy, TopKAccuracy
from ..models.resnet import BasicBlock, conv1x1, conv3x3
from ..nn import init
from ..train import evaluate, fit
from .common import (POSITIVE_INT, blas_threads, common_arguments, data_parallel, fit_kwargs, make_parser,
                     maybe_plot, run_fit, setup)

# epochs by dataset when --epochs is not given
DEFAULT_EPOCHS = {"digits": 10, "shapes": 8, "mnist": 3, "cifar10": 30}


class SmallResNet(nn.Module):
    """stem conv3x3(in -> w, stride ``stem_stride``) + BN + ReLU; stages of ``BasicBlock``s at widths
    w * 2**i, stride 2 from the second stage on; global average pool; linear. For small images
    (8 to 32 pixels)."""

    def __init__(self, in_channels=1, num_classes=10, width=32, blocks=(1, 1, 1), stem_stride=1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, width, stem_stride)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        layers, inplanes = [], width
        for i, n in enumerate(blocks):
            planes, stride = width * 2 ** i, 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(conv1x1(inplanes, planes, stride), nn.BatchNorm2d(planes))
            layers += [BasicBlock(inplanes, planes, stride, down)] + [BasicBlock(planes, planes)
                                                                       for _ in range(1, n)]
            inplanes = planes
        self.layers = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        x = self.layers(self.relu(self.bn1(self.conv1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def _detect(path):
    if any(os.path.exists(os.path.join(d, "train-images-idx3-ubyte" + gz)) for gz in ("", ".gz")
           for d in (path, os.path.join(path, "MNIST", "raw"), os.path.join(path, "raw"))):
        return "mnist"
    if any(os.path.exists(os.path.join(d, "data_batch_1")) for d in (path, os.path.join(path, "cifar-10-batches-py"))):
        return "cifar10"
    raise SystemExit(f"error: {path} holds neither MNIST IDX files (train-images-idx3-ubyte[.gz]) nor "
                     "CIFAR-10 python batches (data_batch_1 ...)")


def load_data(args):
    """(kind, train set, test set, augmentation for the training set or None)."""
    source = args.data
    if source is None:
        try:
            import sklearn  # noqa: F401
            source = "digits"
        except ImportError:
            source = "shapes"
    kind = source if source in ("digits", "shapes") else _detect(source)
    if kind == "digits":
        aug = T.RandomCrop(8, padding=1)
        train, test = Digits(train=True), Digits(train=False)
    elif kind == "shapes":
        aug = None  # generated data: fresh samples do more than augmentation would
        n = 600 if args.quick else 3000
        train, test = ShapesClassification(n, seed=args.seed), ShapesClassification(1000, seed=args.seed + 10_000)
    elif kind == "mnist":
        aug = T.RandomCrop(28, padding=2)
        train, test = MNIST(source, train=True), MNIST(source, train=False)
    else:
        aug = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()])
        train, test = CIFAR10(source, train=True), CIFAR10(source, train=False)
    return kind, train, test, aug


class _Augmented:
    """A dataset view that applies ``transform`` to the image of every sample."""

    def __init__(self, dataset, transform):
        self.dataset, self.transform = dataset, transform

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x, y = self.dataset[i]
        return self.transform(x), y


def build_model(name, in_channels, num_classes, width, image_size):
    if name == "small_resnet":  # images above 16 pixels: halve them in the stem, where it costs least
        return SmallResNet(in_channels, num_classes, width, stem_stride=2 if image_size > 16 else 1)
    if name not in models.list_models():
        try:
            models.get_model(name)
        except ValueError as e:  # unknown: the registry's message, with its suggestions
            raise SystemExit(f"error: --model: {e}") from None
    try:
        return models.get_model(name, num_classes=num_classes, in_channels=in_channels)
    except TypeError:  # the model has a fixed 3-channel input
        if in_channels != 3:
            raise SystemExit(f"error: model {name} takes 3-channel images; this data has {in_channels}") from None
        return models.get_model(name, num_classes=num_classes)


def build_parser():
    p = make_parser(__doc__)
    p.add_argument("--data", default=None,
                   help="'digits' (default when scikit-learn is installed), 'shapes' (otherwise), or a folder "
                        "with MNIST IDX files or CIFAR-10 python batches")
    p.add_argument("--model", default="small_resnet",
                   help="'small_resnet' or a name from minicnn.models.list_models() (default: %(default)s)")
    p.add_argument("--width", type=POSITIVE_INT, default=32, help="SmallResNet's first-stage width (default: %(default)s)")
    common_arguments(p, epochs=None, lr=3e-3, batch_size=64)
    return p


def main(argv=None):
    args = setup(build_parser().parse_args(argv))
    with blas_threads(args.blas_threads):
        return run(args)


def run(args):
    kind, train_full, test, aug = load_data(args)
    args.epochs = args.epochs or DEFAULT_EPOCHS[kind]
    if args.quick:
        args.epochs = min(args.epochs, 2)
    n_val = max(1, len(train_full) // 10)
    train, val = random_split(train_full, [len(train_full) - n_val, n_val], generator=args.seed)
    if args.quick:
        train, val, test = (Subset(d, range(min(n, len(d)))) for d, n in ((train, 96), (val, 64), (test, 64)))
    x0, _ = test[0]
    num_classes = len(train_full.classes)
    model = build_model(args.model, x0.shape[0], num_classes, args.width, x0.shape[-1]).to(args.device)
    print(f"{kind}: {len(train)} train / {len(val)} val / {len(test)} test images of shape {x0.shape}; "
          f"{args.model} with {sum(p.numel() for p in model.parameters()):,} parameters")

    model, train_loader = data_parallel(args, model, _Augmented(train, aug) if aug else train, prefetch=2)
    val_loader = DataLoader(val, 256)
    test_loader = DataLoader(test, 256)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    steps = args.epochs * len(train_loader)
    warm = min(len(train_loader), steps // 2)
    scheduler = optim.lr_scheduler.SequentialLR(optimizer, [
        optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=max(warm, 1)),
        optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps - warm, 1)),
    ], milestones=[warm])
    metrics = [Accuracy()] + ([TopKAccuracy(5)] if num_classes > 5 else [])
    history = run_fit(fit, model, optimizer, train_loader, val_loader, metrics=metrics, scheduler=scheduler,
                      scheduler_interval="batch", **fit_kwargs(args, model))
    maybe_plot(args, history)
    result = evaluate(model, test_loader, metrics=metrics, device=args.device)
    print(f"test_accuracy={result['accuracy']:.3f}")
    return result


if __name__ == "__main__":
    main()
