"""``torch.func.replace_all_batch_norm_modules_``: batch norm without running statistics, so
that ``vmap`` over a model that holds BatchNorm layers does not write per-sample statistics
into one shared buffer (PyTorch's advice for vmap with batch norm)."""
from __future__ import annotations


def replace_all_batch_norm_modules_(root):
    """Every BatchNorm layer (1d, 2d, 3d, SyncBatchNorm) under ``root`` that tracks running
    statistics stops tracking them: its ``running_mean``, ``running_var`` and
    ``num_batches_tracked`` become None and ``track_running_stats`` False, so it normalizes
    with the batch's own statistics in training and eval mode alike. In place; returns ``root``."""
    from tinymm.nn.batchnorm import BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm

    for module in root.modules():
        if isinstance(module, (BatchNorm1d, BatchNorm2d, BatchNorm3d, SyncBatchNorm)) and module.track_running_stats:
            module.running_mean = None
            module.running_var = None
            module.num_batches_tracked = None
            module.track_running_stats = False
    return root
