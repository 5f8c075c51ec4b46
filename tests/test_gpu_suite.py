"""benchmarks/gpu_suite.py --dry-run: the GPU suite's plumbing on the CPU (imports, every
workload's shapes and CPU check, the torch side when torch is installed, test collection, the
JSON and the table), so that the run on a lent GPU does not die of a typo."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECTIONS = ("environment", "tests", "attention", "conv", "lstm", "mlp")


def test_gpu_suite_dry_run_writes_its_json_and_table(tmp_path):
    out = tmp_path / "suite"
    # one test file to collect and two timed calls keep this short; the code paths are the GPU run's
    cmd = [sys.executable, os.path.join(ROOT, "benchmarks", "gpu_suite.py"), "--out", str(out), "--dry-run",
           "--tests", "tests/test_cuda_device.py", "--repeat", "2", "--warmup", "0"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")})
    log = proc.stdout[-8000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    report = json.loads((out / "gpu_suite.json").read_text())
    assert report["dry_run"] is True and report["ok"] is True
    for name in SECTIONS:
        assert report["sections"][name]["status"] == "ok", (name, report["sections"][name])
    assert "collected" in report["sections"]["tests"]["summary"]
    workloads = [r["workload"] for r in report["rows"]]
    for expected in ("attention", "seed CNN", "conv2d 8->8 3x3", "LSTM", "MLP"):
        assert any(w.startswith(expected) for w in workloads), (expected, workloads)
    for row in report["rows"]:
        assert row["check"] == "ok" and row["tinymm_ms"] > 0, row
    table = (out / "table.txt").read_text()
    assert table.splitlines()[0].startswith("workload")
    for w in workloads:
        assert w in table and w in proc.stdout
    assert (out / "pytest.log").exists()
