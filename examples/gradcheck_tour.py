"""Gradient-check every op and layer of minicnn against finite differences; prints a table
and, last, passed=N/M.

The code lives in the package, in ``minicnn/recipes/gradcheck_tour.py`` (read it there);
this file only runs it, exactly like ``python -m minicnn.recipes.gradcheck_tour``.

    python examples/gradcheck_tour.py --help
    python examples/gradcheck_tour.py conv2d 'nn.*'
"""
from minicnn.recipes.gradcheck_tour import main

if __name__ == "__main__":
    main()
