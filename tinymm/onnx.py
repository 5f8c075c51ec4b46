"""``torch.onnx``'s query that model code asks mid-forward: fairseq's SinusoidalPositionalEmbedding,
HuggingFace's and torchaudio's modules branch on ``torch.onnx.is_in_onnx_export()`` to take an
export-friendly path. tinymm has no ONNX exporter, so no forward ever runs inside an export and
the answer is always False, as torch's is outside ``torch.onnx.export``. ``export`` itself is
not here: asking for it is an AttributeError rather than a function that cannot do its job."""


def is_in_onnx_export() -> bool:
    """Whether a forward is running inside an ONNX export: never, in tinymm."""
    return False
