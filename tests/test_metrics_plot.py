"""plot_confusion_matrix writes a valid PNG without touching matplotlib's global state."""
import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib", reason="plotting needs matplotlib")

import tinymm.metrics as tm  # noqa: E402

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("normalize", [None, "true", "pred", "all"], ids=str)
def test_writes_a_png(tmp_path, normalize):
    cm = tm.confusion_matrix(["cat", "dog", "dog", "bird"], ["cat", "cat", "dog", "dog"])
    backend_before = matplotlib.get_backend()
    out = tm.plot_confusion_matrix(cm, tmp_path / "sub" / "cm.png",
                                   class_names=["bird", "cat", "dog"], normalize=normalize,
                                   title="pets")
    assert out == tmp_path / "sub" / "cm.png"
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC and len(data) > 1000
    assert matplotlib.get_backend() == backend_before
    assert list(tmp_path.joinpath("sub").iterdir()) == [out]  # no temporary file left


def test_accepts_a_string_path_and_default_names(tmp_path):
    out = tm.plot_confusion_matrix(np.array([[3, 1], [0, 2]]), str(tmp_path / "a.png"))
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="square"):
        tm.plot_confusion_matrix(np.ones((2, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="class_names has 3 names for a 2x2"):
        tm.plot_confusion_matrix(np.eye(2), tmp_path / "x.png", class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="normalize"):
        tm.plot_confusion_matrix(np.eye(2), tmp_path / "x.png", normalize="rows")
    assert not (tmp_path / "x.png").exists()
