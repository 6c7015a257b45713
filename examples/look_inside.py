"""Look inside a network while it learns: its graph, its filters, its feature maps, its gradients.

    python examples/look_inside.py                 # about 10 s on 2 cores; pictures in runs/look_inside/
    python examples/look_inside.py --out pictures

Trains a small CNN on scikit-learn's digits for one epoch, then writes:
  graph.png / graph.dot      the autograd graph of one forward pass (one box per op)
  feature_maps.png           what the two convolutions make of one digit
  filters.png                the first convolution's 3x3 kernels
  gradient_flow.png          mean and max |gradient| of every parameter after a backward pass
"""
import argparse
import os

import minicnn as mc
import minicnn.nn as nn
import minicnn.nn.functional as F
import minicnn.optim as optim
import minicnn.viz as viz
from minicnn.data import DataLoader, Digits


class SmallCNN(nn.Module):
    """(N, 1, 8, 8) -> conv 3x3 8, BN, ReLU -> conv 3x3 16, BN, ReLU -> max pool 2 -> fc 10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = F.max_pool2d(x, 2)
        return self.fc(x.flatten(1))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=os.path.join("runs", "look_inside"), help="(default: %(default)s)")
    p.add_argument("--epochs", type=int, default=1, help="(default: %(default)s)")
    args = p.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    mc.manual_seed(0)
    train_set = Digits(train=True)
    loader = DataLoader(train_set, 32, shuffle=True, generator=0)
    model = SmallCNN()
    optimizer = optim.Adam(model.parameters(), lr=3e-3)
    for epoch in range(args.epochs):
        model.train()
        for x, y in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch + 1}: last batch loss {loss.item():.3f}")

    # one more batch, its graph drawn before backward frees it, then its gradients
    x, y = next(iter(loader))
    optimizer.zero_grad()
    loss = F.cross_entropy(model(x), y)
    graph = viz.make_dot(loss, params=dict(model.named_parameters()))
    written = [graph.save(os.path.join(args.out, "graph.dot")), graph.save(os.path.join(args.out, "graph.png"))]
    loss.backward()
    written += [
        viz.gradient_flow(model, os.path.join(args.out, "gradient_flow.png")),
        viz.feature_maps(model, x[0], ["conv1", "conv2"], os.path.join(args.out, "feature_maps.png")),
        viz.filters(model.conv1, os.path.join(args.out, "filters.png")),
    ]
    print(f"graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges")
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
