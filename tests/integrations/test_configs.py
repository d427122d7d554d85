"""The files under integrations/ load with the libraries' own config classes, resolve the
way the launchers resolve them, and the CPU 2-process recipe really starts two connected
ranks.

accelerate, lightning and wandb are optional extras: each test skips when the library it
checks against is not installed.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

INTEGRATIONS = Path(__file__).resolve().parents[2] / "integrations"
ACCELERATE = INTEGRATIONS / "accelerate"
DDP = ACCELERATE / "ddp-4gpu.yaml"
FSDP = ACCELERATE / "fsdp-bf16-4gpu.yaml"
CPU_2PROC = ACCELERATE / "cpu-2proc.yaml"
LIGHTNING = INTEGRATIONS / "lightning" / "collapse-gate.yaml"
GATE_CLASS_PATH = "collapse_callbacks.lightning.CollapseGateCallback"


def _import_path(class_path: str):
    module, _, name = class_path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _resolve_launch(config_file: Path, monkeypatch, *extra: str):
    """What `accelerate launch [extra] --config_file F train.py` decides, without launching:
    the parsed arguments after accelerate merged the file in, and the environment the
    workers would get when the torchrun path is taken."""
    pytest.importorskip("accelerate")
    # _validate_launch_command is private, but it is the one place where accelerate merges
    # a config file into the launch arguments; copying its logic here would test the copy.
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import prepare_multi_gpu_env

    # The workers inherit the caller's environment: keep a developer's own setting out of
    # what is asserted about the file.
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    argv = [*extra, "--config_file", str(config_file), "train.py"]
    args, _, _ = _validate_launch_command(launch_command_parser().parse_args(argv))
    # launch_command's dispatch: these two go to multi_gpu_launcher (torchrun), everything
    # else here to simple_launcher (one process unless mpirun is configured).
    torchrun = (args.multi_gpu or args.use_fsdp) and not args.cpu
    env = prepare_multi_gpu_env(args) if torchrun else None
    return args, torchrun, env


def _cluster_config(path: Path):
    pytest.importorskip("accelerate")
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    config = load_config_from_file(str(path))
    # load_config_from_file picks SageMakerConfig for other compute environments.
    assert isinstance(config, ClusterConfig)
    return config


def test_ddp_config_is_four_bf16_ranks_on_one_node(monkeypatch):
    pytest.importorskip("accelerate")
    from accelerate.utils import DistributedType

    config = _cluster_config(DDP)
    assert config.distributed_type == DistributedType.MULTI_GPU
    assert config.mixed_precision == "bf16"
    assert (config.num_processes, config.num_machines, config.machine_rank) == (4, 1, 0)
    assert config.use_cpu is False
    assert config.fsdp_config == {}

    args, torchrun, env = _resolve_launch(DDP, monkeypatch)
    assert torchrun and not args.use_fsdp
    assert args.nproc_per_node == "4"
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert "ACCELERATE_USE_FSDP" not in env


def test_fsdp_config_is_fsdp2_bf16_on_four_ranks(monkeypatch):
    pytest.importorskip("accelerate")
    from accelerate.utils import DistributedType

    config = _cluster_config(FSDP)
    assert config.distributed_type == DistributedType.FSDP
    assert config.mixed_precision == "bf16"
    assert (config.num_processes, config.num_machines, config.machine_rank) == (4, 1, 0)
    fsdp = config.fsdp_config
    assert fsdp["fsdp_version"] == 2
    assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] == "SHARDED_STATE_DICT"
    assert fsdp["fsdp_cpu_ram_efficient_loading"] is True
    assert fsdp["fsdp_reshard_after_forward"] is True
    assert fsdp["fsdp_offload_params"] is False
    # Left out on purpose so the model's own `_no_split_modules` decides (see the file).
    assert "fsdp_transformer_layer_cls_to_wrap" not in fsdp

    args, torchrun, env = _resolve_launch(FSDP, monkeypatch)
    assert torchrun and args.use_fsdp
    assert args.nproc_per_node == "4"
    assert env["ACCELERATE_USE_FSDP"] == "true"
    assert env["ACCELERATE_MIXED_PRECISION"] == "bf16"
    assert env["FSDP_VERSION"] == "2"
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP"
    assert env["FSDP_STATE_DICT_TYPE"] == "SHARDED_STATE_DICT"
    assert env["FSDP_CPU_RAM_EFFICIENT_LOADING"] == "true"
    assert env["FSDP_RESHARD_AFTER_FORWARD"] == "true"


def test_fsdp_config_builds_the_plugin_and_wraps_no_split_modules(monkeypatch):
    """The workers build FullyShardedDataParallelPlugin from the FSDP_* variables the
    launcher exports. Building it needs no GPU for FSDP2 (only FSDP1's sync_module_states
    asks for a CUDA device), so the plugin a 4-GPU worker would get is built here."""
    pytest.importorskip("accelerate")
    import torch
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy
    from torch.distributed.fsdp import CPUOffloadPolicy, OffloadPolicy
    from torch.distributed.fsdp.fully_sharded_data_parallel import StateDictType
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    _, _, env = _resolve_launch(FSDP, monkeypatch)
    for key, value in env.items():
        if key.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(key, value)
    plugin = FullyShardedDataParallelPlugin()

    assert plugin.fsdp_version == 2
    assert plugin.auto_wrap_policy is transformer_auto_wrap_policy
    assert plugin.transformer_cls_names_to_wrap is None
    assert plugin.state_dict_type == StateDictType.SHARDED_STATE_DICT
    assert plugin.reshard_after_forward is True
    assert plugin.cpu_ram_efficient_loading is True
    assert isinstance(plugin.cpu_offload, OffloadPolicy)
    assert not isinstance(plugin.cpu_offload, CPUOffloadPolicy)
    # Obsolete in FSDP2: the launcher's flag does not reach the plugin.
    assert plugin.sync_module_states is None

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(4, 4)

    class TinyTransformer(torch.nn.Module):
        # What every transformers model declares; accelerate wraps these classes when the
        # config names none.
        _no_split_modules = ("Block",)

        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(10, 4)
            self.blocks = torch.nn.ModuleList([Block(), Block()])

    model = TinyTransformer()
    policy = fsdp2_prepare_auto_wrap_policy(plugin, model)
    assert [policy(module) for module in model.blocks] == [True, True]
    assert not policy(model)
    assert not policy(model.embed)


def test_cpu_2proc_config_takes_the_torchrun_path(monkeypatch):
    pytest.importorskip("accelerate")
    from accelerate.utils import DistributedType

    config = _cluster_config(CPU_2PROC)
    # MULTI_GPU, not MULTI_CPU: see test_the_obvious_cpu_configs_start_one_process.
    assert config.distributed_type == DistributedType.MULTI_GPU
    assert config.use_cpu is True
    assert (config.num_processes, config.num_machines) == (2, 1)
    assert config.mixed_precision == "no"
    assert config.main_process_port == 0

    args, torchrun, env = _resolve_launch(CPU_2PROC, monkeypatch)
    assert torchrun
    assert args.nproc_per_node == "2"
    assert args.main_process_port != 0  # 0 was replaced by a free port
    # Why ACCELERATE_USE_CPU=1 must be on the command line: `use_cpu: true` does not reach
    # the workers on this path, and without a GPU each worker's Accelerator() then runs
    # alone. If a later accelerate forwards it, this fails and the README can say so.
    assert "ACCELERATE_USE_CPU" not in env


@pytest.mark.parametrize(
    ("yaml_text", "extra"),
    [
        ("distributed_type: MULTI_CPU\nnum_processes: 2\nnum_machines: 1\nuse_cpu: true\n", ()),
        (None, ("--cpu",)),
    ],
    ids=["MULTI_CPU-yaml", "--cpu-flag"],
)
def test_the_obvious_cpu_configs_start_one_process(tmp_path, monkeypatch, yaml_text, extra):
    """The trap the cpu-2proc file avoids: both take accelerate's single-process launcher
    (it needs mpirun for more CPU processes), so a test built on them runs one rank."""
    config = CPU_2PROC
    if yaml_text is not None:
        config = tmp_path / "multi-cpu.yaml"
        config.write_text(yaml_text)
    args, torchrun, _ = _resolve_launch(config, monkeypatch, *extra)
    assert not torchrun
    assert args.mpirun_hostfile is None


RANK_SCRIPT = textwrap.dedent(
    """
    import json
    import os
    import sys
    from pathlib import Path

    import torch
    import torch.distributed as dist
    from accelerate import Accelerator

    accelerator = Accelerator()
    # Named by torch.distributed's rank, so that two ranks that accelerate wrongly sees as
    # two single-process runs still leave two files and fail on their content.
    rank = dist.get_rank() if dist.is_initialized() else int(os.environ.get("RANK", 0))
    # A real collective through accelerate: 0 + 1 only when the two ranks are connected.
    total = accelerator.reduce(torch.tensor([float(rank)]), reduction="sum")
    result = {
        "rank": rank,
        "world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "backend": dist.get_backend() if dist.is_initialized() else None,
        "accelerate_index": accelerator.process_index,
        "accelerate_processes": accelerator.num_processes,
        "distributed_type": str(accelerator.distributed_type.value),
        "rank_sum": total.item(),
    }
    (Path(sys.argv[1]) / f"rank{rank}.json").write_text(json.dumps(result))
    accelerator.end_training()
    """
)


def test_cpu_2proc_launch_starts_two_connected_gloo_ranks(tmp_path):
    """The documented command, run for real:
    ACCELERATE_USE_CPU=1 accelerate launch --config_file integrations/accelerate/cpu-2proc.yaml
    (about 5 s here)."""
    pytest.importorskip("accelerate")
    script = tmp_path / "rank_script.py"
    script.write_text(RANK_SCRIPT)
    out = tmp_path / "ranks"
    out.mkdir()
    # `python -m accelerate.commands.accelerate_cli` is what the `accelerate` console
    # script runs; this way the test does not depend on the venv's bin/ being on PATH.
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.accelerate_cli",
        "launch",
        "--config_file",
        str(CPU_2PROC),
        str(script),
        str(out),
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1"}
    started = time.perf_counter()
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, (
        f"launch failed after {seconds:.1f} s:\n{proc.stdout}\n{proc.stderr}"
    )

    files = sorted(out.glob("rank*.json"))
    assert [f.name for f in files] == ["rank0.json", "rank1.json"], proc.stderr
    results = [json.loads(f.read_text()) for f in files]
    assert {r["rank"] for r in results} == {0, 1}
    for result in results:
        assert result["world_size"] == 2
        assert result["backend"] == "gloo"
        assert result["accelerate_processes"] == 2, "accelerate ran each rank alone"
        assert result["accelerate_index"] == result["rank"]
        assert result["distributed_type"] == "MULTI_CPU"
        assert result["rank_sum"] == 1.0


def _lightning_config() -> dict:
    return yaml.safe_load(LIGHTNING.read_text())


def test_lightning_config_has_the_gate_ddp_bf16_and_wandb():
    trainer = _lightning_config()["trainer"]
    assert trainer["strategy"] == "ddp"
    assert trainer["precision"] == "bf16-mixed"
    assert trainer["logger"]["class_path"] == "lightning.pytorch.loggers.WandbLogger"
    (gate,) = trainer["callbacks"]
    assert gate["class_path"] == GATE_CLASS_PATH
    init_args = gate["init_args"]
    assert isinstance(init_args["reference"], str)
    assert init_args["alpha"] == 0.01
    assert init_args["on_collapse"] == "raise"
    assert init_args["max_rows"] == 200_000
    assert init_args["max_seconds"] == 600


def test_lightning_trainer_and_logger_accept_the_config():
    """Every trainer key is a Trainer argument, the logger's init_args fit WandbLogger, and
    Lightning accepts the strategy and precision strings (checked on CPU, 1 device: the
    connector validates them at construction, before any process is started)."""
    lightning = pytest.importorskip("lightning")
    pytest.importorskip("wandb")
    trainer_config = dict(_lightning_config()["trainer"])
    logger = trainer_config.pop("logger")
    trainer_config.pop("callbacks")

    inspect.signature(lightning.pytorch.Trainer).bind(**trainer_config)
    logger_class = _import_path(logger["class_path"])
    assert issubclass(logger_class, lightning.pytorch.loggers.Logger)
    inspect.signature(logger_class).bind(**logger["init_args"])

    trainer = lightning.pytorch.Trainer(
        accelerator="cpu",
        devices=1,
        strategy=trainer_config["strategy"],
        precision=trainer_config["precision"],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    assert type(trainer.strategy).__name__ == "DDPStrategy"
    assert trainer.precision == "bf16-mixed"


def test_gate_callback_accepts_the_init_args():
    lightning = pytest.importorskip("lightning")
    pytest.importorskip("collapse_callbacks.lightning")
    (gate,) = _lightning_config()["trainer"]["callbacks"]
    callback_class = _import_path(gate["class_path"])
    assert issubclass(callback_class, lightning.pytorch.Callback)
    init_args = gate["init_args"]
    # Each key must be a named parameter: the callback also takes **gate_options, which
    # would swallow a misspelt key and fail only later, inside the gate.
    parameters = inspect.signature(callback_class).parameters
    named = {n for n, p in parameters.items() if p.kind is not inspect.Parameter.VAR_KEYWORD}
    assert set(init_args) <= named
    # What LightningCLI does with the entry. The constructor validates the values and
    # reads nothing: the reference is only opened when the gate runs.
    callback = callback_class(**init_args)
    assert callback.on_collapse == "raise"
