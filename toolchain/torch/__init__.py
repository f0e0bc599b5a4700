"""edgec.torch: training-aware compression in PyTorch that deploys exactly (install the extra: edgec[torch]).

- prepare_qat(model, scheme, calib): quantization-aware training whose forward is edgec's integer arithmetic;
- GradualPruner(model, final_sparsity, Schedule(t0, n, dt), structure, criterion): gradual pruning;
- export(model, example_input, path): ONNX (QDQ for a prepared model) for `edgec build`."""

from .export import export
from .pruning import GradualPruner, Schedule
from .qat import SCHEMES, Scheme, calibrate, integer_outputs, output_quant, prepare_qat, set_mode

__all__ = ["GradualPruner", "SCHEMES", "Schedule", "Scheme", "calibrate", "export", "integer_outputs",
           "output_quant", "prepare_qat", "set_mode"]
