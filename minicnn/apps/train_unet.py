"""Train a U-Net to segment generated shapes (background, circle, square, triangle) per pixel.

    python -m minicnn.apps.train_unet                  # width 8: a few minutes on 2 cores
    python -m minicnn.apps.train_unet --full-width     # the paper's widths (64 ... 512): much slower
    python -m minicnn.apps.train_unet --data DIR --num-classes K   # your PNGs: DIR/images, DIR/masks

The model is ``minicnn.models.UNet`` with "same" padding (the output has the input's
size), ``--depth`` levels of widths w, 2w, 4w, ...; trained with Adam and cosine
decay on per-pixel cross-entropy. The data (``minicnn.data.ShapesSegmentation``)
are 64x64 images with one to four shapes in random colours, sizes and places.
After training, the test set is scored (pixel accuracy, IoU per class, mIoU) and a
PNG with image | truth | prediction side by side for a few test images is saved.
The last line printed is the mean IoU over the classes, e.g. ``miou=0.93``.
"""
import os

import numpy as np

from .. import autograd, distributed, models, optim
from ..data import DataLoader, SegmentationFolder, ShapesSegmentation, Subset, random_split, transforms as T
from ..data.png import write_png
from ..metrics import SegmentationMetrics
from ..nn import functional as F
from ..tensor import Tensor
from ..train import evaluate, fit
from .common import (POSITIVE_INT, blas_threads, common_arguments, data_parallel, fit_kwargs, make_parser,
                     maybe_plot, number, run_fit, setup)

# class colours of the saved masks: black background, then red, green, blue, ...
PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [0, 130, 200], [255, 225, 25], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 190]], np.uint8)


def segmentation_arguments(p, epochs, lr, batch_size):
    p.add_argument("--data", default="shapes", help="'shapes' (generated) or a folder with images/ and masks/ "
                                                   "PNGs, all of one size (default: %(default)s)")
    p.add_argument("--num-classes", type=number(int, 2), default=None, help="classes in --data DIR masks (incl. background)")
    p.add_argument("--train-size", type=POSITIVE_INT, default=2000, help="generated training images (default: %(default)s)")
    p.add_argument("--image-size", type=POSITIVE_INT, default=64, help="generated image size (default: %(default)s)")
    p.add_argument("--out", default=None, help="the image | truth | prediction PNG (default: "
                                               "CHECKPOINT_DIR/predictions.png, else runs/<recipe>_predictions.png)")
    common_arguments(p, epochs=epochs, lr=lr, batch_size=batch_size)
    return p


def load_data(args):
    """(train, val, test datasets, class names): generated shapes, or a folder split 80/10/10."""
    flip = T.RandomHorizontalFlip()
    if args.data == "shapes":
        n, size = (64, 32) if args.quick else (args.train_size, args.image_size)
        train = ShapesSegmentation(n, size, seed=args.seed, transform=flip)
        val = ShapesSegmentation(max(n // 10, 16), size, seed=args.seed + 10_000)
        test = ShapesSegmentation(max(n // 4, 16), size, seed=args.seed + 20_000)
        return train, val, test, train.classes
    if not args.num_classes:
        raise SystemExit("error: --data DIR needs --num-classes (the number of mask values, background included)")
    full = SegmentationFolder(args.data, transform=flip)
    plain = SegmentationFolder(args.data)
    n = len(full)
    n_val = n_test = max(1, n // 10)
    perm = np.random.default_rng(args.seed).permutation(n)
    train = Subset(full, perm[n_val + n_test:])
    val, test = Subset(plain, perm[:n_val]), Subset(plain, perm[n_val:n_val + n_test])
    if args.quick:
        train = Subset(train, range(min(len(train), 32)))
    return train, val, test, [str(c) for c in range(args.num_classes)]


def class_weights(dataset, num_classes, c=1.02):
    """ENet's class weighting: w_k = 1 / ln(c + p_k), p_k the fraction of training pixels of class k."""
    masks = getattr(dataset, "targets", None)
    if masks is None:
        masks = np.stack([dataset[i][1] for i in range(len(dataset))])
    p = np.bincount(np.asarray(masks).ravel(), minlength=num_classes)[:num_classes] / np.asarray(masks).size
    return (1 / np.log(c + p)).astype(np.float32)


def save_predictions(model, dataset, path, device, classes, count=6):
    """A PNG with one row per image: image | true mask | predicted mask, in class colours; with
    matplotlib, column titles and a legend of the classes too."""
    model.eval()
    xs, ys = zip(*[dataset[i] for i in range(min(count, len(dataset)))])
    with autograd.no_grad():
        pred = model(Tensor(np.stack(xs)).to(device)).numpy().argmax(1)
    images = []
    for x in xs:
        img = x.transpose(1, 2, 0)
        img = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[:, :, :3]
        images.append((np.clip(img, 0, 1) * 255).round().astype(np.uint8))
    rows = [(img, PALETTE[y % len(PALETTE)], PALETTE[p % len(PALETTE)]) for img, y, p in zip(images, ys, pred)]
    try:
        _draw_predictions(rows, classes, path)
    except ImportError:  # no matplotlib: the bare sheet, enlarged (nearest neighbour) to be seen
        gap = np.full((images[0].shape[0], 2, 3), 255, np.uint8)
        lines = [np.concatenate([a, gap, b, gap, c], 1) for a, b, c in rows]
        spacer = np.full((2, lines[0].shape[1], 3), 255, np.uint8)
        sheet = np.concatenate([part for line in lines for part in (line, spacer)][:-1], 0)
        zoom = max(1, 128 // images[0].shape[0])
        write_png(path, sheet.repeat(zoom, 0).repeat(zoom, 1))
    print(f"saved {path} (image | truth | prediction)")


def _draw_predictions(rows, classes, path):
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    fig, axes = plt.subplots(len(rows), 3, figsize=(6, 2 * len(rows) + 0.6), squeeze=False)
    for r, panels in enumerate(rows):
        for c, panel in enumerate(panels):
            axes[r][c].imshow(panel, interpolation="nearest")
            axes[r][c].axis("off")
            if r == 0:
                axes[r][c].set_title(("image", "truth", "prediction")[c], fontsize=10)
    fig.legend(handles=[Patch(color=PALETTE[k % len(PALETTE)] / 255, label=name) for k, name in enumerate(classes)],
               loc="lower center", ncol=min(len(classes), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    fig.savefig(path, dpi=80)
    plt.close(fig)


def train_segmentation(args, model, name, class_weight=None):
    """The part shared with train_enet: data, Adam + cosine, fit, test scores, the PNG."""
    train, val, test, classes = load_data(args)
    model.to(args.device)
    print(f"{len(train)} train / {len(val)} val / {len(test)} test images of shape {test[0][0].shape}, "
          f"classes {', '.join(classes)}; {name} with {sum(p.numel() for p in model.parameters()):,} parameters")
    weight = None
    if class_weight == "enet":
        w = class_weights(train, len(classes))
        print("class weights 1/ln(1.02 + p): " + ", ".join(f"{c} {v:.2f}" for c, v in zip(classes, w)))
        weight = Tensor(w).to(args.device)

    def loss_fn(out, y):
        return F.cross_entropy(out, y, weight=weight)

    model, train_loader = data_parallel(args, model, train, prefetch=2)
    val_loader, test_loader = DataLoader(val, 32), DataLoader(test, 32)
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, args.epochs * len(train_loader)))
    metrics = [SegmentationMetrics(len(classes), class_names=classes)]
    history = run_fit(fit, model, optimizer, train_loader, val_loader, loss_fn=loss_fn, metrics=metrics,
                      scheduler=scheduler, scheduler_interval="batch", **fit_kwargs(args, model))
    maybe_plot(args, history)
    result = evaluate(model, test_loader, metrics=metrics, device=args.device)
    print("test: pixel accuracy {:.4f}, IoU {}".format(result["pixel_accuracy"], ", ".join(
        f"{c} {result['iou_' + c]:.3f}" for c in classes)))
    out = args.out or os.path.join(args.out_dir or "runs", "predictions.png" if args.out_dir else f"{name}_predictions.png")
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    if distributed.get_rank() == 0:
        save_predictions(model, test, out, args.device, classes)
    print(f"miou={result['miou']:.3f}")
    return result


def build_parser():
    p = make_parser(__doc__)
    p.add_argument("--width", type=POSITIVE_INT, default=8, help="channels of the first level (default: %(default)s; "
                                                        "the paper: 64)")
    p.add_argument("--full-width", action="store_true", help="the paper's widths, 64 to 512 (same as --width 64)")
    p.add_argument("--depth", type=POSITIVE_INT, default=4, help="levels, i.e. poolings + 1 (default: %(default)s)")
    return segmentation_arguments(p, epochs=6, lr=3e-3, batch_size=8)


def main(argv=None):
    args = setup(build_parser().parse_args(argv))
    with blas_threads(args.blas_threads):
        return run(args)


def data_channels(args):
    """(input channels, classes) of the chosen data: the generated shapes are RGB with 4
    classes; a folder's images say their channels, and --num-classes its classes."""
    in_channels = 3 if args.data == "shapes" else SegmentationFolder(args.data)[0][0].shape[0]
    return in_channels, args.num_classes or 4


def run(args):
    in_channels, num_classes = data_channels(args)
    width = 64 if args.full_width else args.width
    model = models.UNet(in_channels, num_classes, base_width=width, depth=args.depth, padding="same")
    return train_segmentation(args, model, "unet")


if __name__ == "__main__":
    main()
