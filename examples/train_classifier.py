"""Train a small ResNet on scikit-learn's handwritten digits (8x8 images, bundled: no download).

    python examples/train_classifier.py                   # 10 epochs, well under a minute on 2 cores
    python examples/train_classifier.py --epochs 3 --device cuda
    mpiexec -n 2 python examples/train_classifier.py      # data-parallel: 2 processes (pip install minicnn[mpi])

The whole program is in this file: the model, the data, the training loop. The last line
printed is the accuracy on the 360 held-out test images, e.g. ``test_accuracy=0.989``.
(``minicnn train classifier`` is the same task with more options: other datasets and models,
checkpoints, plots.)
"""
import argparse
import os
import time

import minicnn as mc
import minicnn.distributed as dist
import minicnn.nn as nn
import minicnn.nn.functional as F
import minicnn.optim as optim
from minicnn.backends import tune_cpu_threads
from minicnn.data import DataLoader, Digits, DistributedSampler
from minicnn.data import transforms as T


class BasicBlock(nn.Module):
    """He et al. 2016, Fig. 2: two 3x3 convolutions and a shortcut; x (N, cin, H, W) -> (N, cout, H/s, W/s)."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:  # the identity does not fit: a 1x1 projection
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """A 3x3 stem, three stages of one BasicBlock each (widths w, 2w, 4w; the later two halve
    the map), global average pooling and a linear classifier: (N, 1, 8, 8) -> (N, 10) logits."""

    def __init__(self, in_channels=1, num_classes=10, width=32):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, width, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.layer3 = BasicBlock(2 * width, 4 * width, stride=2)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


def train(model, device, loader, optimizer, scheduler, epoch):
    model.train()
    if isinstance(loader.sampler, DistributedSampler):
        loader.sampler.set_epoch(epoch)  # a new order each epoch, the same on every process
    start, total = time.perf_counter(), 0.0
    for data, target in loader:
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += loss.item()
    if dist.get_rank() == 0:
        print(f"epoch {epoch:2d}  train loss {total / len(loader):.4f}  ({time.perf_counter() - start:.1f} s)")


def test(model, device, loader):
    """The accuracy on ``loader``'s samples."""
    model.eval()
    correct = count = 0
    with mc.no_grad():
        for data, target in loader:
            logits = model(data.to(device))
            correct += int((logits.numpy().argmax(1) == target.numpy()).sum())
            count += len(target)
    return correct / count


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10, help="(default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64, help="(default: %(default)s)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (default: %(default)s)")
    p.add_argument("--width", type=int, default=32, help="channels of the first stage (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="(default: %(default)s)")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="(default: %(default)s)")
    args = p.parse_args(argv)
    tune_cpu_threads()  # BLAS's and numba's idle threads sleep instead of spinning on each other's cores
    mc.manual_seed(args.seed)
    parallel = int(os.environ.get("PMI_SIZE", os.environ.get("OMPI_COMM_WORLD_SIZE", "1"))) > 1  # under mpiexec
    if parallel:
        dist.init_process_group("nccl" if args.device == "cuda" else "mpi")

    # 1437 training and 360 test images (1, 8, 8) in [0, 1]; a random shift of up to a pixel augments
    train_set = Digits(train=True, transform=T.RandomCrop(8, padding=1))
    test_set = Digits(train=False)
    if parallel:  # each process reads its own share of every epoch
        sampler = DistributedSampler(train_set, shuffle=True, seed=args.seed)
        train_loader = DataLoader(train_set, args.batch_size, sampler=sampler, drop_last=True, generator=args.seed)
    else:
        train_loader = DataLoader(train_set, args.batch_size, shuffle=True, drop_last=True, generator=args.seed)
    test_loader = DataLoader(test_set, 256)

    model = SmallResNet(width=args.width).to(args.device)
    if parallel:  # the same weights everywhere; gradients averaged over the processes in backward
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = nn.parallel.DistributedDataParallel(model)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    # one epoch of linear warm-up, then cosine decay to 0, stepped after every batch
    steps, warm = args.epochs * len(train_loader), len(train_loader)
    scheduler = optim.lr_scheduler.SequentialLR(optimizer, [
        optim.lr_scheduler.LinearLR(optimizer, start_factor=0.1, total_iters=warm),
        optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps - warm, 1)),
    ], milestones=[warm])
    if dist.get_rank() == 0:
        print(f"{sum(p.numel() for p in model.parameters()):,} parameters; "
              f"{len(train_set)} training and {len(test_set)} test images on {dist.get_world_size()} process(es)")
    for epoch in range(1, args.epochs + 1):
        train(model, args.device, train_loader, optimizer, scheduler, epoch)
    accuracy = test(model, args.device, test_loader)
    if dist.get_rank() == 0:
        print(f"test_accuracy={accuracy:.3f}")
    if parallel:
        dist.destroy_process_group()
    return accuracy


if __name__ == "__main__":
    main()
