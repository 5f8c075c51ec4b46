"""tinymm.metrics sits on floor 6: plain arrays in, numbers out. Its modules import neither
scikit-learn (a test oracle only) nor the tensor/autograd floors nor anything from nn, optim,
data, models or train; CuPy, torch and matplotlib are never imported at module level."""
import ast
import subprocess
import sys
from pathlib import Path

import tinymm.metrics

PACKAGE_DIR = Path(tinymm.metrics.__file__).parent
FORBIDDEN = ("sklearn", "scipy", "cupy", "torch", "matplotlib", "tinymm")
ALLOWED_TINYMM = ("tinymm._atomic",)  # floor-2 utilities with no tinymm imports of their own


def _module_level_imports(path):
    """Absolute modules imported at module level (imports inside functions are lazy)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in tree.body:
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                yield node.module
            elif node.level > 1:  # reaching above tinymm.metrics
                yield "tinymm." + (node.module or "")


def test_floor_six_imports():
    files = sorted(PACKAGE_DIR.glob("*.py"))
    assert len(files) > 5
    for path in files:
        for module in _module_level_imports(path):
            top = module.split(".")[0]
            assert top not in FORBIDDEN or module in ALLOWED_TINYMM, f"{path.name} imports {module}"


def test_importing_tinymm_metrics_does_not_import_sklearn():
    code = "import sys, tinymm.metrics; assert 'sklearn' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_public_names():
    for name in tinymm.metrics.__all__:
        assert hasattr(tinymm.metrics, name), name
    assert {"accuracy_score", "f1_score", "roc_auc_score", "recall_at_k", "MetricCollection",
            "plot_confusion_matrix", "classification_report"} <= set(tinymm.metrics.__all__)
