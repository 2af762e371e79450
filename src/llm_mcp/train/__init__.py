"""LoRA fine-tuning for tool calling: the typed config (`config.py`), the recipe (`recipe.py`:
setup → loop → save), the loss, checkpoints and metrics."""
