"""Per-layer CPU benchmark (conv, pooling, batch norm, ReLU, LRN), minicnn next to PyTorch.

The same as ``minicnn bench --layers [options]``; the code is ``minicnn/apps/bench.py``.
Options: --quick, --repeat N, --torch/--no-torch, --json FILE (see --help). Works from a
checkout without installing minicnn. Results and settings: benchmarks/README.md.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # the checkout's minicnn

from minicnn.apps.bench import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(["--layers", *sys.argv[1:]]))
