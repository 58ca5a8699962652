"""Read a TensorFlow 1 checkpoint (a tensor bundle: `<prefix>.index` + `<prefix>.data-00000-of-00001`) without
TensorFlow.

The `.index` file is a LevelDB-format table, uncompressed: a footer points at an index block whose values point at
data blocks; each data-block entry maps a variable name to a `BundleEntryProto` (dtype, shape, byte offset and size in
the data file). The data file is the tensors' raw little-endian bytes. Only what musicnn's checkpoints use is read:
one shard, float32 tensors, no slices.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from components.common.errors import LyraError

_TABLE_MAGIC = 0xDB4775248B80FB57
_FOOTER_BYTES = 48
_BLOCK_TRAILER_BYTES = 5  # compression type (1) + crc32c (4)
_DT_FLOAT = 1


class CheckpointError(LyraError):
    """The checkpoint cannot be read as a single-shard float32 tensor bundle."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _block(table: bytes, offset: int, size: int) -> list[tuple[bytes, bytes]]:
    """The (key, value) entries of one table block (keys are prefix-compressed against the previous key)."""
    if table[offset + size] != 0:
        raise CheckpointError("compressed table blocks are not supported")
    data = table[offset : offset + size]
    n_restarts = struct.unpack_from("<I", data, len(data) - 4)[0]
    end = len(data) - 4 - 4 * n_restarts
    entries, key, pos = [], b"", 0
    while pos < end:
        shared, pos = _varint(data, pos)
        unshared, pos = _varint(data, pos)
        value_len, pos = _varint(data, pos)
        key = key[:shared] + data[pos : pos + unshared]
        pos += unshared
        entries.append((key, data[pos : pos + value_len]))
        pos += value_len
    return entries


def _fields(message: bytes) -> list[tuple[int, object]]:
    """(field number, value) of a protobuf message: varints as int, length-delimited as bytes."""
    out, pos = [], 0
    while pos < len(message):
        tag, pos = _varint(message, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(message, pos)
        elif wire == 2:
            length, pos = _varint(message, pos)
            value, pos = message[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = message[pos : pos + 4], pos + 4
        elif wire == 1:
            value, pos = message[pos : pos + 8], pos + 8
        else:
            raise CheckpointError(f"unexpected protobuf wire type {wire}")
        out.append((number, value))
    return out


def _entry(value: bytes) -> tuple[int, tuple[int, ...], int, int]:
    """BundleEntryProto -> (dtype, shape, offset, size)."""
    dtype, shape, offset, size = 0, [], 0, 0
    for number, field in _fields(value):
        if number == 1:
            dtype = field
        elif number == 2:  # TensorShapeProto: repeated dim (field 2) with size (field 1)
            shape = [dict(_fields(dim)).get(1, 0) for n, dim in _fields(field) if n == 2]
        elif number == 4:
            offset = field
        elif number == 5:
            size = field
        elif number == 7:
            raise CheckpointError("sliced tensors are not supported")
    return dtype, tuple(shape), offset, size


def read_checkpoint(prefix: str | Path) -> dict[str, np.ndarray]:
    """Every float32 variable of the checkpoint at `prefix` (the path without `.index`), by name."""
    prefix = str(prefix)
    index_path, data_path = Path(prefix + ".index"), Path(prefix + ".data-00000-of-00001")
    for path in (index_path, data_path):
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file missing")
    table = index_path.read_bytes()
    footer = table[-_FOOTER_BYTES:]
    if struct.unpack("<Q", footer[-8:])[0] != _TABLE_MAGIC:
        raise CheckpointError(f"{index_path}: not a tensor-bundle index (bad table magic)")
    _meta_offset, pos = _varint(footer, 0)
    _meta_size, pos = _varint(footer, pos)
    index_offset, pos = _varint(footer, pos)
    index_size, pos = _varint(footer, pos)
    data = data_path.read_bytes()
    tensors: dict[str, np.ndarray] = {}
    for _last_key, handle in _block(table, index_offset, index_size):
        block_offset, hpos = _varint(handle, 0)
        block_size, _ = _varint(handle, hpos)
        for key, value in _block(table, block_offset, block_size):
            if not key:  # the bundle header
                continue
            dtype, shape, offset, size = _entry(value)
            if dtype != _DT_FLOAT:
                continue  # global_step and the like
            if offset + size > len(data):
                raise CheckpointError(f"{data_path}: {key.decode()} lies past the end of the file")
            array = np.frombuffer(data, dtype="<f4", count=size // 4, offset=offset)
            tensors[key.decode()] = array.reshape(shape).copy()
    return tensors
