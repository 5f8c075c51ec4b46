"""``tinymm.special`` and the special-function / number-representation Tensor methods against
PyTorch: values and dtypes (float32, float64, integer input promoted as PyTorch does),
gradients against ``torch.autograd`` and a float64 ``gradcheck`` where PyTorch has them, no
gradient where it has none, the in-place ``*_`` variants, and the exception class on bad input."""
import math

import numpy as np
import pytest

import tinymm as tm
from both_libs import compare, randn, same_error
from helpers import TORCH_REASON, torch

pytestmark = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


def uniform(low, high, *shape, seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape)


A_CONST = uniform(0.5, 3.0, 2, 5, seed=4)
# PyTorch's own approximations of these differ from SciPy's by up to ~3e-6 relative
NO_GRAD = {"gradcheck": False, "rtol": 1e-5}

CASES = {
    # name: (fn(lib, *x), inputs, options)
    "erfc": (lambda m, x: m.special.erfc(x), [randn(3, 4)], {}),
    "erfcx": (lambda m, x: m.special.erfcx(x), [uniform(-2, 4, 3, 4)], {}),
    "ndtr": (lambda m, x: m.special.ndtr(x), [randn(3, 4)], {}),
    "ndtri": (lambda m, x: m.special.ndtri(x), [uniform(0.05, 0.95, 3, 4)], {}),
    "log_ndtr": (lambda m, x: m.special.log_ndtr(x), [uniform(-6, 4, 3, 4)], {}),
    "i0": (lambda m, x: m.special.i0(x), [randn(3, 4)], {}),
    "i0e": (lambda m, x: m.special.i0e(x), [randn(3, 4)], {}),
    "i1": (lambda m, x: m.special.i1(x), [randn(3, 4)], {}),
    "i1e": (lambda m, x: m.special.i1e(x), [randn(3, 4)], {}),
    "i1_at_zero": (lambda m, x: m.special.i1(x * 0), [randn(3)], {"gradcheck": False}),
    "sinc": (lambda m, x: m.special.sinc(x), [randn(3, 4)], {}),
    "sinc_at_zero": (lambda m, x: m.special.sinc(x * 0), [randn(3)], {"gradcheck": False}),
    "entr": (lambda m, x: m.special.entr(x), [uniform(0.1, 3, 3, 4)], {}),
    "entr_edges": (lambda m, x: m.special.entr(x), [np.array([0.0, -1.0, 2.0, np.nan])], {"grad": False}),
    "polygamma_0": (lambda m, x: m.special.polygamma(0, x), [uniform(0.5, 4, 3, 4)], {}),
    "polygamma_3": (lambda m, x: m.special.polygamma(3, x), [uniform(0.5, 4, 3, 4)], {"rtol": 1e-5}),
    "torch.polygamma": (lambda m, x: m.polygamma(1, x), [uniform(0.5, 4, 4)], {}),
    "Tensor.polygamma": (lambda m, x: x.polygamma(2), [uniform(0.5, 4, 4)], {}),
    "multigammaln": (lambda m, x: m.special.multigammaln(x, 3), [uniform(1.5, 5, 3, 4)], {}),
    "mvlgamma": (lambda m, x: m.mvlgamma(x, 1), [uniform(0.5, 5, 4)], {}),
    "Tensor.mvlgamma": (lambda m, x: x.mvlgamma(2), [uniform(1, 5, 2, 3)], {}),
    "gammaln": (lambda m, x: m.special.gammaln(x), [uniform(0.5, 5, 4)], {}),
    "psi": (lambda m, x: m.special.psi(x), [uniform(0.5, 5, 4)], {}),
    "digamma": (lambda m, x: m.special.digamma(x), [uniform(0.5, 5, 4)], {}),
    "xlogy": (lambda m, x, y: m.special.xlogy(x, y), [randn(3, 4), uniform(0.1, 3, 4, seed=1)], {}),
    "xlogy_zero_x": (lambda m, y: m.xlogy(m.zeros(3, dtype=y.dtype), y), [np.array([0.0, -1.0, 2.0])], {"gradcheck": False}),
    "xlogy_scalar_x": (lambda m, y: m.special.xlogy(2.0, y), [uniform(0.1, 3, 4)], {}),
    "Tensor.xlogy": (lambda m, x, y: x.xlogy(y), [randn(4), uniform(0.1, 3, 2, 4)], {}),
    "xlog1py": (lambda m, x, y: m.special.xlog1py(x, y), [randn(3, 4), uniform(-0.9, 3, 3, 4)], {}),
    "gammainc": (lambda m, x: m.special.gammainc(m.tensor(A_CONST, dtype=x.dtype), x), [uniform(0.1, 4, 2, 5)], {}),
    "gammaincc": (lambda m, x: m.special.gammaincc(m.tensor(A_CONST, dtype=x.dtype), x), [uniform(0.1, 4, 2, 5)], {}),
    "igamma": (lambda m, x: m.igamma(m.tensor(A_CONST, dtype=x.dtype), x), [uniform(0.1, 4, 2, 5)], {}),
    "Tensor.igammac": (lambda m, x: m.tensor(A_CONST, dtype=x.dtype).igammac(x), [uniform(0.1, 4, 2, 5)], {}),
    "zeta": (lambda m, q: m.special.zeta(m.tensor([2.0, 3.5, 5.0], dtype=q.dtype), q), [uniform(0.5, 3, 2, 3)], {}),
    "zeta_scalar": (lambda m, q: m.special.zeta(q, 1.0), [uniform(1.5, 4, 3)], {"grad": False}),
    "expit": (lambda m, x: m.special.expit(x), [randn(3, 4)], {}),
    "exp2": (lambda m, x: m.special.exp2(x), [randn(3, 4)], {}),
    "expm1": (lambda m, x: m.special.expm1(x), [randn(3, 4)], {}),
    "log1p": (lambda m, x: m.special.log1p(x), [uniform(-0.5, 3, 4)], {}),
    "erf": (lambda m, x: m.special.erf(x), [randn(3, 4)], {}),
    "erfinv": (lambda m, x: m.special.erfinv(x), [uniform(-0.9, 0.9, 4)], {}),
    "logit_eps": (lambda m, x: m.special.logit(x, eps=0.2), [uniform(0.05, 0.95, 6)], {"gradcheck": False}),
    "round": (lambda m, x: m.special.round(x * 3, decimals=1), [randn(5)], {"gradcheck": False}),
    "logsumexp": (lambda m, x: m.special.logsumexp(x, 1), [randn(3, 4)], {}),
    "softmax": (lambda m, x: m.special.softmax(x, 0), [randn(3, 4)], {}),
    "log_softmax": (lambda m, x: m.special.log_softmax(x, -1), [randn(3, 4)], {}),
    # PyTorch gives these no gradient: the outputs do not require grad
    "bessel_j0": (lambda m, x: m.special.bessel_j0(x), [randn(3, 4) * 4], NO_GRAD),
    "bessel_j1": (lambda m, x: m.special.bessel_j1(x), [randn(3, 4) * 4], NO_GRAD),
    "bessel_y0": (lambda m, x: m.special.bessel_y0(x), [uniform(0.1, 9, 5)], NO_GRAD),
    "bessel_y1": (lambda m, x: m.special.bessel_y1(x), [uniform(0.1, 9, 5)], NO_GRAD),
    "modified_bessel_i0": (lambda m, x: m.special.modified_bessel_i0(x), [randn(5)], NO_GRAD),
    "modified_bessel_i1": (lambda m, x: m.special.modified_bessel_i1(x), [randn(5)], NO_GRAD),
    "modified_bessel_k0": (lambda m, x: m.special.modified_bessel_k0(x), [uniform(0.1, 5, 5)], NO_GRAD),
    "modified_bessel_k1": (lambda m, x: m.special.modified_bessel_k1(x), [uniform(0.1, 5, 5)], NO_GRAD),
    "scaled_modified_bessel_k0": (lambda m, x: m.special.scaled_modified_bessel_k0(x), [uniform(0.1, 5, 5)], NO_GRAD),
    "scaled_modified_bessel_k1": (lambda m, x: m.special.scaled_modified_bessel_k1(x), [uniform(0.1, 5, 5)], NO_GRAD),
    "spherical_bessel_j0": (lambda m, x: m.special.spherical_bessel_j0(x), [np.append(randn(4) * 3, 0.0)], NO_GRAD),
    "airy_ai": (lambda m, x: m.special.airy_ai(x), [randn(5) * 3], NO_GRAD),
    # the Tensor-method family
    "Tensor.i0": (lambda m, x: x.i0(), [randn(4)], {}),
    "torch.i0": (lambda m, x: m.i0(x), [randn(4)], {}),
    "Tensor.sinc": (lambda m, x: x.sinc(), [randn(4)], {}),
    "Tensor.erfc": (lambda m, x: x.erfc(), [randn(4)], {}),
    "torch.erfc": (lambda m, x: m.erfc(x), [randn(4)], {}),
    "deg2rad": (lambda m, x: m.deg2rad(x), [randn(4) * 100], {}),
    "Tensor.rad2deg": (lambda m, x: x.rad2deg(), [randn(4)], {}),
    "heaviside": (lambda m, x, v: m.heaviside(x.detach() * (x.detach() > 0.5), v.detach()), [randn(6), randn(1)],
                  {"grad": False}),
    "heaviside_int": (lambda m, x: m.tensor([-2, 0, 3]).heaviside(m.tensor([7])), [randn(1)], {"grad": False}),
    "float_power": (lambda m, x: m.float_power(x, 2.5), [uniform(0.1, 3, 4)], {}),
    "float_power_tensor": (lambda m, x, e: x.float_power(e), [uniform(0.1, 3, 2, 3), randn(3, seed=1)], {}),
    "float_power_float32": (lambda m, x: m.float_power(x.float(), 2), [randn(4)], {"gradcheck": False}),
    "float_power_int": (lambda m, x: m.float_power(m.tensor([1, 2, 3]), x), [randn(3)], {}),
    "copysign": (lambda m, x, y: x.copysign(y), [randn(5), randn(5, seed=1)], {"gradcheck": False}),
    "nextafter": (lambda m, x, y: m.nextafter(x, y), [randn(5), randn(5, seed=1)], {"gradcheck": False}),
    "ldexp": (lambda m, x, e: m.ldexp(x, e), [randn(4), randn(4, seed=1)], {}),
    # PyTorch's gradient here is 0 where the integer exponent is negative (2**-2 in integers): not copied
    "ldexp_int_exponent": (lambda m, x: x.ldexp(m.tensor([1, -2, 3, 0])), [randn(4)], {"torch_grad": False}),
    "frexp": (lambda m, x: m.frexp(x), [np.array([0.0, 3.0, -5.0, 0.1, 1e-3])], {"gradcheck": False}),
    "Tensor.frexp": (lambda m, x: x.frexp(), [randn(2, 3) * 100], {}),
    "signbit": (lambda m, x: m.signbit(x), [np.array([-0.0, 0.0, -1.0, 2.0])], {"grad": False}),
    "signbit_int": (lambda m, x: m.tensor([-3, 0, 4]).signbit(), [randn(1)], {"grad": False}),
    "gcd": (lambda m, x: m.gcd(m.tensor([4, -6, 0, 9]), m.tensor([6, 4, 5, -12])), [randn(1)], {"grad": False}),
    "lcm": (lambda m, x: m.tensor([4, -6, 0, 9]).lcm(m.tensor([6, 4, 5, -12])), [randn(1)], {"grad": False}),
    "fmax": (lambda m, x, y: m.fmax(x, y), [np.array([1.0, np.nan, 2.0, 3.0, np.nan]), np.array([1.0, 2.0, np.nan, 4.0, np.nan])],
             {"gradcheck": False}),
    "fmin": (lambda m, x, y: x.fmin(y), [np.array([1.0, np.nan, 2.0, 3.0]), np.array([1.0, 2.0, np.nan, -4.0])],
             {"gradcheck": False}),
    "fmax_broadcast": (lambda m, x, y: m.fmax(x, y), [randn(3, 4), randn(4, seed=1)], {}),
    "logaddexp2": (lambda m, x, y: m.logaddexp2(x, y), [randn(3, 4), randn(4, seed=1)], {}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_float64_values_and_gradients(name):
    fn, arrays, opts = CASES[name]
    compare(fn, arrays, **opts)


FLOAT32 = ["erfc", "erfcx", "ndtr", "ndtri", "log_ndtr", "i0", "i0e", "i1", "i1e", "sinc", "entr", "polygamma_0",
           "xlogy", "xlog1py", "gammainc", "zeta", "bessel_j0", "deg2rad", "fmax_broadcast", "logaddexp2", "frexp",
           "multigammaln"]


@pytest.mark.parametrize("name", FLOAT32)
def test_float32(name):
    fn, arrays, opts = CASES[name]
    opts = {k: v for k, v in opts.items() if k not in ("rtol", "gradcheck")}
    compare(fn, arrays, dtype=np.float32, atol=1e-5, rtol=1e-4, gradcheck=False, **opts)


INT_INPUT = {
    "erfc": lambda m, x: m.erfc(x), "i0": lambda m, x: m.i0(x), "sinc": lambda m, x: m.sinc(x),
    "deg2rad": lambda m, x: m.deg2rad(x), "rad2deg": lambda m, x: x.rad2deg(),
    "ndtr": lambda m, x: m.special.ndtr(x), "entr": lambda m, x: m.special.entr(x),
    "polygamma": lambda m, x: m.polygamma(1, x), "xlogy": lambda m, x: m.xlogy(x, x),
    "ldexp": lambda m, x: m.ldexp(x, x), "bessel_j0": lambda m, x: m.special.bessel_j0(x),
    "gammaln": lambda m, x: m.special.gammaln(x), "float_power": lambda m, x: m.float_power(x, 2),
}


@pytest.mark.parametrize("name", sorted(INT_INPUT))
def test_integer_input_is_promoted_as_torch(name):
    compare(INT_INPUT[name], [np.array([1, 2, 3, 5])], grad=False, rtol=1e-5)


INPLACE = {
    "i0_": lambda m, x: x.i0_(),
    "sinc_": lambda m, x: x.sinc_(),
    "erfc_": lambda m, x: x.erfc_(),
    "deg2rad_": lambda m, x: x.deg2rad_(),
    "rad2deg_": lambda m, x: x.rad2deg_(),
    "xlogy_": lambda m, x: x.xlogy_(x + 1),
    "polygamma_": lambda m, x: x.polygamma_(1),
    "mvlgamma_": lambda m, x: x.mvlgamma_(2),
    "igamma_": lambda m, x: x.igamma_(m.ones_like(x)),
    "igammac_": lambda m, x: x.igammac_(m.ones_like(x)),
    "heaviside_": lambda m, x: x.heaviside_(m.ones_like(x)),
    "float_power_": lambda m, x: x.float_power_(2),
    "copysign_": lambda m, x: x.copysign_(-1.0),
    "nextafter_": lambda m, x: x.nextafter_(m.zeros_like(x)),
    "ldexp_": lambda m, x: x.ldexp_(m.full_like(x, 2.0)),
    "gcd_": lambda m, x: m.tensor([4, 6, 9]).gcd_(m.tensor([6, 4, 3])),
    "lcm_": lambda m, x: m.tensor([4, 6, 9]).lcm_(m.tensor([6, 4, 3])),
    "renorm_": lambda m, x: x.renorm_(2, 0, 0.5),
    "addr_": lambda m, x: x.addr_(m.ones(2, dtype=x.dtype), m.arange(2).to(x.dtype)),
    "addbmm_": lambda m, x: x.addbmm_(m.ones(3, 2, 1, dtype=x.dtype), m.ones(3, 1, 2, dtype=x.dtype)),
}


@pytest.mark.parametrize("name", sorted(INPLACE))
def test_inplace_variants(name):
    fn = INPLACE[name]

    def run(m, x):
        y = x.clone()
        out = fn(m, y)
        assert out is y or name in ("gcd_", "lcm_")  # (those two write into a tensor of their own)
        return out

    compare(run, [uniform(0.6, 2, 2, 2)], grad=False)


def test_inplace_ops_write_into_the_tensor():
    x = tm.tensor([0.5, 1.0])
    y = x.erfc_()
    assert y is x
    np.testing.assert_allclose(x.detach().numpy(), torch.tensor([0.5, 1.0]).erfc().detach().numpy(), rtol=1e-6)


def test_no_gradient_functions_do_not_require_grad():
    x = tm.tensor([0.5, 1.0], requires_grad=True)
    assert not tm.special.bessel_j0(x).requires_grad
    assert tm.special.i0(x).requires_grad


ERRORS = {
    "gammainc_grad_input": lambda m: m.special.gammainc(m.tensor([1.0], requires_grad=True), m.tensor([2.0])).sum().backward(),
    "zeta_grad_input": lambda m: m.special.zeta(m.tensor([2.0], requires_grad=True), m.tensor([2.0])).sum().backward(),
    "heaviside_grad": lambda m: m.heaviside(m.tensor([1.0], requires_grad=True), m.tensor([1.0])).sum().backward(),
    "heaviside_dtypes": lambda m: m.heaviside(m.tensor([1.0]), m.tensor([1.0], dtype=m.float64)),
    "gcd_float": lambda m: m.gcd(m.tensor([1.0]), m.tensor([2.0])),
    "lcm_float": lambda m: m.lcm(m.tensor([1, 2]), m.tensor([2.0, 3.0])),
    "frexp_int": lambda m: m.frexp(m.tensor([1, 2])),
    "logaddexp2_int": lambda m: m.logaddexp2(m.tensor([1]), m.tensor([2])),
    "igamma_int": lambda m: m.igamma(m.tensor([1, 2]), m.tensor([1, 2])),
    "float_power_inplace_float32": lambda m: m.tensor([1.0, 2.0]).float_power_(2),
    "i0_inplace_int": lambda m: m.tensor([1, 2]).i0_(),
    "erfc_inplace_int": lambda m: m.tensor([1, 2]).erfc_(),
    "polygamma_negative": lambda m: m.polygamma(-1, m.tensor([1.0])),
    "nextafter_int": lambda m: m.nextafter(m.tensor([1]), m.tensor([2])),
    "xlogy_shapes": lambda m: m.xlogy(m.ones(2, 3), m.ones(4)),
}


@pytest.mark.parametrize("name", sorted(ERRORS))
def test_bad_input_raises_torch_class(name):
    same_error(ERRORS[name])


def test_special_namespace_has_torch_names():
    names = [n for n in dir(torch.special) if not n.startswith("_") and "polynomial" not in n]
    missing = [n for n in names if not hasattr(tm.special, n) and n not in ("Tensor", "torch", "common_args",
                                                                             "multi_dim_common")]
    assert not missing, missing
    assert math.isclose(tm.special.zeta(tm.tensor(2.0), 1.0).item(), math.pi ** 2 / 6, rel_tol=1e-6)
