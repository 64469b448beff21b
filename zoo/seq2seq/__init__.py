"""Sequence-to-sequence models: translation and headline generation."""
