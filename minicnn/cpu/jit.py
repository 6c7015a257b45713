"""numba's compile options for minicnn's loops, in one place.

Several loops come in two builds: a serial one for small arrays (waking threads costs more than
the loop) and one with ``parallel=True`` for big ones. numba's on-disk cache names an entry by
the function's qualified name and first line, not by its options, so two builds of one Python
function would share one entry: whichever was compiled last is what both load in the next
process, and the "parallel" loop may then be the serial code. ``serial_and_parallel`` compiles
the parallel build from a copy of the function with a name of its own.
"""
import types

import numba


def serial_and_parallel(loop, **options):
    """(serial, parallel) numba builds of ``loop``, each cached on disk under its own name."""
    twin = types.FunctionType(loop.__code__.replace(co_name=loop.__name__ + "_parallel"), loop.__globals__,
                              loop.__name__ + "_parallel", loop.__defaults__, loop.__closure__)
    twin.__qualname__ = loop.__qualname__ + "_parallel"
    return (numba.njit(cache=True, **options)(loop),
            numba.njit(cache=True, parallel=True, **options)(twin))
