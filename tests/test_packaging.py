"""Packaging: every package folder is listed in pyproject.toml, and a built wheel installs
``kernels/`` as ``tinymm.kernels``."""
import os
import re
import subprocess
import sys
import zipfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _listed_packages():
    text = open(os.path.join(ROOT, "pyproject.toml")).read()
    block = re.search(r"packages = \[(.*?)\]", text, re.S).group(1)
    return set(re.findall(r'"([\w.]+)"', block))


def _package_folders():
    found = set()
    for top, dotted in (("tinymm", "tinymm"), ("kernels", "tinymm.kernels")):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files and "__pycache__" not in folder:
                rel = os.path.relpath(folder, os.path.join(ROOT, top))
                found.add(dotted if rel == "." else dotted + "." + rel.replace(os.sep, "."))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    missing = _package_folders() - _listed_packages()
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_wheel_installs_kernels_as_tinymm_kernels(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), ROOT],
        capture_output=True, text=True,
    )
    if out.returncode != 0 and "No module named" in out.stderr:
        pytest.skip(f"cannot build a wheel here without build isolation: {out.stderr.strip()[-200:]}")
    assert out.returncode == 0, out.stderr
    (wheel,) = tmp_path.glob("tinymm-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "tinymm/kernels/__init__.py" in names and "tinymm/kernels/_common.py" in names
    assert not any(n.startswith("kernels/") for n in names)
