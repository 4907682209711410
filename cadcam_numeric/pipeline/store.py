"""The map store ``cadcam explain`` writes for a dataset, and :class:`MapStore`, its reader.

Layout of a store folder::

    store.json            format, the run's configuration, map shapes; "complete" once finished
    shards/shard-00000.npz  images 0 … 1023 of the source (shard k: source positions k·S … k·S+S−1)
    index.csv             one row per explained image (and index.parquet when pyarrow is installed)
    skipped.csv           images that could not be read, with the reason

A shard is an ``.npz`` (NumPy's zip of ``.npy`` arrays; read it with ``np.load(path)``, no pickle)
holding, for its n readable images: ``id``, ``label``, ``label_index`` (the bundle's class index of
the label; −1 for none), ``cnn_prediction``, ``cnn_probability``, ``svm_prediction``, ``svm_score``,
``pca_scores`` (n, B) and the raw maps at the feature maps' resolution — ``gradcam`` (n, h, w),
``pca_positive`` and ``pca_negative`` (n, B, h, w), ``svm`` (n, h, w) — plus
``skipped_id``/``skipped_reason``. With float16 each map is stored divided by its largest magnitude,
which is kept beside it in float32 (``gradcam_scale`` (n,), ``pca_positive_scale`` (n, B), …), so
no value overflows or flushes to zero; :class:`MapStore` multiplies it back.

Every file is written whole (a temporary name, then a rename), and written deterministically (fixed
zip timestamps, fixed column order, floats in their shortest round-trip form), so the same run
gives the same bytes, however it was interrupted or split across processes.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from cadcam_numeric.atomic import atomic_write, atomic_write_text
from cadcam_numeric.errors import CadcamInputError

__all__ = ["MANIFEST", "STORE_FORMAT", "MapStore", "read_arrays", "shard_path", "write_arrays"]

STORE_FORMAT = "cadcam-map-store/1"
MANIFEST = "store.json"
SHARDS = "shards"
INDEX_CSV, INDEX_PARQUET, SKIPPED_CSV = "index.csv", "index.parquet", "skipped.csv"
#: the maps a shard may hold, in this order
MAP_NAMES = ("gradcam", "pca_positive", "pca_negative", "svm")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def shard_path(directory: Path, k: int) -> Path:
    return Path(directory) / SHARDS / f"shard-{k:05d}.npz"


def write_arrays(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    """``arrays`` as an ``.npz`` that ``np.load`` reads without pickle, written whole and byte for
    byte the same for the same arrays (every zip entry dated 1980-01-01, stored uncompressed)."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            with zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as archive:
                for name, value in arrays.items():
                    info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
                    info.external_attr = 0o644 << 16
                    buffer = io.BytesIO()
                    np.lib.format.write_array(buffer, np.ascontiguousarray(value), allow_pickle=False)
                    archive.writestr(info, buffer.getvalue())
            fh.flush()
            os.fsync(fh.fileno())  # on disk before the rename makes it a finished shard

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(Path(path), write)


def read_arrays(path: Path, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """The arrays of a shard (only ``names`` when given); a damaged file is refused by name."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {n: np.asarray(npz[n]) for n in (names if names is not None else npz.files)}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise CadcamInputError(f"store: {path} cannot be read as a shard ({type(exc).__name__}: {exc})") from exc


def number_text(value: float | int) -> str:
    """A float32 value as its shortest text that reads back to the same float32 (ints as ints)."""
    if isinstance(value, int | np.integer):
        return str(int(value))
    return np.format_float_positional(np.float32(value), unique=True, trim="-") if np.isfinite(value) else str(value)


def write_table(path: Path, columns: list[str], rows: list[list[str]]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return atomic_write_text(path, buffer.getvalue())


def write_parquet(path: Path, columns: list[str], rows: list[list[str]], kinds: dict[str, str]) -> Path | None:
    """The index as Parquet when pyarrow is installed (None otherwise); numeric columns typed."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        return None
    data = {}
    for j, name in enumerate(columns):
        values = [r[j] for r in rows]
        kind = kinds.get(name, "str")
        if kind == "int":
            data[name] = pa.array([int(v) for v in values], pa.int64())
        elif kind == "float":
            data[name] = pa.array([float(v) for v in values], pa.float32())
        else:
            data[name] = pa.array(values, pa.string())
    table = pa.table(data)
    return atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def _integer(text: str, column: str, row: int) -> int:
    """An integer cell of the index (``"3"``; not ``"nan"``, ``"1.5"``, ``"1e3"`` or past int64), refused by name."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not -(2**63) <= value < 2**63:
        raise CadcamInputError(f"store: {INDEX_CSV} row {row + 1}, column {column}: {text[:40]!r} is not an integer")
    return value


def _number(text: str, column: str, row: int) -> float:
    """A float cell of the index (``"0.25"``, ``"nan"``), refused by name when it is not a number."""
    try:
        return float(text)
    except ValueError:
        raise CadcamInputError(
            f"store: {INDEX_CSV} row {row + 1}, column {column}: {text[:40]!r} is not a number"
        ) from None


class MapStore:
    """Read a map store (module docstring): ``store.index`` is the index as a NumPy structured array
    (one row per image, columns by name: ``store.index["svm_score"]``), ``store[i]`` or
    ``store["id"]`` that image's maps and row, ``store.skipped`` the unreadable images.

    >>> store = MapStore("maps/")                        # doctest: +SKIP
    >>> store[0]["pca_positive"].shape                   # doctest: +SKIP
    (3, 7, 7)
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        manifest = self.directory / MANIFEST
        if not manifest.is_file():
            raise CadcamInputError(f"store: {self.directory} holds no {MANIFEST}; it is not a map store")
        try:
            self.manifest = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CadcamInputError(f"store: {manifest} is not readable JSON ({exc})") from exc
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != STORE_FORMAT:
            raise CadcamInputError(f"store: {manifest} is not a {STORE_FORMAT} manifest")
        if not self.manifest.get("complete"):
            raise CadcamInputError(
                f"store: {self.directory} is incomplete (its run was interrupted); rerun the same "
                "`cadcam explain` command to finish it"
            )
        self.index = self._read_index()
        self._row = {str(i): k for k, i in enumerate(self.index["id"])}
        self._shard_cache: tuple[int, dict[str, np.ndarray]] | None = None

    def _read_index(self) -> np.ndarray:
        kinds = self.manifest["columns"]
        with open(self.directory / INDEX_CSV, encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
        header, body = rows[0], rows[1:]
        if header != list(kinds):
            raise CadcamInputError(f"store: {INDEX_CSV} columns {header} differ from the manifest's {list(kinds)}")
        width = max([1, *(len(r[j]) for r in body for j, n in enumerate(header) if kinds[n] == "str")])
        dtype = [(n, {"int": np.int64, "float": np.float32, "str": f"U{width}"}[kinds[n]]) for n in header]
        if any(len(r) != len(header) for r in body):
            raise CadcamInputError(f"store: a row of {INDEX_CSV} does not have the {len(header)} columns of its header")
        table = np.zeros(len(body), dtype=dtype)
        for j, name in enumerate(header):
            column = [r[j] for r in body]
            if kinds[name] == "int":
                table[name] = [_integer(v, name, k) for k, v in enumerate(column)]
            elif kinds[name] == "float":
                table[name] = [_number(v, name, k) for k, v in enumerate(column)]
            else:
                table[name] = column
        shards = self.manifest.get("shards")
        if "shard" in table.dtype.names and not (
            isinstance(shards, int) and bool(np.all((table["shard"] >= 0) & (table["shard"] < shards)))
        ):
            raise CadcamInputError(f"store: {INDEX_CSV} names a shard outside 0 .. {shards} - 1")
        if "offset" in table.dtype.names and bool(np.any(table["offset"] < 0)):
            raise CadcamInputError(f"store: {INDEX_CSV} holds a negative offset")
        return table

    def __len__(self) -> int:
        return len(self.index)

    @property
    def ids(self) -> list[str]:
        return [str(i) for i in self.index["id"]]

    @property
    def skipped(self) -> list[tuple[str, str]]:
        with open(self.directory / SKIPPED_CSV, encoding="utf-8", newline="") as fh:
            return [(r[0], r[1]) for r in list(csv.reader(fh))[1:]]

    def __getitem__(self, key: int | str) -> dict[str, object]:
        """The maps of one image (raw, at the feature maps' resolution; float32, also from a float16
        store, whose maps are scaled back) and its index row."""
        if isinstance(key, str):
            if key not in self._row:
                raise KeyError(f"store: no image with id {key!r}")
            key = self._row[key]
        if not isinstance(key, int | np.integer) or not -len(self) <= key < len(self):
            raise IndexError(f"store: index {key!r} out of range for {len(self)} images")
        row = self.index[int(key)]
        shard, offset = int(row["shard"]), int(row["offset"])
        if self._shard_cache is None or self._shard_cache[0] != shard:
            names = tuple(n for n in self.manifest["maps"] if n in MAP_NAMES or n.endswith("_scale"))
            self._shard_cache = (shard, read_arrays(shard_path(self.directory, shard), ("id", *names)))
        arrays = self._shard_cache[1]
        if offset >= len(arrays["id"]) or str(arrays["id"][offset]) != str(row["id"]):
            raise CadcamInputError(
                f"store: {INDEX_CSV} says image {str(row['id'])!r} is at offset {offset} of shard {shard}, "
                "but that shard holds another image there; the index does not match the shards"
            )
        maps = {}
        for name in MAP_NAMES:
            if name in arrays:
                value = arrays[name][offset]
                scale = arrays.get(f"{name}_scale")
                maps[name] = value if scale is None else value.astype(np.float32) * scale[offset][..., None, None]
        return {**{name: row[name].item() for name in self.index.dtype.names}, **maps}

    def to_pandas(self):
        """The index as a pandas DataFrame (needs pandas)."""
        import pandas as pd

        return pd.DataFrame({name: self.index[name] for name in self.index.dtype.names})
