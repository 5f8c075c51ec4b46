"""TFRecord framing, the container of TensorBoard event files, and its CRC-32C checksums.

An event file is a sequence of records, each::

    uint64 length            little-endian byte count of data
    uint32 masked_crc(length bytes)
    byte   data[length]      one serialized ``Event`` message
    uint32 masked_crc(data)

CRC-32C is the Castagnoli CRC (reflected polynomial 0x82F63B78, initial value and final xor
0xFFFFFFFF); it is *masked* -- rotated right by 15 bits and offset by 0xA282EAD8 -- so that a CRC
stored inside data that is itself checksummed does not cancel out.
"""
from __future__ import annotations

import struct

_POLY = 0x82F63B78
_MASK_DELTA = 0xA282EAD8


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ _POLY if crc & 1 else crc >> 1
        table.append(crc)
    return table


_TABLE = _make_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
    """One record: header, header CRC, data, data CRC."""
    header = struct.pack("<Q", len(data))
    return (header + struct.pack("<I", masked_crc32c(header)) + data
            + struct.pack("<I", masked_crc32c(data)))


def unframe(blob: bytes, name: str = "event file") -> list[bytes]:
    """The records' data in ``blob``, checking both CRCs of each; ValueError naming the first bad one.

    A record cut short at the very end (a writer still writing) is an error too: callers reading a
    live file should expect it."""
    records, pos, index = [], 0, 0
    while pos < len(blob):
        if pos + 12 > len(blob):
            raise ValueError(f"{name}: record {index} is truncated in its header")
        header = blob[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (header_crc,) = struct.unpack("<I", blob[pos + 8:pos + 12])
        if header_crc != masked_crc32c(header):
            raise ValueError(f"{name}: record {index} has a bad length checksum")
        start, end = pos + 12, pos + 12 + length
        if end + 4 > len(blob):
            raise ValueError(f"{name}: record {index} is truncated (needs {length} bytes of data)")
        data = blob[start:end]
        (data_crc,) = struct.unpack("<I", blob[end:end + 4])
        if data_crc != masked_crc32c(data):
            raise ValueError(f"{name}: record {index} has a bad data checksum")
        records.append(data)
        pos, index = end + 4, index + 1
    return records
