"""The ``tinymm`` command, run as a user would (a subprocess): a mistake gets one clear line on
stderr, no traceback, and the right exit status (2 usage, 1 environment, 130 Ctrl-C)."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env():
    return {**os.environ, "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), "PYTHONUNBUFFERED": "1"}


def tinymm(*args, cwd=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "tinymm.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=_env(), timeout=timeout)


def _one_clean_line(out, code):
    assert out.returncode == code, (out.returncode, out.stderr)
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    return out.stderr.strip()


@pytest.mark.parametrize("args, expect", [
    (["bench", "overhead", "--repeat", "0"], "--repeat: expected an integer >= 1, got '0'"),
    (["bench", "overhead", "--repeat", "x"], "--repeat: expected an integer >= 1, got 'x'"),
    (["bench", "overhead", "--warmup", "-1"], "--warmup: expected an integer >= 0"),
    (["bench", "overhead", "--min-time", "nan"], "--min-time: expected a number of seconds >= 0"),
    (["bench", "overhead", "--impls", "bogus"], "--impls: unknown implementation(s) 'bogus'; choose from tinymm, numpy, torch"),
    (["bench", "overhead", "--impls", ","], "--impls: unknown implementation(s) (none given)"),
    (["bench", "no_such_bench"], "unknown benchmark 'no_such_bench'"),
    (["bench", "overhead", "--json", ""], "--json : expected a file path, got an empty string"),
    (["data", "summary", "--task", "nope"], "tinymm data: load_task: unknown task 'nope'"),
    (["data", "summary", "--num-samples", "-5"], "num_samples must be a positive int, got -5"),
    (["data", "summary", "--split", "nope"], "unknown split 'nope'"),
    (["data", "summary", "--max-samples", "0"], "num_samples must be a positive int, got 0"),
    (["frobnicate"], "invalid choice"),
])
def test_usage_errors_exit_2_with_one_line(args, expect):
    err = _one_clean_line(tinymm(*args), 2)
    assert expect in err


def test_json_under_a_file_is_refused_before_any_timing(tmp_path):
    (tmp_path / "afile").write_text("x")
    out = tinymm("bench", "overhead", "--json", str(tmp_path / "afile" / "out.json"))
    err = _one_clean_line(out, 2)
    assert f"--json {tmp_path / 'afile' / 'out.json'}: {tmp_path / 'afile'} is a file, not a folder" in err
    assert out.stdout == ""  # nothing was timed


def test_bench_list_and_data_summary_work():
    out = tinymm("bench", "--list")
    assert out.returncode == 0 and "overhead" in out.stdout and "harness" not in out.stdout
    out = tinymm("data", "summary", "--task", "image_cls", "--num-samples", "300")
    assert out.returncode == 0, out.stderr
    assert "class balance (train, 4 classes)" in out.stdout


def test_data_summary_of_a_million_samples_reads_only_what_it_needs():
    # Generation is lazy: the 1,000,000-sample split is never allocated (it was 11 GiB of images).
    out = tinymm("data", "summary", "--num-samples", "1000000", "--max-samples", "1500")
    assert out.returncode == 0, out.stderr
    assert "sizes: train 1000000" in out.stdout and "the first 1500 of 1000000 train samples" in out.stdout


_RAISING = textwrap.dedent("""
    import sys, tinymm.cli as cli
    def boom(args):
        raise {exc}
    cli.cmd_info = boom
    sys.exit(cli.main(["info"]))
""")


@pytest.mark.parametrize("exc, code, expect", [
    ("MemoryError()", 1, "tinymm info: out of memory; try a smaller size"),
    ("PermissionError(13, 'Permission denied', '/x')", 1, "tinymm info: [Errno 13] Permission denied: '/x'"),
    ("KeyError('weight')", 2, "tinymm info: weight"),
    ("ZeroDivisionError('oops')", 1, "tinymm info: unexpected ZeroDivisionError: oops (set TINYMM_TRACEBACK=1"),
])
def test_failures_inside_a_command_are_one_line(exc, code, expect):
    out = subprocess.run([sys.executable, "-c", _RAISING.format(exc=exc)], capture_output=True, text=True,
                         env=_env(), timeout=120)
    err = _one_clean_line(out, code)
    assert err.startswith(expect) and len(err.splitlines()) == 1


def test_ctrl_c_exits_130_with_one_line_and_no_traceback():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tinymm.cli", "bench", "data", "--repeat", "100000", "--no-memory",
         "--filter", "10k questions", "--json", os.devnull],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT, env=_env(),
        # A test run started in the background by a shell (`.ci/run &`) inherits SIGINT ignored,
        # and Python keeps an inherited SIG_IGN: give the command the terminal's default, as a
        # user's foreground `tinymm` has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        header = proc.stdout.readline()  # "# data ..." once the timing has begun
        assert header.startswith("# data"), (header, proc.stderr.read() if proc.poll() is not None else "")
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and err.strip() == "tinymm bench: interrupted"


_OLD_EDITABLE = textwrap.dedent("""
    import importlib.abc, sys
    class NoPackagedBenchmarks(importlib.abc.MetaPathFinder):  # an editable install made before they were packaged
        def find_spec(self, name, path, target=None):
            if name == "tinymm.benchmarks":
                raise ImportError("no tinymm.benchmarks in this install")
    sys.meta_path.insert(0, NoPackagedBenchmarks())
    import tinymm.cli as cli
    print(cli.benchmark_names())
    print(sys.modules["tinymm.benchmarks"].__file__)
""")


def test_an_older_editable_install_finds_the_checkouts_benchmarks_not_the_current_directorys(tmp_path):
    (tmp_path / "benchmarks").mkdir()
    for f in ("__init__.py", "harness.py", "evil.py"):
        (tmp_path / "benchmarks" / f).write_text("raise SystemExit('imported from the current directory')\n")
    out = subprocess.run([sys.executable, "-c", _OLD_EDITABLE], capture_output=True, text=True, cwd=tmp_path,
                         env=_env(), timeout=120)
    assert out.returncode == 0, out.stderr
    names, where = out.stdout.splitlines()
    assert "overhead" in names and "evil" not in names
    assert where == os.path.join(ROOT, "benchmarks", "__init__.py")
