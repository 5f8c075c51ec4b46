"""tinymm.utils.tensorboard.SummaryWriter: event files read back by tinymm's reader, compared
with what torch's own SummaryWriter writes for the same calls (byte for byte, images by pixels),
and read by TensorBoard's EventAccumulator. The torch and TensorBoard comparisons need the
``tensorboard`` package, which the dev extra does not install: they skip with the reason."""
import os
import struct
import sys
import zlib

import numpy as np
import pytest

import tinymm
from tinymm.utils.tensorboard import SummaryWriter
from tinymm.utils.tensorboard import _proto as pb
from tinymm.utils.tensorboard._record import crc32c, frame, masked_crc32c
from tinymm.utils.tensorboard.reader import (HPARAMS_PLUGIN_DATA, decode_event, event_files, read_events,
                                             read_records, scalars)

from helpers import TORCH_REASON, torch

try:
    from torch.utils.tensorboard import SummaryWriter as TorchWriter
    TB_REASON = None
except ImportError as err:  # torch's writer needs the tensorboard package
    TorchWriter = None
    TB_REASON = f"torch.utils.tensorboard is not importable ({err}); pip install tensorboard to compare"

needs_torch_writer = pytest.mark.skipif(TorchWriter is None, reason=TB_REASON or "")


def decode_png(data: bytes) -> np.ndarray:
    """tinymm's PNGs: 8-bit, unfiltered rows (filter byte 0), one IDAT chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        assert struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])[0] == zlib.crc32(kind + body)
        chunks[kind] = body
        pos += 12 + length
    width, height, depth, color = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    channels = {0: 1, 4: 2, 2: 3, 6: 4}[color]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(height, 1 + width * channels)
    assert depth == 8 and not rows[:, 0].any()
    return rows[:, 1:].reshape(height, width, channels)


def values_of(path):
    return [v for e in read_events(path) for v in e.get("summary", {}).get("value", [])]


# ----------------------------------------------------------------------------- format pieces

def test_crc32c_and_record_framing():
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    data = b"hello"
    record = frame(data)
    assert struct.unpack("<Q", record[:8])[0] == 5 and record[12:17] == data
    assert struct.unpack("<I", record[-4:])[0] == masked_crc32c(data)


def test_varints_and_field_defaults():
    assert pb.varint(1) == b"\x01" and pb.varint(300) == b"\xac\x02"
    assert pb.varint(-1) == b"\xff" * 9 + b"\x01"  # int64 two's complement: 10 bytes
    assert pb.integer(2, 0) == b"" and pb.double(1, 0.0) == b""  # proto3 leaves defaults out ...
    assert pb.float32(2, 0.0, always=True) == b"\x15\x00\x00\x00\x00"  # ... except a oneof member
    assert pb.double(1, -0.0) != b""
    msg = pb.integer(2, -5) + pb.string(3, "é") + pb.submessage(5, b"")
    assert pb.decode(msg, {2: ("step", "int64"), 3: ("s", "string"), 5: ("m", {})}) == {"step": -5, "s": "é", "m": {}}


def test_corrupt_record_is_reported(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_scalar("a", 1.0, 0)
    (path,) = event_files(str(tmp_path))
    blob = bytearray(open(path, "rb").read())
    blob[-6] ^= 0xFF
    open(path, "wb").write(bytes(blob))
    with pytest.raises(ValueError, match="record 1 has a bad data checksum"):
        read_records(path)


# ----------------------------------------------------------------------------- round trips

def test_scalars_round_trip(tmp_path):
    with SummaryWriter(str(tmp_path)) as w:
        assert w.get_logdir() == str(tmp_path)
        w.add_scalar("loss", tinymm.tensor(0.25), 3, walltime=100.5)
        w.add_scalar("loss", np.array([[0.125]], np.float64), 4, walltime=101.0)
        w.add_scalar("loss", 7, 5, walltime=102.0)
        w.add_scalar("zero", 0.0, 0, walltime=103.0)
    events = read_events(str(tmp_path))
    assert events[0]["file_version"] == "brain.Event:2" and "summary" not in events[0]
    assert scalars(str(tmp_path)) == {"loss": [(3, 100.5, 0.25), (4, 101.0, 0.125), (5, 102.0, 7.0)],
                                      "zero": [(0, 103.0, 0.0)]}
    assert values_of(str(tmp_path))[-1] == {"tag": "zero", "simple_value": 0.0}  # a oneof zero is stored


def test_walltime_defaults_to_now_and_file_name(tmp_path):
    import time
    before = time.time()
    with SummaryWriter(tmp_path, filename_suffix=".v2") as w:
        w.add_scalar("a", 1.0)
    (path,) = event_files(str(tmp_path))
    name = os.path.basename(path)
    assert name.startswith("events.out.tfevents.") and name.endswith(f".{os.getpid()}.{name.split('.')[-2]}.v2")
    event = read_events(path)[1]
    assert before <= event["wall_time"] <= time.time() and event["step"] == 0


def test_add_scalars_writes_one_run_per_tag(tmp_path):
    w = SummaryWriter(tmp_path)
    w.add_scalars("run/14h", {"xsinx": 1.5, "tanx": tinymm.tensor([2.0])}, 9, walltime=50.0)
    w.add_scalars("run/14h", {"xsinx": 2.5}, 10, walltime=51.0)
    w.close()
    assert sorted(d.name for d in tmp_path.iterdir() if d.is_dir()) == ["run_14h_tanx", "run_14h_xsinx"]
    assert scalars(str(tmp_path / "run_14h_xsinx")) == {"run/14h": [(9, 50.0, 1.5), (10, 51.0, 2.5)]}
    assert scalars(str(tmp_path / "run_14h_tanx")) == {"run/14h": [(9, 50.0, 2.0)]}
    assert scalars(str(tmp_path)) == {}


def test_histogram_round_trip(tmp_path):
    x = np.random.default_rng(0).standard_normal(500)
    with SummaryWriter(tmp_path) as w:
        w.add_histogram("w", tinymm.tensor(x.astype(np.float32)), 2)
        w.add_histogram("counts", x, 3, bins=4)
    h, h4 = (v["histo"] for v in values_of(str(tmp_path)))
    x32 = x.astype(np.float32).astype(np.float64)
    assert (h["min"], h["max"], h["num"]) == (x32.min(), x32.max(), 500.0)
    assert np.isclose(h["sum"], x32.sum()) and np.isclose(h["sum_squares"], (x32 ** 2).sum())
    assert sum(h["bucket"]) == 500 and h["bucket"][0] == 0  # an empty bucket keeps the left edge
    limits = np.array(h["bucket_limit"])
    assert np.all(np.diff(limits) > 0) and limits[0] < x32.min() and limits[-1] >= x32.max()
    positive = limits[limits > 1e-12]
    assert np.allclose(positive[1:] / positive[:-1], 1.1, rtol=1e-9)  # TensorFlow's exponential edges
    counts, edges = np.histogram(x, bins=4)
    assert h4["bucket"] == [0.0] + counts.tolist() and h4["bucket_limit"] == edges.tolist()
    with pytest.raises(ValueError, match="The input has no element"):
        SummaryWriter(tmp_path / "e").add_histogram("e", np.zeros(0))


def test_tensorflow_bins(tmp_path):
    with SummaryWriter(tmp_path) as w:
        bins = w.default_bins
    half = (len(bins) - 1) // 2
    assert bins[half] == 0 and bins[half + 1] == 1e-12 and bins[0] == -bins[-1] and bins[-1] < 1e20 <= bins[-1] * 1.1
    if TorchWriter is not None:
        with TorchWriter(str(tmp_path / "torch")) as tw:
            assert bins == tw.default_bins


@pytest.mark.parametrize("shape, fmt, kind", [((3, 4, 5), "CHW", "float"), ((4, 5, 3), "HWC", "uint8"),
                                              ((1, 4, 5), "CHW", "float"), ((4, 5), "HW", "float"),
                                              ((5, 4), "WH", "uint8"), ((4, 5, 4), "HWC", "uint8")])
def test_image_round_trip(tmp_path, shape, fmt, kind):
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, shape).astype(np.uint8) if kind == "uint8" else rng.uniform(-0.2, 1.2, shape)
    with SummaryWriter(tmp_path) as w:
        w.add_image("img", tinymm.tensor(img) if kind == "float" else img, 1, dataformats=fmt)
    (value,) = values_of(str(tmp_path))
    pixels = decode_png(value["image"]["encoded_image_string"])
    hwc = np.moveaxis(img, [fmt.index(c) for c in "HWC" if c in fmt], range(len(fmt)))
    hwc = hwc[..., None] if hwc.ndim == 2 else hwc
    expect = hwc if kind == "uint8" else (hwc.astype(np.float32) * 255).clip(0, 255).astype(np.uint8)
    if expect.shape[2] == 1:
        expect = np.repeat(expect, 3, axis=2)
    np.testing.assert_array_equal(pixels, expect)
    assert (value["image"]["height"], value["image"]["width"], value["image"]["colorspace"]) == expect.shape


def test_add_images_makes_a_grid(tmp_path):
    batch = np.random.default_rng(2).integers(0, 256, (10, 1, 2, 3)).astype(np.uint8)
    with SummaryWriter(tmp_path) as w:
        w.add_images("batch", batch, 0)
        w.add_images("nhwc", batch.transpose(0, 2, 3, 1), 1, dataformats="NHWC")
    first, second = (decode_png(v["image"]["encoded_image_string"]) for v in values_of(str(tmp_path)))
    assert first.shape == (4, 24, 3)  # 8 per row, 2 rows; unused cells black
    np.testing.assert_array_equal(first[2:4, 3:6, 0], batch[9, 0])
    np.testing.assert_array_equal(first[2:4, 6:, :], 0)
    np.testing.assert_array_equal(first, second)


def test_text_and_hparams_round_trip(tmp_path):
    with SummaryWriter(tmp_path) as w:
        w.add_text("notes", "héllo **x**", 2)
        w.add_hparams({"lr": 0.1, "opt": "adam", "amp": True, "skip": None}, {"hp/acc": 0.75},
                      hparam_domain_discrete={"opt": ["adam", "sgd"]}, run_name="trial")
    (text,) = values_of(str(tmp_path))
    assert text["tag"] == "notes/text_summary" and text["metadata"]["plugin_data"] == {"plugin_name": "text"}
    assert text["tensor"] == {"dtype": 7, "tensor_shape": {"dim": [{"size": 1}]}, "string_val": ["héllo **x**".encode()]}
    exp, start, end, acc = values_of(str(tmp_path / "trial"))
    assert acc == {"tag": "hp/acc", "simple_value": 0.75}
    content = {v["tag"]: pb.decode(v["metadata"]["plugin_data"]["content"], HPARAMS_PLUGIN_DATA) for v in (exp, start, end)}
    infos = content["_hparams_/experiment"]["experiment"]
    assert [(i["name"], i["type"]) for i in infos["hparam_infos"]] == [("lr", 3), ("opt", 1), ("amp", 3)]
    assert infos["hparam_infos"][1]["domain_discrete"] == {"values": [{"string_value": "adam"}, {"string_value": "sgd"}]}
    assert infos["metric_infos"] == [{"name": {"tag": "hp/acc"}}]
    hp = {e["key"]: e["value"] for e in content["_hparams_/session_start_info"]["session_start_info"]["hparams"]}
    assert hp == {"lr": {"number_value": 0.1}, "opt": {"string_value": "adam"}, "amp": {"number_value": 1.0}}
    assert content["_hparams_/session_end_info"] == {"session_end_info": {"status": 1}}


def test_purge_step_close_reopen_and_default_logdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    w = SummaryWriter(comment="_lr0.1", purge_step=7)
    logdir = w.get_logdir()
    assert logdir.startswith("runs" + os.sep) and logdir.endswith("_" + __import__("socket").gethostname() + "_lr0.1")
    w.add_scalar("a", 1.0, 7)
    w.close()
    w.add_scalar("a", 2.0, 8)  # after close: a new event file in the same directory
    w.flush()
    files = event_files(logdir)
    assert len(files) == 2
    first = read_events(files[0])
    assert first[1] == {"wall_time": first[1]["wall_time"], "step": 7, "file_version": "brain.Event:2"}
    assert first[2]["session_log"] == {"status": 1} and first[2]["step"] == 7
    assert [e["step"] for e in read_events(files[1])] == [0, 8]  # no purge events the second time
    w.close()


def test_flush_every_max_queue_events(tmp_path):
    w = SummaryWriter(tmp_path, max_queue=3)
    (path,) = event_files(str(tmp_path))
    w.add_scalar("a", 1.0, 0)
    w.add_scalar("a", 1.0, 1)
    assert len(read_records(path)) == 1  # only the file_version event is on disk
    w.add_scalar("a", 1.0, 2)
    assert len(read_records(path)) == 4
    w.close()


def test_boundary_errors(tmp_path):
    w = SummaryWriter(tmp_path)
    with pytest.raises(AssertionError, match=r"Tensor should contain one element \(0 dimensions\)\. "
                                             r"Was given size: 3 and 1 dimensions\."):
        w.add_scalar("a", tinymm.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(AssertionError, match="size of input tensor and input format are different"):
        w.add_image("i", np.zeros((3, 4, 5)), dataformats="HW")
    with pytest.raises(AssertionError, match="can not use the same dimension shorthand twice"):
        w.add_image("i", np.zeros((3, 4, 5)), dataformats="CHH")
    with pytest.raises(AssertionError, match="should be an ordering of NCHW, CHW or HW"):
        w.add_image("i", np.zeros((3, 4, 5)), dataformats="CHX")
    with pytest.raises(AssertionError, match="Input should be a 4D numpy array with 3 channels"):
        w.add_images("i", np.zeros((2, 2, 4, 5)))
    with pytest.raises(TypeError, match="hparam_dict and metric_dict should be dictionary"):
        w.add_hparams([("lr", 1)], {})
    with pytest.raises(ValueError, match="value should be one of int, float, str, bool"):
        w.add_hparams({"lr": [1]}, {})
    with pytest.raises(NotImplementedError, match="numpy array or tinymm Tensor are expected"):
        w.add_histogram("h", [1.0, 2.0])
    w.close()


def test_add_figure_without_matplotlib_says_so(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with SummaryWriter(tmp_path) as w, pytest.raises(ImportError, match="add_figure needs matplotlib"):
        w.add_figure("fig", object())


def test_add_figure(tmp_path):
    pytest.importorskip("matplotlib", reason="add_figure needs matplotlib, not installed")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig = plt.figure(figsize=(1, 0.5), dpi=20)
    with SummaryWriter(tmp_path) as w:
        w.add_figure("fig", fig, 0)
    (value,) = values_of(str(tmp_path))
    assert decode_png(value["image"]["encoded_image_string"]).shape == (10, 20, 3)
    assert not plt.fignum_exists(fig.number)  # closed, as close=True asks


# ----------------------------------------------------------------------------- against torch

def _log_everything(writer_cls, logdir, tensor):
    rng = np.random.default_rng(0)
    hist = rng.standard_normal(300)
    img = rng.random((3, 5, 6)).astype(np.float32)
    with writer_cls(logdir) as w:
        w.add_scalar("loss", tensor(np.float32(0.25)), 3, walltime=100.5)
        w.add_scalar("zero", 0.0, 0, walltime=101.0)
        w.add_scalar("neg", -2, -5, walltime=101.0)
        w.add_scalar("new", 1.5, 1, walltime=1.0, new_style=True)
        w.add_scalar("new64", 1.5, 1, walltime=1.0, new_style=True, double_precision=True)
        w.add_histogram("h", tensor(hist), 7, walltime=102.0)
        w.add_histogram("h_sub", tensor(hist), 7, walltime=102.0, bins=10, max_bins=3)
        w.add_histogram("h_auto", tensor(np.arange(10.0)), 7, walltime=102.0, bins="auto")
        w.add_histogram_raw("raw", 0.0, 3.0, 4, 6.0, 14.0, [1.0, 2.0, 3.0], [1, 2, 1], 8, walltime=102.5)
        w.add_text("t", "héllo **x**", 2, walltime=103.0)
        w.add_scalars("m/a", {"x": 1.0, "y": tensor(np.array([2.0]))}, 4, walltime=104.0)
        w.add_hparams({"lr": 0.1, "b": True, "name": "adam", "n": 3, "z": None}, {"acc": 0.5},
                      hparam_domain_discrete={"name": ["adam", "sgd"]}, run_name="hp", global_step=1)
        w.add_image("img", tensor(img), 1, walltime=105.0)
        w.add_images("grid", tensor(rng.random((9, 1, 2, 3))), 1, walltime=106.0)
        w.add_image("gray_hw", (rng.random((4, 3)) * 255).astype(np.uint8), 2, walltime=107.0, dataformats="HW")


def _runs(logdir):
    return {os.path.relpath(root, logdir): [r for f in event_files(root) for r in read_records(f)][1:]
            for root, _, files in os.walk(logdir) if any(f.startswith("events.") for f in files)}


@needs_torch_writer
def test_files_match_torch_summary_writer(tmp_path):
    from PIL import Image
    import io
    _log_everything(SummaryWriter, str(tmp_path / "tm"), lambda a: tinymm.tensor(a) if isinstance(a, np.ndarray) else a)
    _log_everything(TorchWriter, str(tmp_path / "pt"), lambda a: torch.tensor(a) if isinstance(a, np.ndarray) else a)
    ours, theirs = _runs(str(tmp_path / "tm")), _runs(str(tmp_path / "pt"))
    same = 0
    assert sorted(ours) == sorted(theirs) == [".", "hp", "m_a_x", "m_a_y"]
    for run in ours:
        assert len(ours[run]) == len(theirs[run]), run
        for mine, torchs in zip(ours[run], theirs[run]):
            if mine == torchs:  # scalars, histograms, text: the same bytes
                same += 1
                continue
            a, b = decode_event(mine), decode_event(torchs)
            (va,), (vb,) = a["summary"]["value"], b["summary"]["value"]
            if "image" in va:  # PNG compression differs (Pillow filters rows): compare pixels
                ia, ib = va["image"].pop("encoded_image_string"), vb["image"].pop("encoded_image_string")
                np.testing.assert_array_equal(decode_png(ia), np.asarray(Image.open(io.BytesIO(ib))))
                assert a == b
            else:  # the hparams run: torch stamps its events with time.time(), and map order differs
                assert run == "hp" and abs(a.pop("wall_time") - b.pop("wall_time")) < 60
                if "metadata" in va:
                    da, db = (pb.decode(v["metadata"]["plugin_data"].pop("content"), HPARAMS_PLUGIN_DATA)
                              for v in (va, vb))
                    for d in (da, db):
                        if "session_start_info" in d:
                            d["session_start_info"]["hparams"].sort(key=lambda e: e["key"])
                    assert da == db
                assert a == b
    # 13 events in the main run (3 of them images), one in each add_scalars run, 4 in the hparams run
    assert [len(ours[r]) for r in (".", "m_a_x", "m_a_y", "hp")] == [13, 1, 1, 4] and same == 12


@needs_torch_writer
def test_error_messages_match_torch(tmp_path):
    def message(writer, call):
        with pytest.raises(Exception) as info:
            call(writer)
        writer.close()
        return type(info.value), " ".join(str(info.value).split())

    cases = [lambda w, T: w.add_scalar("a", T(np.ones(3))),
             lambda w, T: w.add_image("i", T(np.zeros((3, 4, 5))), dataformats="HW"),
             lambda w, T: w.add_image("i", T(np.zeros((3, 4, 5))), dataformats="CCW"),
             lambda w, T: w.add_images("i", T(np.zeros((2, 2, 4, 5)))),
             lambda w, T: w.add_histogram("h", T(np.zeros(0))),
             lambda w, T: w.add_hparams({"a": 1}, [])]
    for i, case in enumerate(cases):
        ours = message(SummaryWriter(tmp_path / f"t{i}"), lambda w: case(w, tinymm.tensor))
        theirs = message(TorchWriter(str(tmp_path / f"p{i}")), lambda w: case(w, torch.tensor))
        assert ours[0] is theirs[0] and ours[1] == theirs[1].replace("torch Tensor", "tinymm Tensor"), (ours, theirs)


@needs_torch_writer
def test_tensorboard_event_accumulator_reads_our_files(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
    _log_everything(SummaryWriter, str(tmp_path), lambda a: tinymm.tensor(a) if isinstance(a, np.ndarray) else a)
    acc = EventAccumulator(str(tmp_path), size_guidance={"images": 0, "histograms": 0, "tensors": 0})
    acc.Reload()
    assert [(s.step, s.wall_time, s.value) for s in acc.Scalars("loss")] == [(3, 100.5, 0.25)]
    assert [(s.step, s.value) for s in acc.Scalars("neg")] == [(-5, -2.0)]
    (h,) = acc.Histograms("h")
    assert h.step == 7 and h.histogram_value.num == 300 and sum(h.histogram_value.bucket) == 300
    img = acc.Images("img")[0]
    assert (img.step, img.width, img.height) == (1, 6, 5)
    (text,) = acc.Tensors("t/text_summary")
    assert text.tensor_proto.string_val == ["héllo **x**".encode()] and text.step == 2
    assert acc.Tensors("new")[0].tensor_proto.float_val == [1.5]
    multiplexer = EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(tmp_path))
    multiplexer.Reload()
    assert sorted(multiplexer.Runs()) == [".", "hp", "m_a_x", "m_a_y"]
    assert sorted(multiplexer.PluginRunToTagToContent("hparams")["hp"]) == [
        "_hparams_/experiment", "_hparams_/session_end_info", "_hparams_/session_start_info"]


# ----------------------------------------------------------------------------- profiler traces

def test_profiler_tensorboard_trace_handler(tmp_path):
    import gzip
    import json
    import re
    from tinymm.profiler import profile, record_function, schedule, tensorboard_trace_handler
    for use_gzip in (False, True):
        out = tmp_path / f"gz{use_gzip}"
        handler = tensorboard_trace_handler(str(out), worker_name="worker0", use_gzip=use_gzip)
        with profile(schedule=schedule(wait=0, warmup=1, active=1, repeat=2), on_trace_ready=handler) as prof:
            for _ in range(4):
                with record_function("step_body"):
                    tinymm.ones(2) + 1
                prof.step()
        names = sorted(os.listdir(out))
        suffix = r"\.pt\.trace\.json\.gz" if use_gzip else r"\.pt\.trace\.json"
        assert len(names) == 2 and all(re.fullmatch(r"worker0\.\d{19}" + suffix, n) for n in names), names
        with (gzip.open if use_gzip else open)(out / names[0], "rt") as f:
            trace = json.load(f)
        assert "step_body" in {e["name"] for e in trace["traceEvents"]}


@pytest.mark.skipif(torch is None, reason=TORCH_REASON)
def test_trace_handler_names_files_as_torch(tmp_path):
    from torch.profiler import tensorboard_trace_handler as torch_handler
    from tinymm.profiler import tensorboard_trace_handler

    class Recorder:  # stands in for a profile: records where the trace would go
        def export_chrome_trace(self, path, **kwargs):
            self.path = path

    for use_gzip in (False, True):
        names = []
        for make in (tensorboard_trace_handler, torch_handler):
            prof = Recorder()
            make(str(tmp_path / "traces"), use_gzip=use_gzip)(prof)
            names.append(os.path.basename(prof.path).split("."))
        ours, theirs = names
        assert os.path.dirname(prof.path) == str(tmp_path / "traces")
        assert ours[0] == theirs[0] and ours[2:] == theirs[2:] and len(ours[1]) == len(theirs[1])


# ----------------------------------------------------------------------------- a PyTorch script

SCRIPT = '''
import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
rng = np.random.default_rng(0)
X = torch.from_numpy(rng.standard_normal((16, 3)).astype(np.float32))
Y = X @ torch.from_numpy(np.array([[1.0], [-2.0], [0.5]], np.float32))
w = torch.zeros(3, 1, requires_grad=True)
with SummaryWriter(LOGDIR, flush_secs=1) as writer:
    for step in range(4):
        loss = ((X @ w - Y) ** 2).mean()
        loss.backward()
        with torch.no_grad():
            w -= 0.1 * w.grad
            w.grad.zero_()
        writer.add_scalar("train/loss", loss.item(), step, walltime=float(step))
        writer.add_scalars("w", {"0": w[0, 0], "1": w[1, 0]}, step, walltime=float(step))
        writer.add_histogram("w/hist", w, step, walltime=float(step))
    writer.add_text("notes", "done", 4, walltime=4.0)
'''


def test_a_pytorch_training_script_logs_through_tinymm(tmp_path):
    """The script runs with its torch imports pointed at tinymm; with torch's writer present it
    also runs on torch, and every event but the first of each file is the same bytes."""
    tinymm_src = SCRIPT.replace("import torch\n", "import tinymm as torch\n").replace("from torch.", "from tinymm.")
    exec(compile(tinymm_src, "script (tinymm)", "exec"), {"LOGDIR": str(tmp_path / "tm")})
    loss = scalars(str(tmp_path / "tm"))["train/loss"]
    assert [s for s, _, _ in loss] == [0, 1, 2, 3] and loss[3][2] < loss[0][2]
    assert len(scalars(str(tmp_path / "tm" / "w_1"))["w"]) == 4
    if TorchWriter is None:
        pytest.skip(TB_REASON)
    exec(compile(SCRIPT, "script (torch)", "exec"), {"LOGDIR": str(tmp_path / "pt")})
    ours, theirs = _runs(str(tmp_path / "tm")), _runs(str(tmp_path / "pt"))
    assert sorted(ours) == sorted(theirs) == [".", "w_0", "w_1"]
    for run in ours:
        for mine, torchs in zip(ours[run], theirs[run], strict=True):
            a, b = decode_event(mine), decode_event(torchs)
            value_a, value_b = a["summary"]["value"][0], b["summary"]["value"][0]
            if "simple_value" in value_a:  # the weights differ in float32 rounding
                assert value_a.pop("simple_value") == pytest.approx(value_b.pop("simple_value"), rel=1e-5)
                assert a == b
            elif "histo" in value_a:
                ha, hb = value_a.pop("histo"), value_b.pop("histo")
                assert ha["bucket_limit"] == hb["bucket_limit"] and ha["bucket"] == hb["bucket"]
                assert [ha[k] for k in ("min", "max", "num", "sum", "sum_squares")] == pytest.approx([hb[k] for k in ("min", "max", "num", "sum", "sum_squares")], rel=1e-5)
                assert a == b
            else:
                assert mine == torchs


def test_summary_module_functions_give_torchs_bytes(tmp_path):
    """``summary.hparams`` etc. return serialized Summaries that ``file_writer.add_summary`` takes
    (the pattern scripts use to log hparams into their own run)."""
    from tinymm.utils.tensorboard import summary
    exp, ssi, sei = summary.hparams({"lr": 0.1}, {"loss": 0})
    with SummaryWriter(tmp_path) as w:
        for s in (exp, ssi, sei):
            w.file_writer.add_summary(s, 0)
    assert [v["tag"] for v in values_of(str(tmp_path))] == [
        "_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"]
    with pytest.raises(NotImplementedError, match="rescale=2 is not supported"):
        summary.image("i", np.zeros((1, 3, 2, 2)), rescale=2)
    if TorchWriter is None:
        pytest.skip(TB_REASON)
    from torch.utils.tensorboard import summary as torch_summary
    assert [s.SerializeToString() for s in torch_summary.hparams({"lr": 0.1}, {"loss": 0})] == [exp, ssi, sei]
    assert torch_summary.scalar("a", 2.5, None, True, True).SerializeToString() == summary.scalar("a", 2.5, None, True, True)
    assert torch_summary.text("t", "x").SerializeToString() == summary.text("t", "x")
    assert (torch_summary.histogram_raw("r", 0, 2, 3, 3, 5, [1.0, 2.0], [1, 2]).SerializeToString()
            == summary.histogram_raw("r", 0, 2, 3, 3, 5, [1.0, 2.0], [1, 2]))


TENSOR_DTYPES = ["float16", "float32", "float64", "int8", "uint8", "int16", "int32", "int64", "complex64",
                 "complex128", "bool"]


def _tensor_values():
    rng = np.random.default_rng(3)
    base = rng.uniform(-3, 3, (2, 3))
    return {d: ((base + 1j * base[::-1]) if d.startswith("complex") else base > 0 if d == "bool"
                else np.abs(base * 40) if d == "uint8" else base * 40 if d.startswith("int") else base).astype(d)
            for d in TENSOR_DTYPES}


def test_add_tensor_round_trip(tmp_path):
    arrays = _tensor_values()
    with SummaryWriter(tmp_path) as w:
        for d, a in arrays.items():
            w.add_tensor(d, tinymm.tensor(a) if d not in ("int8", "int16", "uint8") else a, 1)
        w.add_tensor("scalar", np.float32(2.5), 2)
        with pytest.raises(ValueError, match="u16 has unsupported tensor dtype uint16"):
            w.add_tensor("u16", np.zeros(2, np.uint16))
    values = {v["tag"]: v for v in values_of(str(tmp_path))}
    fields = {"float32": "float_val", "float64": "double_val", "int8": "int_val", "int16": "int_val",
              "int32": "int_val", "uint8": "uint32_val", "int64": "int64_val", "bool": "bool_val",
              "complex64": "scomplex_val", "complex128": "dcomplex_val"}
    for d, field in fields.items():
        t = values[d]["tensor"]
        assert values[d]["metadata"] == {"plugin_data": {"plugin_name": "tensor"}}
        assert [x["size"] for x in t["tensor_shape"]["dim"]] == [2, 3]
        a = arrays[d]
        expect = a.reshape(-1).view(a.real.dtype) if d.startswith("complex") else a.reshape(-1)
        np.testing.assert_array_equal(np.array(t[field], expect.dtype), expect)
    assert values["scalar"]["tensor"] == {"dtype": 1, "tensor_shape": {"dim": [{"size": 1}]}, "float_val": [2.5]}  # a number: shape [1]


@needs_torch_writer
def test_add_tensor_matches_torch(tmp_path):
    arrays = _tensor_values()
    for writer_cls, tensor, name in ((SummaryWriter, lambda a: a, "tm"), (TorchWriter, torch.from_numpy, "pt")):
        with writer_cls(str(tmp_path / name)) as w:
            for d, a in arrays.items():
                w.add_tensor(d, tensor(a), 1, walltime=5.0)
            w.add_tensor("zero_dim", tensor(np.array(1.5)), 1, walltime=5.0)
    ours, theirs = _runs(str(tmp_path / "tm"))["."], _runs(str(tmp_path / "pt"))["."]
    assert len(ours) == len(TENSOR_DTYPES) + 1 and ours == theirs
