"""``torch.nn.modules``: the internal paths PyTorch code imports base classes and helpers from.

    from torch.nn.modules.batchnorm import _BatchNorm     # weight-decay filters: isinstance(m, _BatchNorm)
    from torch.nn.modules.utils import _pair              # custom conv layers
    from torch.nn.modules.loss import _Loss               # custom losses

Each name is tinymm's own class or helper (the real base class of tinymm's layers, so
``isinstance`` checks answer as in PyTorch); the layers themselves live in ``tinymm.nn``.
"""
from tinymm.nn.modules import batchnorm, conv, loss, module, utils  # noqa: F401
from tinymm.nn.modules.module import Module  # noqa: F401
