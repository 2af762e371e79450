"""Get a base model and its tokenizer from wherever the user has it, offline too.

`resolve()` turns a model spec (an alias, a hub id, a folder, a .gguf file) into a `ModelSource`
without importing torch; `load_tokenizer()` and `load_model()` materialise it. GGUF files are
converted once into safetensors under `$LLM_MCP_HOME/models/` and later loads read that cache.
"""

from llm_mcp.models.resolve import ALIASES, ModelSource, cached_models, resolve
from llm_mcp.models.load import LoadedModel, load_model, load_tokenizer, local_dir

__all__ = [
    "ALIASES",
    "LoadedModel",
    "ModelSource",
    "cached_models",
    "load_model",
    "load_tokenizer",
    "local_dir",
    "resolve",
]
