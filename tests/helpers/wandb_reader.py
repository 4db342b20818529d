"""Read an offline W&B run back, so tests can check what was logged without a server.

wandb >= 0.19 removed its Python reader (`DataStore`); the run file is a LevelDB-style log: a 7-byte
file header (`:W&B`, magic 0xBEE1, version), then 32 KiB blocks of records, each with a 7-byte header
`<IHB` (CRC-32 of type byte + payload, payload length, type). A protobuf `Record` that does not fit in
a block is split into FIRST, MIDDLE..., LAST pieces; a block tail shorter than a header is zero padding.

History rows, summary and config are flat dicts. W&B flattens a logged dict (a histogram, an image)
into items with a `nested_key`; we join that with "/", so `wandb.Histogram` logged as
`act_hist/conv1` reads back as `act_hist/conv1/_type` ("histogram"), `act_hist/conv1/values` (counts)
and `act_hist/conv1/bins` (edges). Values are decoded from their JSON.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from wandb.proto import wandb_internal_pb2

FILE_HEADER = struct.Struct("<4sHB")
RECORD_HEADER = struct.Struct("<IHB")
BLOCK_SIZE = 32 * 1024
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    run_id: str = ""
    config: dict = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)

    def column(self, key: str) -> list[tuple[int, object]]:
        """(trainer/global_step, value) of every history row that has `key`."""
        return [(row.get("trainer/global_step"), row[key]) for row in self.history if key in row]


def read_run(folder: str | Path) -> OfflineRun:
    """The one offline run under `folder` (a run folder, a `wandb/` folder, or the run file itself)."""
    folder = Path(folder)
    files = [folder] if folder.is_file() else sorted(folder.glob("**/offline-run-*/run-*.wandb"))
    if len(files) != 1:
        raise FileNotFoundError(f"expected one offline run under {folder}, found {len(files)}: {files}")
    run = OfflineRun()
    for payload in _records(files[0].read_bytes()):
        record = wandb_internal_pb2.Record()
        record.ParseFromString(payload)
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run.run_id = record.run.run_id
            _apply(run.config, record.run.config.update, record.run.config.remove)
        elif kind == "config":
            _apply(run.config, record.config.update, record.config.remove)
        elif kind == "history":
            run.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "summary":
            _apply(run.summary, record.summary.update, record.summary.remove)
    return run


def _records(data: bytes):
    """The payloads of the log, pieces reassembled; raises on a bad header or checksum, and on a file that
    ends inside a record (one read before wandb closed it)."""
    ident, magic, _version = FILE_HEADER.unpack_from(data)
    if ident != b":W&B" or magic != 0xBEE1:
        raise ValueError(f"not a W&B run file (header {data[:7]!r})")
    position, pending = FILE_HEADER.size, None
    while position + RECORD_HEADER.size <= len(data):
        room = BLOCK_SIZE - position % BLOCK_SIZE
        if room < RECORD_HEADER.size:
            position += room
            continue
        checksum, length, kind = RECORD_HEADER.unpack_from(data, position)
        start = position + RECORD_HEADER.size
        piece = data[start : start + length]
        position = start + length
        if zlib.crc32(bytes([kind]) + piece) != checksum:
            raise ValueError(f"bad checksum in record at byte {start - RECORD_HEADER.size}")
        if kind == FULL:
            yield piece
        elif kind == FIRST:
            pending = piece
        elif kind == MIDDLE:
            pending += piece
        elif kind == LAST:
            yield pending + piece
            pending = None
        else:
            raise ValueError(f"unknown record type {kind} at byte {start - RECORD_HEADER.size}")
    if pending is not None:  # a FIRST piece whose LAST never came: the writer had not finished
        raise ValueError(
            f"the run file ends inside a record ({len(pending)} bytes of it), at byte {len(data)}"
        )


def _key(item) -> str:
    return "/".join(item.nested_key) if item.nested_key else item.key


def _apply(target: dict, updates, removes) -> None:
    for item in updates:
        target[_key(item)] = json.loads(item.value_json)
    for item in removes:
        target.pop(_key(item), None)
