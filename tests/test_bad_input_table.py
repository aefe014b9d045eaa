"""Bad input for every command, as a table: missing, empty, wrong type, truncated and flipped
files, nan and out-of-range flags, a read-only output and a full disk.

Each case asserts what a user is owed: a non-zero exit, no Python traceback, the file or flag
named in the message, and no file made earlier changed. The artifacts the commands read (a
document file, tokenizer, shards, manifest, checkpoint, alignment data) are built once per
module; a read-only folder and a full disk are small tmpfs mounts (skipped where the test
cannot mount one).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import orjson
import pytest
from click.testing import CliRunner

from conftest import SHARED_DATA
from lmforge.cli import main

PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
WARC = b"WARC/1.0\r\nWARC-Type: warcinfo\r\nContent-Length: 0\r\n\r\n\r\n\r\n"
WHIRLWIND = SHARED_DATA / "warc" / "cc-main-2024-22-whirlwind.warc.gz"


def _texts(n: int) -> list[str]:
    words = "the of and a to in is was he for it with as his on be at by had are but from or".split()
    return [" ".join(words[(i * 7 + j * 3) % len(words)] for j in range(40 + i % 30)) + f" number {i}." for i in range(n)]


@pytest.fixture(scope="module")
def w(tmp_path_factory):
    """Every artifact a command reads, made once: documents, tokenizer, shards, manifest, a
    checkpoint, chat/preference/prompt data, and files of the wrong kind."""
    import torch

    from lmforge.documents import DocumentWriter
    from lmforge.tokenize.build import BuildConfig, build_shards
    from lmforge.tokenize.tokenizer import Tokenizer
    from lmforge.tokenize.train import TrainConfig, train_tokenizer
    from lmforge.train.model import GPT, preset_config
    from lmforge.train.trainer import save_checkpoint

    root = tmp_path_factory.mktemp("world")
    docs = root / "docs.jsonl"
    docs.write_bytes(b"".join(orjson.dumps({"text": t}) + b"\n" for t in _texts(120)))
    with DocumentWriter(root / "docs.jsonl.zst") as writer:
        for i, t in enumerate(_texts(120)):
            writer.write(str(i), t, {})
    train_tokenizer([docs], root / "tok", TrainConfig(vocab_size=300, sample_bytes=100_000))
    build_shards([str(docs)], str(root / "tok"), str(root / "shards"), BuildConfig(shard_tokens=3000, frame_tokens=256))
    result = CliRunner().invoke(main, ["mix", "build", "--source", f"web={root / 'shards'}:1.0", "--budget", "20K", "-o", str(root / "mix.json")])
    assert result.exit_code == 0, result.output
    tok = Tokenizer.load(root / "tok")
    torch.manual_seed(0)
    model = GPT(preset_config("tiny", tok.vocab_size, n_layer=1, n_embd=32, n_head=2, block_size=64))
    fake = SimpleNamespace(step_count=5, raw_model=model, optimizer=model.optimizer(1e-3), cfg=SimpleNamespace(to_dict=lambda: {"preset": "test"}))
    save_checkpoint(root / "run", fake, {"tokenizer_dir": str(root / "tok"), "tokenizer_fingerprint": tok.fingerprint}, keep=1)
    chats = [{"messages": [{"role": "user", "content": f"What is {i} and {i}?"}, {"role": "assistant", "content": f"{2 * i}"}]} for i in range(12)]
    (root / "chats.jsonl").write_text("".join(json.dumps(c) + "\n" for c in chats))
    prefs = [{"prompt": f"What is {i} and {i}?", "chosen": f"{2 * i}", "rejected": f"{2 * i + 1}"} for i in range(12)]
    (root / "prefs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prefs))
    (root / "prompts.jsonl").write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": f"#### {2 * i}"}) + "\n" for i in range(8)))
    (root / "no-marker.jsonl").write_text("".join(json.dumps({"question": f"{i}+{i}?", "answer": "some words"}) + "\n" for i in range(4)))
    (root / "image.png").write_bytes(PNG)
    (root / "crawl.warc").write_bytes(WARC)
    (root / "empty.jsonl").write_bytes(b"")
    (root / "empty.warc.gz").write_bytes(b"")
    text = (root / "mix.json").read_bytes()
    (root / "mix-truncated.json").write_bytes(text[: len(text) // 2])
    shutil.copytree(root / "shards", root / "shards-truncated")
    shard = sorted((root / "shards-truncated").rglob("*.tokens.zst"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    ckpt = sorted((root / "run" / "checkpoints").iterdir())[-1]
    for name, damage in (("run-truncated", lambda b: b[: len(b) // 2]), ("run-flipped", lambda b: b[:4] + bytes([b[4] ^ 0xFF]) + b[5:])):
        dest = root / name / "checkpoints" / ckpt.name
        dest.mkdir(parents=True)
        for f in ckpt.iterdir():
            data = f.read_bytes()
            (dest / f.name).write_bytes(damage(data) if f.name == "model.safetensors" else data)
    zst = (root / "docs.jsonl.zst").read_bytes()
    (root / "docs-truncated.jsonl.zst").write_bytes(zst[: len(zst) // 2])
    return root


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def _check(w: Path, args: list, named: list[str], env: dict | None = None):
    """Run `lmforge ARGS`; assert exit != 0, no traceback, every string of `named` in the
    output, and nothing under the module's artifacts changed."""
    before = _digest(w)
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=True, env=env)
    out = result.output
    assert "Traceback" not in out, out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code != 0, out
    for text in named:
        assert str(text) in out, f"{text!r} not in:\n{out}"
    assert _digest(w) == before, "a file made earlier changed"
    return out


# (id, args from the artifacts `w` and a fresh folder `o`, what the message must name)
R = lambda w: w / "run"  # noqa: E731
CASES = [
    # ---- missing --------------------------------------------------------------------------
    ("dedup-missing", lambda w, o: ["corpus", "dedup", w / "nope.jsonl", "-o", o], ["nope.jsonl"]),
    ("tokenizer-missing", lambda w, o: ["tokenizer", "train", w / "nope.jsonl", "-o", o], ["nope.jsonl"]),
    ("shards-missing-tokenizer", lambda w, o: ["shards", "build", w / "docs.jsonl", "--tokenizer", w / "nope", "-o", o], ["nope"]),
    ("mix-missing-shards", lambda w, o: ["mix", "build", "--source", f"web={w / 'nope'}:1", "--budget", "1K", "-o", o / "m.json"], ["nope"]),
    ("train-missing-manifest", lambda w, o: ["train", "-m", w / "nope.json", "-o", o], ["nope.json"]),
    ("sample-missing-run", lambda w, o: ["sample", w / "nope"], ["nope"]),
    ("chat-missing-run", lambda w, o: ["chat", w / "nope", "--prompt", "hi"], ["nope"]),
    ("sft-missing-data", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "nope.jsonl", "-o", o], ["nope.jsonl"]),
    ("pipeline-missing-recipe", lambda w, o: ["pipeline", "check", w / "nope.toml"], ["nope.toml"]),
    # ---- empty ----------------------------------------------------------------------------
    ("process-empty-warc", lambda w, o: ["corpus", "process", w / "empty.warc.gz", "-o", o, "--no-progress"], ["empty.warc.gz", "empty"]),
    ("sft-empty-data", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "empty.jsonl", "-o", o], ["empty.jsonl"]),
    ("rl-empty-prompts", lambda w, o: ["align", "rl", "--policy", R(w), "--prompts", w / "empty.jsonl", "-o", o], ["empty.jsonl"]),
    # ---- wrong type -----------------------------------------------------------------------
    ("dedup-warc", lambda w, o: ["corpus", "dedup", w / "crawl.warc", "-o", o], ["crawl.warc", "WARC archive", "lmforge corpus process"]),
    ("dedup-png", lambda w, o: ["corpus", "dedup", w / "image.png", "-o", o], ["image.png", "not a document file"]),
    ("tokenizer-warc", lambda w, o: ["tokenizer", "train", w / "crawl.warc", "-o", o], ["crawl.warc", "WARC archive"]),
    ("shards-png", lambda w, o: ["shards", "build", w / "image.png", "--tokenizer", w / "tok", "-o", o], ["image.png", "not a document file"]),
    ("shards-tokenizer-is-a-file", lambda w, o: ["shards", "build", w / "docs.jsonl", "--tokenizer", w / "image.png", "-o", o], ["image.png"]),
    ("train-manifest-png", lambda w, o: ["train", "-m", w / "image.png", "-o", o], ["image.png"]),
    ("mix-inspect-png", lambda w, o: ["mix", "inspect", w / "image.png"], ["image.png"]),
    ("sample-run-is-shards", lambda w, o: ["sample", w / "shards"], ["shards"]),
    ("sft-data-png", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "image.png", "-o", o], ["image.png"]),
    ("rl-prompts-without-marker", lambda w, o: ["align", "rl", "--policy", R(w), "--prompts", w / "no-marker.jsonl", "-o", o], ["no-marker.jsonl", "####"]),
    ("process-png", lambda w, o: ["corpus", "process", w / "image.png", "-o", o, "--no-progress"], ["image.png"]),
    # ---- truncated / flipped ----------------------------------------------------------------
    ("dedup-truncated-zst", lambda w, o: ["corpus", "dedup", w / "docs-truncated.jsonl.zst", "-o", o], ["docs-truncated.jsonl.zst"]),
    ("mix-inspect-truncated", lambda w, o: ["mix", "inspect", w / "mix-truncated.json"], ["mix-truncated.json"]),
    ("train-truncated-manifest", lambda w, o: ["train", "-m", w / "mix-truncated.json", "-o", o], ["mix-truncated.json"]),
    ("shards-verify-truncated", lambda w, o: ["shards", "verify", w / "shards-truncated"], ["shards-truncated"]),
    ("mix-build-truncated-shard", lambda w, o: ["mix", "build", "--source", f"web={w / 'shards-truncated'}:1", "--budget", "1K", "-o", o / "m.json"], ["shards-truncated"]),
    ("sample-truncated-weights", lambda w, o: ["sample", w / "run-truncated"], ["run-truncated"]),
    ("sample-flipped-weights", lambda w, o: ["sample", w / "run-flipped"], ["run-flipped"]),
    ("chat-truncated-weights", lambda w, o: ["chat", w / "run-truncated", "--prompt", "hi"], ["run-truncated"]),
    ("sft-truncated-base", lambda w, o: ["align", "sft", "--base", w / "run-truncated", "--data", w / "chats.jsonl", "-o", o], ["run-truncated"]),
    # ---- nan / negative / out-of-range flags ---------------------------------------------
    ("train-lr-nan", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--lr", "nan"], ["--lr", "not a finite number"]),
    ("train-lr-inf", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--lr", "inf"], ["--lr"]),
    ("train-lr-negative", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--lr", "-0.1"], ["--lr"]),
    ("train-warmup-negative", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--warmup", "-1"], ["--warmup"]),
    ("train-checkpoint-every-negative", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--checkpoint-every", "-5"], ["--checkpoint-every"]),
    ("train-steps-zero", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--steps", "0"], ["--steps"]),
    ("train-muon-lr-nan", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--muon-lr", "nan"], ["--muon-lr"]),
    ("sample-max-tokens-zero", lambda w, o: ["sample", R(w), "--max-tokens", "0"], ["--max-tokens"]),
    ("sample-top-k-negative", lambda w, o: ["sample", R(w), "--top-k", "-5"], ["--top-k"]),
    ("sample-temperature-nan", lambda w, o: ["sample", R(w), "--temperature", "nan"], ["--temperature"]),
    ("sample-temperature-negative", lambda w, o: ["sample", R(w), "--temperature", "-1"], ["--temperature"]),
    ("chat-temperature-nan", lambda w, o: ["chat", R(w), "--prompt", "hi", "--temperature", "nan"], ["--temperature"]),
    ("chat-top-k-negative", lambda w, o: ["chat", R(w), "--prompt", "hi", "--top-k", "-5"], ["--top-k"]),
    ("sft-lr-nan", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "chats.jsonl", "-o", o, "--lr", "nan"], ["--lr"]),
    ("sft-warmup-negative", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "chats.jsonl", "-o", o, "--warmup", "-3"], ["--warmup"]),
    ("sft-val-fraction-one", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "chats.jsonl", "-o", o, "--val-fraction", "1"], ["--val-fraction"]),
    ("dpo-beta-nan", lambda w, o: ["align", "dpo", "--policy", R(w), "--data", w / "prefs.jsonl", "-o", o, "--beta", "nan"], ["--beta"]),
    ("dpo-lr-zero", lambda w, o: ["align", "dpo", "--policy", R(w), "--data", w / "prefs.jsonl", "-o", o, "--lr", "0"], ["--lr"]),
    ("rm-lr-nan", lambda w, o: ["align", "rm", "--base", R(w), "--data", w / "prefs.jsonl", "-o", o, "--lr", "nan"], ["--lr"]),
    ("rl-temperature-negative", lambda w, o: ["align", "rl", "--policy", R(w), "--prompts", w / "prompts.jsonl", "-o", o, "--temperature", "-1"], ["--temperature"]),
    ("rl-temperature-zero", lambda w, o: ["align", "rl", "--policy", R(w), "--prompts", w / "prompts.jsonl", "-o", o, "--temperature", "0"], ["--temperature", "advantage"]),
    ("rl-kl-coef-nan", lambda w, o: ["align", "rl", "--policy", R(w), "--prompts", w / "prompts.jsonl", "-o", o, "--kl-coef", "nan"], ["--kl-coef"]),
    ("rl-gamma-above-one", lambda w, o: ["align", "rl", "--policy", R(w), "--prompts", w / "prompts.jsonl", "-o", o, "--gamma", "2"], ["--gamma"]),
    ("dedup-threshold-nan", lambda w, o: ["corpus", "dedup", w / "docs.jsonl", "-o", o, "--threshold", "nan"], ["--threshold"]),
    ("dedup-num-perm-zero", lambda w, o: ["corpus", "dedup", w / "docs.jsonl", "-o", o, "--num-perm", "0"], ["--num-perm"]),
    ("process-min-language-score-nan", lambda w, o: ["corpus", "process", w / "crawl.warc", "-o", o, "--min-language-score", "nan"], ["--min-language-score"]),
    ("tokenizer-vocab-size-zero", lambda w, o: ["tokenizer", "train", w / "docs.jsonl", "-o", o, "--vocab-size", "0"], ["--vocab-size"]),
    ("shards-level-zero", lambda w, o: ["shards", "build", w / "docs.jsonl", "--tokenizer", w / "tok", "-o", o, "--level", "0"], ["--level"]),
    ("mix-weight-negative", lambda w, o: ["mix", "build", "--source", f"web={w / 'shards'}:-1", "--budget", "1K", "-o", o / "m.json"], ["--source"]),
    ("mix-weight-nan", lambda w, o: ["mix", "build", "--source", f"web={w / 'shards'}:nan", "--budget", "1K", "-o", o / "m.json"], ["--source"]),
]


@pytest.mark.parametrize("args, named", [pytest.param(a, n, id=i) for i, a, n in CASES])
def test_bad_input(w, tmp_path, args, named):
    out = tmp_path / "out"
    _check(w, args(w, out), [n if not isinstance(n, Path) else str(n) for n in named])


# ---- recipes: validated before the first stage ---------------------------------------------


@pytest.mark.parametrize("mix, named", [
    ('web_weight = 0', ["[mix].web_weight", "must be > 0"]),
    ('web_weight = nan', ["[mix].web_weight", "not a finite number"]),
    ('web_weight = 1\n[[mix.source]]\nname = "c4"\ndocuments = "DOCS"\nweight = nan', ["[[mix.source]] #1.weight", "not a finite number"]),
    ('web_weight = 1\n[[mix.source]]\nname = "c4"\ndocuments = "DOCS"\nweight = -2', ["[[mix.source]] #1", "must be > 0"]),
])
@pytest.mark.parametrize("command", ["check", "run"])
def test_recipe_bad_weight_fails_before_any_stage(w, tmp_path, mix, named, command):
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[pipeline]\noutput = "{tmp_path / "out"}"\n[corpus]\ninputs = ["{w / "crawl.warc"}"]\n'
                      f'[tokenizer]\nvocab_size = 300\n[shards]\n[mix]\nbudget = "20K"\n{mix.replace("DOCS", str(w / "docs.jsonl"))}\n')
    args = ["pipeline", command, recipe] + (["--no-progress"] if command == "run" else [])
    _check(w, args, ["r.toml", *named])
    assert not (tmp_path / "out").exists()  # nothing ran


# ---- the top-level handler --------------------------------------------------------------------


def test_debug_shows_the_traceback_of_a_user_error(w, tmp_path):
    """`lmforge --debug` (or LMFORGE_DEBUG=1) re-raises what is otherwise one line."""
    args = ["corpus", "dedup", str(w / "crawl.warc"), "-o", str(tmp_path / "o")]
    plain = CliRunner().invoke(main, args)
    assert plain.exit_code == 1 and "Traceback" not in plain.output and "Error: " in plain.output
    for argv, env in ((["--debug", *args], None), (args, {"LMFORGE_DEBUG": "1"})):
        debug = CliRunner().invoke(main, argv, env=env)
        assert debug.exit_code == 1
        assert debug.output.count("Traceback") == 1 and "DocumentFileError" in debug.output, debug.output
    # a damaged checkpoint: one line without --debug, its traceback with it
    plain = CliRunner().invoke(main, ["sample", str(w / "run-truncated")])
    assert plain.exit_code == 1 and "Traceback" not in plain.output and "model.safetensors" in plain.output, plain.output
    debug = CliRunner().invoke(main, ["--debug", "sample", str(w / "run-truncated")])
    assert "Traceback" in debug.output and "CheckpointError" in debug.output, debug.output


def test_a_library_error_about_a_file_is_one_line_naming_it():
    """safetensors' and zstd's own errors name no file; the handler names the one the failing
    call was reading, and a real bug (an unknown exception) keeps its traceback."""
    import zstandard

    from lmforge.cli import user_error_message

    def read(path):
        zstandard.ZstdDecompressor().decompress(b"\x28\xb5\x2f\xfd garbage")

    try:
        read("/data/corpus/00000.jsonl.zst")
    except zstandard.ZstdError as exc:
        message = user_error_message(exc)
    assert message.startswith("/data/corpus/00000.jsonl.zst: corrupted zstd data") and "re-create it" in message
    assert user_error_message(KeyError("x")) is None
    assert user_error_message(OSError(28, "No space left on device")) == "error: No space left on device; the disk is full: free some space, then run the same command again to resume"


# ---- read-only output, full disk (real file systems) -------------------------------------------


@pytest.fixture
def mount(tmp_path):
    """mount(options) -> a fresh tmpfs folder (e.g. "size=64k" for a full disk, "ro" for a
    read-only one); skipped where this process cannot mount."""
    mounted = []

    def make(options: str) -> Path:
        target = tmp_path / f"mnt{len(mounted)}"
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip() or 'mount failed'}); needs root")
        mounted.append(target)
        return target

    yield make
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], capture_output=True)


WRITERS = [
    ("dedup", lambda w, o: ["corpus", "dedup", w / "docs.jsonl", "-o", o]),
    ("tokenizer", lambda w, o: ["tokenizer", "train", w / "docs.jsonl", "-o", o, "--vocab-size", "300"]),
    ("shards", lambda w, o: ["shards", "build", w / "docs.jsonl", "--tokenizer", w / "tok", "-o", o]),
    ("mix", lambda w, o: ["mix", "build", "--source", f"web={w / 'shards'}:1", "--budget", "20K", "-o", o / "mix.json"]),
    ("train", lambda w, o: ["train", "-m", w / "mix.json", "-o", o, "--steps", "2", "--batch-tokens", "512", "--micro-batch", "4",
                            "--eval-every", "0", "--threads", "1", "--no-progress"]),
    ("sft", lambda w, o: ["align", "sft", "--base", R(w), "--data", w / "chats.jsonl", "-o", o, "--steps", "1", "--batch-size", "2",
                          "--eval-every", "0", "--threads", "1", "--no-progress"]),
]
if WHIRLWIND.exists():
    WRITERS.append(("process", lambda w, o: ["corpus", "process", WHIRLWIND, "-o", o, "--no-progress"]))


@pytest.mark.parametrize("args", [pytest.param(a, id=i) for i, a in WRITERS])
def test_read_only_output(w, mount, args):
    ro = mount("ro,size=64k")
    out = _check(w, args(w, ro / "out"), [ro / "out", "Read-only file system"])
    assert out.count("\n") <= 3, out  # one line, not a log of failures


@pytest.mark.parametrize("args", [pytest.param(a, id=i) for i, a in WRITERS])
def test_full_disk(w, mount, args):
    full = mount("size=64k")
    with open(full / "filler", "wb", buffering=0) as f:  # fill it up: any output then meets a full disk
        with pytest.raises(OSError):
            for _ in range(1000):
                f.write(bytes(4096))
    out = _check(w, args(w, full / "out"), [full / "out", "No space left on device", "run the same command again"])
    assert "Logging error" not in out


@pytest.mark.parametrize("table, named", [
    ("[train]\nwarmup = -1", ["[train].warmup", "-1 is not in the range x>=0"]),
    ("[train]\ncheckpoint_every = -5", ["[train].checkpoint_every"]),
    ("[train]\nlr = inf", ["[train].lr", "not a finite number"]),
    ("[train]\n[sft]\ndata = [\"DOCS\"]\nval_fraction = 1.0", ["[sft].val_fraction"]),
])
def test_recipe_numbers_are_checked_like_their_flags(w, tmp_path, table, named):
    """A stage table's numbers pass the same click types as the command's flags."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[pipeline]\noutput = "{tmp_path / "out"}"\n[corpus]\ninputs = ["{w / "crawl.warc"}"]\n'
                      f'[tokenizer]\nvocab_size = 300\n[shards]\n[mix]\nbudget = "20K"\n{table.replace("DOCS", str(w / "chats.jsonl"))}\n')
    _check(w, ["pipeline", "check", recipe], ["r.toml", *named])


def test_full_disk_during_a_checkpoint(w, mount):
    """Room for the weights but not the optimizer state: torch's own 'unexpected pos' error
    becomes one line naming the file."""
    full = mount("size=6m")
    args = ["train", "-m", w / "mix.json", "-o", full / "out", "--steps", "2", "--batch-tokens", "512", "--micro-batch", "4",
            "--eval-every", "0", "--threads", "1", "--no-progress"]
    out = _check(w, args, [full / "out" / "checkpoints", "run the same command again"])
    assert "optimizer.pt" in out or "model.safetensors" in out, out


def test_gsm8k_prompts_without_an_answer_number_are_skipped_by_line(tmp_path, caplog):
    """A prompt whose reference has no `#### n` could never be rewarded (and crashed the run at
    the step that drew it): counted and skipped at load time, with its line in the warning."""
    pytest.importorskip("torch")
    from lmforge.alignment.rl import read_prompts

    path = tmp_path / "gsm8k.jsonl"
    rows = [{"question": "1+1?", "answer": "so\n#### 2"}, {"question": "2+2?", "answer": "four"}, {"question": "3+3?", "answer": "6"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with caplog.at_level("WARNING"):
        examples = read_prompts(path, "gsm8k")
    assert [e.answer for e in examples] == ["so\n#### 2", "6"]
    assert f"{path}:2: skipped" in caplog.text and "skipped 1 of 3 records" in caplog.text
    assert len(read_prompts(path)) == 3  # PPO scores with a reward model: no answer needed
