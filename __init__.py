"""This folder is minicnn's source checkout; the package is the ``minicnn/`` folder inside it.

Python imports this folder as ``minicnn`` when it runs in the folder above the checkout (``~``
holding ``~/minicnn``), before it looks at the installed package; without this file that import
would be an empty namespace package. This file loads the real package in its place.
"""
import importlib.util
import os
import sys

_inner = os.path.join(os.path.dirname(os.path.abspath(__file__)), "minicnn")
_spec = importlib.util.spec_from_file_location(__name__, os.path.join(_inner, "__init__.py"),
                                               submodule_search_locations=[_inner])
_module = importlib.util.module_from_spec(_spec)
sys.modules[__name__] = _module  # the import statement returns what sys.modules holds when this file ends
_spec.loader.exec_module(_module)
