"""``tinymm.special``: PyTorch's ``torch.special`` namespace (real dtypes).

The functions live in ``tinymm.ops`` beside their Functions (``ops.special``,
``ops.special_fns``, ``ops.maths``, ``ops.reduce``); this module gives them the names
``torch.special`` uses. The orthogonal polynomials are in ``ops.orthogonal_polynomials``.
"""
from tinymm.ops.elementwise import sigmoid as expit  # noqa: F401
from tinymm.ops.orthogonal_polynomials import (  # noqa: F401  (lead)
    chebyshev_polynomial_t,
    chebyshev_polynomial_u,
    chebyshev_polynomial_v,
    chebyshev_polynomial_w,
    hermite_polynomial_h,
    hermite_polynomial_he,
    laguerre_polynomial_l,
    legendre_polynomial_p,
    shifted_chebyshev_polynomial_t,
    shifted_chebyshev_polynomial_u,
    shifted_chebyshev_polynomial_v,
    shifted_chebyshev_polynomial_w,
)
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
    *__import__("tinymm.ops.orthogonal_polynomials", fromlist=["__all__"]).__all__,  # lead
]
