"""Segment generated shapes (background, circle, square, triangle) pixel by pixel, with U-Net or ENet.

    python examples/train_segmentation.py                 # U-Net of width 8, a few minutes on 2 cores
    python examples/train_segmentation.py --model enet    # ENet, with the paper's class weights
    python examples/train_segmentation.py --train-size 200 --epochs 2    # a quick look

The whole program is in this file: the data (64x64 RGB images with one to four shapes in
random colours, sizes and places, made on the fly: no download), the model from the zoo, the
training loop (Adam, cosine decay, per-pixel cross-entropy) and the test score: the IoU of
every class, |prediction and truth| / |prediction or truth|, and their mean, printed last as
``miou=0.93``. (``minicnn train unet`` and ``minicnn train enet`` add checkpoints, plots and
your own PNG folders.)
"""
import argparse
import time

import numpy as np

import minicnn as mc
import minicnn.models as models
import minicnn.nn.functional as F
import minicnn.optim as optim
from minicnn.backends import tune_cpu_threads
from minicnn.data import DataLoader, ShapesSegmentation
from minicnn.data import transforms as T

CLASSES = ("background", "circle", "square", "triangle")


def enet_class_weights(dataset, c=1.02):
    """Paszke et al. 2016: class k weighs 1 / ln(c + p_k), p_k its share of the training pixels,
    so that the small shapes count more than the abundant background."""
    masks = np.stack([dataset[i][1] for i in range(len(dataset))])
    p = np.bincount(masks.ravel(), minlength=len(CLASSES)) / masks.size
    return mc.tensor((1 / np.log(c + p)).astype(np.float32))


def train(model, device, loader, optimizer, scheduler, weight, epoch):
    model.train()
    start, total = time.perf_counter(), 0.0
    for image, mask in loader:  # image (N, 3, H, W) float32, mask (N, H, W) int64
        image, mask = image.to(device), mask.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(image), mask, weight=weight)  # logits (N, 4, H, W)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    print(f"epoch {epoch:2d}  train loss {total / len(loader):.4f}  ({time.perf_counter() - start:.1f} s)")


def test(model, device, loader):
    """IoU of every class over all test pixels, from the confusion matrix (truth, prediction)."""
    model.eval()
    k = len(CLASSES)
    confusion = np.zeros((k, k), np.int64)
    with mc.no_grad():
        for image, mask in loader:
            prediction = model(image.to(device)).numpy().argmax(1)
            confusion += np.bincount(mask.numpy().ravel() * k + prediction.ravel(), minlength=k * k).reshape(k, k)
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    return hits / np.maximum(union, 1)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="unet", choices=["unet", "enet"], help="(default: %(default)s)")
    p.add_argument("--width", type=int, default=8, help="U-Net's first-level channels (the paper: 64; "
                                                        "default: %(default)s)")
    p.add_argument("--epochs", type=int, default=None, help="(default: 6 for U-Net, 12 for ENet)")
    p.add_argument("--batch-size", type=int, default=None, help="(default: 8 for U-Net, 32 for ENet)")
    p.add_argument("--lr", type=float, default=None, help="(default: 3e-3 for U-Net, 1e-2 for ENet)")
    p.add_argument("--train-size", type=int, default=2000, help="generated training images (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=64, help="(a multiple of 8; default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="(default: %(default)s)")
    args = p.parse_args(argv)
    enet = args.model == "enet"
    epochs = args.epochs or (12 if enet else 6)
    batch_size = args.batch_size or (32 if enet else 8)
    lr = args.lr or (1e-2 if enet else 3e-3)
    tune_cpu_threads()  # BLAS's and numba's idle threads sleep instead of spinning on each other's cores
    mc.manual_seed(args.seed)

    # three sets drawn from different seeds, so that no test image was seen in training
    train_set = ShapesSegmentation(args.train_size, args.image_size, seed=args.seed,
                                   transform=T.RandomHorizontalFlip())  # flips image and mask together
    test_set = ShapesSegmentation(max(args.train_size // 4, 16), args.image_size, seed=args.seed + 20_000)
    train_loader = DataLoader(train_set, batch_size, shuffle=True, drop_last=True, generator=args.seed)
    test_loader = DataLoader(test_set, 32)

    if enet:
        model = models.ENet(num_classes=len(CLASSES), in_channels=3)
        weight = enet_class_weights(train_set).to(args.device)
    else:  # "same" padding: the output has the input's size
        model = models.UNet(3, len(CLASSES), base_width=args.width, depth=4, padding="same")
        weight = None
    model.to(args.device)
    optimizer = optim.Adam(model.parameters(), lr=lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, epochs * len(train_loader)))
    print(f"{args.model}: {sum(p.numel() for p in model.parameters()):,} parameters; "
          f"{len(train_set)} training and {len(test_set)} test images of {args.image_size}x{args.image_size}")
    for epoch in range(1, epochs + 1):
        train(model, args.device, train_loader, optimizer, scheduler, weight, epoch)
    iou = test(model, args.device, test_loader)
    print("test IoU: " + ", ".join(f"{c} {v:.3f}" for c, v in zip(CLASSES, iou)))
    print(f"miou={iou.mean():.3f}")
    return iou.mean()


if __name__ == "__main__":
    main()
