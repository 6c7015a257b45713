"""The applications built on minicnn: the ``minicnn`` command (``cli.py``), its benchmark
(``bench.py``), its gradient-check tour and its training recipes (``train_*.py``, with the
options they share in ``common.py``). Nothing in the library imports them.

Each recipe has ``build_parser()`` and ``main(argv=None)``, runs as ``minicnn train <name>``
or ``python -m minicnn.apps.train_<name>``, and prints its final metric as its last line
(``test_accuracy=0.981``, ``miou=0.93``).
"""
