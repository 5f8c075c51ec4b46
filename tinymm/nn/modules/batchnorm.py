"""``torch.nn.modules.batchnorm``: ``_NormBase`` (the base of the batch and instance norms),
``_BatchNorm`` (the base of ``BatchNorm1d/2d/3d``, ``SyncBatchNorm`` and the lazy batch norms)
and the layers, all tinymm's own classes."""
from tinymm.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm  # noqa: F401
from tinymm.nn.batchnorm import BatchNormBase as _BatchNorm  # noqa: F401
from tinymm.nn.batchnorm import NormBase as _NormBase  # noqa: F401
from tinymm.nn.lazy import LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d  # noqa: F401
