"""Train ENet on generated shapes (segmentation, ENet class weighting); prints miou=...

The code lives in the package, in ``minicnn/recipes/train_enet.py`` (read it there);
this file only runs it, exactly like ``python -m minicnn.recipes.train_enet``.

    python examples/train_enet.py --help
"""
from minicnn.recipes.train_enet import main

if __name__ == "__main__":
    main()
