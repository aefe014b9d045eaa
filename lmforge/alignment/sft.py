"""Supervised fine-tuning: a pretrained run's newest checkpoint, trained on conversations.

`sft(SFTConfig(...))` is the whole of `lmforge align sft`; the CLI only parses and prints.

- Data: every `--data` file goes through `lmforge.alignment.data.load_conversations` and is
  rendered by the chat format (`render`, cut at the model's context + 1 tokens). A seeded
  permutation holds out `val_fraction` of the conversations (at least one) for validation.
- Batches: `batch_size` conversations per optimizer step, `micro_batch` per forward pass
  (gradient accumulation), each micro-batch right-padded with `<|pad|>` to its longest
  conversation. Targets are the next tokens where the loss mask is 1 and -1 (ignored)
  elsewhere, padding included.
- Loss: the mean cross-entropy over the masked (assistant) tokens of the whole batch: each
  micro-batch's mean is weighted by its share of the batch's masked tokens, so a batch of one
  long and one short answer weighs every assistant token alike however it is split.
- Order: epoch e visits the training conversations in `permutation(seed, e)`; the position is
  (epoch, offset), saved in every checkpoint, so a rerun of the same command continues with the
  same batches and, on CPU, the same weights bit for bit as an uninterrupted run
  (tests/test_sft.py). `RUN/settings.json` (written before the first step) records what the
  run computes from (`RUN_SETTINGS`, base, data, tokenizer); other settings are refused by name.
- Checkpoints are pretraining's (`RUN/checkpoints/step_N/{model.safetensors, optimizer.pt,
  state.json}`, written atomically by `lmforge.train.trainer.save_checkpoint`), and state.json
  names the tokenizer, so `lmforge sample`, `lmforge chat` and the next stages load them as
  they load a pretrained run. `RUN/metrics.jsonl` holds loss (nats per assistant token), lr,
  grad norm, and `val_loss/heldout` at each evaluation.

Cost: a conversation is padded only to its micro-batch's longest, not to the context; at
alpaca-en-999's lengths (median ~100 tokens with the `tiny` test tokenizer) that is most of
the saving that packing would bring, without packing's cross-conversation attention.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from lmforge.alignment.chat import ChatFormatError, render
from lmforge.alignment.data import DataFormatError, data_digest, load_conversations
from lmforge.train.metrics import MetricsLog
from lmforge.train.trainer import (
    METRICS,
    TrainingError,
    autocast_context,
    latest_checkpoint,
    load_checkpoint,
    load_model,
    lr_at,
    newest_good_checkpoint,
    plot_loss,
    read_metrics,
    read_state,
    resolve_precision,
    resumed_precision,
    save_checkpoint,
    truncate_metrics,
)

VAL_NAME = "heldout"

#: SFTConfig fields that decide what a run computes: a rerun into the same folder must ask the
#: same ones (with the base checkpoint, the data files' sha256, the tokenizer and the resolved
#: precision, see `run_settings`). Free to differ on a resume: micro_batch (how a batch is split
#: for memory: float rounding at most), device, threads, checkpoint_every, keep_checkpoints.
RUN_SETTINGS = ("steps", "batch_size", "lr", "min_lr_ratio", "warmup", "schedule", "decay_fraction", "weight_decay", "beta1",
                "beta2", "grad_clip", "seed", "val_fraction", "max_tokens", "eval_every", "fmt")


def run_settings(config: dict, base: str | None, data: list[str] | None, tokenizer: str | None, precision: str | None) -> dict:
    """What `RUN/settings.json` records of an SFT run, keyed by flag."""
    from lmforge.settings import flags

    return {"--base": base, "--data": data, **flags(config, RUN_SETTINGS, {"fmt": "--format"}), "--tokenizer": tokenizer,
            "--precision": precision}


class SFTError(TrainingError):
    """An SFT run that cannot start or go on; the message says why and what to do."""


@dataclass
class SFTConfig:
    """Everything `lmforge align sft` needs; validated on construction."""

    base: str  # pretrained run folder (its newest checkpoint) or one checkpoint folder
    data: list[str]  # conversation files (see lmforge.alignment.data)
    out_dir: str
    steps: int = 200
    batch_size: int = 16  # conversations per optimizer step
    micro_batch: int | None = None  # conversations per forward pass [batch_size]
    lr: float = 1e-4  # peak learning rate (pretraining's `tiny` peak is 3e-3)
    min_lr_ratio: float = 0.0  # final lr = min_lr_ratio * lr
    warmup: int = 10
    schedule: str = "cosine"  # lr_at's schedules: "cosine" or "wsd"
    decay_fraction: float = 0.2
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    val_fraction: float = 0.05
    max_tokens: int | None = None  # per conversation [the model's context + 1]
    eval_every: int = 50  # 0: at the end only
    checkpoint_every: int = 100  # 0: at the end only
    keep_checkpoints: int = 2
    fmt: str = "auto"
    tokenizer_dir: str | None = None  # [the one the base run trained with]
    device: str = "cpu"
    precision: str = "auto"  # as `lmforge train`: bf16 autocast on CUDA and on CPUs with native bf16, else fp32
    resume: bool = False  # only continue: refuse to start a run where none was started
    overwrite: bool = False  # start over in a run folder that holds another run
    threads: int | None = None
    trackers: tuple = ()  # mirrors of metrics.jsonl: "tensorboard", "wandb" (lmforge.train.metrics)

    def __post_init__(self):
        self.data = [str(p) for p in ([self.data] if isinstance(self.data, (str, Path)) else self.data)]
        self.micro_batch = self.batch_size if self.micro_batch is None else self.micro_batch
        if not self.data:
            raise SFTError("no --data given: pass one or more conversation files (Alpaca JSON, messages JSONL, ...)")
        if self.steps < 1:
            raise SFTError(f"--steps {self.steps}: train for at least one step")
        if self.batch_size < 1 or self.micro_batch < 1:
            raise SFTError("--batch-size and --micro-batch must be at least 1")
        if self.batch_size % self.micro_batch:
            raise SFTError(f"--batch-size {self.batch_size} is not a multiple of --micro-batch {self.micro_batch}; "
                           f"use a micro-batch that divides it (e.g. {math.gcd(self.batch_size, self.micro_batch)})")
        if not self.lr > 0:
            raise SFTError(f"--lr {self.lr}: must be positive")
        if not 0 <= self.val_fraction < 1:
            raise SFTError(f"--val-fraction {self.val_fraction}: must be in [0, 1); 0.05 holds out 5%")
        if self.schedule not in ("cosine", "wsd"):
            raise SFTError(f"--schedule {self.schedule!r}: choose cosine or wsd")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise SFTError(f"--precision {self.precision!r}: choose auto, bf16 or fp32")
        if self.device not in ("cpu", "cuda"):
            raise SFTError(f"--device {self.device!r}: choose cpu or cuda")
        if self.device == "cuda" and not torch.cuda.is_available():
            raise SFTError("--device cuda: no CUDA device is visible to torch; use --device cpu")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "SFTConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# ---- batches --------------------------------------------------------------------------------
def collate(examples: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rendered (ids, mask) pairs -> inputs x and targets y, both (B, T), T = longest - 1.

    x[b, t] = ids[t] (pad_id past the end); y[b, t] = ids[t + 1] where mask[t + 1] else -1.

    >>> x, y = collate([([0, 4, 9, 5], [0, 0, 1, 1]), ([0, 4, 5], [0, 0, 1])], pad_id=1)
    >>> x.tolist(), y.tolist()
    ([[0, 4, 9], [0, 4, 1]], [[-1, 9, 5], [-1, 5, -1]])
    """
    T = max(len(ids) for ids, _ in examples) - 1
    x = torch.full((len(examples), T), pad_id, dtype=torch.long)
    y = torch.full((len(examples), T), -1, dtype=torch.long)
    for b, (ids, mask) in enumerate(examples):
        n = len(ids) - 1
        x[b, :n] = torch.tensor(ids[:-1])
        y[b, :n] = torch.tensor([t if m else -1 for t, m in zip(ids[1:], mask[1:])])
    return x, y


class ConversationOrder:
    """Which training conversations each step takes: epoch e is `permutation(seed, e)`.

    The state is two integers, so a checkpoint resumes the order exactly without RNG state.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.epoch, self.offset = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> np.ndarray:
        return np.random.default_rng([self.seed, epoch]).permutation(self.n)

    def next(self) -> list[int]:
        out = []
        while len(out) < self.batch_size:
            if self.offset == self.n:
                self.epoch, self.offset = self.epoch + 1, 0
                self._perm = self._permutation(self.epoch)
            take = min(self.batch_size - len(out), self.n - self.offset)
            out += self._perm[self.offset : self.offset + take].tolist()
            self.offset += take
        return out

    def state(self) -> dict:
        return {"epoch": self.epoch, "offset": self.offset}

    def load_state(self, state: dict) -> None:
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._perm = self._permutation(self.epoch)


@dataclass
class SFTData:
    train: list[tuple[list[int], list[int]]]
    val: list[tuple[list[int], list[int]]]
    files: list[dict]  # path, sha256, conversations, skipped
    truncated: int = 0  # conversations cut at max_tokens
    dropped: int = 0  # conversations with no assistant token left after the cut


def prepare_data(cfg: SFTConfig, tokenizer, max_tokens: int) -> SFTData:
    """Load, render and split the conversations of every `--data` file (in the order given)."""
    rendered, files, truncated, dropped = [], [], 0, 0
    for path in cfg.data:
        stats: dict = {}
        try:
            convs = list(load_conversations(path, cfg.fmt, stats=stats))
        except DataFormatError as exc:
            raise SFTError(str(exc)) from None
        for conv in convs:
            try:
                ids, mask = render(conv, tokenizer, max_tokens=max_tokens)
            except ChatFormatError:  # nothing of the answer fits in max_tokens
                dropped += 1
                continue
            truncated += ids[-1] != tokenizer.special_id("assistant_end")
            rendered.append((ids, mask))
        files.append({"path": str(Path(path).resolve()), "sha256": data_digest(path), "conversations": len(convs),
                      "skipped": sum(stats.get("skipped", {}).values())})
    if len(rendered) < 2 and cfg.val_fraction > 0:
        raise SFTError(f"{len(rendered)} usable conversation(s) in {', '.join(cfg.data)}: too few to hold some out; "
                       "add data or pass --val-fraction 0")
    perm = np.random.default_rng([cfg.seed, 2**31 - 1]).permutation(len(rendered))
    n_val = max(1, round(cfg.val_fraction * len(rendered))) if cfg.val_fraction > 0 else 0
    val = [rendered[i] for i in sorted(perm[:n_val])]
    train = [rendered[i] for i in sorted(perm[n_val:])]
    if not train:
        raise SFTError(f"no training conversations are left after holding out {n_val}; lower --val-fraction")
    return SFTData(train, val, files, truncated, dropped)


# ---- the step function ----------------------------------------------------------------------
@dataclass
class StepResult:
    step: int
    loss: float  # mean cross-entropy per assistant token over the batch
    lr: float
    grad_norm: float
    targets: int  # assistant tokens in the batch


class SFTTrainer:
    """Model, optimizer and step function. Has the attributes `save_checkpoint` and
    `load_checkpoint` of `lmforge.train.trainer` use (cfg, raw_model, optimizer, step_count,
    device), so SFT checkpoints are pretraining checkpoints."""

    def __init__(self, cfg: SFTConfig, model, pad_id: int):
        self.cfg, self.pad_id = cfg, pad_id
        self.device = torch.device("cuda" if cfg.device == "cuda" else "cpu")
        self.raw_model = self.model = model.to(self.device)
        self.model.train()
        self.optimizer = model.optimizer(cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))
        self.step_count = 0
        self.precision = resolve_precision(cfg.precision, cfg.device)
        self.autocast = autocast_context(self.precision, self.device)

    def step(self, examples: list[tuple[list[int], list[int]]]) -> StepResult:
        """One optimizer step on `batch_size` rendered conversations."""
        cfg, mb = self.cfg, self.cfg.micro_batch
        if len(examples) != cfg.batch_size:
            raise ValueError(f"expected {cfg.batch_size} conversations, got {len(examples)}")
        lr = lr_at(self.step_count, cfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        chunks = [collate(examples[k : k + mb], self.pad_id) for k in range(0, len(examples), mb)]
        n_total = sum(int((y != -1).sum()) for _, y in chunks)
        total = torch.zeros((), device=self.device)
        for x, y in chunks:
            x, y = x.to(self.device), y.to(self.device)
            share = int((y != -1).sum()) / n_total
            with self.autocast:
                _, loss = self.model(x, y)  # mean over this micro-batch's assistant tokens
            (loss * share).backward()
            total += loss.detach() * share
        loss_value = total.item()
        if not math.isfinite(loss_value):
            self.optimizer.zero_grad(set_to_none=True)
            raise SFTError(f"loss is {loss_value} at step {self.step_count + 1} (lr {lr:.3g}); stopped before the update, "
                           "so the newest checkpoint is the last good one; resume from it with a lower --lr")
        norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip).item() if cfg.grad_clip > 0 else float("nan")
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step_count += 1
        return StepResult(self.step_count, loss_value, lr, norm, n_total)

    @torch.no_grad()
    def evaluate(self, examples: list[tuple[list[int], list[int]]]) -> float | None:
        """Mean cross-entropy per assistant token over `examples` (None when there are none)."""
        if not examples:
            return None
        self.model.eval()
        nats, n = 0.0, 0
        for k in range(0, len(examples), self.cfg.micro_batch):
            x, y = collate(examples[k : k + self.cfg.micro_batch], self.pad_id)
            x, y = x.to(self.device), y.to(self.device)
            with self.autocast:
                logits = self.model(x)[0]
            nats += F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), ignore_index=-1, reduction="sum").item()
            n += int((y != -1).sum())
        self.model.train()
        return nats / n


# ---- the loop -------------------------------------------------------------------------------
@dataclass
class SFTSummary:
    run_dir: Path
    base: Path
    steps: int
    conversations: dict  # train, val, truncated, dropped, skipped
    first_loss: float | None
    loss: float | None
    base_val_loss: float | None
    val_loss: float | None
    epochs: float
    seconds: float
    checkpoint: Path | None = None
    plot: Path | None = None
    resumed_from: int | None = None
    files: list[dict] = field(default_factory=list)
    finished_earlier: bool = False  # a rerun of a finished run: nothing was trained


def _load_base(cfg: SFTConfig, device: str):
    from lmforge.tokenize import Tokenizer, TokenizerError

    try:
        model, state = load_model(cfg.base, device, purpose="align sft --base")
    except TrainingError as exc:
        raise SFTError(f"--base {exc}") from None
    base_ckpt = Path(cfg.base) if (Path(cfg.base) / "state.json").is_file() else latest_checkpoint(cfg.base)
    base_ckpt = base_ckpt or Path(cfg.base)  # a Hugging Face model folder
    tok_dir = cfg.tokenizer_dir or state.get("tokenizer_dir")
    if not tok_dir:
        raise SFTError(f"{base_ckpt}: the checkpoint names no tokenizer; pass --tokenizer DIR")
    try:
        tok = Tokenizer.load(tok_dir)
    except TokenizerError as exc:
        raise SFTError(str(exc)) from None
    if state.get("tokenizer_fingerprint") and tok.fingerprint != state["tokenizer_fingerprint"]:
        raise SFTError(f"{tok_dir}: not the tokenizer {base_ckpt} was trained with (fingerprint differs)")
    if tok.vocab_size != model.config.vocab_size:
        raise SFTError(f"{tok_dir}: {tok.vocab_size} ids, but {base_ckpt} was built for {model.config.vocab_size}")
    return model, state, base_ckpt, tok


def _conversation_counts(data: SFTData) -> dict:
    return {"train": len(data.train), "val": len(data.val), "truncated": data.truncated, "dropped": data.dropped,
            "skipped": sum(f["skipped"] for f in data.files)}


def _finished(cfg: SFTConfig, run_dir: Path, ckpt: Path, base_ckpt: Path, data: SFTData) -> SFTSummary:
    """A rerun of a finished run: nothing to train; the summary is read back from the metrics
    (and the plot drawn, in case the run was killed after its last checkpoint)."""
    state = read_state(ckpt)
    step = int(state["step"])
    metrics_path = run_dir / METRICS
    truncate_metrics(metrics_path, step)
    rows = read_metrics(metrics_path)
    plot = plot_loss(rows, run_dir / "loss.png")
    vals = [r[f"val_loss/{VAL_NAME}"] for r in rows if f"val_loss/{VAL_NAME}" in r]
    return SFTSummary(
        run_dir=run_dir, base=base_ckpt, steps=step, conversations=_conversation_counts(data),
        first_loss=rows[0]["loss"] if rows else None, loss=rows[-1]["loss"] if rows else None,
        base_val_loss=state.get("base_val_loss"), val_loss=vals[-1] if vals else None,
        epochs=step * cfg.batch_size / len(data.train), seconds=0.0, checkpoint=ckpt, plot=plot, files=data.files,
        finished_earlier=True,
    )


def sft(cfg: SFTConfig, on_step: Callable[[dict], None] | None = None) -> SFTSummary:
    """Run (or resume) supervised fine-tuning; writes checkpoints and metrics under cfg.out_dir."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run_dir = Path(cfg.out_dir)
    if run_dir.resolve() == Path(cfg.base).resolve():
        raise SFTError(f"-o {run_dir} is the --base run; write the fine-tuned model to another folder")
    from lmforge.settings import read_settings, start_run_folder

    ckpt = latest_checkpoint(run_dir)
    recorded = None if cfg.overwrite else ((read_settings(run_dir) or {}).get("settings") or None)
    legacy = None
    if recorded is None and ckpt is not None and not cfg.overwrite:  # a run from before settings.json
        state = read_state(ckpt)
        legacy = run_settings(state.get("train_config", {}), state.get("base"), [f["sha256"] for f in state.get("data", [])],
                              state.get("tokenizer_fingerprint"), state.get("precision"))
        legacy = {k: v for k, v in legacy.items() if v is not None}
    before = (recorded or legacy or {}).get("--precision")
    if not cfg.overwrite and (before is not None or ckpt is not None):  # resume in the precision the run started with
        cfg = dataclasses.replace(cfg, precision=resumed_precision(cfg.precision, cfg.device, before))
    torch.manual_seed(cfg.seed)
    model, base_state, base_ckpt, tok = _load_base(cfg, cfg.device)
    max_tokens = cfg.max_tokens or model.config.block_size + 1
    data = prepare_data(cfg, tok, max_tokens)
    asked = run_settings(cfg.to_dict(), str(base_ckpt.resolve()), [f["sha256"] for f in data.files], tok.fingerprint,
                         resolve_precision(cfg.precision, cfg.device))
    start_run_folder(run_dir, "sft", asked, error=SFTError, resume=cfg.resume, overwrite=cfg.overwrite, legacy=legacy,
                     has_checkpoint=ckpt is not None)
    ckpt = newest_good_checkpoint(run_dir)  # a damaged newest one: the one before, said on stderr
    if ckpt is not None and int(read_state(ckpt).get("step", 0)) >= cfg.steps:
        return _finished(cfg, run_dir, ckpt, base_ckpt, data)
    trainer = SFTTrainer(cfg, model, tok.pad_id)
    order = ConversationOrder(len(data.train), cfg.batch_size, cfg.seed)
    resumed_from, elapsed0, base_val = None, 0.0, None
    if ckpt is not None:
        state = load_checkpoint(ckpt, trainer, verified=True)
        order.load_state(state["loader"])
        resumed_from, elapsed0, base_val = trainer.step_count, float(state.get("elapsed", 0.0)), state.get("base_val_loss")
    else:
        base_val = trainer.evaluate(data.val)

    position = order.state()
    t_start = time.perf_counter()

    def extra() -> dict:
        return {
            "stage": "sft",
            "loader": position,
            "data": data.files,
            "base": str(base_ckpt.resolve()),
            "base_step": base_state.get("step"),
            "base_val_loss": base_val,
            "tokenizer_dir": str(Path(tok.path).resolve()) if tok.path else base_state.get("tokenizer_dir"),
            "tokenizer_fingerprint": tok.fingerprint,
            "manifest": base_state.get("manifest"),
            "elapsed": elapsed0 + time.perf_counter() - t_start,
            "precision": trainer.precision,
        }

    first_loss = loss = val = None
    saved = None
    with MetricsLog(run_dir, trainer.step_count, cfg.trackers, config=asdict(cfg)) as metrics:
        while trainer.step_count < cfg.steps:
            t0 = time.perf_counter()
            batch = [data.train[i] for i in order.next()]
            result = trainer.step(batch)
            position = order.state()
            first_loss = result.loss if first_loss is None else first_loss
            loss = result.loss
            step = result.step
            row = {"step": step, "loss": result.loss, "lr": result.lr, "grad_norm": result.grad_norm,
                   "targets": result.targets, "conversations": step * cfg.batch_size,
                   "seconds": time.perf_counter() - t0}
            last = step == cfg.steps
            if data.val and ((cfg.eval_every and step % cfg.eval_every == 0) or last):
                val = trainer.evaluate(data.val)
                row[f"val_loss/{VAL_NAME}"] = val
            metrics.write(row)
            if (cfg.checkpoint_every and step % cfg.checkpoint_every == 0) or last:
                saved = save_checkpoint(run_dir, trainer, extra(), cfg.keep_checkpoints)
            if on_step is not None:
                on_step(row)
    plot = plot_loss(metrics.rows(), run_dir / "loss.png")
    return SFTSummary(
        run_dir=run_dir, base=base_ckpt, steps=trainer.step_count,
        conversations=_conversation_counts(data),
        first_loss=first_loss, loss=loss, base_val_loss=base_val, val_loss=val,
        epochs=trainer.step_count * cfg.batch_size / len(data.train), seconds=time.perf_counter() - t_start,
        checkpoint=saved, plot=plot, resumed_from=resumed_from, files=data.files,
    )
