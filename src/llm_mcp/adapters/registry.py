"""Which adapters exist and whose files may be deleted: one set of rules for the CLI (`llm-mcp
adapters list|delete`) and the server (discovery, MCP `list_adapters` / `delete_adapter`).

An adapter is a row in the store (trained here, or loaded from a folder), or a folder in
$LLM_MCP_HOME/adapters with a valid name, PEFT safetensors weights and no symlink among the
folder, its config and its weights. Files are deleted only from such a folder of the same name,
and only when the store's row for that name (if any) points at it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from llm_mcp.errors import LLMMCPError


def own_folder(home: Path, folder: Path) -> bool:
    """Is `folder` a real folder in `home`/adapters whose weights are its own? A symlink (the
    folder, its config or weights) could lead outside the data directory. (A symlinked card is
    ignored by read_card.)"""
    adapters = (Path(home) / "adapters").resolve()
    if folder.is_symlink() or folder.resolve().parent != adapters:
        return False
    return not any((folder / f).is_symlink() for f in ("adapter_config.json", "adapter_model.safetensors"))


def found(home: Path) -> list[Path]:
    """The adapter folders of `home`/adapters that count as adapters (see above), by name."""
    from llm_mcp.adapters.card import adapter_folders
    from llm_mcp.serve.engine import NAME

    return [sub for sub in adapter_folders(home) if (sub / "adapter_model.safetensors").is_file()
            and NAME.fullmatch(sub.name) and own_folder(home, sub)]


def discover(store, home: Path) -> None:
    """Register the folders of `home`/adapters that the store does not know."""
    from llm_mcp.adapters.card import read_card

    for sub in found(home):
        if store.adapter(sub.name) is None:
            store.put_adapter(sub.name, sub, read_card(sub))


def known(store, home: Path) -> dict[str, dict]:
    """Every adapter, by name: {name, path, card} (the folders found registered first)."""
    discover(store, home)
    return {a["name"]: a for a in store.adapters()}


def delete(store, home: Path, name: str) -> bool:
    """Forget adapter `name`; delete its files when they are its own folder in `home`/adapters.
    → whether files were deleted. Unknown name: LLMMCPError."""
    from llm_mcp.serve.engine import check_name

    check_name(name)
    discover(store, home)
    row = store.adapter(name)
    if row is None:
        names = ", ".join(a["name"] for a in store.adapters()) or "none"
        raise LLMMCPError(f"no adapter {name!r} (known: {names})", "`llm-mcp adapters list` shows them")
    folder = Path(home) / "adapters" / name
    deleted = False
    if folder.is_dir() and own_folder(home, folder) and Path(row["path"]).resolve() == folder.resolve():
        shutil.rmtree(folder)
        deleted = True
    store.delete_adapter(name)
    return deleted
