"""Train a small ResNet on scikit-learn's digits (or shapes, MNIST, CIFAR-10); prints test_accuracy=...

The code lives in the package, in ``minicnn/recipes/train_classifier.py`` (read it there);
this file only runs it, exactly like ``python -m minicnn.recipes.train_classifier``.

    python examples/train_classifier.py --help
"""
from minicnn.recipes.train_classifier import main

if __name__ == "__main__":
    main()
