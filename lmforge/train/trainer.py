"""Pretraining: a config dataclass, a step function, checkpoints, and the loop around them.

`train(TrainConfig(...))` is the whole of `lmforge train`; the CLI only parses options and
prints. The pieces a test drives separately:

- `TrainConfig`: validated on construction (or by `validate()` once the world size is
  known); every error names the fix.
- `Trainer.step(tokens)`: one optimizer step over this rank's (B, T + 1) tokens: micro-batches
  with gradient accumulation (DDP gradient sync on the last one only), bf16 autocast on
  CUDA (and on CPU with `precision="bf16"`), gradient clipping, the learning-rate schedule, AdamW (fused kernels where the device
  has them). A NaN or infinite loss raises `TrainingError` *before* the update, so the last
  checkpoint on disk stays the last good one.
- `save_checkpoint` / `load_checkpoint`: `RUN/checkpoints/step_00000100/` holds
  `model.safetensors`, `optimizer.pt` (tensors and numbers only, read back with
  `torch.load(weights_only=True)`) and `state.json` (configs, the loader's position, RNG
  states, manifest and tokenizer fingerprints). It is written under a temporary name and
  renamed, so a checkpoint directory either is complete or does not exist.
- Integrity: state.json records the sha256 of every other file of its checkpoint (`files`)
  and of its own content (`state_sha256`); `verify_checkpoint` checks them on every load
  (`load_model` for sample, chat and the align stages' --base/--policy; resume), and a
  resume whose newest checkpoint fails falls back to the newest good one, saying so
  (`newest_good_checkpoint`). sha256 reads 89 MB/s on this project's shared 2-core Xeon
  (no SHA extensions): ~0.1 s for a `tiny` checkpoint (10 MB), ~17 s for a d12 one (weights
  and AdamW moments, ~1.5 GB), once per save and per load; sampling hashes the weights only.

Exact resume: a run killed at any moment (kill -9 included) and started again with the same
command line reloads the newest checkpoint, cuts `metrics.jsonl` back to that step, and
continues from the same weights, optimizer moments, schedule step and data position; on CPU its
losses and final weights are bit for bit those of the uninterrupted run
(tests/test_train_resume.py). `RUN/settings.json`, written before the first step, records the
settings that decide what the run computes (`RUN_SETTINGS`); a rerun with other ones is refused
by name (`lmforge.settings`), and a rerun of a finished run does nothing and says so.

Starting from other weights (`init_from`): an lmforge run (its newest checkpoint), one
checkpoint folder, or a Llama-family Hugging Face folder (`lmforge.train.hf_import`, the import
of `align --base`) gives the model config and the initial weights; the optimizer, the schedule
and the data position start fresh at step 0. The source's vocabulary size and tokenizer
fingerprint must be the manifest's (`init_source`); a `preset` that names another shape is
refused, and without one the batch and learning-rate defaults are those of the widest preset no
wider than the source.

Data parallel (`torchrun`): `--batch-tokens` is the *global* batch. Each rank reads its slice
of every global batch (see `data.MixtureLoader`) and accumulates `batch / (ranks · micro)`
micro-batches, so the same command on 1 or N processes averages gradients over the same
sequences. Only rank 0 writes files.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lmforge.errors import UserError
from lmforge.train.data import MixtureLoader, Prefetcher, val_bits_per_byte
from lmforge.train.gpu import peak_bf16_flops, use_fast_float32
from lmforge.train.metrics import METRICS, MetricsLog, TrackerError, check_trackers, read_metrics, truncate_metrics  # noqa: F401 (re-exported)
from lmforge.train.model import GPT, PRESETS, GPTConfig, load_weights, preset_config, save_weights

log = logging.getLogger(__name__)

CHECKPOINTS = "checkpoints"
STATE_FILE = "state.json"
MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.pt"

# Per preset: (global batch tokens, micro-batch sequences, peak learning rate).
PRESET_DEFAULTS: dict[str, tuple[int, int, float]] = {
    "tiny": (4096, 32, 3e-3),
    "small": (8192, 32, 2e-3),
    "d6": (16384, 32, 1e-3),
    "d12": (524288, 32, 6e-4),
    "d24": (524288, 16, 3e-4),
}


class TrainingError(UserError):
    """A run that cannot start or go on; the message says why and what to do."""


#: TrainConfig fields that decide what a run computes: a rerun into the same folder must ask the
#: same ones (with the manifest's sha256 and the resolved precision, see `run_settings`).
#: Free to differ on a resume, because they change how the same batches are computed (float
#: rounding at most), or when weights are saved, never which: micro_batch, device, compile,
#: threads (and the number of torchrun processes: --batch-tokens is global), checkpoint_every,
#: keep_checkpoints. eval_every and eval_tokens count: they decide the metrics rows.
RUN_SETTINGS = ("preset", "init_from", "steps", "seed", "batch_tokens", "lr", "min_lr_ratio", "warmup", "schedule", "decay_fraction",
                "weight_decay", "optimizer", "muon_lr", "beta1", "beta2", "grad_clip", "eval_every", "eval_tokens")


def run_settings(config: dict, manifest_sha256: str | None, precision: str | None) -> dict:
    """What `RUN/settings.json` records of a pretraining run, keyed by flag."""
    from lmforge.settings import flags

    return {"--manifest": manifest_sha256, **flags(config, RUN_SETTINGS), "--precision": precision}
class CheckpointError(TrainingError):
    """A checkpoint file that is missing, unreadable or fails its sha256 in state.json."""


@dataclass
class TrainConfig:
    """Everything `lmforge train` needs. Defaults left as None come from the preset."""

    manifest: str
    out_dir: str
    preset: str | None = None  # model shape (None: "tiny", or with init_from the source's shape)
    init_from: str | None = None  # start from these weights: an lmforge run or checkpoint, or a HF Llama-family folder
    steps: int = 200
    seed: int = 0
    batch_tokens: int | None = None  # global batch in tokens (all ranks, all micro-batches)
    micro_batch: int | None = None  # sequences per forward pass on one rank
    lr: float | None = None  # peak learning rate
    min_lr_ratio: float = 0.1  # final learning rate = min_lr_ratio * lr
    warmup: int = 10  # linear warm-up steps
    schedule: str = "cosine"  # "cosine" or "wsd" (warmup, stable, then linear decay)
    decay_fraction: float = 0.2  # WSD: the share of steps spent decaying
    weight_decay: float = 0.1
    optimizer: str = "adamw"  # "adamw", or "muon": Muon for the block matrices, AdamW for the rest
    muon_lr: float = 0.02  # Muon's peak learning rate (the schedule scales it like --lr)
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0  # max global gradient norm; 0 turns clipping off
    device: str = "cpu"  # "cpu" or "cuda"
    compile: bool | None = None  # torch.compile the model (None: on CUDA yes, on CPU no)
    precision: str = "auto"  # "auto" (bf16 autocast on CUDA and on CPUs with bf16 dot products, else float32), "bf16" (autocast) or "fp32"
    checkpoint_every: int = 100  # steps between checkpoints (and one at the end); 0: end only
    eval_every: int = 50  # steps between validation passes (and one at the end); 0: end only
    eval_tokens: int = 8192  # validation targets per source and pass
    keep_checkpoints: int = 2  # newest checkpoints kept on disk
    resume: bool = False  # only continue: refuse to start a run where none was started
    overwrite: bool = False  # start over in a run folder that holds another run
    threads: int | None = None  # torch CPU threads per process (None: torch's default)
    log_every: int | None = None  # steps between reads of the loss from the device (None: 1 on CPU, 10 on CUDA)
    fsdp: bool = False  # shard weights, gradients and optimizer state over the torchrun processes (FSDP2) instead of DDP
    trackers: tuple = ()  # mirrors of metrics.jsonl: "tensorboard", "wandb" (lmforge.train.metrics)

    def __post_init__(self):
        if self.preset is not None and self.preset not in PRESETS:
            raise TrainingError(f"unknown preset {self.preset!r}; choose one of: {', '.join(PRESETS)}")
        self._init_config = None
        defaults = self.preset or "tiny"
        if self.init_from is not None:
            self.init_from = os.path.abspath(self.init_from)
            self._init_config = source_model_config(self.init_from)
            defaults = self.preset or _preset_below(self._init_config)
            if self.preset is not None:
                _check_preset_shape(self.preset, self._init_config, self.init_from)
        elif self.preset is None:
            self.preset = "tiny"
        batch, micro, lr = PRESET_DEFAULTS[defaults]
        self.batch_tokens = batch if self.batch_tokens is None else self.batch_tokens
        self._micro_from_preset = self.micro_batch is None  # validate() may then make it smaller
        self.micro_batch = micro if self.micro_batch is None else self.micro_batch
        self.lr = lr if self.lr is None else self.lr
        if self.steps < 1:
            raise TrainingError(f"--steps {self.steps}: train for at least one step")
        if self.schedule not in ("cosine", "wsd"):
            raise TrainingError(f"--schedule {self.schedule!r}: choose cosine or wsd")
        if self.device not in ("cpu", "cuda"):
            raise TrainingError(f"--device {self.device!r}: choose cpu or cuda")
        if self.optimizer not in ("adamw", "muon"):
            raise TrainingError(f"--optimizer {self.optimizer!r}: choose adamw or muon")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise TrainingError(f"--precision {self.precision!r}: choose auto, bf16 or fp32")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise TrainingError("--device cuda: no CUDA device is visible to torch; use --device cpu")
        if self.lr <= 0 or self.micro_batch < 1 or self.batch_tokens < 1:
            raise TrainingError("--lr, --micro-batch and --batch-tokens must be positive")
        if self.compile is None:
            self.compile = self.device == "cuda"
        if self.log_every is None:
            self.log_every = 10 if self.device == "cuda" else 1
        if self.log_every < 1:
            raise TrainingError(f"--log-every {self.log_every}: read the loss at least every step (1) or every N > 1 steps")
        try:
            self.trackers = check_trackers(self.trackers)
        except TrackerError as exc:
            raise TrainingError(str(exc)) from None

    @property
    def context(self) -> int:
        if getattr(self, "_init_config", None) is not None:
            return self._init_config.block_size
        return PRESETS[self.preset]["block_size"]

    def validate(self, world_size: int) -> None:
        """Check that the global batch splits into whole micro-batches on every rank."""
        T = self.context
        unit = T * self.micro_batch * world_size
        if self.batch_tokens % unit and getattr(self, "_micro_from_preset", False):
            # the preset's micro-batch is a default, not a request: the largest one that splits
            # the global batch over these processes (torchrun -p tiny on 2 processes: 32 -> 16)
            fits = [m for m in range(self.micro_batch, 0, -1) if self.batch_tokens % (T * m * world_size) == 0]
            if fits:
                log.info("micro-batch %d -> %d: --batch-tokens %d over %d process(es) of context %d",
                         self.micro_batch, fits[0], self.batch_tokens, world_size, T)
                self.micro_batch = fits[0]
                unit = T * self.micro_batch * world_size
        if self.batch_tokens % unit:
            lower = max(unit, self.batch_tokens // unit * unit)
            raise TrainingError(
                f"--batch-tokens {self.batch_tokens} is not divisible by context {T} x micro-batch {self.micro_batch} "
                f"x {world_size} process(es) = {unit}; use --batch-tokens {lower} or {lower + unit}, or a smaller --micro-batch"
            )

    def accumulation(self, world_size: int) -> int:
        return self.batch_tokens // (self.context * self.micro_batch * world_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


SHAPE_FIELDS = ("n_layer", "n_head", "n_embd", "block_size")  # what a --preset decides of a model


def _check_preset_shape(preset: str, source: GPTConfig, where: str) -> None:
    """A `--preset` beside `--init-from` must name the source's shape (it then only gives the
    batch and learning-rate defaults)."""
    differ = [f"{k} {PRESETS[preset][k]} (source: {getattr(source, k)})" for k in SHAPE_FIELDS if PRESETS[preset][k] != getattr(source, k)]
    if differ:
        raise TrainingError(f"--preset {preset} conflicts with the model of --init-from {where}: {', '.join(differ)}; "
                            "the shape comes from the source: drop --preset")


def _preset_below(source: GPTConfig) -> str:
    """The preset whose defaults (batch, micro-batch, lr) an init_from run takes: the widest one
    no wider than the source (tiny when all are wider)."""
    fitting = [name for name, shape in PRESETS.items() if shape["n_embd"] <= source.n_embd]
    return max(fitting, key=lambda n: (PRESETS[n]["n_embd"], PRESETS[n]["n_layer"]), default="tiny")


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimizer step `step` (0-based): linear warm-up, then cosine or WSD."""
    peak, floor = cfg.lr, cfg.lr * cfg.min_lr_ratio
    if step < cfg.warmup:
        return peak * (step + 1) / cfg.warmup
    if cfg.schedule == "wsd":
        decay_start = int(cfg.steps * (1 - cfg.decay_fraction))
        if step < decay_start:
            return peak
        frac = (step - decay_start) / max(1, cfg.steps - decay_start)
        return peak + (floor - peak) * min(1.0, frac)
    frac = min(1.0, (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * frac))


# ---- distributed ----------------------------------------------------------------------------
@dataclass
class Dist:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: str, fsdp: bool = False) -> Dist:
    """Join the process group torchrun set up (gloo on CPU, NCCL on CUDA); one process: no-op
    (unless `fsdp`: FSDP needs a process group, even of one)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if fsdp and "WORLD_SIZE" not in os.environ:
        raise TrainingError("--fsdp shards the model over the processes of torchrun: start the command with "
                            "`torchrun --nproc_per_node N --no-python lmforge train ...`, or drop --fsdp")
    if world <= 1 and not fsdp:
        return Dist()
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device == "cuda":
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device == "cuda" else "gloo")
    return Dist(dist.get_rank(), dist.get_world_size(), local)


def all_reduce_(t: torch.Tensor, d: Dist, op: str = "sum") -> torch.Tensor:
    if d.world_size > 1:
        import torch.distributed as dist

        dist.all_reduce(t, op=dist.ReduceOp.SUM)
        if op == "mean":
            t /= d.world_size
    return t


# ---- the trainer ----------------------------------------------------------------------------
@dataclass
class StepResult:
    step: int  # optimizer steps completed
    loss: float  # mean loss over the global batch
    lr: float
    grad_norm: float


@dataclass
class PendingStep:
    """A step whose loss and gradient norm are still on the device (`Trainer.step_async`):
    reading them waits for the GPU, so the loop reads a batch of them at once (`read_steps`)."""

    step: int
    loss: torch.Tensor  # 0-dim, on the device
    lr: float
    grad_norm: torch.Tensor | None  # None: clipping is off


def read_steps(pending: list[PendingStep | StepResult]) -> list[StepResult]:
    """The values of `pending` steps, read from the device in one transfer (a StepResult,
    already read, passes through)."""
    lazy = [p for p in pending if isinstance(p, PendingStep)]
    if lazy:
        nan = torch.full((), float("nan"), device=lazy[0].loss.device)
        values = iter(torch.stack([t for p in lazy for t in (p.loss, nan if p.grad_norm is None else p.grad_norm)]).float().tolist())
    return [p if isinstance(p, StepResult) else StepResult(p.step, next(values), p.lr, next(values)) for p in pending]


def nonfinite_loss_error(result: StepResult, checked_before_update: bool) -> TrainingError:
    when = ("stopped before the update, so the newest checkpoint is the last good one" if checked_before_update else
            "no checkpoint was written after it, so the newest checkpoint is the last good one")
    return TrainingError(
        f"loss is {result.loss} at step {result.step} (lr {result.lr:.3g}); {when}; "
        f"resume from it with a lower --lr or more --warmup"
    )


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 natively (AVX512-BF16 or AMX): there bf16 autocast runs
    the matrix products several times faster than float32; elsewhere it is emulated, slower."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in probes)


def resolve_precision(precision: str, device: str) -> str:
    """"bf16" or "fp32" for a run: "auto" is bf16 autocast on CUDA and on CPUs with native bf16.

    Mixed precision as on a GPU: float32 weights, optimizer state and loss reductions, the
    matrix products in bf16. At `small` on one AVX512-BF16 core that is ~2.4x the tokens/s
    of float32 with the same validation loss at equal tokens (measured in the README)."""
    if precision != "auto":
        return precision
    return "bf16" if device == "cuda" or cpu_has_native_bf16() else "fp32"


def resumed_precision(precision: str, device: str, recorded: str | None) -> str:
    """The precision a resumed run continues in: with "auto", the one it started with
    (`recorded`), whatever this machine would pick; checkpoints from before it was recorded
    ran the old default, float32 on CPU."""
    if precision != "auto":
        return precision
    return recorded if recorded in ("bf16", "fp32") else ("bf16" if device == "cuda" else "fp32")


def autocast_context(precision: str, device: torch.device):
    """bf16 autocast for "bf16", a no-op for "fp32". Enter it per step: autocast keeps its bf16
    copies of the weights until the context exits, so one context around a whole run would
    keep using the first step's weights."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()


class Trainer:
    """Model, optimizer and step function for one rank. `train()` drives it; so can a test."""

    def __init__(self, cfg: TrainConfig, model_config: GPTConfig, dist: Dist | None = None, weights: dict | None = None):
        self.cfg = cfg
        self.dist = dist or Dist()
        self.device = torch.device(f"cuda:{self.dist.local_rank}" if cfg.device == "cuda" else "cpu")
        if cfg.device == "cuda":  # the few fp32 products left under autocast may use TF32
            use_fast_float32()
        cfg.validate(self.dist.world_size)
        self.accum = cfg.accumulation(self.dist.world_size)
        torch.manual_seed(cfg.seed)  # identical initial weights on every rank
        self.model = GPT(model_config).to(self.device)
        if weights is not None:  # init_from: the source's weights, before any sharding or compiling
            self.model.load_state_dict(weights)
        self.raw_model = self.model
        self.fsdp = cfg.fsdp
        if cfg.fsdp:  # each block's weights, gradients and AdamW moments sharded over the ranks, gathered per block
            from torch.distributed.fsdp import fully_shard

            for block in self.model.blocks:
                fully_shard(block)
            fully_shard(self.model)
        if cfg.optimizer == "muon":
            from lmforge.train.optim import MuonAdamW

            named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
            hidden = [p for n, p in named if n.startswith("blocks.") and p.dim() == 2]
            rest = [p for n, p in named if not (n.startswith("blocks.") and p.dim() == 2)]
            self.optimizer = MuonAdamW([
                {"params": hidden, "muon": True, "lr_scale": cfg.muon_lr / cfg.lr, "weight_decay": 0.0},
                {"params": rest, "betas": (cfg.beta1, cfg.beta2), "weight_decay": cfg.weight_decay},
            ])
        else:
            self.optimizer = self.model.optimizer(cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))
        self.step_count = 0
        model = self.model
        if cfg.compile:
            model = torch.compile(model)
        if self.dist.world_size > 1 and not cfg.fsdp:
            from torch.nn.parallel import DistributedDataParallel as DDP

            model = DDP(model, device_ids=[self.dist.local_rank] if cfg.device == "cuda" else None)
        self.module = model  # what forward passes go through
        self.precision = resolve_precision(cfg.precision, cfg.device)
        self.autocast = autocast_context(self.precision, self.device)

    def step(self, tokens: torch.Tensor) -> StepResult:
        """One optimizer step on this rank's tokens (local_batch, T + 1), its loss read at once:
        a non-finite loss raises TrainingError before the update."""
        return self._step(tokens, check=True)

    def step_async(self, tokens: torch.Tensor) -> PendingStep:
        """`step` without waiting for the device: nothing in it copies a value to the host, so
        the CPU queues the next step while the GPU runs this one. The loss is checked when it
        is read (`read_steps`), which the loop does before every checkpoint."""
        return self._step(tokens, check=False)

    def _step(self, tokens: torch.Tensor, check: bool):
        cfg, mb = self.cfg, self.cfg.micro_batch
        tokens = tokens.to(self.device, non_blocking=True)  # pinned by the loader on CUDA: asynchronous
        if tokens.size(0) != mb * self.accum:
            raise ValueError(f"expected {mb * self.accum} sequences, got {tokens.size(0)}")
        lr = lr_at(self.step_count, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        total = torch.zeros((), device=self.device)
        for k in range(self.accum):
            chunk = tokens[k * mb : (k + 1) * mb]
            x, y = chunk[:, :-1], chunk[:, 1:]
            sync = k == self.accum - 1  # gradients are reduced over the ranks on the last micro-batch only
            ctx = contextlib.nullcontext()
            if self.fsdp:
                self.raw_model.set_requires_gradient_sync(sync)
            elif self.dist.world_size > 1 and not sync:
                ctx = self.module.no_sync()
            with ctx:
                with self.autocast:
                    _, loss = self.module(x, y)
                (loss / self.accum).backward()
            total += loss.detach()
        total /= self.accum
        all_reduce_(total, self.dist, "mean")
        if check:
            loss_value = total.item()
            if not math.isfinite(loss_value):
                self.optimizer.zero_grad(set_to_none=True)
                raise nonfinite_loss_error(StepResult(self.step_count + 1, loss_value, lr, float("nan")), True)
        norm = torch.nn.utils.clip_grad_norm_(self.raw_model.parameters(), cfg.grad_clip) if cfg.grad_clip > 0 else None
        if norm is not None and hasattr(norm, "full_tensor"):  # FSDP: a DTensor
            norm = norm.full_tensor()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        if not check:
            return PendingStep(self.step_count, total, lr, norm)
        return StepResult(self.step_count, loss_value, lr, float("nan") if norm is None else norm.item())

    def state_dicts(self) -> tuple[dict, dict]:
        """(model, optimizer) state for a checkpoint. Under FSDP the full state is gathered on
        every rank (a collective: all ranks call it) and the optimizer's is keyed by parameter
        name; otherwise the module's and optimizer's own."""
        if not self.fsdp:
            return self.raw_model.state_dict(), self.optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return (get_model_state_dict(self.raw_model, options=options),
                get_optimizer_state_dict(self.raw_model, self.optimizer, options=options))

    def load_fsdp_state_dicts(self, model_state: dict, optimizer_state: dict) -> None:
        """The inverse of `state_dicts` under FSDP: every rank reads the full state and keeps
        its shards (without FSDP, `load_checkpoint` loads the files directly)."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(self.raw_model, model_state, options=options)
        set_optimizer_state_dict(self.raw_model, self.optimizer, optimizer_state, options=options)

    @torch.no_grad()
    def evaluate(self, windows: dict[str, list[np.ndarray]], token_bytes: torch.Tensor | None) -> dict[str, dict]:
        """Per source: mean loss (nats/token) and bits per byte over its validation windows."""
        self.model.eval()
        out = {}
        for name, wins in windows.items():
            sums = torch.zeros(3, dtype=torch.float64, device=self.device)  # nats, targets, bytes
            # windows of equal length go through the model micro_batch at a time
            by_len: dict[int, list[np.ndarray]] = {}
            for w in wins:
                by_len.setdefault(len(w), []).append(w)
            for group in by_len.values():
                for k in range(0, len(group), self.cfg.micro_batch):
                    t = torch.from_numpy(np.stack(group[k : k + self.cfg.micro_batch])).to(self.device)
                    x, y = t[:, :-1], t[:, 1:]
                    with self.autocast:
                        logits = self.model(x)[0]
                    nats = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.reshape(-1), reduction="sum")
                    sums[0] += nats.double()
                    sums[1] += y.numel()
                    if token_bytes is not None:
                        sums[2] += token_bytes[y].sum().double()
            if not self.fsdp:  # FSDP ranks each evaluate every window (see `train`)
                all_reduce_(sums, self.dist)
            nats, n, nbytes = sums.tolist()
            if n == 0:
                continue
            out[name] = {
                "loss": nats / n,
                "bpb": val_bits_per_byte(nats, int(nbytes)) if token_bytes is not None else None,
            }
        self.model.train()
        return out


# ---- checkpoints ----------------------------------------------------------------------------
def _rng_state() -> dict:
    state = {"torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(state["torch"])), dtype=torch.uint8))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8) for s in state["cuda"]])


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def checkpoint_dirs(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoints of a run, oldest first: every `step_N` folder. A folder gets that name only
    by the rename that ends a complete write, so one that lacks a file was damaged since, and
    `verify_checkpoint` says which file is missing (it is not skipped in silence)."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    dirs = [p for p in root.iterdir() if p.name.startswith("step_") and p.name[5:].isdigit() and p.is_dir()]
    return sorted(dirs, key=lambda p: int(p.name.split("_")[1]))


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    dirs = checkpoint_dirs(run_dir)
    return dirs[-1] if dirs else None


def checkpoint_of(path: str | os.PathLike) -> Path | None:
    """`path` itself when it is a checkpoint folder (it holds the state file), else the latest
    checkpoint of the run at `path`; None when it is neither."""
    path = Path(path)
    return path if (path / STATE_FILE).is_file() else latest_checkpoint(path)


def save_checkpoint(run_dir: Path, trainer: Trainer, extra_state: dict, keep: int) -> Path | None:
    """Write RUN/checkpoints/step_N atomically (temporary directory, fsync, rename). Rank 0
    writes; under FSDP every rank must call it (the shards are gathered first), the others
    return None. (`trainer` may be any object with `step_count`, `raw_model`, `optimizer`
    and `cfg`: the SFT trainer writes its checkpoints here too.)"""
    fsdp = getattr(trainer, "fsdp", False)
    gather = getattr(trainer, "state_dicts", None)
    model_state, optimizer_state = gather() if gather else (trainer.raw_model.state_dict(), trainer.optimizer.state_dict())
    if not getattr(trainer, "dist", Dist()).is_main:
        return None
    root = Path(run_dir) / CHECKPOINTS
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{trainer.step_count:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    save_weights(trainer.raw_model, tmp / MODEL_FILE, state=model_state)
    torch.save(optimizer_state, tmp / OPTIMIZER_FILE)
    state = {
        "format": "lmforge-checkpoint",
        "version": 1,
        "step": trainer.step_count,
        "optimizer_keys": "names" if fsdp else "indices",  # FSDP's full optimizer state is keyed by parameter name
        "train_config": trainer.cfg.to_dict(),
        "model_config": trainer.raw_model.config.to_dict(),
        "rng": _rng_state(),
        **extra_state,
    }
    seal_checkpoint(tmp, state)
    if final.exists():  # the same step written before a crash: replace it
        shutil.rmtree(final)
    os.rename(tmp, final)
    _fsync_dir(root)
    for old in checkpoint_dirs(run_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    for stale in root.glob(".tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)
    return final


def read_state(ckpt: Path) -> dict:
    try:
        state = json.loads((Path(ckpt) / STATE_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{ckpt}: {STATE_FILE} is missing (the checkpoint was damaged after it was written)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{ckpt}: {STATE_FILE} is unreadable ({exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{ckpt}: {STATE_FILE} is not a checkpoint state (a JSON object)")
    return state


# ---- checkpoint integrity -------------------------------------------------------------------
FILES_KEY = "files"  # state.json: {file name: "sha256:…"} for every other file of the checkpoint
STATE_SHA256_KEY = "state_sha256"  # state.json: sha256 of its own canonical JSON without this key


def _state_digest(state: dict) -> str:
    body = {k: v for k, v in state.items() if k != STATE_SHA256_KEY}
    return "sha256:" + hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_digest(path) -> str:
    """`sha256:HEX` of a file (checkpoint files, the data a run was made from)."""
    from lmforge.tokenize.shards import sha256_file

    return "sha256:" + sha256_file(path)


def seal_checkpoint(folder: Path, state: dict) -> dict:
    """Write `folder`/state.json holding the sha256 of every other file in `folder` and of its
    own content, then fsync every file and the folder. Every checkpoint writer ends with it."""
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name != STATE_FILE)
    state = {**state, FILES_KEY: {name: file_digest(folder / name) for name in names}}
    state[STATE_SHA256_KEY] = _state_digest(state)
    (folder / STATE_FILE).write_text(json.dumps(state, indent=1))
    for name in (*names, STATE_FILE):
        with open(folder / name, "rb") as f:
            os.fsync(f.fileno())
    _fsync_dir(folder)
    return state


_unchecked_warned: set[str] = set()


def verify_checkpoint(ckpt: str | os.PathLike, files: tuple[str, ...] | None = None) -> dict:
    """state.json of `ckpt` after checking it and its files (`files`: those to hash; None:
    every file state.json lists). Raises CheckpointError naming the checkpoint and the file
    that is missing or differs from its recorded sha256.

    A checkpoint written before lmforge recorded hashes is accepted with a warning: refusing
    it would strand every older run (no sample, no resume), its files were written atomically
    and fsynced, and a damaged one still fails to parse with an error naming it.
    """
    ckpt = Path(ckpt)
    state = read_state(ckpt)
    if STATE_SHA256_KEY in state and state[STATE_SHA256_KEY] != _state_digest(state):
        raise CheckpointError(f"{ckpt}: {STATE_FILE} does not match its own sha256 (edited or corrupted)")
    recorded = state.get(FILES_KEY)
    if not isinstance(recorded, dict):
        if STATE_SHA256_KEY in state:
            raise CheckpointError(f"{ckpt}: {STATE_FILE} lists no file hashes (edited or corrupted)")
        if str(ckpt) not in _unchecked_warned:
            _unchecked_warned.add(str(ckpt))
            log.warning("%s: written before lmforge recorded file hashes in %s; loaded unchecked", ckpt, STATE_FILE)
        return state
    for name in recorded if files is None else files:
        path = ckpt / name
        if name not in recorded:
            raise CheckpointError(f"{ckpt}: {STATE_FILE} records no sha256 for {name} (edited or corrupted)")
        if not path.is_file():
            raise CheckpointError(f"{ckpt}: {name} is missing")
        try:
            digest = file_digest(path)
        except OSError as exc:
            raise CheckpointError(f"{ckpt}: {name} cannot be read ({exc.strerror or exc})") from None
        if digest != recorded[name]:
            raise CheckpointError(f"{ckpt}: {name} does not match its sha256 in {STATE_FILE} (corrupted or truncated)")
    return state


def newest_good_checkpoint(run_dir: str | os.PathLike, report: bool = True) -> Path | None:
    """The newest checkpoint of `run_dir` that passes `verify_checkpoint` (None: the run has
    none). Each newer one that fails is reported on stderr with the one resumed from, e.g.
    `runs/x/checkpoints/step_00000040: model.safetensors does not match its sha256 in
    state.json (corrupted or truncated); resuming from step_00000020`: rerunning from an
    older step ends with the same weights as the uninterrupted run. None good: CheckpointError."""
    dirs = checkpoint_dirs(run_dir)
    problems: list[str] = []
    for ckpt in reversed(dirs):
        try:
            verify_checkpoint(ckpt)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        for problem in problems if report else ():
            log.warning("%s; resuming from %s", problem, ckpt.name)
        return ckpt
    if not dirs:
        return None
    raise CheckpointError(
        f"{'; '.join(problems)}; no good checkpoint is left in {Path(run_dir) / CHECKPOINTS}: "
        f"delete that folder to start the run over"
    )


def _load_failure(ckpt: Path, name: str, exc: Exception) -> CheckpointError:
    return CheckpointError(f"{ckpt}: {name} cannot be loaded ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")


REWARD_MODEL_KIND = "reward_model"  #: state.json "kind" of `lmforge align rm` runs (a scalar head, no LM head)


def load_model(ckpt: str | os.PathLike, device: str | torch.device = "cpu", purpose: str = "this command") -> tuple[GPT, dict]:
    """The model of a checkpoint directory (or a run: its newest checkpoint) and its state.

    The checkpoint is verified first (`verify_checkpoint`): a bad one raises CheckpointError
    naming the file and, for a run, its newest good checkpoint to pass instead. A reward-model
    run is refused by name (`purpose` says who needed a language model). A Llama-family Hugging
    Face folder (config.json + safetensors) is imported (`lmforge.train.hf_import`)."""
    run = ckpt = Path(ckpt)
    from lmforge.train.hf_import import is_hf_folder, load_hf_model

    if is_hf_folder(ckpt):
        return load_hf_model(ckpt, device)
    if not (ckpt / STATE_FILE).is_file() and not (ckpt.parent.name == CHECKPOINTS and ckpt.name.startswith("step_")):
        found = latest_checkpoint(ckpt)
        if found is None:
            raise TrainingError(f"{ckpt}: no checkpoint here (looked for {ckpt / CHECKPOINTS}/step_*/{STATE_FILE}); train one with `lmforge train`")
        ckpt = found
    try:
        state = verify_checkpoint(ckpt, files=(MODEL_FILE,))
        if state.get("kind") == REWARD_MODEL_KIND:
            raise TrainingError(f"{run}: this is a reward model run (`lmforge align rm`); {purpose} needs a language model: "
                                f"a run of `lmforge train`, `align sft`, `align dpo` or `align rl`")
        model = GPT(GPTConfig.from_dict(state["model_config"]))
        try:
            load_weights(model.to(device), ckpt / MODEL_FILE, device)
        except Exception as exc:  # safetensors and torch raise several types for a bad file
            raise _load_failure(ckpt, MODEL_FILE, exc) from None
    except CheckpointError as exc:
        older = [d for d in checkpoint_dirs(ckpt.parent.parent) if d != ckpt] if ckpt.parent.name == CHECKPOINTS else []
        good = next((d for d in reversed(older) if _passes(d)), None)
        hint = f"pass the newest good one, {good}, or retrain" if good is not None else f"retrain it (rerun the command that wrote {run})"
        raise CheckpointError(f"{exc}; {hint}") from None
    return model, state


def _source_checkpoint(source: Path) -> Path:
    """The checkpoint folder of an `init_from` that is an lmforge run or checkpoint."""
    if not source.exists():
        raise TrainingError(f"--init-from {source}: no such run or folder; give an lmforge run (or one of its checkpoints) "
                            "or a Hugging Face model folder (config.json + *.safetensors)")
    ckpt = checkpoint_of(source)
    if ckpt is None:
        raise TrainingError(f"--init-from {source}: neither an lmforge run (no {CHECKPOINTS}/step_*/) nor a Hugging Face "
                            "model folder (no config.json); give one of those")
    return ckpt


def source_model_config(source) -> GPTConfig:
    """The model config of an `init_from` source, read without its weights (config.json of a HF
    folder, state.json of a checkpoint)."""
    from lmforge.train.hf_import import CONFIG_FILE, gpt_config, is_hf_folder

    source = Path(source)
    if is_hf_folder(source):
        try:
            return gpt_config(json.loads((source / CONFIG_FILE).read_text()), source)
        except (OSError, json.JSONDecodeError) as exc:
            raise TrainingError(f"{source / CONFIG_FILE}: not readable as JSON ({exc})") from None
        except KeyError as exc:
            raise TrainingError(f"{source / CONFIG_FILE}: no {exc.args[0]!r}; not a Llama-family config.json") from None
    state = read_state(_source_checkpoint(source))
    if state.get("kind") == REWARD_MODEL_KIND:
        raise TrainingError(f"--init-from {source}: a reward model run (`lmforge align rm`); pretraining starts from a language model")
    return GPTConfig.from_dict(state["model_config"])


def init_source(source, manifest) -> tuple[GPT, dict]:
    """(model, state) to start a run from (`load_model`: the checkpoint verified, or the HF
    folder imported), after checking that it speaks the manifest's tokenizer: the same vocabulary
    size, and the same tokenizer fingerprint when both record one. A HF folder without an lmforge
    tokenizer can only be checked by size (a warning says so)."""
    from lmforge.train.hf_import import is_hf_folder

    source = Path(source)
    model, state = load_model(source if is_hf_folder(source) else _source_checkpoint(source), "cpu", purpose="--init-from")
    vocab, want = model.config.vocab_size, int(manifest.vocab_size)
    if vocab != want:
        raise TrainingError(f"--init-from {source}: its vocabulary has {vocab} ids but the manifest's tokenizer {want}; "
                            "start from a model trained with the manifest's tokenizer, or rebuild the shards with the model's")
    theirs, ours = state.get("tokenizer_fingerprint"), getattr(manifest, "fingerprint", None)
    if theirs and ours and theirs != ours:
        raise TrainingError(f"--init-from {source}: trained with tokenizer {theirs}, but the manifest's shards are tokenised "
                            f"with {ours}; the same ids would mean other tokens: rebuild the shards with the model's tokenizer")
    if not theirs:
        log.warning("--init-from %s names no lmforge tokenizer: only its vocabulary size (%d) was checked against the manifest",
                    source, vocab)
    return model, state


def _passes(ckpt: Path) -> bool:
    try:
        verify_checkpoint(ckpt, files=(MODEL_FILE,))
    except CheckpointError:
        return False
    return True


def load_checkpoint(ckpt: Path, trainer: Trainer, verified: bool = False) -> dict:
    """Restore weights, optimizer and RNG states into `trainer`; return state.json. The files
    are checked against their sha256 unless `verified` (`newest_good_checkpoint` did it)."""
    state = read_state(ckpt) if verified else verify_checkpoint(ckpt)
    if GPTConfig.from_dict(state["model_config"]) != trainer.raw_model.config:
        raise TrainingError(
            f"{ckpt}: the checkpoint's model {state['model_config']} differs from this run's "
            f"{trainer.raw_model.config.to_dict()}; resume with the same --preset and manifest"
        )
    keys = state.get("optimizer_keys", "indices")
    if keys != ("names" if getattr(trainer, "fsdp", False) else "indices"):
        raise TrainingError(f"{ckpt} was written {'with' if keys == 'names' else 'without'} --fsdp; resume it the same way")
    if getattr(trainer, "fsdp", False):
        from safetensors.torch import load_file

        try:
            weights = load_file(str(ckpt / MODEL_FILE))
            if trainer.raw_model.config.tie_embeddings:
                weights["lm_head.weight"] = weights["wte.weight"]
            opt_state = torch.load(ckpt / OPTIMIZER_FILE, map_location="cpu", weights_only=True)
            trainer.load_fsdp_state_dicts(weights, opt_state)
        except Exception as exc:
            raise _load_failure(ckpt, f"{MODEL_FILE} or {OPTIMIZER_FILE}", exc) from None
    else:
        try:
            load_weights(trainer.raw_model, ckpt / MODEL_FILE, trainer.device)
        except Exception as exc:  # a checkpoint without hashes (older lmforge) that is damaged
            raise _load_failure(ckpt, MODEL_FILE, exc) from None
        try:
            opt_state = torch.load(ckpt / OPTIMIZER_FILE, map_location=trainer.device, weights_only=True)
            trainer.optimizer.load_state_dict(opt_state)
        except Exception as exc:
            raise _load_failure(ckpt, OPTIMIZER_FILE, exc) from None
    trainer.step_count = int(state["step"])
    _set_rng_state(state["rng"])
    return state


# ---- metrics and plot -----------------------------------------------------------------------
def plot_loss(rows: list[dict], out: Path) -> Path | None:
    """RUN/loss.png: train loss per step, validation loss per source at eval steps.

    With matplotlib: a labelled chart. Without it: the same curves drawn by `_png_plot`
    (axes and lines, no text), so a run always leaves a picture.
    """
    if not rows:
        return None
    train_pts = [(r["step"], r["loss"]) for r in rows]
    val_names = sorted({k[len("val_loss/"):] for r in rows for k in r if k.startswith("val_loss/")})
    val_pts = {n: [(r["step"], r[f"val_loss/{n}"]) for r in rows if f"val_loss/{n}" in r] for n in val_names}
    tmp = out.with_name(".tmp-" + out.name)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        tmp.write_bytes(_png_plot([train_pts, *val_pts.values()]))
        os.replace(tmp, out)
        return out
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    ax.plot(*zip(*train_pts), lw=1, label="train")
    for name, pts in val_pts.items():
        ax.plot(*zip(*pts), marker="o", ms=3, lw=1, label=f"val {name}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats/token)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, out)
    return out


_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]


def _png_plot(series: list[list[tuple[float, float]]], width: int = 640, height: int = 360) -> bytes:
    """A minimal line chart as PNG bytes (zlib + struct, no dependencies)."""
    import struct
    import zlib

    img = np.full((height, width, 3), 255, dtype=np.uint8)
    pad = 30
    img[height - pad, pad : width - pad + 1] = 0  # x axis
    img[pad : height - pad + 1, pad] = 0  # y axis
    pts = [p for s in series for p in s if math.isfinite(p[1])]
    if pts:
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
        sx = (width - 2 * pad) / max(x1 - x0, 1e-9)
        sy = (height - 2 * pad) / max(y1 - y0, 1e-9)
        for k, s in enumerate(series):
            colour = _COLOURS[k % len(_COLOURS)]
            xy = [(pad + (x - x0) * sx, height - pad - (y - y0) * sy) for x, y in s if math.isfinite(y)]
            for (ax_, ay), (bx, by) in zip(xy, xy[1:] or xy):
                n = int(max(abs(bx - ax_), abs(by - ay))) + 1
                for t in np.linspace(0, 1, n + 1):
                    img[int(round(ay + (by - ay) * t)), int(round(ax_ + (bx - ax_) * t))] = colour
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


# ---- the loop -------------------------------------------------------------------------------
@dataclass
class RunSummary:
    run_dir: Path
    steps: int
    tokens: int
    loss: float
    first_loss: float | None
    val: dict[str, dict] = field(default_factory=dict)
    tokens_per_s: float = 0.0
    mfu: float | None = None
    mfu_peak: str | None = None  # the peak MFU is measured against, e.g. "989 TFLOP/s (NVIDIA H200 datasheet, dense bf16)"
    seconds: float = 0.0
    checkpoint: Path | None = None
    plot: Path | None = None
    resumed_from: int | None = None
    world_size: int = 1
    params: int = 0
    precision: str = "fp32"
    finished_earlier: bool = False  # a rerun of a finished run: nothing was trained
    init_from: str | None = None  # the weights the run started from (--init-from)


def _token_bytes(manifest, padded_vocab: int) -> tuple[torch.Tensor | None, str | None]:
    """UTF-8 bytes per token id (for bits per byte) and the tokenizer fingerprint."""
    tok_dir = getattr(manifest, "tokenizer_dir", None)
    if not tok_dir:
        return None, None
    from lmforge.tokenize import Tokenizer, TokenizerError

    try:
        tok = Tokenizer.load(tok_dir)
    except TokenizerError as exc:
        raise TrainingError(f"{manifest.path}: its tokenizer cannot be loaded: {exc}") from None
    if getattr(manifest, "fingerprint", None) and tok.fingerprint != manifest.fingerprint:
        raise TrainingError(
            f"{manifest.path}: its shards were tokenised with {manifest.fingerprint} but {tok_dir} holds {tok.fingerprint}; "
            "rebuild the shards and manifest with one tokenizer"
        )
    if tok.vocab_size != manifest.vocab_size:
        raise TrainingError(
            f"{manifest.path}: the manifest says vocab_size {manifest.vocab_size} but its tokenizer {tok_dir} has "
            f"{tok.vocab_size}; rebuild the shards and manifest with this tokenizer"
        )
    tb = torch.zeros(padded_vocab, dtype=torch.int64)
    tb[: len(tok.token_bytes)] = torch.tensor(tok.token_bytes, dtype=torch.int64)
    return tb, tok.fingerprint


def load_training_manifest(path: str):
    """`load_manifest` with its errors as TrainingError, plus `sha256` of the manifest bytes."""
    import hashlib

    from lmforge.tokenize.mix import MixError, load_manifest

    if not Path(path).is_file():
        raise TrainingError(f"{path}: no such manifest; build one with `lmforge mix build --source NAME=PATH:WEIGHT --budget TOKENS -o {path}`")
    try:
        manifest = load_manifest(path)
    except MixError as exc:
        raise TrainingError(str(exc)) from None
    manifest.sha256 = "sha256:" + hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return manifest


def _start_run(cfg: TrainConfig, run_dir: Path, manifest, d: Dist) -> TrainConfig:
    """Check RUN against the settings asked (`lmforge.settings.start_run_folder`: refused by
    name when they differ, recorded when the run starts); return `cfg` with the precision the
    run continues in ("auto" keeps the one it started with, whatever this machine would pick)."""
    from lmforge.settings import read_settings, start_run_folder

    ckpt = latest_checkpoint(run_dir)
    record = None if cfg.overwrite else read_settings(run_dir)
    recorded = (record or {}).get("settings") or None
    legacy = None
    if recorded is None and ckpt is not None and not cfg.overwrite:  # a run from before settings.json
        state = read_state(ckpt)
        legacy = run_settings({"init_from": None, **state.get("train_config", {})}, state.get("manifest_sha256"), state.get("precision"))
        legacy = {k: v for k, v in legacy.items() if v is not None}
    before = (recorded or legacy or {}).get("--precision")
    if not cfg.overwrite and (before is not None or ckpt is not None):
        cfg = replace(cfg, precision=resumed_precision(cfg.precision, cfg.device, before))
    asked = run_settings(cfg.to_dict(), getattr(manifest, "sha256", None), resolve_precision(cfg.precision, cfg.device))
    if d.is_main:
        start_run_folder(run_dir, "train", asked, error=TrainingError, resume=cfg.resume, overwrite=cfg.overwrite,
                         legacy=legacy, has_checkpoint=ckpt is not None)
    if d.world_size > 1:  # the other ranks look at the folder once rank 0 has checked (or cleared) it
        import torch.distributed as dist

        dist.barrier()
    return cfg


def _finished(cfg: TrainConfig, run_dir: Path, ckpt: Path, manifest, d: Dist) -> RunSummary:
    """A rerun of a finished run: nothing to train. The metrics and plot are put right (a run
    killed after its last checkpoint may not have drawn its plot yet) and the summary is read
    back from metrics.jsonl."""
    state = read_state(ckpt)
    step = int(state["step"])
    metrics_path = run_dir / METRICS
    plot = None
    if d.is_main:
        truncate_metrics(metrics_path, step)
        plot = plot_loss(read_metrics(metrics_path), run_dir / "loss.png")
    if d.world_size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()
    rows = read_metrics(metrics_path)
    last = rows[-1] if rows else {}
    val = {}
    for key, value in last.items():
        if key.startswith("val_loss/"):
            name = key[len("val_loss/"):]
            val[name] = {"loss": value, "bpb": last.get(f"val_bpb/{name}")}
    with torch.device("meta"):
        params = GPT(GPTConfig.from_dict(state["model_config"])).num_params()
    return RunSummary(
        run_dir=run_dir, steps=step, tokens=step * cfg.batch_tokens, loss=last.get("loss", float("nan")),
        first_loss=rows[0].get("loss") if rows else None, val=val, checkpoint=ckpt, plot=plot, world_size=d.world_size,
        params=params, precision=state.get("precision", resolve_precision(cfg.precision, cfg.device)), finished_earlier=True,
    )


def train(cfg: TrainConfig, on_step: Callable[[dict], None] | None = None, manifest=None) -> RunSummary:
    """Run (or resume) a pretraining run; rank 0 writes RUN/. `on_step` sees each metrics row."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    d = init_distributed(cfg.device, cfg.fsdp)
    cfg.validate(d.world_size)
    run_dir = Path(cfg.out_dir)
    manifest = manifest if manifest is not None else load_training_manifest(cfg.manifest)
    cfg = _start_run(cfg, run_dir, manifest, d)
    ckpt = newest_good_checkpoint(run_dir)  # a damaged newest one: the one before, said on stderr
    if ckpt is not None and int(read_state(ckpt).get("step", 0)) >= cfg.steps:
        return _finished(cfg, run_dir, ckpt, manifest, d)
    init_weights = None
    if cfg.init_from is None:
        model_config = preset_config(cfg.preset, int(manifest.vocab_size))
    elif ckpt is not None:  # resuming: the weights and config come from the run's own checkpoint
        model_config = GPTConfig.from_dict(read_state(ckpt)["model_config"])
    else:
        source, _ = init_source(cfg.init_from, manifest)
        model_config, init_weights = source.config, source.state_dict()
        del source
    token_bytes, tok_fingerprint = _token_bytes(manifest, model_config.padded_vocab_size)

    trainer = Trainer(cfg, model_config, d, weights=init_weights)
    if token_bytes is not None:
        token_bytes = token_bytes.to(trainer.device)
    loader = MixtureLoader(
        manifest, context=cfg.context, global_batch=cfg.batch_tokens // cfg.context, seed=cfg.seed,
        rank=d.rank, world_size=d.world_size, vocab_size=int(manifest.vocab_size),
    )
    resumed_from = None
    if ckpt is not None:
        state = load_checkpoint(ckpt, trainer, verified=True)
        loader.load_state(state["loader"])
        resumed_from = trainer.step_count
        elapsed0 = float(state.get("elapsed", 0.0))
    else:
        elapsed0 = 0.0

    val_windows = loader.val_windows(cfg.eval_tokens, every_rank_all=cfg.fsdp)
    flops_per_token = trainer.raw_model.flops_per_token(cfg.context)
    peak, peak_source = peak_bf16_flops(trainer.device) if cfg.device == "cuda" else (None, None)
    if peak:
        peak *= d.world_size  # tokens/s is the whole job's: MFU against all of its GPUs
    extra = lambda: {  # noqa: E731
        "loader": position,
        "manifest": str(Path(cfg.manifest).resolve()),
        "manifest_sha256": getattr(manifest, "sha256", None),
        "tokenizer_fingerprint": tok_fingerprint or getattr(manifest, "fingerprint", None),
        "tokenizer_dir": getattr(manifest, "tokenizer_dir", None),
        "elapsed": elapsed0 + (time.perf_counter() - t_start),
        "world_size": d.world_size,
        "precision": trainer.precision,
    }
    position = loader.state()  # the data position after the last batch consumed
    prefetch = Prefetcher(loader, depth=2, pin_memory=cfg.device == "cuda")
    first_loss = None
    last_val: dict[str, dict] = {}
    rows_tps: list[tuple[float, int]] = []  # (tokens/s, which read of the device)
    saved = None
    t_start = time.perf_counter()
    metrics_log = MetricsLog(run_dir, trainer.step_count, cfg.trackers, config=cfg.to_dict()) if d.is_main else None
    pending: list[PendingStep | StepResult] = []  # steps not yet written to metrics.jsonl
    t_read = time.perf_counter()
    result = None

    def flush() -> None:
        """Read the pending steps' losses (one wait for the device), write their metrics rows."""
        nonlocal t_read, first_loss, result
        done = read_steps(pending)  # waits for the device to finish these steps
        now = time.perf_counter()
        tps = cfg.batch_tokens * len(done) / max(now - t_read, 1e-9)  # the mean over the steps read
        t_read = now
        pending.clear()
        for r in done:
            if not math.isfinite(r.loss):
                raise nonfinite_loss_error(r, checked_before_update=False)
            first_loss = r.loss if first_loss is None else first_loss
            rows_tps.append((tps, flushes))
            row = {"step": r.step, "loss": r.loss, "lr": r.lr, "tokens": r.step * cfg.batch_tokens,
                   "tokens_per_s": tps, "grad_norm": r.grad_norm}
            if peak:
                row["mfu"] = tps * flops_per_token / peak
            rows.append(row)
            result = r

    rows: list[dict] = []
    flushes = 0  # reads of the device so far: the first one's steps include compilation
    try:
        while trainer.step_count < cfg.steps:
            tokens, next_position = prefetch.get()
            # --log-every 1 (CPU's default) reads each loss at once, so a bad one stops before its update
            pending.append(trainer.step(tokens) if cfg.log_every == 1 else trainer.step_async(tokens))
            position = next_position
            step = trainer.step_count
            last = step == cfg.steps
            evaluate = bool(val_windows) and ((cfg.eval_every and step % cfg.eval_every == 0) or last)
            checkpoint = bool(cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or last
            if not (step % cfg.log_every == 0 or evaluate or checkpoint):
                continue
            flush()  # before a checkpoint: it is written only after its losses were seen finite
            flushes += 1
            if evaluate:
                last_val = trainer.evaluate(val_windows, token_bytes)
                for name, v in last_val.items():
                    rows[-1][f"val_loss/{name}"] = v["loss"]
                    if v["bpb"] is not None:
                        rows[-1][f"val_bpb/{name}"] = v["bpb"]
            if metrics_log is not None:
                metrics_log.write_rows(rows)
            if checkpoint:
                if d.is_main or trainer.fsdp:  # FSDP: every rank hands its shards over
                    saved = save_checkpoint(run_dir, trainer, extra(), cfg.keep_checkpoints)
                if d.world_size > 1:
                    import torch.distributed as dist

                    dist.barrier()
            if on_step is not None and d.is_main:
                for row in rows:
                    on_step(row)
            rows.clear()
            t_read = time.perf_counter()  # evaluation and checkpoints are not training time
    finally:
        prefetch.close()
        loader.close()
        if metrics_log is not None:
            metrics_log.close()
        if d.world_size > 1:
            import torch.distributed as dist

            dist.destroy_process_group()
    seconds = time.perf_counter() - t_start
    plot = plot_loss(metrics_log.rows(), run_dir / "loss.png") if d.is_main else None
    # the first read's steps pay for warm-up and compilation
    steady = [t for t, f in rows_tps if f > 0] or [t for t, _ in rows_tps[1:]] or [t for t, _ in rows_tps]
    tps = float(np.median(steady)) if steady else 0.0
    return RunSummary(
        run_dir=run_dir, steps=trainer.step_count, tokens=trainer.step_count * cfg.batch_tokens, loss=result.loss,
        first_loss=first_loss, val=last_val, tokens_per_s=tps, mfu=(tps * flops_per_token / peak) if peak else None,
        seconds=seconds, checkpoint=saved, plot=plot, resumed_from=resumed_from, world_size=d.world_size,
        params=trainer.raw_model.num_params(), precision=trainer.precision,
        mfu_peak=f"{peak / d.world_size / 1e12:,.0f} TFLOP/s per GPU ({peak_source})" if peak else None,
        init_from=cfg.init_from,
    )
