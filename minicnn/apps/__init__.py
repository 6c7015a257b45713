"""Runnable training recipes: ``python -m minicnn.apps.<name> --help`` or ``minicnn train <name>``.

Each module has ``build_parser()`` and ``main(argv=None)`` and prints its final metric
as its last line (``test_accuracy=0.981``, ``miou=0.93``).
"""
