"""Gaps the probe9 scripts (tests/pytorch_scripts: vilt, flamingo, blip, av_fusion, coca_caption,
vqa_train: multimodal model code) found, each compared with torch."""
import numpy as np
import pytest

import tinymm as tm
from helpers import TORCH_REASON, torch

needs_torch = pytest.mark.skipif(torch is None, reason=TORCH_REASON)


# ---------------------------------------------------------------- containers holding None
@needs_torch
def test_module_list_and_dict_hold_none_as_torch():
    # flamingo-pytorch pairs each LM layer with a cross-attention block or None
    for lib in (torch, tm):
        layers = lib.nn.ModuleList([lib.nn.ModuleList([lib.nn.Linear(2, 2), None if i % 2 else lib.nn.Linear(2, 2)])
                                    for i in range(3)])
        assert [type(b).__name__ for _, b in layers] == ["Linear", "NoneType", "Linear"]
        assert sorted(layers.state_dict()) == ["0.0.bias", "0.0.weight", "0.1.bias", "0.1.weight", "1.0.bias",
                                               "1.0.weight", "2.0.bias", "2.0.weight", "2.1.bias", "2.1.weight"]
        assert sum(p.numel() for p in layers.parameters()) == 30
        layers.eval()
        assert "(1): None" in repr(layers)
        inner = lib.nn.ModuleList([lib.nn.Linear(2, 2)])
        inner.insert(0, None)
        assert inner[0] is None and len(inner) == 2
        d = lib.nn.ModuleDict({"a": None, "b": lib.nn.Linear(2, 2)})
        assert d["a"] is None and len(d) == 2 and len(list(d.parameters())) == 2
        with pytest.raises(TypeError, match="int is not a Module subclass"):
            lib.nn.ModuleList([3])
