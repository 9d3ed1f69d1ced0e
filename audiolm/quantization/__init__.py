"""Vector quantization for the codec: an EMA `VectorQuantizer` and a `ResidualVQ` with quantizer dropout."""

from audiolm.quantization.rvq import QuantizerOutput, ResidualVQ
from audiolm.quantization.vq import VectorQuantizer, VQOutput

__all__ = ["QuantizerOutput", "ResidualVQ", "VQOutput", "VectorQuantizer"]
