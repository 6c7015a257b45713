"""How numba's worker threads wait between parallel loops: asleep, not spinning.

A CPU training step alternates between OpenBLAS's threaded matrix products (the
convolutions) and numba's parallel loops (batch norm, ReLU, additions, the optimizer). The
two libraries keep separate thread pools, and by default numba's OpenMP threads spin for a
while after each loop, holding a core just when OpenBLAS's threads want it (and the reverse):
with one thread per core, each hand-over can wait for the scheduler's next time slice. So
unless the user chose otherwise, OpenMP's threads sleep as soon as their loop ends.

Measured on 2 idle cores (ResNet-50 training step, batch 8, every pool 2 threads): 4.4-4.9 s
with OpenMP's default, 2.4-2.7 s with ``OMP_WAIT_POLICY=PASSIVE``.

This must run before numba starts its OpenMP pool (the first parallel kernel call), which is
why ``minicnn.cpu`` imports it first; it changes nothing if an OpenMP runtime was already
loaded (e.g. by importing PyTorch first). OpenBLAS's own threads also spin (for 2^28 clock
cycles); ``OPENBLAS_THREAD_TIMEOUT=4`` makes them sleep too, but OpenBLAS reads it when NumPy
is imported, so only the user can set it (in the environment).
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
