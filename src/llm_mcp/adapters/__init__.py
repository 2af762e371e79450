"""Adapter folders: PEFT's files plus an adapter card (README.md + adapter_card.json); merging an
adapter into its base model."""
