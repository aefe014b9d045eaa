"""Columnar data as `datasets` leaves it on disk: Parquet, Arrow IPC and `save_to_disk` folders.

One reader for every stage that takes such data: the document readers (`lmforge.documents`:
tokenizer training, shards, dedup, corpus card) and the alignment importers
(`lmforge.alignment.data`). Everything is streamed with pyarrow, at most ROW_BATCH rows turned
into Python objects at a time; `datasets` itself is not needed.

- Parquet: `pq.ParquetFile(...).iter_batches`.
- Arrow IPC (`.arrow`, `.feather`, `.ipc`): the file format (random access: one record batch
  read at a time) or the stream format (what `datasets` writes), tried in that order.
- A `save_to_disk` folder: `data-*.arrow` beside `state.json` (its `_data_files` give the
  order); a DatasetDict folder (`dataset_dict.json`, one subfolder per split) gives its `train`
  split, or name the split's subfolder.

Errors are raised as the caller's `error` class (each stage has its own user-error type) with a
message naming the file and the row. pyarrow is imported only when a table is read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

ROW_BATCH = 1024  # rows of a Parquet / Arrow file converted to Python objects at a time
ARROW_SUFFIXES = (".arrow", ".feather", ".ipc")
TABLE_SUFFIXES = (".parquet", *ARROW_SUFFIXES)


def is_table(path: Path) -> bool:
    """A Parquet or Arrow IPC file, by its name."""
    return Path(path).suffix in TABLE_SUFFIXES


def is_dataset_folder(path: Path) -> bool:
    """A `datasets.save_to_disk` folder (a Dataset's or a DatasetDict's)."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ("state.json", "dataset_info.json", "dataset_dict.json"))


def _kind(path: Path) -> str:
    return "Parquet" if path.suffix == ".parquet" else "Arrow IPC"


def open_table(path: Path, error: type[Exception] = ValueError) -> tuple[Any, Iterator]:
    """(schema, iterator of record batches) of a Parquet or Arrow IPC file; a file pyarrow
    cannot open raises `error` naming it."""
    import pyarrow as pa

    path = Path(path)
    try:
        if path.suffix == ".parquet":
            import pyarrow.parquet as pq

            pf = pq.ParquetFile(path)
            return pf.schema_arrow, pf.iter_batches(batch_size=ROW_BATCH)
        source = pa.memory_map(str(path))
        try:
            reader = pa.ipc.open_file(source)
        except pa.ArrowInvalid:  # not the file format: the stream format (`datasets` writes it)
            source.seek(0)
            stream = pa.ipc.open_stream(source)
            return stream.schema, iter(stream)
        return reader.schema, (reader.get_batch(i) for i in range(reader.num_record_batches))
    except (pa.ArrowException, OSError) as exc:
        raise error(f"{path}: not a readable {_kind(path)} file ({exc})") from None


def table_rows(path: Path, error: type[Exception] = ValueError, batches: Iterator | None = None) -> Iterator[tuple[int, dict]]:
    """(row number, row as a dict) of a Parquet or Arrow IPC file, at most ROW_BATCH rows in
    memory at a time; null columns are dropped, so a row reads like the JSON record it came
    from. `batches` (from `open_table`) when the caller has opened the file already."""
    import pyarrow as pa

    path = Path(path)
    row = 0
    try:
        for batch in batches if batches is not None else open_table(path, error)[1]:
            for start in range(0, batch.num_rows, ROW_BATCH):
                for rec in batch.slice(start, ROW_BATCH).to_pylist():
                    yield row, {k: v for k, v in rec.items() if v is not None}
                    row += 1
    except (pa.ArrowException, OSError) as exc:
        raise error(f"{path}: not a readable {_kind(path)} file (row {row}: {exc})") from None


def dataset_files(path: Path, error: type[Exception] = ValueError) -> list[Path]:
    """The `data-*.arrow` files of a `datasets.save_to_disk` folder in order (as `state.json`
    lists them); a DatasetDict folder (`dataset_dict.json` + one subfolder per split) gives its
    `train` split's."""
    path = Path(path)
    if (path / "dataset_dict.json").is_file():
        try:
            splits = json.loads((path / "dataset_dict.json").read_text())["splits"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise error(f"{path / 'dataset_dict.json'}: unreadable ({exc})") from None
        if "train" not in splits:
            raise error(f"{path}: a DatasetDict without a 'train' split (splits: {', '.join(splits)}); "
                        f"pass the split's folder, e.g. {path / splits[0]}" if splits else
                        f"{path}: a DatasetDict without splits")
        path = path / "train"
    files: list[Path] = []
    if (path / "state.json").is_file():
        try:
            files = [path / f["filename"] for f in json.loads((path / "state.json").read_text())["_data_files"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise error(f"{path / 'state.json'}: unreadable ({exc})") from None
    files = files or sorted(path.glob("data-*.arrow"))
    if not files:
        raise error(f"{path}: a folder, but not a `datasets.save_to_disk` folder (no data-*.arrow files, "
                    "no dataset_dict.json); pass a JSON, JSONL, Parquet or Arrow file or such a folder")
    for f in files:
        if not f.is_file():
            raise error(f"{f}: listed in {path / 'state.json'} but missing")
    return files
