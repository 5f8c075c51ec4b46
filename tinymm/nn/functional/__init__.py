"""Floor 4: differentiable neural-network ops with PyTorch's names and signatures.

``import tinymm.nn.functional as F`` gives what ``torch.nn.functional`` gives. The package is
one module per family, each holding its ``Function`` subclasses beside the public functions
that check arguments once and call them:

- ``layers``    ``linear`` (one fused GEMM), ``dropout``, ``embedding``
- ``norm``      ``layer_norm`` (kernel family ``tinymm.kernels.norm``), ``normalize``, ``cosine_similarity``
- ``losses``    ``cross_entropy`` (kernel family ``tinymm.kernels.softmax``), ``nll_loss``, BCE, MSE, L1
- ``attention`` ``scaled_dot_product_attention`` (kernel family ``tinymm.kernels.attention``)
- ``pool``      ``max_pool1d/2d``, ``avg_pool1d/2d``, ``adaptive_avg_pool1d/2d`` (kernel family ``tinymm.kernels.pool``)
- ``batchnorm`` ``batch_norm`` (kernel family ``tinymm.kernels.batchnorm``)
- ``conv``      ``conv1d``, ``conv2d`` (kernel family ``tinymm.kernels.conv``)
- ``recurrent`` one recurrent layer (one or both directions) as one op (kernel family
  ``tinymm.kernels.recurrent``); ``torch.nn.functional`` has no public twin, so nothing is
  re-exported: ``tinymm.nn.RNN``/``LSTM``/``GRU`` call it
- ``activations`` elu, celu, selu, leaky_relu, relu6, hardtanh, hardsigmoid, hardswish, mish,
  softplus, softsign, logsigmoid, softmin, tanhshrink, threshold, glu, prelu
- ``upsample``  ``interpolate`` (nearest, nearest-exact, linear, bilinear, trilinear)
- ``vision``    ``pixel_shuffle``/``pixel_unshuffle``, ``channel_shuffle``, ``unfold``/``fold`` (im2col, col2im)
- ``packing``   real-token rows of a padded batch and back (``pack_rows``, ``unpack_rows``,
  ``rows_to_heads``, ``heads_to_rows``); no ``torch.nn.functional`` twin, not re-exported:
  ``BertModel`` imports them by module

The rule for where an op lives: an op that is also a Tensor method (``relu``, ``softmax``,
``pad``, ...) lives on floor 3 in ``tinymm.ops`` and is re-exported here; an op that only
``torch.nn.functional`` has lives in the module of this package named for its family. A
kernel-backed ``Function`` calls its family's ``tinymm.kernels.<family>.forward/backward``
and nothing else of floor 1. Modules here import from floors 1–3 and from ``_checks``, never
from each other except by name (``attention`` uses ``layers.dropout``), never from floor 5.
"""
from tinymm.ops import (  # noqa: F401  (re-exported)
    gelu,
    log_softmax,
    one_hot,
    pad,
    relu,
    sigmoid,
    silu,
    softmax,
    tanh,
)

from tinymm.nn.functional.activations import (  # noqa: F401
    celu,
    elu,
    glu,
    hardsigmoid,
    hardswish,
    hardtanh,
    leaky_relu,
    logsigmoid,
    mish,
    prelu,
    relu6,
    selu,
    softmin,
    softplus,
    softsign,
    tanhshrink,
    threshold,
)
from tinymm.nn.functional.upsample import interpolate, upsample  # noqa: F401

from tinymm.nn.functional.attention import scaled_dot_product_attention  # noqa: F401
from tinymm.nn.functional.batchnorm import batch_norm  # noqa: F401
from tinymm.nn.functional.conv import conv1d, conv2d  # noqa: F401
from tinymm.nn.functional.layers import dropout, embedding, linear  # noqa: F401
from tinymm.nn.functional.losses import (  # noqa: F401
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
)
from tinymm.nn.functional.norm import cosine_similarity, layer_norm, normalize  # noqa: F401
from tinymm.nn.functional.pool import (  # noqa: F401
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)

# opsb: more layers, norms, losses, pooling and transposed convolution
from tinymm.nn.functional.batchnorm import instance_norm  # noqa: F401
from tinymm.nn.functional.conv import conv3d, conv_transpose1d, conv_transpose2d, conv_transpose3d  # noqa: F401
from tinymm.nn.functional.layers import (  # noqa: F401
    alpha_dropout,
    bilinear,
    dropout1d,
    dropout2d,
    dropout3d,
    embedding_bag,
    feature_alpha_dropout,
)
from tinymm.nn.functional.losses import (  # noqa: F401
    cosine_embedding_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    huber_loss,
    kl_div,
    margin_ranking_loss,
    multilabel_soft_margin_loss,
    poisson_nll_loss,
    smooth_l1_loss,
    soft_margin_loss,
    triplet_margin_loss,
)
from tinymm.nn.functional.norm import group_norm, local_response_norm, pairwise_distance, pdist, rms_norm  # noqa: F401
from tinymm.nn.functional.pool import adaptive_max_pool1d, adaptive_max_pool2d  # noqa: F401
from tinymm.nn.functional.vision import (  # noqa: F401
    affine_grid,
    channel_shuffle,
    fold,
    grid_sample,
    pixel_shuffle,
    pixel_unshuffle,
    unfold,
)
from tinymm.nn.functional.activations import gumbel_softmax, hardshrink, rrelu, softshrink  # noqa: F401
from tinymm.nn.functional.losses import (  # noqa: F401
    ctc_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    triplet_margin_with_distance_loss,
)
from tinymm.nn.functional.pool import (  # noqa: F401
    adaptive_avg_pool3d,
    adaptive_max_pool3d,
    avg_pool3d,
    lp_pool1d,
    lp_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)

# revc: F.relu / F.silu with PyTorch's ``inplace`` argument (tinymm.relu / tinymm.silu underneath)
from tinymm.nn.functional.activations import log_softmax, relu, silu, softmax  # noqa: F401,E402
# opse: *_with_indices pooling, lp_pool3d, max_unpool3d, in-place activations, deprecated upsample aliases,
# multi_head_attention_forward
from tinymm.nn.functional.activations_inplace import (  # noqa: F401
    celu_,
    elu_,
    hardtanh_,
    leaky_relu_,
    relu_,
    rrelu_,
    selu_,
    threshold_,
    upsample_bilinear,
    upsample_nearest,
)
from tinymm.nn.functional.mha import multi_head_attention_forward  # noqa: F401
from tinymm.nn.functional.pool import max_unpool3d  # noqa: F401
from tinymm.nn.functional.pool_more import (  # noqa: F401
    adaptive_max_pool1d_with_indices,
    adaptive_max_pool2d_with_indices,
    adaptive_max_pool3d_with_indices,
    lp_pool3d,
    max_pool1d_with_indices,
    max_pool2d_with_indices,
    max_pool3d_with_indices,
)

# main (7th session): fractional max pooling
from tinymm.nn.functional.fractional_pool import (  # noqa: F401,E402
    fractional_max_pool2d,
    fractional_max_pool2d_with_indices,
    fractional_max_pool3d,
    fractional_max_pool3d_with_indices,
)
from tinymm.nn.functional.layers import PaddingIdxError  # hostile  # noqa: F401,E402
# probe6: PyTorch's input= on the functions shared with the ops (F.gelu(input=x), F.one_hot(input=t))
from tinymm.ops.torch_keywords import install as _install_torch_keywords  # noqa: E402

_install_torch_keywords(globals(), ("gelu", "one_hot", "relu_", "selu_"))
