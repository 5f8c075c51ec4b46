"""``torch.utils.tensorboard``: ``from tinymm.utils.tensorboard import SummaryWriter``.

Writes TensorBoard event files with no dependency on the ``tensorboard`` or ``protobuf``
packages (the record framing and the messages are encoded by hand: ``_record.py``,
``_proto.py``, ``summary.py``); :mod:`tinymm.utils.tensorboard.reader` reads them back.
"""
from tinymm.utils.tensorboard.writer import FileWriter, SummaryWriter

__all__ = ["FileWriter", "SummaryWriter"]
