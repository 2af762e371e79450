"""Files → (line, record) pairs: JSONL, JSON arrays, and (through `datasets`) parquet files and
saved Hugging Face datasets. Line numbers are 1-based and point at the record's first line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, Iterator

from llm_mcp.data.example import Issue
from llm_mcp.errors import LLMMCPError


def iter_records(path: str | Path) -> Iterator[tuple[int, object | Issue]]:
    """Yield (line, record) or (line, Issue) for records that are not valid JSON."""
    p = Path(path)
    if not p.exists():
        raise LLMMCPError(f"dataset {path} does not exist")
    if p.is_dir() or p.suffix.lower() in (".parquet", ".arrow"):
        yield from _hf_records(p)
        return
    text = p.read_text(encoding="utf-8-sig")
    head = text.lstrip()[:1]
    if head == "[" and p.suffix.lower() != ".jsonl":
        yield from _array_records(str(p), text)
    else:
        yield from _jsonl_records(str(p), text)


def write_jsonl(path: str | Path, records: Iterable[dict]) -> None:
    """One JSON object a line, written to a temporary file first: a crash never leaves half a file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def _jsonl_records(name: str, text: str):
    for n, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield n, json.loads(raw)
        except json.JSONDecodeError as err:
            yield n, Issue(name, n, "invalid-json", f"not valid JSON: {err.msg} at column {err.colno}",
                           "each line of a .jsonl file must be one complete JSON object")


def _array_records(name: str, text: str):
    decoder = json.JSONDecoder()
    i = text.index("[") + 1
    n = len(text)
    while True:
        while i < n and (text[i].isspace() or text[i] == ","):
            i += 1
        if i >= n:
            last = text.count("\n") + 1
            yield last, Issue(name, last, "invalid-json", "the JSON array is not closed with ]")
            return
        if text[i] == "]":
            return
        line = text.count("\n", 0, i) + 1
        try:
            value, i = decoder.raw_decode(text, i)
        except json.JSONDecodeError as err:
            yield err.lineno, Issue(name, err.lineno, "invalid-json",
                                    f"not valid JSON: {err.msg} at column {err.colno}")
            return  # the rest of an array cannot be located reliably after a syntax error
        yield line, value


def _hf_records(p: Path):
    try:
        import datasets
    except ImportError as err:
        raise LLMMCPError(f"reading {p} needs the `datasets` package", "pip install datasets") from err
    if p.is_dir():
        ds = datasets.load_from_disk(str(p))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds["train"] if "train" in ds else next(iter(ds.values()))
    else:
        ds = datasets.Dataset.from_parquet(str(p))
    for n, row in enumerate(ds, start=1):  # "line" = row number
        yield n, row
