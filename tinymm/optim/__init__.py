"""Floor 6: optimizers, learning-rate schedules and gradient clipping.

SGD's and Adam's per-parameter update maths is one kernel family, ``tinymm.kernels.optim``
(NumPy reference, Numba CPU, CUDA), called in place on each parameter's arrays. The other
optimizers (``adaptive``: RMSprop, Adagrad, Adadelta, Adamax, NAdam, RAdam; ``rprop``;
``asgd``; ``lbfgs``) update in place with plain array arithmetic, NumPy or CuPy alike.
"""
from tinymm.optim import lr_scheduler  # noqa: F401
from tinymm.optim.adam import Adam, AdamW  # noqa: F401
from tinymm.optim.adaptive import Adadelta, Adagrad, Adamax, NAdam, RAdam, RMSprop  # noqa: F401
from tinymm.optim.asgd import ASGD  # noqa: F401
from tinymm.optim.lbfgs import LBFGS  # noqa: F401
from tinymm.optim.rprop import Rprop  # noqa: F401
from tinymm.nn.utils.clip_grad import clip_grad_norm_, clip_grad_value_  # noqa: F401
from tinymm.optim.optimizer import Optimizer  # noqa: F401
from tinymm.optim.sgd import SGD  # noqa: F401
from tinymm.optim.sparse_adam import SparseAdam  # noqa: F401,E402  (probe8)
from tinymm.optim import swa_utils  # noqa: F401,E402  # probe: AveragedModel, SWALR, update_bn
# optstate: torch.optim.Adafactor
from tinymm.optim.adafactor import Adafactor  # noqa: F401,E402
