"""`lmforge export hf` and the Hugging Face view of a tokenizer folder, checked in `transformers`.

Every run kind the project makes is exported and loaded back with `AutoModelFor...` (no custom
code): logits against lmforge's, greedy generation token for token, reward scores, and chat
ids from `apply_chat_template` against `lmforge.alignment.chat.render`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

transformers = pytest.importorskip("transformers", reason="transformers is not installed (pip install 'lmforge[hf]')")

import torch  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from test_reward import make_preferences, make_tokenizer  # noqa: E402

from conftest import shared_path  # noqa: E402

torch.set_num_threads(1)

CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there!"}],
    [{"role": "system", "content": "Be brief.\n"}, {"role": "user", "content": "  what is 12 + 30?"},
     {"role": "assistant", "content": "42"}, {"role": "user", "content": "and twice that?"},
     {"role": "assistant", "content": " 84 \n\n"}],
    [{"role": "user", "content": "naïve café 🙂"}, {"role": "assistant", "content": ""}],
]


@pytest.fixture(scope="module")
def tok_dir(tmp_path_factory):
    return make_tokenizer(tmp_path_factory.mktemp("export-tok"))


@pytest.fixture(scope="module")
def tok(tok_dir):
    from lmforge.tokenize import Tokenizer

    return Tokenizer.load(tok_dir)


@pytest.fixture(scope="module")
def hf_tok(tok_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tok_dir)


def make_run(root: Path, tok_dir: Path, *, tie: bool, extra_state: dict | None = None, seed: int = 0, std: float = 0.3,
             boost: int | None = None) -> Path:
    """A run with one sealed checkpoint (sha256s in state.json) of a tiny GPT whose weights are
    large enough that greedy generation does not repeat one token: what `lmforge train` writes."""
    from lmforge.tokenize import Tokenizer
    from lmforge.train.model import GPT, GPTConfig, save_weights
    from lmforge.train.trainer import seal_checkpoint

    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=tok.vocab_size, n_layer=2, n_head=2, n_embd=32, block_size=64, tie_embeddings=tie,
                          rope_theta=500.0))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, std)
        if boost is not None:  # make this token likely, so that generation stops at it now and then
            model.lm_head.weight[boost] *= 2.5
    ckpt = root / "checkpoints" / "step_00000007"
    ckpt.mkdir(parents=True)
    save_weights(model, ckpt / "model.safetensors")
    seal_checkpoint(ckpt, {"format": "lmforge-checkpoint", "version": 1, "step": 7, "model_config": model.config.to_dict(),
                           "tokenizer_dir": str(tok_dir), "tokenizer_fingerprint": tok.fingerprint, **(extra_state or {})})
    return root


def lmforge_model(run):
    from lmforge.train.trainer import load_model

    model, _ = load_model(run)
    return model.eval()


# ---- the tokenizer folder ----------------------------------------------------------------------
def test_tokenizer_folder_loads_complete_in_transformers(tok_dir, tok, hf_tok):
    assert (tok_dir / "tokenizer_config.json").is_file()
    assert (hf_tok.bos_token, hf_tok.eos_token, hf_tok.pad_token) == ("<|bos|>", "<|assistant_end|>", "<|pad|>")
    assert (hf_tok.bos_token_id, hf_tok.eos_token_id, hf_tok.pad_token_id) == (tok.bos_id, tok.assistant_end_id, tok.pad_id)
    text = "the model reads text 123 and naïve 🙂"
    assert hf_tok(text).input_ids == tok.encode(text, bos=True)  # every shard document starts with <|bos|>
    assert hf_tok.decode(hf_tok(text).input_ids, skip_special_tokens=True) == text


@pytest.mark.parametrize("conv", CONVERSATIONS)
def test_chat_template_gives_lmforge_ids_and_generation_prompt(tok, hf_tok, conv):
    from lmforge.alignment.chat import render, render_prompt

    assert hf_tok.apply_chat_template(conv, tokenize=True, return_dict=False) == render(conv, tok)[0]
    prompt = conv[:-1]
    assert hf_tok.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True, return_dict=False) == render_prompt(prompt, tok)


@pytest.mark.parametrize("conv, message", [
    ([], "non-empty"),
    ([{"role": "assistant", "content": "hi"}], "alternate"),
    ([{"role": "user", "content": "a"}, {"role": "system", "content": "b"}], "only come first"),
    ([{"role": "tool", "content": "a"}], "not one of"),
    ([{"role": "user", "content": ["a"]}], "must be a string"),
])
def test_chat_template_refuses_what_render_refuses(tok, hf_tok, conv, message):
    from jinja2 import TemplateError

    from lmforge.alignment.chat import ChatFormatError, render

    with pytest.raises(ChatFormatError):
        render(conv, tok)
    with pytest.raises((TemplateError, ValueError), match=message if conv else "empty conversation"):  # HF checks [] itself
        hf_tok.apply_chat_template(conv, tokenize=False)
    with pytest.raises(TemplateError, match="generation prompt follows a user turn"):
        hf_tok.apply_chat_template(CONVERSATIONS[0], tokenize=False, add_generation_prompt=True)


def test_chat_template_matches_render_on_all_shared_alignment_data(shared_data, tok, hf_tok):
    """Every conversation of the four shared sets. The rendered string is compared for all of
    them (lmforge's ids decode to exactly the text they encode, specials to their literals);
    `tokenize=True` ids for every 7th (HF's tokeniser is ~4x slower than lmforge's here, and
    the ids of text between specials are the same file's: tests/test_tokenizer.py)."""
    from lmforge.alignment.chat import render
    from lmforge.alignment.data import load_conversations, load_preferences
    from lmforge.tokenize.tokenizer import SPECIAL_TOKENS

    align = shared_data / "align"
    convs, prompts = [], {}
    for name in ("alpaca-en-999.json", "self-instruct-seed-175.jsonl"):
        convs += list(load_conversations(shared_path("align", name)))
    for name in ("preference-en-300.json", "hh-rlhf-harmless-1800.jsonl.gz"):
        for pair in load_preferences(align / name):
            convs += [pair.prompt + [{"role": "assistant", "content": answer}] for answer in (pair.chosen, pair.rejected)]
            prompts[json.dumps(pair.prompt)] = pair.prompt
    assert len(convs) > 5000
    # content with a special-token literal would be the one known difference (see lmforge/tokenize/hf.py); none has one
    assert not any(lit in m["content"] for c in convs for m in c for lit in SPECIAL_TOKENS)
    ours = [render(c, tok)[0] for c in convs]
    assert hf_tok.apply_chat_template(convs, tokenize=False) == [tok.decode(ids) for ids in ours]
    sample = list(range(0, len(convs), 7))
    assert hf_tok.apply_chat_template([convs[i] for i in sample], tokenize=True, return_dict=False) == [ours[i] for i in sample]
    prompts = list(prompts.values()) + [c[:-1] for c in convs[::7]]
    expected = [render(p, tok, add_generation_prompt=True)[0] for p in prompts]
    assert hf_tok.apply_chat_template(prompts, tokenize=False, add_generation_prompt=True) == [tok.decode(e) for e in expected]


def test_rerun_of_an_older_tokenizer_folder_adds_its_config(tok_dir, tmp_path):
    from lmforge.tokenize.train import TrainConfig, train_tokenizer

    docs = tok_dir.parent / "docs.jsonl"
    cfg = TrainConfig(vocab_size=300, sample_bytes=200_000, min_frequency=2)
    out = tmp_path / "tok"
    train_tokenizer([docs], out, cfg)
    (out / "tokenizer_config.json").unlink()  # as `tokenizer train` wrote folders before
    assert train_tokenizer([docs], out, cfg).skipped
    assert json.loads((out / "tokenizer_config.json").read_text())["chat_template"]


# ---- language models -------------------------------------------------------------------------
@pytest.mark.parametrize("tie", [True, False])
def test_export_gives_lmforge_logits_and_greedy_text(tmp_path, tok_dir, tok, tie):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.export.hf import export_hf
    from lmforge.train.sample import generate

    run = make_run(tmp_path / "run", tok_dir, tie=tie)
    summary = export_hf(run, tmp_path / "hf")
    assert summary.kind == "language model" and summary.eos == "<|bos|>" and summary.step == 7
    model, info = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert type(model).__name__ == "ArceeForCausalLM"
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert model.config.vocab_size == tok.vocab_size and model.config.tie_word_embeddings == tie
    ours = lmforge_model(run)
    texts = ["the model reads text", "rivers flow to the sea and mountains rise above the clouds 42", "a"]
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    for text in texts:
        ids = hf_tok(text, return_tensors="pt").input_ids
        assert ids[0].tolist() == tok.encode(text, bos=True)
        with torch.no_grad():
            theirs = model(ids).logits
            for kernels in ("plain", "auto"):  # PLAIN_OPS and the CPU kernels
                ours.kernels = kernels
                mine = ours(ids)[0][..., : tok.vocab_size]
                assert (mine - theirs).abs().max().item() < 1e-4
        new = generate(ours, ids[0].tolist(), 24, temperature=0, stop={tok.bos_id}, vocab_size=tok.vocab_size)
        out = model.generate(ids, do_sample=False, max_new_tokens=24)[0, ids.size(1):].tolist()
        assert out == new and len(set(new)) > 3  # HF stops where `lmforge sample` stops, at <|bos|>


@pytest.mark.parametrize("kind", [{"stage": "sft"}, {"kind": "policy"}])
def test_chat_run_stops_at_assistant_end_as_lmforge_chat_does(tmp_path, tok_dir, tok, kind):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lmforge.alignment.chat import render_prompt
    from lmforge.export.hf import export_hf
    from lmforge.train.sample import generate

    run = make_run(tmp_path / "run", tok_dir, tie=False, extra_state=kind, seed=3, boost=tok.assistant_end_id)
    assert export_hf(run, tmp_path / "hf").eos == "<|assistant_end|>"
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert model.generation_config.eos_token_id == tok.assistant_end_id == hf_tok.eos_token_id
    assert hf_tok.model_max_length == 64
    ours = lmforge_model(run)
    lengths = []
    for conv in CONVERSATIONS:
        prompt = hf_tok.apply_chat_template(conv[:-1], add_generation_prompt=True, return_tensors="pt", return_dict=True)
        assert prompt["input_ids"][0].tolist() == render_prompt(conv[:-1], tok)
        new = generate(ours, render_prompt(conv[:-1], tok), 20, temperature=0, stop={tok.assistant_end_id}, vocab_size=tok.vocab_size)
        out = model.generate(**prompt, do_sample=False, max_new_tokens=20)[0, prompt["input_ids"].size(1):].tolist()
        assert out == new
        lengths.append(len(new))
    assert min(lengths) < 20  # stopped at <|assistant_end|>, both of them


# ---- reward models -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rm_run(tmp_path_factory, tok_dir):
    from lmforge.alignment.reward import RewardConfig, train_reward_model

    root = tmp_path_factory.mktemp("export-rm")
    base = make_run(root / "base", tok_dir, tie=True, std=0.05)
    prefs = make_preferences(root / "prefs.jsonl", n=32)
    train_reward_model(RewardConfig(base=str(base), data=str(prefs), out_dir=str(root / "rm"), steps=4, batch_size=4,
                                    lr=3e-3, warmup=0, eval_every=0, val_fraction=0.25))
    return root / "rm"


def test_reward_model_exports_as_sequence_classification_with_equal_margins(tmp_path, rm_run, tok):
    from transformers import AutoModelForSequenceClassification

    from lmforge.alignment.reward import load_reward_model, pad
    from lmforge.export.hf import export_hf

    summary = export_hf(rm_run, tmp_path / "hf")
    assert summary.kind == "reward model" and summary.architecture == "ArceeForSequenceClassification"
    model, info = AutoModelForSequenceClassification.from_pretrained(tmp_path / "hf", output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    ours, _ = load_reward_model(rm_run)
    ours.eval()
    assert ours.reward_head.weight.abs().sum() > 0
    bias = ours.reward_head.bias.item()  # not 0: Adam turns the rounding noise of its zero gradient into steps
    assert summary.reward_bias == bias == model.config.lmforge_reward_bias != 0.0
    seqs = [tok.encode(t, bos=True) for t in ("the model reads text", "rivers flow to the sea and mountains rise", "a")]
    ids, lengths = pad(seqs, tok.pad_id)  # right-padded with <|pad|>, as lmforge scores them
    with torch.no_grad():
        mine = ours(ids, lengths)
        theirs = model(ids, attention_mask=(ids != tok.pad_id).long()).logits.squeeze(-1)
        alone = torch.cat([model(torch.tensor([s])).logits[:, 0] for s in seqs])
    assert torch.allclose(mine, theirs + bias, atol=1e-5) and torch.allclose(mine, alone + bias, atol=1e-5)
    assert torch.allclose(mine[:, None] - mine[None, :], theirs[:, None] - theirs[None, :], atol=1e-5)  # every margin


# ---- what is refused -------------------------------------------------------------------------
def run_cli(args):
    from lmforge.cli import main

    return CliRunner().invoke(main, ["export", "hf", *map(str, args)])


def test_cli_prints_the_reward_offset(tmp_path, rm_run):
    r = run_cli([rm_run, "-o", tmp_path / "hf"])
    assert r.exit_code == 0 and "ArceeForSequenceClassification" in r.output and "score offset" in r.output, r.output


def test_cli_writes_the_folder_and_prints_a_summary(tmp_path, tok_dir):
    run = make_run(tmp_path / "run", tok_dir, tie=True)
    r = run_cli([run, "-o", tmp_path / "hf", "--dtype", "bfloat16"])
    assert r.exit_code == 0, r.output
    assert "ArceeForCausalLM" in r.output and "model.safetensors" in r.output
    names = {p.name for p in (tmp_path / "hf").iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["dtype"] == "bfloat16" and config["rope_theta"] == 500.0 and config["hidden_act"] == "relu2"
    again = run_cli([run, "-o", tmp_path / "hf"])
    assert again.exit_code == 1 and "not empty" in again.output and "--overwrite" in again.output
    assert run_cli([run, "-o", tmp_path / "hf", "--overwrite"]).exit_code == 0
    assert json.loads((tmp_path / "hf" / "config.json").read_text())["dtype"] == "float32"


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "feature"])
def test_bad_runs_are_one_line_errors(tmp_path, tok_dir, case):
    from lmforge.train.trainer import read_state, seal_checkpoint

    run = tmp_path / "run"
    if case == "empty":
        run.mkdir()
    elif case != "missing":
        make_run(run, tok_dir, tie=True)
        ckpt = run / "checkpoints" / "step_00000007"
        if case == "corrupt":
            with open(ckpt / "model.safetensors", "r+b") as f:
                f.seek(200)
                f.write(b"\xff\xff\xff\xff")
        else:  # a model feature this export does not map (say, logit soft-capping)
            state = {k: v for k, v in read_state(ckpt).items() if k not in ("files", "state_sha256")}
            state["model_config"]["logit_softcap"] = 15.0
            seal_checkpoint(ckpt, state)
    r = run_cli([run, "-o", tmp_path / "hf"])
    message = {"missing": "no such run", "empty": "no checkpoint here", "corrupt": "model.safetensors does not match its sha256",
               "feature": "logit_softcap with no counterpart"}[case]
    assert r.exit_code == 1 and message in r.output and "Traceback" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and not [p for p in (tmp_path / "hf").glob("*") if p.name != ".lmforge.lock"]


# ---- import: a Llama-family HF folder as --base ------------------------------------------------
def make_llama_folder(root: Path, tok_dir: Path, *, tie: bool = False, **overrides) -> Path:
    """A tiny random `LlamaForCausalLM` saved by transformers (random norm gains too), with the
    lmforge tokenizer beside it."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from lmforge.tokenize import Tokenizer

    tok = Tokenizer.load(tok_dir)
    torch.manual_seed(1)
    config = LlamaConfig(**{**dict(vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5,
                                   tie_word_embeddings=tie, rope_parameters={"rope_type": "default", "rope_theta": 500.0},
                                   bos_token_id=0, eos_token_id=5, pad_token_id=1), **overrides})
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(1.0 if p.dim() == 1 else 0.0, 0.3)
    model.save_pretrained(root)
    for name in ("tokenizer.json", "lmforge-tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(tok_dir / name, root / name)
    return root


@pytest.mark.parametrize("tie", [True, False])
def test_llama_folder_loads_as_a_gpt_with_its_logits(tmp_path, tok_dir, tok, tie):
    from transformers import AutoModelForCausalLM

    from lmforge.train.trainer import load_model

    folder = make_llama_folder(tmp_path / "llama", tok_dir, tie=tie)
    ours, state = load_model(folder)
    assert ours.config.mlp == "swiglu" and ours.config.norm_eps == 1e-5 and ours.config.intermediate_size == 48
    assert state["tokenizer_fingerprint"] == tok.fingerprint and not ours.config.tie_embeddings  # a final gain unties
    theirs = AutoModelForCausalLM.from_pretrained(folder).eval()
    ids = torch.tensor([tok.encode("the model reads text and learns to predict 42", bos=True)])
    with torch.no_grad():
        ref = theirs(ids).logits
        for kernels in ("plain", "auto"):
            ours.kernels = kernels
            assert (ours.eval()(ids)[0][..., : tok.vocab_size] - ref).abs().max().item() < 1e-4


@pytest.mark.parametrize("override, message", [
    ({"num_key_value_heads": 1}, "grouped KV heads"),
    ({"attention_bias": True}, "attention_bias"),
    ({"hidden_act": "gelu"}, "hidden_act 'gelu'"),
])
def test_llama_features_without_counterpart_are_refused_by_name(tmp_path, tok_dir, override, message):
    from lmforge.train.trainer import TrainingError, load_model

    folder = make_llama_folder(tmp_path / "llama", tok_dir, **override)
    with pytest.raises(TrainingError, match=message):
        load_model(folder)


def test_sft_from_a_llama_folder_exports_back_as_llama(tmp_path, tok_dir, tok):
    from transformers import AutoModelForCausalLM

    from lmforge.alignment.sft_cli import sft
    from lmforge.export.hf import export_hf

    folder = make_llama_folder(tmp_path / "llama", tok_dir)
    data = tmp_path / "chat.jsonl"
    data.write_text("".join(json.dumps({"messages": c}) + "\n" for c in CONVERSATIONS * 4))
    r = CliRunner().invoke(sft, ["--base", str(folder), "--data", str(data), "-o", str(tmp_path / "sft"), "--steps", "2",
                                 "--batch-size", "2", "--val-fraction", "0", "--threads", "1"])
    assert r.exit_code == 0, r.output
    summary = export_hf(tmp_path / "sft", tmp_path / "hf")
    assert summary.architecture == "LlamaForCausalLM" and summary.eos == "<|assistant_end|>"
    theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "hf").eval()
    ours = lmforge_model(tmp_path / "sft")
    ids = torch.tensor([tok.encode("rivers flow to the sea", bos=True)])
    with torch.no_grad():
        assert (ours(ids)[0][..., : tok.vocab_size] - theirs(ids).logits).abs().max().item() < 1e-4


def test_an_export_imports_back_as_the_same_model(tmp_path, tok_dir):
    from lmforge.export.hf import export_hf
    from lmforge.train.trainer import load_model

    run = make_run(tmp_path / "run", tok_dir, tie=True)
    export_hf(run, tmp_path / "hf")
    ours, back = lmforge_model(run), load_model(tmp_path / "hf")[0]
    assert back.config == ours.config  # Arcee -> the same GPTConfig: lmforge's own model, CPU kernels and all
    V = ours.config.vocab_size  # the padding rows (never a target) come back as zeros
    assert all(torch.equal(a[:V], b[:V]) for a, b in zip(ours.state_dict().values(), back.state_dict().values()))
