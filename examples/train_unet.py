"""Train a U-Net on generated shapes (segmentation); saves image | truth | prediction, prints miou=...

The code lives in the package, in ``minicnn/recipes/train_unet.py`` (read it there);
this file only runs it, exactly like ``python -m minicnn.recipes.train_unet``.

    python examples/train_unet.py --help
"""
from minicnn.recipes.train_unet import main

if __name__ == "__main__":
    main()
