"""The CLI and the core must start fast: heavy frameworks load only when used."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = [
    "torch",
    "lightning",
    "transformers",
    "wandb",
    "faiss",
    "grpc",
    "datasets",
    "pandas",
    "sklearn",
]


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_and_help_load_no_heavy_module():
    loaded = _modules_after(
        "import contextlib, io, collapse_callbacks\n"
        "from collapse_callbacks.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['--help'])\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['profile', '--help'])"
    )
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}
    assert "pyarrow" not in loaded


def test_profiling_a_file_does_not_load_torch_or_pandas():
    loaded = _modules_after(
        "import contextlib, io\n"
        "from collapse_callbacks.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['profile', 'example:penguins'])"
    )
    assert "pyarrow" in loaded
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}


def test_public_names_resolve():
    import collapse_callbacks as cc

    for name in cc.__all__:
        assert getattr(cc, name) is not None


def test_a_check_trains_its_classifier_without_torchs_compiler():
    # torch.optim's optimizers import torch._dynamo when built: about a second of a
    # small check. The checks' networks train with collapse_callbacks.adamw instead.
    loaded = _modules_after(
        "import contextlib, io\n"
        "from collapse_callbacks.cli import main\n"
        "with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['check', 'example:penguins', 'example:penguins', '--quiet'])"
    )
    assert "torch" in loaded
    assert "torch._dynamo" not in loaded
