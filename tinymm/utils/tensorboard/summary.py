"""``torch.utils.tensorboard.summary``: the ``Summary`` messages SummaryWriter logs, with torch's
function names and arguments, each returning the *serialized* Summary (bytes, there being no
protobuf objects here) that ``FileWriter.add_summary`` takes -- so the pattern
``exp, ssi, sei = hparams(h, m); writer.file_writer.add_summary(exp)`` works. Values, bins, image
conversion and plugin metadata follow ``torch/utils/tensorboard/summary.py``.

Message layouts (field numbers from TensorBoard's .proto files; ``=`` marks a oneof member)::

    Summary        1 value: repeated Value
    Value          1 tag, 2 =simple_value (float), 4 =image, 5 =histo, 8 =tensor, 9 metadata
    Image          1 height, 2 width, 3 colorspace (channels), 4 encoded_image_string (PNG)
    HistogramProto 1 min, 2 max, 3 num, 4 sum, 5 sum_squares (doubles),
                   6 bucket_limit, 7 bucket (packed doubles)
    SummaryMetadata 1 plugin_data: PluginData {1 plugin_name, 2 content (bytes)}
    TensorProto    1 dtype (enum: DT_FLOAT 1, DT_DOUBLE 2, DT_STRING 7), 2 tensor_shape
                   {2 dim: repeated {1 size}}, 5 float_val, 6 double_val, 8 string_val

The hparams plugin's content is a ``HParamsPluginData`` (1 version = 0, 2 =experiment,
3 =session_start_info, 4 =session_end_info), see :func:`hparams`.
"""
from __future__ import annotations

import struct

import numpy as np

from tinymm.tensor import Tensor
from tinymm.utils.tensorboard import _proto as pb
from tinymm.utils.tensorboard._png import encode_png

DT_FLOAT, DT_DOUBLE, DT_STRING = 1, 2, 7


def make_np(x) -> np.ndarray:
    """A NumPy view of what a user logs: ndarray as is, a Python/NumPy number as shape (1,),
    a tinymm Tensor detached and copied to the host."""
    if isinstance(x, np.ndarray):
        return x
    if np.isscalar(x):
        return np.array([x])
    if isinstance(x, Tensor):
        return x.detach().numpy()
    raise NotImplementedError(f"Got {type(x)}, but numpy array or tinymm Tensor are expected.")


def _summary(*values: bytes) -> bytes:
    return b"".join(pb.submessage(1, v) for v in values)


def _metadata(plugin_name: str, content: bytes = b"") -> bytes:
    return pb.submessage(1, pb.string(1, plugin_name) + pb.length_delimited(2, content))


# ----------------------------------------------------------------------------- scalar

def scalar(name: str, tensor, collections=None, new_style: bool = False, double_precision: bool = False) -> bytes:
    """One number as ``simple_value`` (float32), or with ``new_style`` as a one-element float
    (``double_precision``: double) tensor for the scalars plugin; ``collections`` is ignored."""
    array = make_np(tensor).squeeze()
    if array.ndim != 0:
        raise AssertionError("Tensor should contain one element (0 dimensions). "
                             f"Was given size: {array.size} and {array.ndim} dimensions.")
    number = float(array)
    if not new_style:
        return _summary(pb.string(1, name) + pb.float32(2, number, always=True))
    if double_precision:
        tensor = pb.integer(1, DT_DOUBLE) + pb.packed_doubles(6, [number])
    else:
        tensor = pb.integer(1, DT_FLOAT) + pb.packed_floats(5, [number])
    return _summary(pb.string(1, name) + pb.submessage(8, tensor) + pb.submessage(9, _metadata("scalars")))


# ----------------------------------------------------------------------------- tensor
# dtype -> (TensorProto.dtype enum, value field, how values are packed), as torch's _TENSOR_TYPE_MAP.
# float16 goes to half_val as torch writes it: the float32 bit pattern of each value, as an int32.
_TENSOR_TYPES = {
    "float16": (19, 13, "half"), "float32": (1, 5, "float"), "float64": (2, 6, "double"),
    "int8": (6, 7, "int"), "uint8": (4, 16, "int"), "int16": (5, 7, "int"), "int32": (3, 7, "int"),
    "int64": (9, 10, "int"), "complex64": (8, 9, "float"), "complex128": (18, 12, "double"), "bool": (10, 11, "int"),
}


def tensor_proto(tag: str, tensor) -> bytes:
    """The whole tensor (shape and values) for the tensor plugin."""
    array = make_np(tensor)
    if array.nbytes >= 1 << 31:
        raise ValueError("tensor is bigger than protocol buffer's hard limit of 2GB in size")
    if array.dtype.name not in _TENSOR_TYPES:
        raise ValueError(f"{tag} has unsupported tensor dtype {array.dtype}")
    dtype, field, packing = _TENSOR_TYPES[array.dtype.name]
    flat = array.reshape(-1)
    if array.dtype.kind == "c":
        flat = flat.view(flat.real.dtype)  # (re, im) pairs
    values = flat.tolist()
    if packing == "half":
        values = [struct.unpack("i", struct.pack("f", v))[0] for v in values]
    encode = {"float": pb.packed_floats, "double": pb.packed_doubles}.get(packing, pb.packed_varints)
    shape = b"".join(pb.submessage(2, pb.integer(1, n)) for n in array.shape)
    proto = pb.integer(1, dtype) + pb.submessage(2, shape) + encode(field, values)
    return _summary(pb.string(1, tag) + pb.submessage(8, proto) + pb.submessage(9, _metadata("tensor")))


# ----------------------------------------------------------------------------- histogram

def default_bins() -> list[float]:
    """TensorFlow's histogram edges, as torch's SummaryWriter builds them: 0 and +-1e-12 * 1.1^k
    up to 1e20, about 1550 edges."""
    v, buckets = 1e-12, []
    while v < 1e20:
        buckets.append(v)
        v *= 1.1
    return [-b for b in reversed(buckets)] + [0] + buckets


def _histogram_proto(vmin, vmax, num, total, sum_squares, limits, counts) -> bytes:
    return (pb.double(1, vmin) + pb.double(2, vmax) + pb.double(3, num) + pb.double(4, total)
            + pb.double(5, sum_squares) + pb.packed_doubles(6, limits) + pb.packed_doubles(7, counts))


def histogram(name: str, values, bins, max_bins=None) -> bytes:
    """``np.histogram`` over ``bins``, trimmed to the buckets from one before the first non-empty
    one to the last non-empty one (TensorBoard stores right edges only, so the empty bucket on
    the left keeps the leftmost edge), optionally merged down to ``max_bins`` buckets."""
    values = make_np(values).astype(float)
    if values.size == 0:
        raise ValueError("The input has no element.")
    values = values.reshape(-1)
    counts, limits = np.histogram(values, bins=bins)
    if max_bins is not None and len(counts) > max_bins:
        group = len(counts) // max_bins
        if len(counts) % group:
            counts = np.pad(counts, [[0, group - len(counts) % group]])
        counts = counts.reshape(-1, group).sum(axis=-1)
        limits = np.concatenate([limits[:-1:group], limits[-1:]])
    nonempty = np.cumsum(np.greater(counts, 0))
    start, end = np.searchsorted(nonempty, [0, nonempty[-1] - 1], side="right")
    start, end = int(start), int(end) + 1
    counts = counts[start - 1:end] if start > 0 else np.concatenate([[0], counts[:end]])
    limits = limits[start:end + 1]
    if counts.size == 0 or limits.size == 0:
        raise ValueError("The histogram is empty, please file a bug report.")
    hist = _histogram_proto(values.min(), values.max(), len(values), values.sum(), values.dot(values),
                            limits.tolist(), counts.tolist())
    return _summary(pb.string(1, name) + pb.submessage(5, hist))


def histogram_raw(name, min, max, num, sum, sum_squares, bucket_limits, bucket_counts) -> bytes:  # noqa: A002
    """A histogram from its statistics: ``bucket_limits`` (right edges) and ``bucket_counts``
    as lists, arrays or Tensors."""
    limits, counts = (b if isinstance(b, list) else make_np(b).reshape(-1).tolist() for b in (bucket_limits, bucket_counts))
    hist = _histogram_proto(min, max, num, sum, sum_squares, limits, counts)
    return _summary(pb.string(1, name) + pb.submessage(5, hist))


# ----------------------------------------------------------------------------- image

def make_grid(images: np.ndarray, ncols: int = 8) -> np.ndarray:
    """(N, 1 or 3, H, W) -> one (3, H*rows, W*cols) canvas, images left to right, top to bottom,
    at most 8 per row; unused cells stay 0."""
    if images.shape[1] == 1:
        images = np.concatenate([images, images, images], 1)
    if images.ndim != 4 or images.shape[1] != 3:
        raise AssertionError("Input should be a 4D numpy array with 3 channels")
    n, _, h, w = images.shape
    ncols = min(n, ncols)
    nrows = int(np.ceil(float(n) / ncols))
    canvas = np.zeros((3, h * nrows, w * ncols), dtype=images.dtype)
    for i in range(n):
        y, x = divmod(i, ncols)
        canvas[:, y * h:(y + 1) * h, x * w:(x + 1) * w] = images[i]
    return canvas


def convert_to_hwc(array: np.ndarray, dataformats: str) -> np.ndarray:
    """Any of NCHW-like (4 letters: a grid), CHW-like (3) or HW-like (2) -> (H, W, C); one gray
    channel becomes three, as torch does."""
    if len(set(dataformats)) != len(dataformats):
        raise AssertionError("You can not use the same dimension shorthand twice. "
                             f"input_format: {dataformats}")
    if array.ndim != len(dataformats):
        raise AssertionError("size of input tensor and input format are different. "
                             f"tensor shape: {array.shape}, input_format: {dataformats}")
    fmt = dataformats.upper()
    wanted = {4: "NCHW", 3: "HWC", 2: "HW"}.get(len(fmt))
    if wanted is None or set(fmt) != set(wanted):
        raise AssertionError(f"dataformats {dataformats!r} should be an ordering of NCHW, CHW or HW "
                             f"(for a tensor of shape {array.shape})")
    array = array.transpose([fmt.find(c) for c in wanted])
    if len(fmt) == 4:
        return make_grid(array).transpose(1, 2, 0)
    if len(fmt) == 3:
        return np.concatenate([array, array, array], 2) if array.shape[2] == 1 else array
    return np.stack([array, array, array], 2)


def image(tag: str, tensor, rescale=1, dataformats: str = "NCHW") -> bytes:
    """uint8 pixels are kept; any other dtype is taken as [0, 1] and scaled by 255; then clipped to
    [0, 255] and truncated to uint8, PNG encoded. Only ``rescale=1`` (torch resizes with Pillow's
    Lanczos filter otherwise)."""
    if rescale != 1:
        raise NotImplementedError(f"image: rescale={rescale} is not supported (tinymm encodes PNGs without Pillow)")
    array = convert_to_hwc(make_np(tensor), dataformats)
    scale = 1 if array.dtype == np.uint8 else 255
    pixels = (array.astype(np.float32) * scale).clip(0, 255).astype(np.uint8)
    height, width, channels = pixels.shape
    if channels not in (2, 3, 4):
        raise TypeError(f"image: {channels} channels cannot be encoded (image of shape {pixels.shape} "
                        "after conversion to HWC; 1, 3 or 4 channels are displayable)")
    encoded = (pb.integer(1, height) + pb.integer(2, width) + pb.integer(3, channels)
               + pb.length_delimited(4, encode_png(pixels)))
    return _summary(pb.string(1, tag) + pb.submessage(4, encoded))


def figure_to_image(figures, close: bool = True) -> np.ndarray:
    """A matplotlib figure (or list) rendered by the Agg backend: (3, H, W) uint8 (or N of them)."""
    try:
        import matplotlib.pyplot as plt
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as err:
        raise ImportError("add_figure needs matplotlib (pip install matplotlib)") from err

    def render(figure):
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        w, h = figure.canvas.get_width_height()
        rgba = np.frombuffer(canvas.buffer_rgba(), dtype=np.uint8).reshape(h, w, 4)
        if close:
            plt.close(figure)
        return np.moveaxis(rgba[:, :, :3], 2, 0)

    if isinstance(figures, list):
        return np.stack([render(f) for f in figures])
    return render(figures)


# ----------------------------------------------------------------------------- text

def text(tag: str, text: str) -> bytes:
    """The text plugin's summary: a DT_STRING tensor of shape [1] under ``<tag>/text_summary``;
    the plugin content (TextPluginData version 0) serializes to nothing."""
    shape = pb.submessage(2, pb.integer(1, 1))
    tensor = (pb.integer(1, DT_STRING) + pb.submessage(2, shape)
              + pb.length_delimited(8, text.encode("utf-8"), always=True))
    return _summary(pb.string(1, tag + "/text_summary") + pb.submessage(8, tensor)
                    + pb.submessage(9, _metadata("text")))


# ----------------------------------------------------------------------------- hparams
# google.protobuf.Value: 2 =number_value, 3 =string_value, 4 =bool_value; ListValue: 1 values.
# HParamInfo: 1 name, 4 type (DATA_TYPE_STRING 1, BOOL 2, FLOAT64 3), 5 =domain_discrete.
# MetricInfo: 1 name: MetricName {2 tag}. Experiment: 4 hparam_infos, 5 metric_infos.
# SessionStartInfo: 1 hparams (map<string, Value>: entries {1 key, 2 value}).
# SessionEndInfo: 1 status (STATUS_SUCCESS 1).

EXPERIMENT_TAG = "_hparams_/experiment"
SESSION_START_INFO_TAG = "_hparams_/session_start_info"
SESSION_END_INFO_TAG = "_hparams_/session_end_info"
_FLOAT64, _STRING, _BOOL = 3, 1, 2


def _value(kind: int, v) -> bytes:
    if kind == _FLOAT64:
        return pb.double(2, v, always=True)
    if kind == _STRING:
        return pb.string(3, v, always=True)
    return pb.integer(4, v, always=True)


def hparams(hparam_dict, metric_dict, hparam_domain_discrete=None) -> tuple[bytes, bytes, bytes]:
    """The three summaries of the hparams plugin: experiment (names and types of the hparams and
    metrics), session start (the values), session end (success). As torch, ``bool`` values are
    logged as numbers (bool is an int) and ``None`` values are skipped."""
    if not isinstance(hparam_dict, dict):
        raise TypeError("parameter: hparam_dict should be a dictionary, nothing logged.")
    if not isinstance(metric_dict, dict):
        raise TypeError("parameter: metric_dict should be a dictionary, nothing logged.")
    hparam_domain_discrete = hparam_domain_discrete or {}
    if not isinstance(hparam_domain_discrete, dict):
        raise TypeError("parameter: hparam_domain_discrete should be a dictionary, nothing logged.")
    for k, v in hparam_domain_discrete.items():
        if k not in hparam_dict or not isinstance(v, list) or not all(isinstance(d, type(hparam_dict[k])) for d in v):
            raise TypeError(f"parameter: hparam_domain_discrete[{k}] should be a list of same type as hparam_dict[{k}].")

    infos, entries = [], []
    for k, v in hparam_dict.items():
        if v is None:
            continue
        if isinstance(v, (int, float)):
            kind = _FLOAT64
        elif isinstance(v, str):
            kind = _STRING
        elif isinstance(v, Tensor):
            kind, v = _FLOAT64, make_np(v).reshape(-1)[0]
        else:
            raise ValueError("value should be one of int, float, str, bool, or tinymm Tensor")
        entries.append(pb.submessage(1, pb.string(1, k) + pb.submessage(2, _value(kind, v))))
        info = pb.string(1, k) + pb.integer(4, kind)
        if k in hparam_domain_discrete and not isinstance(hparam_dict[k], Tensor):
            info += pb.submessage(5, b"".join(pb.submessage(1, _value(kind, d)) for d in hparam_domain_discrete[k]))
        infos.append(pb.submessage(4, info))
    metrics = [pb.submessage(5, pb.submessage(1, pb.string(2, k))) for k in metric_dict]

    def plugin_summary(tag: str, number: int, payload: bytes) -> bytes:
        content = pb.submessage(number, payload)  # HParamsPluginData; version 0 is left out
        return _summary(pb.string(1, tag) + pb.submessage(9, _metadata("hparams", content)))

    return (plugin_summary(EXPERIMENT_TAG, 2, b"".join(infos + metrics)),
            plugin_summary(SESSION_START_INFO_TAG, 3, b"".join(entries)),
            plugin_summary(SESSION_END_INFO_TAG, 4, pb.integer(1, 1)))
