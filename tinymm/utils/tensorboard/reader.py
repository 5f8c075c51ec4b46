"""Read TensorBoard event files back into dicts: the inverse of the writer, used by the tests
and handy for looking at a run without TensorBoard.

    from tinymm.utils.tensorboard.reader import read_events, scalars
    events = read_events("runs/exp1")          # every event file in the directory, oldest first
    scalars("runs/exp1")                       # {tag: [(step, wall_time, value), ...]}

An event decodes to ``{"wall_time", "step", "file_version" | "summary" | "session_log", ...}``
with fields named as in TensorBoard's .proto files; ``step`` and ``wall_time`` are filled with 0
when absent (proto3 leaves defaults out). Records are checked against their CRCs.
"""
from __future__ import annotations

import glob
import os

from tinymm.utils.tensorboard._proto import decode
from tinymm.utils.tensorboard._record import unframe

PLUGIN_DATA = {1: ("plugin_name", "string"), 2: ("content", "bytes")}
SUMMARY_METADATA = {1: ("plugin_data", PLUGIN_DATA), 2: ("display_name", "string"),
                    3: ("summary_description", "string"), 4: ("data_class", "enum")}
IMAGE = {1: ("height", "int32"), 2: ("width", "int32"), 3: ("colorspace", "int32"),
         4: ("encoded_image_string", "bytes")}
HISTOGRAM = {1: ("min", "double"), 2: ("max", "double"), 3: ("num", "double"), 4: ("sum", "double"),
             5: ("sum_squares", "double"), 6: ("bucket_limit[]", "packed_double"), 7: ("bucket[]", "packed_double")}
TENSOR_SHAPE = {2: ("dim[]", {1: ("size", "int64"), 2: ("name", "string")})}
TENSOR = {1: ("dtype", "enum"), 2: ("tensor_shape", TENSOR_SHAPE), 5: ("float_val[]", "packed_float"),
          6: ("double_val[]", "packed_double"), 7: ("int_val[]", "packed_int"), 8: ("string_val[]", "bytes"),
          9: ("scomplex_val[]", "packed_float"), 10: ("int64_val[]", "packed_int"), 11: ("bool_val[]", "packed_int"),
          12: ("dcomplex_val[]", "packed_double"), 13: ("half_val[]", "packed_int"), 16: ("uint32_val[]", "packed_int")}
SUMMARY_VALUE = {1: ("tag", "string"), 2: ("simple_value", "float"), 4: ("image", IMAGE), 5: ("histo", HISTOGRAM),
                 7: ("node_name", "string"), 8: ("tensor", TENSOR), 9: ("metadata", SUMMARY_METADATA)}
SUMMARY = {1: ("value[]", SUMMARY_VALUE)}
EVENT = {1: ("wall_time", "double"), 2: ("step", "int64"), 3: ("file_version", "string"), 5: ("summary", SUMMARY),
         7: ("session_log", {1: ("status", "enum"), 2: ("checkpoint_path", "string"), 3: ("msg", "string")}),
         10: ("source_metadata", {1: ("writer", "string")})}

# the hparams plugin's content (SummaryMetadata.plugin_data.content when plugin_name == "hparams")
VALUE: dict = {1: ("null_value", "enum"), 2: ("number_value", "double"), 3: ("string_value", "string"),
               4: ("bool_value", "bool")}
VALUE[6] = ("list_value", {1: ("values[]", VALUE)})
HPARAMS_PLUGIN_DATA = {
    1: ("version", "int32"),
    2: ("experiment", {4: ("hparam_infos[]", {1: ("name", "string"), 4: ("type", "enum"),
                                              5: ("domain_discrete", {1: ("values[]", VALUE)})}),
                       5: ("metric_infos[]", {1: ("name", {1: ("group", "string"), 2: ("tag", "string")})})}),
    3: ("session_start_info", {1: ("hparams[]", {1: ("key", "string"), 2: ("value", VALUE)})}),
    4: ("session_end_info", {1: ("status", "enum")}),
}


def event_files(path: str) -> list[str]:
    """``path`` itself if it is a file, else the event files directly in that directory, by name
    (the name starts with the creation time, so oldest first)."""
    if os.path.isfile(path):
        return [path]
    return sorted(glob.glob(os.path.join(glob.escape(str(path)), "events.out.tfevents.*")))


def read_records(path: str) -> list[bytes]:
    """The serialized Event of each record of one event file."""
    with open(path, "rb") as f:
        return unframe(f.read(), name=path)


def decode_event(data: bytes) -> dict:
    event = decode(data, EVENT)
    event.setdefault("wall_time", 0.0)
    event.setdefault("step", 0)
    return event


def read_events(path: str) -> list[dict]:
    """Every event of every event file at ``path`` (a file or a run directory), in file order."""
    return [decode_event(r) for f in event_files(path) for r in read_records(f)]


def scalars(path: str) -> dict[str, list[tuple[int, float, float]]]:
    """``{tag: [(step, wall_time, value), ...]}`` of the ``simple_value`` summaries at ``path``."""
    out: dict = {}
    for event in read_events(path):
        for value in event.get("summary", {}).get("value", []):
            if "simple_value" in value:
                out.setdefault(value["tag"], []).append((event["step"], event["wall_time"], value["simple_value"]))
    return out
