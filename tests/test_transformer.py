"""companion.transformer, companion.dyt and companion.text: certified against PyTorch where they
overlap, and their own properties (causality, the QK-norm bound, DyT's formula) checked."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from companion.dyt import DyT
from companion.text import VOCAB, decode, encode, python_help_text, random_windows, train_val_tokens
from companion.transformer import (
    Block,
    CausalSelfAttention,
    DecoderTransformer,
    SequenceBatchNorm,
    attentions,
    causal_mask,
    copy_encoder_layer,
    logit_stats,
    make_norm,
    train_language_model,
    warmup_factor,
)

D, HEADS, T = 32, 4, 10


@pytest.mark.parametrize("norm_first", [True, False])
def test_block_matches_torch_encoder_layer_with_causal_mask(norm_first):
    torch.manual_seed(0)
    ref = nn.TransformerEncoderLayer(D, HEADS, 4 * D, dropout=0.0, activation="gelu", batch_first=True,
                                     norm_first=norm_first)
    with torch.no_grad():  # random affine parameters of the norms, so that they are really copied
        for norm in (ref.norm1, ref.norm2):
            norm.weight.normal_(1.0, 0.3), norm.bias.normal_(0.0, 0.3)
    block = Block(D, HEADS, placement="pre" if norm_first else "post")
    copy_encoder_layer(block, ref)
    x = torch.randn(3, T, D)
    x_ref, x_ours = x.clone().requires_grad_(), x.clone().requires_grad_()
    mask = nn.Transformer.generate_square_subsequent_mask(T)
    y_ref, y_ours = ref(x_ref, src_mask=mask, is_causal=True), block(x_ours)
    torch.testing.assert_close(y_ours, y_ref, rtol=0, atol=1e-5)
    upstream = torch.randn_like(y_ref)
    (y_ref * upstream).sum().backward()
    (y_ours * upstream).sum().backward()
    torch.testing.assert_close(x_ours.grad, x_ref.grad, rtol=0, atol=1e-5)
    torch.testing.assert_close(block.mlp[0].weight.grad, ref.linear1.weight.grad, rtol=0, atol=1e-4)


def test_attention_matches_scaled_dot_product_attention():
    torch.manual_seed(1)
    attn = CausalSelfAttention(D, HEADS)
    x = torch.randn(2, T, D)
    q, k, v = attn.qkv(x).split(D, dim=-1)
    q, k, v = (t.reshape(2, T, HEADS, D // HEADS).transpose(1, 2) for t in (q, k, v))
    fused = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    expected = attn.out(fused.transpose(1, 2).reshape(2, T, D))
    torch.testing.assert_close(attn(x), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm", ["layernorm", "rmsnorm", "dyt", "none"])
@pytest.mark.parametrize("placement", ["pre", "post"])
def test_model_is_causal(norm, placement):
    torch.manual_seed(2)
    model = DecoderTransformer(len(VOCAB), D, 2, HEADS, T, norm=norm, placement=placement,
                               final_norm=placement == "pre")
    ids = torch.randint(0, len(VOCAB), (2, T))
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % len(VOCAB)
    torch.testing.assert_close(model(ids)[:, :-1], model(changed)[:, :-1], rtol=0, atol=0)


def test_batchnorm_in_training_mode_leaks_the_future_and_eval_mode_does_not():
    torch.manual_seed(3)
    model = DecoderTransformer(len(VOCAB), D, 2, HEADS, T, norm="batchnorm")
    ids = torch.randint(0, len(VOCAB), (4, T))
    changed = ids.clone()
    changed[:, -1] = (changed[:, -1] + 1) % len(VOCAB)
    assert (model(ids)[:, 0] - model(changed)[:, 0]).abs().max() > 1e-4
    model.eval()
    torch.testing.assert_close(model(ids)[:, :-1], model(changed)[:, :-1], rtol=0, atol=0)


def test_stream_has_one_entry_per_block_plus_embedding_and_head_input():
    model = DecoderTransformer(len(VOCAB), D, 3, HEADS, T, final_norm=True)
    logits, stream = model(torch.zeros(2, T, dtype=torch.long), return_stream=True)
    assert logits.shape == (2, T, len(VOCAB)) and len(stream) == 5
    torch.testing.assert_close(stream[-1], model.final(stream[-2]))


def test_rmsnorm_option_is_torchs_rmsnorm():
    norm = make_norm("rmsnorm", D)
    x = torch.randn(5, D)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)
    torch.testing.assert_close(norm(x), expected, rtol=0, atol=1e-6)


def test_sequence_batchnorm_normalizes_over_batch_and_time():
    bn = SequenceBatchNorm(D)
    y = bn(3 + 2 * torch.randn(4, T, D))
    torch.testing.assert_close(y.mean(dim=(0, 1)), torch.zeros(D), rtol=0, atol=1e-5)
    torch.testing.assert_close(y.var(dim=(0, 1), correction=0), torch.ones(D), rtol=0, atol=1e-3)


def test_qk_norm_bounds_every_logit_by_sqrt_head_dim():
    torch.manual_seed(4)
    attn = CausalSelfAttention(D, HEADS, qk_norm=True)
    with torch.no_grad():
        attn.qkv.weight.mul_(100.0)
    attn.record_logits = True
    attn(torch.randn(2, T, D))
    finite = attn.logits[torch.isfinite(attn.logits)]
    assert finite.abs().max() <= math.sqrt(D // HEADS) + 1e-4
    plain = CausalSelfAttention(D, HEADS)
    plain.load_state_dict(attn.state_dict(), strict=False)
    plain.record_logits = True
    plain(torch.randn(2, T, D))
    assert plain.logits[torch.isfinite(plain.logits)].abs().max() > 10 * math.sqrt(D // HEADS)


def test_logit_stats_reads_the_recorded_logits():
    model = DecoderTransformer(len(VOCAB), D, 2, HEADS, T)
    with pytest.raises(RuntimeError, match="record_logits"):
        logit_stats(model)
    for attn in attentions(model):
        attn.record_logits = True
    model(torch.zeros(1, T, dtype=torch.long))
    max_logit, entropy = logit_stats(model)
    assert 0 < entropy < math.log(T) and np.isfinite(max_logit)


def test_dyt_formula_gradients_and_learnable_alpha():
    dyt = DyT(D, alpha0=0.7)
    with torch.no_grad():
        dyt.weight.normal_(), dyt.bias.normal_()
    x = torch.randn(3, T, D, dtype=torch.float64, requires_grad=True)
    dyt.double()
    torch.testing.assert_close(dyt(x), dyt.weight * torch.tanh(0.7 * x) + dyt.bias)
    assert torch.autograd.gradcheck(dyt, (x,))
    dyt(x).sum().backward()
    assert dyt.alpha.grad is not None and dyt.alpha.shape == ()


def test_warmup_factor_and_divergence_stop():
    assert [warmup_factor(s, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert warmup_factor(0, 0) == 1.0
    model = DecoderTransformer(len(VOCAB), D, 1, HEADS, T)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    ids = torch.zeros(2, T, dtype=torch.long)
    losses = train_language_model(model, lambda: (ids, ids), steps=3, lr=1e-3)
    assert np.isnan(losses).all()


def test_text_corpus_is_fixed_vocabulary_and_deterministic():
    text = python_help_text()
    assert len(VOCAB) == 97 and len(text) > 100_000
    assert decode(encode("def f(x):\n")) == "def f(x):\n"
    assert decode(encode("“quoted”")) == "?quoted?"
    train, val = train_val_tokens(0.1)
    assert len(train) + len(val) == len(text)
    a = random_windows(train, 4, 16, torch.Generator().manual_seed(0))
    b = random_windows(train, 4, 16, torch.Generator().manual_seed(0))
    assert torch.equal(a[0], b[0]) and torch.equal(a[0][:, 1:], a[1][:, :-1])


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: DecoderTransformer(97, norm="batch"), "norm must be one of"),
        (lambda: DecoderTransformer(97, placement="middle", final_norm=False), "placement must be one of"),
        (lambda: DecoderTransformer(97, placement="post", final_norm=True), "final_norm=True needs"),
        (lambda: DecoderTransformer(97, d_model=30, n_heads=4), "divisible by n_heads"),
        (lambda: DecoderTransformer(0), "vocab_size must be a positive int"),
        (lambda: DyT(8, alpha0=0.0), "alpha0 must be a positive float"),
        (lambda: causal_mask(0), "seq_len must be a positive int"),
        (lambda: train_val_tokens(1.5), "val_fraction"),
    ],
)
def test_bad_arguments_raise_early(build, message):
    with pytest.raises((ValueError, TypeError), match=message):
        build()


def test_bad_inputs_raise_clear_errors():
    model = DecoderTransformer(97, D, 1, HEADS, T)
    with pytest.raises(TypeError, match="int64"):
        model(torch.zeros(2, T))
    with pytest.raises(ValueError, match="longer than max_len"):
        model(torch.zeros(2, T + 1, dtype=torch.long))
    with pytest.raises(ValueError, match="token ids"):
        model(torch.full((2, T), 97, dtype=torch.long))
    with pytest.raises(ValueError, match="last dimension"):
        DyT(8)(torch.randn(3, 7))
    with pytest.raises(TypeError, match="generator"):
        random_windows(encode("abcdefgh" * 10), 2, 4, generator=0)
    with pytest.raises(ValueError, match="ids must lie"):
        decode(torch.tensor([500]))


def test_copy_encoder_layer_refuses_other_modules():
    with pytest.raises(TypeError, match="copy_encoder_layer"):
        copy_encoder_layer(Block(D, HEADS), nn.Linear(D, D))
