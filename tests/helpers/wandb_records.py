"""Read the keys of an offline W&B run file (``run-<id>.wandb``) without network or wandb's
reader: the file is a LevelDB-style log (32 KiB blocks, 7-byte record headers) of protobuf
``Record`` messages.

wandb writes the file from its own service process; :func:`records` waits until the file
holds the run's ``exit`` record, so a test never reads a file that is still being written.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path

BLOCK = 32768
HEADER = struct.Struct("<IHB")  # checksum, length, type (1 full, 2 first, 3 middle, 4 last)


def records(path: Path, timeout: float = 60.0) -> list[bytes]:
    """The raw protobuf payloads of every record in the finished file.

    Waits up to ``timeout`` seconds for the ``exit`` record (written when the run finishes)
    and for the file to stop growing; fails with the record types seen if it never comes.
    """
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2

    deadline = time.monotonic() + timeout
    while True:
        size = path.stat().st_size
        payloads = _read(path)
        kinds = []
        try:
            for payload in payloads:
                record = wandb_internal_pb2.Record()
                record.ParseFromString(payload)
                kinds.append(record.WhichOneof("record_type"))
        except DecodeError:  # the last record is still being written: read again
            kinds.append("partial")
        if "exit" in kinds and "partial" not in kinds and path.stat().st_size == size:
            return payloads
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: no exit record after {timeout} s; records: {kinds}")
        time.sleep(0.2)


def _read(path: Path) -> list[bytes]:
    """Every record's payload in the file as it is now."""
    raw = path.read_bytes()
    ident = raw[:4]
    if ident != b":W&B":
        raise ValueError(f"{path} is not a W&B run file (header {ident!r})")
    pos, payloads, chunk = 7, [], b""
    while pos + HEADER.size <= len(raw):
        left = BLOCK - pos % BLOCK
        if left < HEADER.size:
            pos += left
            continue
        _, length, kind = HEADER.unpack_from(raw, pos)
        pos += HEADER.size
        if length == 0 and kind == 0:
            break
        chunk += raw[pos : pos + length]
        pos += length
        if kind in (1, 4):
            payloads.append(chunk)
            chunk = b""
    return payloads


def logged_keys(path: Path) -> dict[str, set[str]]:
    """Keys per record type: ``config``, ``history``, ``summary``."""
    from wandb.proto import wandb_internal_pb2

    keys: dict[str, set[str]] = {"config": set(), "history": set(), "summary": set()}
    for payload in records(path):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        items = {
            "config": lambda r: r.config.update,
            "history": lambda r: r.history.item,
            "summary": lambda r: r.summary.update,
        }.get(kind)
        if items is not None:
            keys[kind].update(i.key or "/".join(i.nested_key) for i in items(record))
    return keys
