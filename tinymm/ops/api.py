"""Transitional: the old name of ``tinymm.ops``, kept only until ``nn/functional/losses.py``
(owned by another change) imports ``tinymm.ops`` directly. Holds no code; delete it then.
New code imports ``from tinymm import ops`` or the family module (``tinymm.ops.shape``)."""
from tinymm.ops import *  # noqa: F401,F403
from tinymm.ops import as_tensor, cast, getitem  # noqa: F401
from tinymm.ops import check_pair as _check_pair, operands as _operands  # noqa: F401
