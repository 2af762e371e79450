"""Shared fixtures: an isolated LLM_MCP_HOME, the embedded SmolLM2 (converted once per session),
its tokenizer with several chat templates, and tiny random models built from a config."""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ASSETS = Path(__file__).parent / "assets"
REPO = Path(__file__).parent.parent


@pytest.fixture(scope="session", autouse=True)
def llm_mcp_home(tmp_path_factory):
    """Every test session gets its own data directory (models are converted into it once)."""
    home = tmp_path_factory.mktemp("llm-mcp-home")
    old = os.environ.get("LLM_MCP_HOME")
    os.environ["LLM_MCP_HOME"] = str(home)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    yield home
    if old is None:
        os.environ.pop("LLM_MCP_HOME", None)
    else:
        os.environ["LLM_MCP_HOME"] = old


@pytest.fixture(scope="session")
def smol_dir(llm_mcp_home) -> Path:
    """The embedded SmolLM2 converted to a safetensors folder."""
    from llm_mcp.models import local_dir

    return Path(local_dir("smollm2-135m-instruct"))


@pytest.fixture(scope="session")
def smol_tokenizer(smol_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(smol_dir)


def _with_template(tokenizer, template: str | None):
    tok = copy.deepcopy(tokenizer)
    tok.chat_template = template
    return tok


@pytest.fixture(scope="session")
def native_tokenizer(smol_tokenizer):
    """SmolLM2's tokenizer with a tool-aware (Qwen2.5-style) chat template."""
    return _with_template(smol_tokenizer, (ASSETS / "tools_template.jinja").read_text())


@pytest.fixture(scope="session")
def strict_tokenizer(smol_tokenizer):
    """SmolLM2's tokenizer with a template that refuses system and tool turns."""
    return _with_template(smol_tokenizer, (ASSETS / "strict_template.jinja").read_text())


@pytest.fixture(scope="session")
def bare_tokenizer(smol_tokenizer):
    """SmolLM2's tokenizer without any chat template."""
    return _with_template(smol_tokenizer, None)


def _tiny(kind: str, tokenizer, folder: Path) -> Path:
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    torch.manual_seed(0)
    common = dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                  max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  tie_word_embeddings=True)
    config = LlamaConfig(**common) if kind == "llama" else Qwen2Config(**common)
    model = AutoModelForCausalLM.from_config(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory, smol_tokenizer) -> Path:
    """A folder with a randomly initialised 2-layer Llama and the SmolLM2 tokenizer."""
    return _tiny("llama", smol_tokenizer, tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_qwen2(tmp_path_factory, native_tokenizer) -> Path:
    """A folder with a randomly initialised 2-layer Qwen2 and a tool-aware tokenizer."""
    return _tiny("qwen2", native_tokenizer, tmp_path_factory.mktemp("tiny-qwen2"))


def random_adapter(base: Path, folder: Path, seed: int, layers: list[int] | None = None,
                   **lora) -> Path:
    """A PEFT adapter with random LoRA weights (so it changes the output) for the model at `base`;
    `layers`: only those decoder layers (as the default training preset's upper half); `lora`:
    other LoraConfig settings (r, use_dora, bias, ...)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from llm_mcp.train.recipe import _linear_names

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base)
    # PEFT takes a layer list only with named target modules
    targets = "all-linear" if layers is None else _linear_names(model)
    config = LoraConfig(**{"r": 4, "lora_alpha": 64, "target_modules": targets,
                           "layers_to_transform": layers, "init_lora_weights": False, **lora})
    get_peft_model(model, config).save_pretrained(folder)
    return folder


# ---- a real `llm-mcp serve` process on loopback --------------------------------------------------

def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """`python -m llm_mcp serve --model MODEL --port <free port> EXTRA…` with its own
    LLM_MCP_HOME, ready once /v1/models answers; its output goes to HOME/server-<port>.log."""

    def __init__(self, model: Path, home: Path, *extra: str, env: dict | None = None, timeout: float = 120):
        import httpx2

        self.port = _port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.log = open(home / f"server-{self.port}.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llm_mcp", "serve", "--model", str(model), "--port", str(self.port), *extra],
            stdout=self.log, stderr=subprocess.STDOUT,
            env={**os.environ, "LLM_MCP_HOME": str(home), **(env or {})})
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError((home / f"server-{self.port}.log").read_text())
            try:
                httpx2.get(self.url + "/v1/models", timeout=2, headers=self.auth)
                return
            except httpx2.TransportError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start")

    @property
    def auth(self) -> dict:
        return {}

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(30)
        self.log.close()


@contextlib.contextmanager
def served(model, fmt, folder):
    """The server's engine on `model` (saved with its tokenizer under `folder`), closed after."""
    from llm_mcp.serve.engine import Engine

    model.save_pretrained(folder)
    fmt.tokenizer.save_pretrained(folder)
    engine = Engine(str(folder), dtype="float32", chat_format="hermes")
    try:
        yield engine
    finally:
        engine.close()


def taught(folder, fmt, messages: list, tools: list, replies: list[list[dict]], steps: int):
    """The tiny model at `folder`, trained on one conversation answered each way in `replies`
    in turn: where they differ, it learns the odds."""
    import torch
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(folder)
    batches = []
    for calls in replies:
        r = fmt.render([*messages, {"role": "assistant", "content": "", "tool_calls": calls}], tools)
        batches.append((torch.tensor([r.input_ids]),
                        torch.tensor([[t if m else -100 for t, m in zip(r.input_ids, r.assistant_mask)]])))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(steps):
        ids, labels = batches[step % len(batches)]
        model(input_ids=ids, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    return model.eval()
