"""Protocol-buffer wire format by hand: just what TensorBoard's event files need (no protobuf).

A message is a run of fields. Each field is a *key* -- ``field_number << 3 | wire_type`` written
as a varint -- followed by its payload, whose form the wire type gives:

    0 VARINT  int32 / int64 / bool / enum: base-128 varint, low 7 bits first, high bit = "more";
              a negative integer is its 64-bit two's complement (always 10 bytes)
    1 I64     double: 8 bytes little-endian
    2 LEN     varint byte count, then the bytes: strings (UTF-8), bytes, sub-messages, and
              packed repeated numbers (the numbers back to back, no keys)
    5 I32     float: 4 bytes little-endian

TensorBoard's messages are proto3: a field holding its default (0, 0.0, "", empty) is left out,
except a field inside a ``oneof`` (``Summary.Value.simple_value``, ``Event.summary``,
``google.protobuf.Value.number_value``...), which is written whenever it is set even when it is
the default -- hence the ``always`` flag of the encoders below. Set sub-messages are always
written (their presence is the information). Fields are written in field-number order, as the
protobuf library does, so the bytes match what it writes.

Decoding (:func:`parse`, :func:`decode`) is the inverse: :func:`parse` splits bytes into
``(number, wire_type, raw)`` triples; :func:`decode` turns them into a dict using a *schema*
``{number: (name, kind)}`` where kind is a scalar type name, ``"packed_double"`` /
``"packed_float"`` / ``"packed_int"``, or a nested schema (a sub-message); names ending in ``[]`` are repeated and
decode to lists. Fields absent from the bytes are absent from the dict; unknown fields are
skipped, as protobuf does.
"""
from __future__ import annotations

import struct

VARINT, I64, LEN, I32 = 0, 1, 2, 5


# ----------------------------------------------------------------------------- encoding

def varint(n: int) -> bytes:
    """Base-128 varint of ``n`` (negative: its 64-bit two's complement, as protobuf's int64)."""
    n = int(n)
    if n < 0:
        n += 1 << 64
    out = bytearray()
    while True:
        low = n & 0x7F
        n >>= 7
        if n:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def key(number: int, wire_type: int) -> bytes:
    return varint(number << 3 | wire_type)


def integer(number: int, value, always: bool = False) -> bytes:
    """An int32/int64/enum/bool field (bool as 0/1)."""
    value = int(value)
    if value == 0 and not always:
        return b""
    return key(number, VARINT) + varint(value)


def _is_default_float(packed: bytes) -> bool:
    # proto3 leaves out +0.0 only: -0.0 differs in its bits and is written
    return not any(packed)


def double(number: int, value, always: bool = False) -> bytes:
    packed = struct.pack("<d", float(value))
    if not always and _is_default_float(packed):
        return b""
    return key(number, I64) + packed


def float32(number: int, value, always: bool = False) -> bytes:
    packed = struct.pack("<f", float(value))
    if not always and _is_default_float(packed):
        return b""
    return key(number, I32) + packed


def length_delimited(number: int, payload: bytes, always: bool = False) -> bytes:
    """A bytes / sub-message field. ``always`` for a set sub-message or a oneof member."""
    if not payload and not always:
        return b""
    return key(number, LEN) + varint(len(payload)) + payload


def string(number: int, text: str, always: bool = False) -> bytes:
    return length_delimited(number, text.encode("utf-8"), always)


def submessage(number: int, payload: bytes) -> bytes:
    """A set sub-message: written even when it has no fields of its own."""
    return length_delimited(number, payload, always=True)


def packed_doubles(number: int, values) -> bytes:
    values = [float(v) for v in values]
    return length_delimited(number, struct.pack(f"<{len(values)}d", *values))


def packed_varints(number: int, values) -> bytes:
    """Packed repeated int32/int64/uint32/bool: the varints back to back."""
    return length_delimited(number, b"".join(varint(v) for v in values))


def packed_floats(number: int, values) -> bytes:
    values = [float(v) for v in values]
    return length_delimited(number, struct.pack(f"<{len(values)}f", *values))


# ----------------------------------------------------------------------------- decoding

def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        if pos >= len(data):
            raise ValueError("protobuf: truncated varint")
        b = data[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("protobuf: varint longer than 10 bytes")


def parse(data: bytes) -> list[tuple[int, int, object]]:
    """Split a message into ``(field_number, wire_type, raw)``; raw is an int for VARINT, else bytes."""
    fields, pos = [], 0
    while pos < len(data):
        k, pos = _read_varint(data, pos)
        number, wire_type = k >> 3, k & 7
        if wire_type == VARINT:
            raw, pos = _read_varint(data, pos)
        elif wire_type == I64:
            raw, pos = data[pos:pos + 8], pos + 8
        elif wire_type == I32:
            raw, pos = data[pos:pos + 4], pos + 4
        elif wire_type == LEN:
            size, pos = _read_varint(data, pos)
            raw, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"protobuf: unsupported wire type {wire_type} (field {number})")
        if pos > len(data):
            raise ValueError(f"protobuf: field {number} runs past the end of the message")
        fields.append((number, wire_type, raw))
    return fields


def _signed64(n: int) -> int:
    return n - (1 << 64) if n >= 1 << 63 else n


def _scalar(kind: str, wire_type: int, raw):
    if kind == "double":
        return struct.unpack("<d", raw)[0]
    if kind == "float":
        return struct.unpack("<f", raw)[0]
    if kind in ("int64", "int32", "enum"):
        return _signed64(raw)
    if kind == "bool":
        return bool(raw)
    if kind == "string":
        return raw.decode("utf-8")
    if kind == "bytes":
        return bytes(raw)
    if kind == "packed_double":
        return list(struct.unpack(f"<{len(raw) // 8}d", raw)) if wire_type == LEN else [struct.unpack("<d", raw)[0]]
    if kind == "packed_int":
        if wire_type != LEN:
            return [_signed64(raw)]
        values, pos = [], 0
        while pos < len(raw):
            v, pos = _read_varint(raw, pos)
            values.append(_signed64(v))
        return values
    if kind == "packed_float":
        return list(struct.unpack(f"<{len(raw) // 4}f", raw)) if wire_type == LEN else [struct.unpack("<f", raw)[0]]
    raise ValueError(f"protobuf: unknown field kind {kind!r}")


def decode(data: bytes, schema: dict) -> dict:
    """Message bytes -> dict by ``schema`` (see the module docstring)."""
    out: dict = {}
    for number, wire_type, raw in parse(data):
        if number not in schema:
            continue
        name, kind = schema[number]
        value = decode(raw, kind) if isinstance(kind, dict) else _scalar(kind, wire_type, raw)
        if name.endswith("[]"):
            items = out.setdefault(name[:-2], [])
            items.extend(value) if kind in ("packed_double", "packed_float", "packed_int") else items.append(value)
        else:
            out[name] = value
    return out
