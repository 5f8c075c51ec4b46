"""Second derivatives of the special functions (create_graph=True) against PyTorch's:
lgamma'' = polygamma(1, ·), erfinv, the Bessel functions, ndtr/ndtri/log_ndtr, erfc/erfcx,
sinc, entr, logit, polygamma, xlogy/xlog1py, multigammaln."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

UNIT = [0.1, 0.3, 0.6, 0.9]       # inside (0, 1): erfinv, ndtri, logit
POSITIVE = [0.3, 0.7, 1.5, 2.5]

CASES = {
    "lgamma": (lambda m, x: m.lgamma(x), POSITIVE),
    "digamma": (lambda m, x: m.digamma(x), POSITIVE),
    "polygamma": (lambda m, x: m.polygamma(2, x), POSITIVE),
    "mvlgamma": (lambda m, x: m.mvlgamma(x + 1, 2), POSITIVE),
    "erfinv": (lambda m, x: m.erfinv(x), UNIT),
    "erfc": (lambda m, x: m.erfc(x), POSITIVE),
    "erfcx": (lambda m, x: m.special.erfcx(x), POSITIVE),
    "ndtr": (lambda m, x: m.special.ndtr(x), POSITIVE),
    "ndtri": (lambda m, x: m.special.ndtri(x), UNIT),
    "log_ndtr": (lambda m, x: m.special.log_ndtr(x - 2), POSITIVE),
    "i0": (lambda m, x: m.i0(x), POSITIVE),
    "i0e": (lambda m, x: m.special.i0e(x), POSITIVE),
    "i1": (lambda m, x: m.special.i1(x), POSITIVE),
    "i1e": (lambda m, x: m.special.i1e(x), POSITIVE),
    "sinc": (lambda m, x: m.special.sinc(x), POSITIVE),
    "entr": (lambda m, x: m.special.entr(x), POSITIVE),
    "logit": (lambda m, x: m.logit(x), UNIT),
    "logit_eps": (lambda m, x: m.logit(x, eps=0.2), UNIT),
    "xlogy": (lambda m, x: m.special.xlogy(x, x * 0.5 + 0.2), POSITIVE),
    "xlog1py": (lambda m, x: m.special.xlog1py(x, x * 0.5 + 0.2), POSITIVE),
    "xlogy_number": (lambda m, x: m.special.xlogy(x * x, 3.0), POSITIVE),
    "xlog1py_number_x": (lambda m, x: m.special.xlog1py(2.0, x), POSITIVE),
}


def _second(lib, fn, values, dtype):
    x = lib.tensor(values, dtype=getattr(lib, dtype), requires_grad=True)
    (g,) = lib.autograd.grad(fn(lib, x).sum(), x, create_graph=True)
    (gg,) = lib.autograd.grad((g * g).sum(), x)
    return g.detach().numpy(), gg.numpy()


@pytest.mark.parametrize("name", sorted(CASES))
def test_second_derivative_matches_torch(name):
    if torch is None:
        pytest.skip(TORCH_REASON)
    fn, values = CASES[name]
    # (float64: PyTorch's trigamma and SciPy's agree to ~5e-10)
    for dtype, rtol in (("float64", 1e-8), ("float32", 2e-5)):
        ours, ref = _second(tm, fn, values, dtype), _second(torch, fn, values, dtype)
        for a, b in zip(ours, ref):
            assert a.dtype == b.dtype
            np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol, err_msg=f"{name} {dtype}")


@pytest.mark.parametrize("name", ["lgamma", "digamma", "i1", "erfinv", "xlogy"])
def test_gradgradcheck(name):
    fn, values = CASES[name]
    x = tm.tensor(values, dtype=tm.float64, requires_grad=True)
    assert tm.autograd.gradgradcheck(lambda t: fn(tm, t), (x,))
