"""The world's English: lexicon, synonyms, vocabularies and captions (floor 6: plain Python).

Every attribute value has one *canonical* word (the names in :mod:`tinymm.data.world`) and a few
surface forms (``large``/``big``, ``circle``/``disc``/``disk``, ``purple``/``violet``, ...).
:func:`canonical_tokens` maps any generated sentence back to canonical words; the question checker
and the question-only heuristic read sentences through it.

Captions are templated but varied: optional prefixes ("there is", "a picture of"), synonyms,
relation phrases ("left of", "to the left of", "over", "beneath"), both word orders of a relation
("A left of B" / "B right of A"), a post-modifier form ("a red circle that is large") and a
list form. Every caption names every object with all three attributes and only states relations
that hold; :func:`check_caption` verifies that from the scene graph.

Randomness comes from a ``random.Random`` and only its ``random()`` method (whose sequence Python
guarantees across versions and platforms); Python-level string building is much cheaper per call
than a NumPy draw.
"""
from __future__ import annotations

import random
import re

from tinymm.data.world import COLOURS, SHAPES, SIZES

__all__ = [
    "SURFACE",
    "PLURAL",
    "ATTRIBUTES",
    "choice",
    "noun_phrase",
    "canonical_tokens",
    "swap_left_right",
    "make_caption",
    "canonical_caption",
    "check_caption",
    "parse_noun_phrase",
    "caption_vocab",
    "CaptionError",
]

#: canonical word -> its surface forms (the first is the canonical one).
SURFACE: dict[str, tuple[str, ...]] = {
    "small": ("small", "little", "tiny"),
    "large": ("large", "big"),
    "red": ("red",),
    "green": ("green",),
    "blue": ("blue",),
    "yellow": ("yellow",),
    "purple": ("purple", "violet"),
    "circle": ("circle", "disc", "disk"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "cross": ("cross",),
    "object": ("object", "thing", "item"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
    "colour": ("colour", "color"),
}
PLURAL = {
    "circle": "circles", "disc": "discs", "disk": "disks", "square": "squares", "box": "boxes",
    "triangle": "triangles", "cross": "crosses", "object": "objects", "thing": "things",
    "item": "items",
}
#: attribute name -> its canonical values, in index order
ATTRIBUTES = {"size": SIZES, "colour": COLOURS, "shape": SHAPES}
_ATTR_OF = {v: a for a, vals in ATTRIBUTES.items() for v in vals}

_CANON = {}
for _c, _forms in SURFACE.items():
    for _f in _forms:
        _CANON[_f] = _c
for _sing, _pl in PLURAL.items():
    _CANON[_pl] = _CANON[_sing]

_SWAP = {"left": "right", "right": "left"}
_SWAP_RE = re.compile(r"\b(left|right)\b")
_TOKEN_RE = re.compile(r"[a-z0-9]+")


class CaptionError(ValueError):
    """A caption that does not describe its scene (raised by :func:`check_caption`)."""


def choice(r: random.Random, seq):
    """``seq[k]`` with ``k`` uniform, using only ``r.random()`` (stable across Python versions)."""
    return seq[int(r.random() * len(seq))]


def noun_phrase(desc: dict, r: random.Random, plural: bool = False) -> str:
    """Surface words for a description ``{"size": "large", "colour": "red", "shape": "circle"}``
    (any subset of the keys), e.g. ``"big red disc"``; without a shape the noun is "object"/"thing"/..."""
    words = []
    if "size" in desc:
        words.append(choice(r, SURFACE[desc["size"]]))
    if "colour" in desc:
        words.append(choice(r, SURFACE[desc["colour"]]))
    noun = choice(r, SURFACE[desc.get("shape", "object")])
    words.append(PLURAL[noun] if plural else noun)
    return " ".join(words)


def canonical_tokens(text: str) -> list[str]:
    """Lower-case word tokens with synonyms and plurals mapped to canonical words.

    ``"Is the big disc to the left of the violet box?"`` -> ``is the large circle left of the
    purple square``. "to the" before left/right is dropped, and "the image" is dropped.
    """
    toks = _TOKEN_RE.findall(text.lower())
    out: list[str] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t == "to" and i + 2 < len(toks) and toks[i + 1] == "the" and toks[i + 2] in _SWAP:
            i += 2
            continue
        if t == "the" and i + 1 < len(toks) and toks[i + 1] in ("image", "picture"):
            i += 2
            continue
        out.append(_CANON.get(t, t))
        i += 1
    return out


def swap_left_right(text: str) -> str:
    """Exchange the words "left" and "right" (what a horizontal mirror does to a sentence)."""
    return _SWAP_RE.sub(lambda m: _SWAP[m.group(1)], text)


# ----------------------------------------------------------------------------- captions

_PREFIXES = ("", "", "there is ", "a picture of ", "an image of ", "we see ")
_REL_SURFACE = {
    "left": ("left of", "to the left of"),
    "right": ("right of", "to the right of"),
    "above": ("above", "over"),
    "below": ("below", "under", "beneath"),
}


def relation(a: dict, b: dict, axis: str) -> str:
    """The true relation of object ``a`` to object ``b`` along ``axis`` ("h" or "v")."""
    if axis == "h":
        return "left" if a["x"] < b["x"] else "right"
    return "above" if a["y"] < b["y"] else "below"


def _full_np(o: dict, r: random.Random) -> str:
    if r.random() < 0.2:  # post-modifier variant: "a red circle that is large"
        return noun_phrase({"colour": o["colour"], "shape": o["shape"]}, r) + " that is " + choice(
            r, SURFACE[o["size"]]
        )
    return noun_phrase(o, r)


def _short_np(o: dict, r: random.Random) -> str:
    return noun_phrase({"colour": o["colour"], "shape": o["shape"]}, r)


def _rel_phrase(a: dict, b: dict, r: random.Random) -> str:
    axis = "h" if r.random() < 0.5 else "v"
    return choice(r, _REL_SURFACE[relation(a, b, axis)])


def make_caption(scene: dict, r: random.Random) -> str:
    """A varied English description naming every object of ``scene`` with all its attributes."""
    objs = list(scene["objects"])
    # random order (Fisher-Yates with r.random())
    for i in range(len(objs) - 1, 0, -1):
        j = int(r.random() * (i + 1))
        objs[i], objs[j] = objs[j], objs[i]
    prefix = choice(r, _PREFIXES)
    n = len(objs)
    if n == 1:
        return prefix + "a " + _full_np(objs[0], r)
    form = r.random()
    if n == 2:
        a, b = objs
        if form < 0.7:
            return f"{prefix}a {_full_np(a, r)} {_rel_phrase(a, b, r)} a {_full_np(b, r)}"
        return (
            f"{prefix}a {_full_np(a, r)} and a {_full_np(b, r)}, with the {_short_np(a, r)} "
            f"{_rel_phrase(a, b, r)} the {_short_np(b, r)}"
        )
    a, b, c = objs
    if form < 0.6:
        return (
            f"{prefix}a {_full_np(a, r)} {_rel_phrase(a, b, r)} a {_full_np(b, r)}, and a "
            f"{_full_np(c, r)} {_rel_phrase(c, b, r)} the {_short_np(b, r)}"
        )
    if form < 0.8:
        return f"{prefix}a {_full_np(a, r)}, a {_full_np(b, r)} and a {_full_np(c, r)}"
    return (
        f"{prefix}a {_full_np(a, r)}, a {_full_np(b, r)} and a {_full_np(c, r)}, with the "
        f"{_short_np(a, r)} {_rel_phrase(a, c, r)} the {_short_np(c, r)}"
    )


def canonical_caption(scene: dict) -> str:
    """The one canonical description of ``scene``: objects from left to right, each as "a SIZE
    COLOUR SHAPE" in canonical words, no prefix, and only left/right relations, in the shape of
    :func:`make_caption`'s relation form ("a A left of a B, and a C right of the B").

    It is a function of what the image shows: two scenes get the same string exactly when they
    hold the same objects in the same left-to-right order (then the caption is true of both).
    It draws no random numbers, so choosing it changes no stream of the world.
    """
    objs = sorted(scene["objects"], key=lambda o: o["x"])
    full = [f"{o['size']} {o['colour']} {o['shape']}" for o in objs]
    if len(objs) == 1:
        return f"a {full[0]}"
    a, b = objs[0], objs[1]
    text = f"a {full[0]} {relation(a, b, 'h')} of a {full[1]}"  # relation() keeps a tie in x true
    if len(objs) == 3:
        c = objs[2]
        text += f", and a {full[2]} {relation(c, b, 'h')} of the {b['colour']} {b['shape']}"
    return text


def parse_noun_phrase(tokens: list[str]) -> dict:
    """Canonical tokens of one noun phrase (determiners allowed) -> a description dict."""
    desc: dict = {}
    for t in tokens:
        if t in ("a", "an", "the", "any", "object"):
            continue
        attr = _ATTR_OF.get(t)
        if attr is None or attr in desc:
            raise CaptionError(f"unexpected word {t!r} in noun phrase {' '.join(tokens)!r}")
        desc[attr] = t
    return desc


def _matching(scene: dict, desc: dict) -> list[int]:
    return [i for i, o in enumerate(scene["objects"]) if all(o[k] == v for k, v in desc.items())]


def check_caption(scene: dict, caption: str) -> None:
    """Raise :class:`CaptionError` unless ``caption`` names each object of ``scene`` exactly once
    (indefinite "a ..." phrases with all three attributes) and every relation it states holds."""
    toks = canonical_tokens(caption)
    nouns = set(SHAPES) | {"object"}
    # chunk into noun phrases: [start, end) spans ending at a noun, plus "that is SIZE" tails
    phrases = []  # (determiner, desc, start, end)
    i = 0
    while i < len(toks):
        if toks[i] in ("a", "an", "the") and toks[i + 1 : i + 2] not in (["picture"], ["image"]):
            j = i + 1
            while j < len(toks) and toks[j] not in nouns:
                j += 1
            if j == len(toks):
                raise CaptionError(f"noun phrase without a noun in {caption!r}")
            desc = parse_noun_phrase(toks[i + 1 : j + 1])
            end = j + 1
            if toks[end : end + 2] == ["that", "is"] and end + 2 < len(toks):
                desc.update(parse_noun_phrase([toks[end + 2]]))
                end += 3
            phrases.append((toks[i], desc, i, end))
            i = end
        else:
            i += 1
    mentioned = []
    resolved = []
    for det, desc, _, _ in phrases:
        m = _matching(scene, desc)
        if len(m) != 1:
            raise CaptionError(f"{desc} matches {len(m)} objects in {caption!r}")
        if det != "the":
            if len(desc) != 3:
                raise CaptionError(f"object introduced without all attributes: {desc}")
            mentioned.append(m[0])
        resolved.append(m[0])
    if sorted(mentioned) != list(range(len(scene["objects"]))):
        raise CaptionError(f"caption {caption!r} does not name each object once")
    objs = scene["objects"]
    for p in range(len(phrases) - 1):
        between = toks[phrases[p][3] : phrases[p + 1][2]]
        rels = [t for t in between if t in _REL_SURFACE]
        if not rels:
            continue
        a, b = objs[resolved[p]], objs[resolved[p + 1]]
        axis = "h" if rels[0] in ("left", "right") else "v"
        if relation(a, b, axis) != rels[0]:
            raise CaptionError(f"false relation {rels[0]!r} in {caption!r}")


def caption_vocab() -> list[str]:
    """Every word a caption can contain, sorted."""
    words = {"a", "an", "and", "with", "the", "that", "is", "of", "to"}
    for p in _PREFIXES:
        words.update(p.split())
    for forms in SURFACE.values():
        words.update(forms)
    for phrases in _REL_SURFACE.values():
        for p in phrases:
            words.update(p.split())
    words.discard("object")
    words -= {"thing", "item", "colour", "color"}
    return sorted(words)

