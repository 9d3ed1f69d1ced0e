"""Semantic tokens: a self-supervised speech encoder, one of its layers, per-dimension standardisation
and k-means (AudioLM section III-B)."""
