"""PNG encoding by hand (zlib only): what TensorBoard's image plugin displays.

A PNG file is the 8-byte signature then chunks ``length (uint32 BE) | type (4 ASCII) | data |
CRC-32 (of type + data, BE)``: ``IHDR`` (width, height, bit depth 8, color type, compression 0,
filter 0, interlace 0), ``IDAT`` (the zlib-compressed scanlines, each prefixed with its filter
byte; 0 = "none" here), ``IEND``.
"""
from __future__ import annotations

import struct
import zlib

import numpy as np

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# channels -> PNG color type: gray, gray+alpha, RGB, RGBA
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 ``(height, width, channels)`` array, channels 1 to 4."""
    height, width, channels = image.shape
    header = struct.pack(">IIBBBBB", width, height, 8, _COLOR_TYPE[channels], 0, 0, 0)
    rows = np.ascontiguousarray(image, dtype=np.uint8).reshape(height, width * channels)
    scanlines = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1)
    return (_SIGNATURE + _chunk(b"IHDR", header)
            + _chunk(b"IDAT", zlib.compress(scanlines.tobytes(), 6)) + _chunk(b"IEND", b""))
