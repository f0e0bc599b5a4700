"""Where the bundled C runtime, target files and templates live (source tree or installed wheel)."""

from pathlib import Path

_HERE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    # Installed wheel: edgec/<name>; source checkout or editable install: <repo>/<name> beside toolchain/.
    for candidate in (_HERE / name, _HERE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"edgec data folder '{name}' not found next to {_HERE}")


RUNTIME_DIR = _find("runtime_c")
TARGETS_DIR = _find("targets")
TEMPLATES_DIR = _find("codegen") / "templates"
