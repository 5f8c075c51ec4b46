"""Floor 1 of tinymm: pure array functions for every hot path.

Arrays in, arrays out. Nothing here imports ``Tensor`` or anything above it.
Each family (``softmax``, ``norm``, ``optim``, ``attention``) holds, in order: the math,
a plain NumPy ``reference_*`` (the specification), a Numba CPU version, a Numba-CUDA
version, and ``forward``/``backward`` dispatch chosen by the type of the array given
(``numpy.ndarray`` -> CPU, ``cupy.ndarray`` -> CUDA).

Submodules are imported lazily by whoever needs them, so ``import tinymm`` compiles nothing.
"""
