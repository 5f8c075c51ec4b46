"""``torch.utils.tensorboard.SummaryWriter`` without TensorBoard or protobuf installed.

The files written are TensorBoard event files (``events.out.tfevents.<time>.<host>.<pid>.<n>``):
TFRecord-framed ``Event`` messages (see ``_record.py`` and ``_proto.py``), readable by
``tensorboard --logdir runs`` and by :mod:`tinymm.utils.tensorboard.reader`.

Differences from torch: events are written to the file as they are added (no background thread);
the file is flushed to disk every ``max_queue`` events, when an add finds ``flush_secs`` elapsed
since the last flush, on ``flush()``/``close()``, and at interpreter exit. ``FileWriter`` takes
serialized ``Summary`` bytes instead of protobuf objects. Not there: add_graph, add_onnx_graph,
add_embedding, add_video, add_audio, add_pr_curve(_raw), add_mesh, add_custom_scalars(...),
add_image_with_boxes.
"""
from __future__ import annotations

import atexit
import itertools
import os
import socket
import threading
import time
import weakref

from tinymm.utils.tensorboard import _proto as pb
from tinymm.utils.tensorboard import summary
from tinymm.utils.tensorboard._record import frame

__all__ = ["FileWriter", "SummaryWriter"]

_file_counter = itertools.count()
_open_writers: "weakref.WeakSet[FileWriter]" = weakref.WeakSet()
_SESSION_LOG_START = 1


def encode_event(wall_time: float, step=None, file_version: str | None = None, summary_bytes: bytes | None = None,
                 session_log_status: int | None = None, source_writer: str | None = None) -> bytes:
    """``Event``: 1 wall_time (double), 2 step (int64), 3 =file_version, 5 =summary,
    7 =session_log {1 status}, 10 source_metadata {1 writer}."""
    out = pb.double(1, wall_time) + pb.integer(2, 0 if step is None else int(step))
    if file_version is not None:
        out += pb.string(3, file_version, always=True)
    if summary_bytes is not None:
        out += pb.submessage(5, summary_bytes)
    if session_log_status is not None:
        out += pb.submessage(7, pb.integer(1, session_log_status))
    if source_writer is not None:
        out += pb.submessage(10, pb.string(1, source_writer))
    return out


class FileWriter:
    """One event file in ``log_dir`` (created with its directories), opened by a
    ``file_version`` event as TensorBoard's own writer does."""

    def __init__(self, log_dir, max_queue: int = 10, flush_secs: float = 120, filename_suffix: str = "") -> None:
        self._log_dir = str(log_dir)
        os.makedirs(self._log_dir, exist_ok=True)
        name = "events.out.tfevents.%010d.%s.%s.%s" % (time.time(), socket.gethostname(), os.getpid(), next(_file_counter))
        self._path = os.path.join(self._log_dir, name) + filename_suffix
        self._file = open(self._path, "wb")
        self._max_queue, self._flush_secs = max_queue, flush_secs
        self._pending, self._last_flush = 0, time.time()
        self._lock = threading.Lock()
        _open_writers.add(self)
        self._write(encode_event(time.time(), file_version="brain.Event:2", source_writer="tinymm.utils.tensorboard"))
        self.flush()

    def get_logdir(self) -> str:
        return self._log_dir

    @property
    def path(self) -> str:
        """The event file this writer writes."""
        return self._path

    def _write(self, event: bytes) -> None:
        with self._lock:
            if self._file is None:
                raise OSError("Writer is closed")
            self._file.write(frame(event))
            self._pending += 1
            if self._pending >= self._max_queue or time.time() - self._last_flush >= self._flush_secs:
                self._flush_locked()

    def add_event(self, step=None, walltime=None, **fields) -> None:
        """Write one Event (``fields``: see :func:`encode_event`), stamped now unless ``walltime``."""
        self._write(encode_event(time.time() if walltime is None else walltime, step, **fields))

    def add_summary(self, summary_bytes: bytes, global_step=None, walltime=None) -> None:
        self.add_event(global_step, walltime, summary_bytes=summary_bytes)

    def _flush_locked(self) -> None:
        if self._file is not None:
            self._file.flush()
        self._pending, self._last_flush = 0, time.time()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
        _open_writers.discard(self)


@atexit.register
def _flush_all_at_exit() -> None:
    for writer in list(_open_writers):
        writer.flush()


class SummaryWriter:
    """Logs scalars, histograms, images, text and hparams for TensorBoard, with torch's API.

    ``log_dir`` defaults to ``runs/<Mon DD_HH-MM-SS>_<hostname><comment>``. ``purge_step``: a
    restarted run writes a ``file_version`` and a ``SessionLog.START`` event at that step, which
    tells TensorBoard to hide the earlier run's events at steps >= ``purge_step``. Values may be
    tinymm Tensors, NumPy arrays or Python numbers. Usable as a context manager (closes on exit);
    adding after ``close()`` opens a new event file in the same directory, as torch does."""

    def __init__(self, log_dir=None, comment: str = "", purge_step=None, max_queue: int = 10,
                 flush_secs: float = 120, filename_suffix: str = "") -> None:
        if not log_dir:
            from datetime import datetime
            log_dir = os.path.join("runs", datetime.now().strftime("%b%d_%H-%M-%S") + "_" + socket.gethostname() + comment)
        self.log_dir = log_dir
        self.purge_step = purge_step
        self.max_queue = max_queue
        self.flush_secs = flush_secs
        self.filename_suffix = filename_suffix
        self.file_writer = self.all_writers = None
        self._get_file_writer()
        self.default_bins = summary.default_bins()

    def _get_file_writer(self) -> FileWriter:
        if self.all_writers is None or self.file_writer is None:
            self.file_writer = FileWriter(self.log_dir, self.max_queue, self.flush_secs, self.filename_suffix)
            self.all_writers = {self.file_writer.get_logdir(): self.file_writer}
            if self.purge_step is not None:
                self.file_writer.add_event(self.purge_step, file_version="brain.Event:2")
                self.file_writer.add_event(self.purge_step, session_log_status=_SESSION_LOG_START)
                self.purge_step = None
        return self.file_writer

    def get_logdir(self):
        """The directory event files are written to."""
        return self.log_dir

    def add_scalar(self, tag: str, scalar_value, global_step=None, walltime=None,
                   new_style: bool = False, double_precision: bool = False) -> None:
        """One number (a one-element Tensor/array or a Python number); ``new_style`` stores it as a
        tensor for the scalars plugin instead of ``simple_value`` (float32)."""
        data = summary.scalar(tag, scalar_value, new_style=new_style, double_precision=double_precision)
        self._get_file_writer().add_summary(data, global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict, global_step=None, walltime=None) -> None:
        """Each ``tag: value`` goes to its own run, the sub-directory ``<log_dir>/<main_tag>_<tag>``
        ('/' in main_tag replaced by '_'), under the tag ``main_tag``; one walltime for all."""
        walltime = time.time() if walltime is None else walltime
        fw_logdir = self._get_file_writer().get_logdir()
        for tag, scalar_value in tag_scalar_dict.items():
            fw_tag = fw_logdir + "/" + main_tag.replace("/", "_") + "_" + tag
            fw = self.all_writers.get(fw_tag)
            if fw is None:
                fw = self.all_writers[fw_tag] = FileWriter(fw_tag, self.max_queue, self.flush_secs, self.filename_suffix)
            fw.add_summary(summary.scalar(main_tag, scalar_value), global_step, walltime)

    def add_tensor(self, tag: str, tensor, global_step=None, walltime=None) -> None:
        """The whole tensor, shape and values, for the tensor plugin (float16 as torch writes it)."""
        self._get_file_writer().add_summary(summary.tensor_proto(tag, tensor), global_step, walltime)

    def add_histogram(self, tag: str, values, global_step=None, bins="tensorflow", walltime=None, max_bins=None) -> None:
        """``bins``: 'tensorflow' (TensorBoard's exponential edges, the default) or anything
        ``numpy.histogram`` accepts ('auto', 'fd', a count, edges)."""
        if isinstance(bins, str) and bins == "tensorflow":
            bins = self.default_bins
        self._get_file_writer().add_summary(summary.histogram(tag, values, bins, max_bins=max_bins), global_step, walltime)

    def add_histogram_raw(self, tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts,
                          global_step=None, walltime=None) -> None:
        if len(bucket_limits) != len(bucket_counts):
            raise ValueError("len(bucket_limits) != len(bucket_counts), see the document.")
        data = summary.histogram_raw(tag, min, max, num, sum, sum_squares, bucket_limits, bucket_counts)
        self._get_file_writer().add_summary(data, global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "CHW") -> None:
        """One image: ``dataformats`` CHW (default), HWC, HW, or any ordering of those letters.
        uint8 values are pixels; other dtypes are [0, 1] and scaled by 255."""
        self._get_file_writer().add_summary(summary.image(tag, img_tensor, dataformats=dataformats), global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step=None, walltime=None, dataformats: str = "NCHW") -> None:
        """A batch (N, 1 or 3 channels) tiled into one grid image, 8 per row."""
        self._get_file_writer().add_summary(summary.image(tag, img_tensor, dataformats=dataformats), global_step, walltime)

    def add_figure(self, tag: str, figure, global_step=None, close: bool = True, walltime=None) -> None:
        """A matplotlib figure (or a list of them, as a grid) rendered to an image; needs matplotlib."""
        images = summary.figure_to_image(figure, close)
        self.add_image(tag, images, global_step, walltime, dataformats="NCHW" if isinstance(figure, list) else "CHW")

    def add_text(self, tag: str, text_string: str, global_step=None, walltime=None) -> None:
        """Text (markdown) for the text plugin, under the tag ``<tag>/text_summary``."""
        self._get_file_writer().add_summary(summary.text(tag, text_string), global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, hparam_domain_discrete=None,
                    run_name=None, global_step=None) -> None:
        """The hparams plugin's experiment / session-start / session-end summaries and each metric
        as a scalar, in the run ``<log_dir>/<run_name>`` (run_name defaults to ``str(time.time())``)."""
        if type(hparam_dict) is not dict or type(metric_dict) is not dict:
            raise TypeError("hparam_dict and metric_dict should be dictionary.")
        exp, ssi, sei = summary.hparams(hparam_dict, metric_dict, hparam_domain_discrete)
        if not run_name:
            run_name = str(time.time())
        logdir = os.path.join(self._get_file_writer().get_logdir(), run_name)
        with SummaryWriter(log_dir=logdir) as w_hp:
            for data in (exp, ssi, sei):
                w_hp.file_writer.add_summary(data, global_step)
            for k, v in metric_dict.items():
                w_hp.add_scalar(k, v, global_step)

    def flush(self) -> None:
        """Write everything added so far to disk, in every run this writer opened."""
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()

    def close(self) -> None:
        if self.all_writers is None:
            return
        for writer in self.all_writers.values():
            writer.flush()
            writer.close()
        self.file_writer = self.all_writers = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_val, exc_tb):
        self.close()
