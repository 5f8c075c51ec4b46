"""Packaging: every package folder is listed in pyproject.toml, and a built wheel installs
``kernels/`` as ``tinymm.kernels`` and ``benchmarks/`` as ``tinymm.benchmarks``, so that
``tinymm bench`` works from the wheel and never runs code from the current directory."""
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
    for top, dotted in (("tinymm", "tinymm"), ("kernels", "tinymm.kernels"), ("benchmarks", "tinymm.benchmarks")):
        for folder, _, files in os.walk(os.path.join(ROOT, top)):
            if "__init__.py" in files and "__pycache__" not in folder:
                rel = os.path.relpath(folder, os.path.join(ROOT, top))
                found.add(dotted if rel == "." else dotted + "." + rel.replace(os.sep, "."))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    missing = _package_folders() - _listed_packages()
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {sorted(missing)}"


def test_benchmarks_import_each_other_relatively():
    # Installed as tinymm.benchmarks there is no top-level ``benchmarks`` package to import from.
    bad = []
    for name in sorted(os.listdir(os.path.join(ROOT, "benchmarks"))):
        if name.endswith(".py"):
            text = open(os.path.join(ROOT, "benchmarks", name)).read()
            if re.search(r"^\s*(from benchmarks[.\s]|import benchmarks\b)", text, re.M):
                bad.append(name)
    assert not bad, f"use relative imports (from .harness import ...) in benchmarks/{bad}"


def test_wheel_installs_kernels_and_benchmarks_and_bench_runs_from_it(tmp_path):
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
    assert "tinymm/benchmarks/harness.py" in names and "tinymm/benchmarks/overhead.py" in names
    assert not any(n.startswith(("kernels/", "benchmarks/")) for n in names)

    site = tmp_path / "site"
    out = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    # A hostile checkout in the current directory: its benchmarks must never be imported.
    work = tmp_path / "work"
    (work / "benchmarks").mkdir(parents=True)
    marker = tmp_path / "pwned"
    evil = f"open({str(marker)!r}, 'w').close()\ndef main(argv=None):\n    return 0\n"
    for f in ("__init__.py", "harness.py", "overhead.py", "evil.py"):
        (work / "benchmarks" / f).write_text(evil)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    run = lambda *a: subprocess.run([sys.executable, "-m", "tinymm.cli", "bench", *a], cwd=work, env=env,
                                    capture_output=True, text=True, timeout=300)
    listed = run("--list")
    assert listed.returncode == 0, listed.stderr
    assert "overhead" in listed.stdout and "evil" not in listed.stdout
    unknown = run("evil")
    assert unknown.returncode == 2 and "unknown benchmark 'evil'" in unknown.stderr
    helped = run("overhead", "--help")
    assert helped.returncode == 0 and "--repeat" in helped.stdout, helped.stderr
    assert str(site) in subprocess.run(
        [sys.executable, "-c", "import tinymm.benchmarks.harness as h; print(h.__file__)"],
        cwd=work, env=env, capture_output=True, text=True).stdout
    assert not marker.exists(), "tinymm bench imported code from the current directory"
