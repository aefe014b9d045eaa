"""The GPT model file and its CPU kernels: shapes, the kernels against the plain functions,
the fused CPU loss, the KV cache, FLOP accounting."""

from __future__ import annotations

import contextlib

import pytest
import torch
import torch.nn.functional as F

from lmforge.train.model import GPT, PRESETS, GPTConfig, KVCache, preset_config

torch.set_num_threads(1)


def small(vocab=300, **kw) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, n_layer=2, n_head=2, n_embd=32, block_size=32, **kw))


def test_padded_vocab_and_shapes():
    m = small(vocab=300)
    assert m.config.padded_vocab_size == 320
    idx = torch.randint(0, 300, (3, 10))
    logits, loss = m(idx)
    assert logits.shape == (3, 10, 320) and loss is None
    assert m.hidden(idx).shape == (3, 10, 32)


@pytest.mark.parametrize("tie", [True, False])
def test_fused_cpu_loss_equals_plain_cross_entropy(tie):
    m = small(tie_embeddings=tie).double()
    x = torch.randint(0, 300, (2, 20))
    y = torch.randint(0, 300, (2, 20))
    y[0, :4] = -1  # ignored targets
    _, fused = m(x, y)
    fused.backward()
    g_fused = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    logits, _ = m(x)
    plain = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1), ignore_index=-1)
    plain.backward()
    assert torch.allclose(fused, plain, atol=1e-12, rtol=0)
    for a, b in zip(g_fused, (p.grad for p in m.parameters())):
        assert torch.allclose(a, b, atol=1e-12, rtol=0)


def test_tied_embeddings_share_one_tensor():
    m = small(tie_embeddings=True)
    assert m.lm_head.weight is m.wte.weight
    assert m.num_params() == sum(p.numel() for p in m.parameters())
    untied = small(tie_embeddings=False)
    assert untied.num_params() - untied.num_params(embedding=False) == 320 * 32


def test_causal_future_tokens_do_not_change_the_past():
    m = small().eval()
    a = torch.randint(0, 300, (1, 16))
    b = a.clone()
    b[0, 10:] = (b[0, 10:] + 1) % 300
    la, _ = m(a)
    lb, _ = m(b)
    assert torch.allclose(la[0, :10], lb[0, :10], atol=1e-6)
    assert not torch.allclose(la[0, 10:], lb[0, 10:])


def test_kv_cache_matches_full_forward():
    m = small().eval()
    idx = torch.randint(0, 300, (2, 24))
    full, _ = m(idx)
    cache = KVCache(m.config, 2, 24)
    parts = [m(idx[:, :10], kv_cache=cache)[0]]  # prefill
    parts.append(m(idx[:, 10:15], kv_cache=cache)[0])  # a chunk after a prefix
    for t in range(15, 24):  # one token at a time
        parts.append(m(idx[:, t : t + 1], kv_cache=cache)[0])
    assert torch.allclose(torch.cat(parts, dim=1), full, atol=1e-5)
    assert cache.pos == 24


def test_flops_per_token_is_the_palm_formula():
    m = GPT(preset_config("d12", 50257))
    c = m.config
    n_blocks = 12 * c.n_layer * c.n_embd**2  # qkv 3C², proj C², MLP 8C² per layer
    head = c.padded_vocab_size * c.n_embd
    assert m.flops_per_token() == 6 * (n_blocks + head) + 12 * c.n_layer * 1024 * c.n_embd
    assert 123e6 < m.num_params() < 125e6  # GPT-2 small


def test_unknown_preset_and_bad_shapes_are_clear():
    with pytest.raises(KeyError, match="choose one of"):
        preset_config("huge", 100)
    with pytest.raises(ValueError, match="divisible"):
        GPTConfig(n_embd=100, n_head=3)
    assert {"tiny", "d12", "d24"} <= set(PRESETS)


def test_config_round_trips_through_a_dict():
    c = preset_config("tiny", 1234)
    assert GPTConfig.from_dict(c.to_dict() | {"unknown": 1}) == c


@pytest.mark.parametrize("tie", [True, False])
def test_fused_cpu_loss_under_bf16_autocast_matches_the_plain_head(tie):
    # 600 rows: more than one chunk of 256, so the float32 weight-gradient sum is exercised
    m = small(vocab=8000, tie_embeddings=tie)
    x = torch.randint(0, 8000, (20, 30))
    y = torch.randint(0, 8000, (20, 30))
    y[0, :4] = -1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        _, fused = m(x, y)
    fused.backward()
    g_fused = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, _ = m(x)
    plain = F.cross_entropy(logits.float().view(-1, logits.size(-1)), y.view(-1), ignore_index=-1)
    plain.backward()
    assert fused.dtype == torch.float32
    assert torch.allclose(fused, plain, rtol=1e-4, atol=0)
    for a, p in zip(g_fused, m.parameters()):
        assert a.dtype == p.dtype
        assert ((a - p.grad).norm() / p.grad.norm()) < 1e-2  # seen: <= 2.3e-3 (bf16 rounding of the products)


def test_rms_norm_matches_torch():
    from lmforge.train.cpu_kernels import rms_norm

    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    g = torch.randn(3, 5, 16, dtype=torch.float64)
    ours = rms_norm(x)
    (gx,) = torch.autograd.grad(ours, x, g)
    ref = F.rms_norm(x, (16,))
    (gr,) = torch.autograd.grad(ref, x, g)
    assert torch.allclose(ours, ref, atol=1e-12, rtol=0) and torch.allclose(gx, gr, atol=1e-12, rtol=0)


@pytest.mark.parametrize("T", [1, 37, 64, 130, 256])
def test_block_causal_attention_equals_sdpa_forward_and_backward(T):
    """The blocked CPU training attention gives SDPA's outputs and gradients, for lengths
    below, at and between multiples of the block."""
    from lmforge.train.cpu_kernels import BlockCausalAttention

    torch.manual_seed(T)
    q, k, v = (torch.randn(2, 3, T, 16, dtype=torch.float64, requires_grad=True) for _ in range(3))
    grad = torch.randn(2, 3, T, 16, dtype=torch.float64)
    ref = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    ref_grads = torch.autograd.grad(ref, (q, k, v), grad)
    ours = BlockCausalAttention.apply(q, k, v, 64)
    our_grads = torch.autograd.grad(ours, (q, k, v), grad)
    torch.testing.assert_close(ours, ref)
    for a, b in zip(our_grads, ref_grads):
        torch.testing.assert_close(a, b)


def test_block_causal_attention_in_bf16_is_as_close_to_exact_as_sdpa():
    """bf16 products, float32 softmax: relative error against float64 within 2x SDPA's own."""
    from lmforge.train.cpu_kernels import BlockCausalAttention

    torch.manual_seed(0)
    q, k, v = (torch.randn(4, 2, 200, 32, dtype=torch.bfloat16, requires_grad=True) for _ in range(3))
    grad = torch.randn(4, 2, 200, 32, dtype=torch.bfloat16)
    exact_in = [t.detach().double().requires_grad_() for t in (q, k, v)]
    exact = F.scaled_dot_product_attention(*exact_in, is_causal=True)
    exact = [exact, *torch.autograd.grad(exact, exact_in, grad.double())]

    def rel_errors(fn):
        out = fn(q, k, v)
        got = [out, *torch.autograd.grad(out, (q, k, v), grad)]
        assert all(g.dtype == torch.bfloat16 for g in got)
        return [float((g.detach().double() - e.detach()).norm() / e.detach().norm()) for g, e in zip(got, exact)]

    ours = rel_errors(lambda *t: BlockCausalAttention.apply(*t, 64))
    sdpa = rel_errors(lambda *t: F.scaled_dot_product_attention(*t, is_causal=True))
    for o, r in zip(ours, sdpa):
        assert o < max(2 * r, 1e-3), (ours, sdpa)


def test_causal_attention_takes_the_blocked_path_on_cpu(monkeypatch):
    from lmforge.train import cpu_kernels as model_mod

    calls = []
    real = model_mod.BlockCausalAttention.apply
    monkeypatch.setattr(model_mod.BlockCausalAttention, "apply", lambda *a: calls.append(1) or real(*a))
    x = torch.randn(1, 2, 8, 4, requires_grad=True)
    model_mod.causal_attention(x, x, x)
    assert calls == [1]
    with torch.no_grad():  # evaluation too, so frozen and trainable copies agree
        model_mod.causal_attention(x, x, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # float32 tensors under autocast: blocked, as they are
        model_mod.causal_attention(x, x, x)
    assert len(calls) == 3
    xh = torch.randn(1, 2, 8, 4, dtype=torch.float16, requires_grad=True)
    model_mod.causal_attention(xh, xh, xh)  # float16: SDPA
    long = torch.randn(1, 1, model_mod.BLOCK_ATTENTION_MAX_T + 1, 4, requires_grad=True)
    model_mod.causal_attention(long, long, long)  # the kept probabilities would be too big
    assert len(calls) == 3
    # and a model trains through it: its gradients equal the SDPA path's
    m = small()
    idx = torch.randint(0, 300, (2, 20))
    _, loss = m(idx, idx)
    g_block = torch.autograd.grad(loss, list(m.parameters()))
    monkeypatch.setattr(model_mod, "BLOCK_ATTENTION_MAX_T", 0)
    _, loss2 = m(idx, idx)
    g_sdpa = torch.autograd.grad(loss2, list(m.parameters()))
    torch.testing.assert_close(loss, loss2)
    for a, b in zip(g_block, g_sdpa):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", ["rms_norm", "rotary", "relu_squared", "attention"])
def test_each_cpu_kernel_equals_its_plain_function(name):
    """Forward and backward of every CPU kernel against the plain PyTorch function, in float64."""
    from lmforge.train.cpu_kernels import CPU_OPS
    from lmforge.train.model import PLAIN_OPS, rotary_tables

    torch.manual_seed(0)
    x = torch.randn(2, 3, 40, 16, dtype=torch.float64)
    extra = ()
    if name == "rotary":
        extra = tuple(t.double() for t in rotary_tables(16, 40, 10000.0))
    args = (x,) * 3 if name == "attention" else (x, *extra)

    def run(fn):
        inputs = [a.clone().requires_grad_() for a in args[:3 if name == "attention" else 1]]
        out = fn(*inputs, *args[len(inputs):])
        grads = torch.autograd.grad(out, inputs, torch.ones_like(out) * torch.linspace(-1, 1, out.size(-1), dtype=out.dtype))
        return out, grads

    out_k, g_k = run(getattr(CPU_OPS, name))
    out_p, g_p = run(getattr(PLAIN_OPS, name))
    torch.testing.assert_close(out_k, out_p)
    for a, b in zip(g_k, g_p):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_model_gives_the_same_loss_and_gradients_with_plain_ops_and_cpu_kernels(precision):
    """The readable definition (PLAIN_OPS, what CUDA runs) and the CPU kernels are one model."""
    m = small(vocab=500, tie_embeddings=precision == "fp32")
    x = torch.randint(0, 500, (3, 32))
    y = torch.randint(0, 500, (3, 32))
    y[0, :5] = -1

    def loss_and_grads(kernels):
        m.kernels = kernels
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext()
        with amp:
            _, loss = m(x, y)
        return loss, torch.autograd.grad(loss, list(m.parameters()))

    loss_k, g_k = loss_and_grads("auto")
    loss_p, g_p = loss_and_grads("plain")
    if precision == "fp32":
        torch.testing.assert_close(loss_k, loss_p, rtol=1e-6, atol=1e-6)
        for a, b in zip(g_k, g_p):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    else:  # bf16 products on both paths, rounded at different places
        torch.testing.assert_close(loss_k, loss_p, rtol=1e-2, atol=0)
        for a, b in zip(g_k, g_p):
            assert ((a - b).norm() / b.norm()) < 3e-2


def test_model_file_stays_readable():
    """model.py is the readable definition: plain PyTorch, no custom autograd, under 360 lines
    (350 until the Llama import's three config fields came in)."""
    from pathlib import Path

    import lmforge.train.model as model_mod

    source = Path(model_mod.__file__).read_text()
    assert len(source.splitlines()) < 360
    assert "autograd.Function" not in source


def test_left_padded_prompts_in_one_cache_give_each_prompt_its_own_logits():
    """Prompts of different lengths, left-padded into one KV cache: every real position's
    logits equal those of the prompt alone (RoPE is relative; pads are never attended)."""
    m = small().eval()
    prompts = [torch.randint(0, 300, (n,)) for n in (5, 12, 9)]
    L = 12
    ids = torch.zeros(3, L, dtype=torch.long)
    valid = torch.ones(3, L + 4, dtype=torch.bool)
    for i, p in enumerate(prompts):
        ids[i, L - len(p):] = p
        valid[i, : L - len(p)] = False
    cache = KVCache(m.config, 3, L + 4, valid=valid)
    with torch.no_grad():
        logits, _ = m(ids, kv_cache=cache)
        nxt = torch.randint(0, 300, (3, 1))
        step, _ = m(nxt, kv_cache=cache)
        for i, p in enumerate(prompts):
            alone, _ = m(torch.cat([p, nxt[i]])[None])
            torch.testing.assert_close(logits[i, L - len(p):], alone[0, : len(p)], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(step[i, 0], alone[0, -1], atol=1e-5, rtol=1e-5)
        assert torch.isfinite(logits).all()  # pad rows attend to themselves: no NaN anywhere


def test_generate_batch_equals_one_prompt_at_a_time():
    from lmforge.train.sample import generate, generate_batch

    m = small().eval()
    prompts = [torch.randint(0, 300, (n,)).tolist() for n in (3, 10, 6, 1)]
    batched = generate_batch(m, prompts, 8, temperature=0, stop_id=7, vocab_size=300)
    for p, got in zip(prompts, batched):
        assert got == generate(m, p, 8, temperature=0, stop={7}, vocab_size=300)


def test_generate_batch_prefills_a_repeated_prompt_once_and_each_row_continues_it():
    """Groups of repeated prompts (as RL asks for them) share one prefill; each row still gets
    its own prompt's continuation (greedy rows equal `generate` on that prompt alone, the short
    prompt's rows among the long one's), and sampling stays seeded."""
    from lmforge.train.sample import generate, generate_batch

    m = small().eval()
    p, q = torch.randint(0, 300, (9,)).tolist(), torch.randint(0, 300, (2,)).tolist()
    rows = [p, p, q, p, q]
    greedy = generate_batch(m, rows, 6, temperature=0, vocab_size=300)
    assert greedy == [generate(m, r, 6, temperature=0, vocab_size=300) for r in rows]
    g = torch.Generator().manual_seed(3)
    sampled = generate_batch(m, [p] * 64 + [q] * 64, 5, temperature=1.0, generator=g, vocab_size=300)
    assert len({tuple(s) for s in sampled[:64]}) > 1 and all(len(s) == 5 for s in sampled)
    again = generate_batch(m, [p] * 64 + [q] * 64, 5, temperature=1.0, generator=torch.Generator().manual_seed(3), vocab_size=300)
    assert again == sampled  # seeded


@pytest.mark.parametrize("shared_limit", [512, 12])  # 12: the rows' cache is unshared mid-generation
def test_generate_batch_shares_a_group_prompt_and_each_row_equals_generate(monkeypatch, shared_limit):
    """RL's shape (each prompt's rows in a run of equal length) keeps every prompt's keys once
    (KVCache.share): greedy rows still equal `generate` on their prompt alone, left padding and a
    stop id included, before and after the cache goes back to one sequence per row."""
    from lmforge.train import sample
    from lmforge.train.sample import generate, generate_batch

    monkeypatch.setattr(sample, "SHARED_NEW_POSITIONS", shared_limit)
    m = small().eval()
    p, q = torch.randint(0, 300, (9,)).tolist(), torch.randint(0, 300, (2,)).tolist()
    rows = [p] * 4 + [q] * 4
    greedy = generate_batch(m, rows, 10, temperature=0, vocab_size=300)
    assert greedy == [generate(m, r, 10, temperature=0, vocab_size=300) for r in rows]
    assert generate_batch(m, [q] * 4, 10, temperature=0, vocab_size=300) == greedy[4:]  # one prompt: no padding
    stop = greedy[0][3]
    assert generate_batch(m, rows, 10, temperature=0, stop_id=stop, vocab_size=300)[0] == greedy[0][:4]
    # sampled rows of one group differ from each other and follow the seed
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    sampled = generate_batch(m, rows, 10, temperature=1.0, generator=g(), vocab_size=300)
    assert len({tuple(s) for s in sampled[:4]}) == 4
    assert sampled == generate_batch(m, rows, 10, temperature=1.0, generator=g(), vocab_size=300)


def test_sample_draws_the_inverse_cdf_id_and_never_a_zero_probability_one():
    """The two-level inverse CDF picks the id a float64 CDF picks (all but draws within float
    rounding of a boundary), never a padded id past V, never one cut by top-k."""
    from lmforge.train.sample import _sample

    torch.manual_seed(0)
    logits = torch.randn(512, 300) * 3
    got = _sample(logits, 1.0, None, torch.Generator().manual_seed(1))
    u = 1.0 - torch.rand(512, 1, generator=torch.Generator().manual_seed(1)).double()
    cdf = torch.softmax(logits.double(), -1).cumsum(-1)
    want = torch.searchsorted(cdf, u * cdf[:, -1:]).squeeze(1)
    assert (got == want).float().mean() > 0.99 and int(got.max()) < 300
    cut = _sample(logits, 0.7, 5, torch.Generator().manual_seed(2))
    top5 = logits.topk(5, -1).indices
    assert (top5 == cut[:, None]).any(-1).all()


def test_generate_batch_samples_from_the_softmax():
    """Inverse-CDF sampling: 20,000 draws of one next token match the model's probabilities to
    sampling noise (total variation ~0.05 expected at 300 ids; a biased sampler shows far more)."""
    from lmforge.train.sample import generate_batch

    m = small().eval()
    out = generate_batch(m, [[5, 6, 7]] * 20000, 1, temperature=1.0, generator=torch.Generator().manual_seed(0), vocab_size=300)
    freq = torch.bincount(torch.tensor([o[0] for o in out]), minlength=300).float() / 20000
    with torch.no_grad():
        p = torch.softmax(m(torch.tensor([[5, 6, 7]]))[0][0, -1, :300].float(), -1)
    assert float((freq - p).abs().sum() / 2) < 0.08
    assert len(freq) == 300  # never a padded id
