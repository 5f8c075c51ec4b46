"""``torch.__version__``'s type: a string that compares as a version.

PyTorch code gates its paths on the version: ``padding = 1 if torch.__version__ >= '1.5.0' else
2`` (Informer/Autoformer's token embedding), ``version.parse(torch.__version__) >= ...``,
``torch.__version__ >= (2, 0)``. tinymm follows the PyTorch API it is tested against (the
``torch==2.13.0`` pinned in pyproject's dev extra), so its ``__version__`` names that release,
with tinymm's own release as the local label: ``"2.13.0+tinymm.0.1.0"`` (as PyTorch's own
``"2.13.0+cpu"`` names its build). A plain "0.1.0" sent such code down the paths written for
PyTorch before 1.0 (there: a circular Conv1d padded by 2 instead of 1, the wrong length).

Comparisons follow PEP 440 as ``packaging.version.Version`` does (numeric release segments, so
"2.13" > "2.9"; pre-releases a/b/rc and .devN before the release, .postN after; a local label
after the same public version), against a string, a tuple of ints or another version. It
imports nothing from tinymm.
"""
from __future__ import annotations

import re

__all__ = ["TorchVersion", "TORCH_API_VERSION", "TINYMM_RELEASE"]

TORCH_API_VERSION = "2.13.0"
TINYMM_RELEASE = "0.1.0"

_PEP440 = re.compile(
    r"^\s*v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>a|b|c|rc|alpha|beta|pre|preview)[-_.]?(?P<pre_n>\d+)?)?"
    r"(?P<post>(?:-(?P<post_n1>\d+))|(?:[-_.]?(?:post|rev|r)[-_.]?(?P<post_n2>\d+)?))?"
    r"(?P<dev>[-_.]?dev[-_.]?(?P<dev_n>\d+)?)?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$",
    re.IGNORECASE,
)
_PRE = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_INF = float("inf")


def _key(text: str) -> tuple:
    """A sort key for a PEP 440 version string (packaging's ordering)."""
    m = _PEP440.match(text)
    if m is None:
        raise ValueError(f"Invalid version: {text!r}")
    release = tuple(int(x) for x in m["release"].split("."))
    while len(release) > 1 and release[-1] == 0:  # 2.0 == 2.0.0
        release = release[:-1]
    dev = None if m["dev"] is None else int(m["dev_n"] or 0)
    has_post = m["post"] is not None
    if m["pre_l"] is not None:
        pre = (_PRE[m["pre_l"].lower()], int(m["pre_n"] or 0))
    elif dev is not None and not has_post:
        pre = (-_INF, 0)  # 1.0.dev0 sorts before 1.0a0
    else:
        pre = (_INF, 0)
    post_key = (int(m["post_n1"] or m["post_n2"] or 0),) if has_post else (-_INF,)
    dev_key = (_INF,) if dev is None else (dev,)
    local = () if m["local"] is None else tuple((1, int(p), "") if p.isdigit() else (0, 0, p.lower())
                                                  for p in re.split(r"[-_.]", m["local"]))
    return (int(m["epoch"] or 0), release, pre, post_key, dev_key, local)


def _release_cmp(a: tuple, b: tuple) -> int:
    """Compare two release tuples with the shorter one padded by zeros."""
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


class TorchVersion(str):
    """A version string (``str``: printing, ``split``, ``startswith`` work as on any string)
    whose comparisons are version comparisons; see the module docstring."""

    def _cmp(self, other) -> int:
        if isinstance(other, tuple):
            other = ".".join(str(x) for x in other)
        if not isinstance(other, str):
            # a packaging.version.Version (or anything printing as a version)
            if type(other).__name__ in ("Version", "LegacyVersion"):
                other = str(other)
            else:
                raise TypeError(f"'<' not supported between a TorchVersion and {type(other).__name__!r}")
        a, b = _key(str(self)), _key(other)
        if a[0] != b[0]:
            return (a[0] > b[0]) - (a[0] < b[0])
        c = _release_cmp(a[1], b[1])
        if c:
            return c
        a, b = a[2:], b[2:]
        return (a > b) - (a < b)

    def __lt__(self, other):
        return self._cmp(other) < 0

    def __le__(self, other):
        return self._cmp(other) <= 0

    def __gt__(self, other):
        return self._cmp(other) > 0

    def __ge__(self, other):
        return self._cmp(other) >= 0

    def __eq__(self, other):
        if isinstance(other, str) and not isinstance(other, TorchVersion) and _PEP440.match(other) is None:
            return str.__eq__(self, other)
        try:
            return self._cmp(other) == 0
        except (TypeError, ValueError):
            return False

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = str.__hash__


__version__ = TorchVersion(f"{TORCH_API_VERSION}+tinymm.{TINYMM_RELEASE}")
