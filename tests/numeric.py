"""Finite differences for the kernel tests, which check array functions below autograd."""
import numpy as np


def numeric_grad(f, x, h=1e-6):
    """Central differences of the scalar function f() with respect to x (modified in place)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g
