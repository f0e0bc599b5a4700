"""edgec: ONNX models to plain C for Cortex-M and Cortex-A, quantized, pruned and checked on emulated hardware."""

__version__ = "0.1.0"
