"""``tinymm.special``: PyTorch's ``torch.special`` namespace (real dtypes).

The functions live in ``tinymm.ops`` beside their Functions (``ops.special``,
``ops.special_fns``, ``ops.maths``, ``ops.reduce``); this module gives them the names
``torch.special`` uses. Left out: the orthogonal polynomials (``chebyshev_polynomial_*``,
``shifted_chebyshev_polynomial_*``, ``hermite_polynomial_*``, ``laguerre_polynomial_l``,
``legendre_polynomial_p``).
"""
from tinymm.ops.elementwise import sigmoid as expit  # noqa: F401
from tinymm.ops.maths import erf, exp2, expm1, log1p, round  # noqa: F401
from tinymm.ops.reduce import log_softmax, logsumexp, softmax  # noqa: F401
from tinymm.ops.special import digamma, erfinv, logit  # noqa: F401
from tinymm.ops.special import digamma as psi  # noqa: F401
from tinymm.ops.special import lgamma as gammaln  # noqa: F401
from tinymm.ops.special_fns import (  # noqa: F401
    airy_ai,
    bessel_j0,
    bessel_j1,
    bessel_y0,
    bessel_y1,
    entr,
    erfc,
    erfcx,
    gammainc,
    gammaincc,
    i0,
    i0e,
    i1,
    i1e,
    log_ndtr,
    modified_bessel_i0,
    modified_bessel_i1,
    modified_bessel_k0,
    modified_bessel_k1,
    multigammaln,
    ndtr,
    ndtri,
    polygamma,
    scaled_modified_bessel_k0,
    scaled_modified_bessel_k1,
    sinc,
    spherical_bessel_j0,
    xlog1py,
    xlogy,
    zeta,
)

__all__ = [
    "airy_ai", "bessel_j0", "bessel_j1", "bessel_y0", "bessel_y1", "digamma", "entr", "erf", "erfc", "erfcx",
    "erfinv", "exp2", "expit", "expm1", "gammainc", "gammaincc", "gammaln", "i0", "i0e", "i1", "i1e", "log1p",
    "log_ndtr", "log_softmax", "logit", "logsumexp", "modified_bessel_i0", "modified_bessel_i1",
    "modified_bessel_k0", "modified_bessel_k1", "multigammaln", "ndtr", "ndtri", "polygamma", "psi", "round",
    "scaled_modified_bessel_k0", "scaled_modified_bessel_k1", "sinc", "softmax", "spherical_bessel_j0",
    "xlog1py", "xlogy", "zeta",
]
