"""The three token language models of AudioLM: one Transformer, one `StageSpec` per stage."""
