"""edgec: ONNX models to plain C for Cortex-M and Cortex-A, quantized, pruned and checked on emulated hardware.

The Python API (toolchain/api.py): edgec.build(...) -> edgec.Build, edgec.validate(...) -> dict,
edgec.compare(...) -> rows, edgec.Build.load(folder).
"""

import importlib
import os
import types

# One BLAS thread unless the environment says otherwise (numpy reads this when it is first imported): the numpy
# reference's matrix products are small, and OpenBLAS's waiting threads made a resnet8 int8 build take 84 s instead
# of 8 s on a busy 2-core machine.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"

_API_MODULES = ("build", "validate", "compare")


class ApiModule(types.ModuleType):
    """edgec.build, edgec.validate and edgec.compare are modules and, called, the API functions of the same name
    in edgec.api: edgec.build("m.onnx", target="cortex-m4") is edgec.api.build("m.onnx", target="cortex-m4"),
    while edgec.build.BuildOptions stays the module's. Each of those modules sets this class on itself."""

    def __call__(self, *args, **kwargs):
        from . import api

        return getattr(api, self.__name__.rpartition(".")[2])(*args, **kwargs)


def __getattr__(name: str):
    # Loaded on first use, so that `import edgec` (and `edgec --version`) stays fast.
    if name in _API_MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name == "Build":
        from .api import Build

        return Build
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
