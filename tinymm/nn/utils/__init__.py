"""Floor 5: helpers around modules, named as in ``torch.nn.utils``.

``clip_grad`` holds ``clip_grad_norm_`` / ``clip_grad_value_`` (``tinymm.optim`` re-exports them).
"""
from tinymm.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
from tinymm.nn.utils import rnn  # noqa: F401,E402  (PackedSequence, pack_padded_sequence, ...)
from tinymm.nn.utils.convert_parameters import parameters_to_vector, vector_to_parameters  # noqa: F401,E402
from tinymm.nn.utils.weight_norm import remove_spectral_norm, remove_weight_norm, spectral_norm, weight_norm  # noqa: F401,E402
from tinymm.nn.utils import parametrizations, parametrize  # noqa: F401,E402
from tinymm.nn.utils.clip_grad import clip_grad_norm, clip_grads_with_norm_, get_total_norm  # noqa: F401,E402
# opse: conv/linear + BatchNorm fusion, skip_init
from tinymm.nn.utils.fusion import (  # noqa: F401,E402
    fuse_conv_bn_eval,
    fuse_conv_bn_weights,
    fuse_linear_bn_eval,
    fuse_linear_bn_weights,
)
from tinymm.nn.utils.init_utils import skip_init  # noqa: F401,E402
from tinymm.nn.utils import stateless  # noqa: F401,E402  (func: torch.nn.utils.stateless.functional_call)
