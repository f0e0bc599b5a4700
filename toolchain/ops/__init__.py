"""One module per op family; importing this package fills REGISTRY."""

from . import binary, conv, convert, gemm, lrn, minmax, pool, reduce, shape, softmax, unary  # noqa: F401
from .base import REGISTRY, Op

__all__ = ["REGISTRY", "Op"]
