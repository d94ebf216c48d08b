"""A small decoder-only transformer whose normalization is an argument.

The model is the GPT recipe at toy scale: token and position embeddings add up to the
**residual stream** :math:`x_0`; each of ``n_layers`` blocks adds a causal self-attention and an
MLP to it; a linear head reads the next-token logits off the last stream. What the chapters vary
is where the norm :math:`N` sits and which one it is:

``placement="post"`` (Vaswani et al. 2017; BERT)
    :math:`x \\leftarrow N(x + \\operatorname{Attn}(x))`, then :math:`x \\leftarrow N(x + \\operatorname{MLP}(x))`:
    the norm sits *on* the stream, so the stream is renormalized after every sub-layer.
``placement="pre"`` (GPT-2 and most models since; Xiong et al. 2020)
    :math:`x \\leftarrow x + \\operatorname{Attn}(N(x))`, then :math:`x \\leftarrow x + \\operatorname{MLP}(N(x))`:
    the norm sits on each *branch*; the stream itself is a plain sum that nothing rescales.
``final_norm=True`` (pre-LN only)
    one more norm between the last stream and the head, as GPT-2 and LLaMA have.

``norm`` is ``"layernorm"``, ``"rmsnorm"`` (Zhang & Sennrich 2019), ``"dyt"`` (:class:`companion.dyt.DyT`),
``"batchnorm"`` (statistics over every position of every sequence in the batch,
:class:`SequenceBatchNorm`) or ``"none"``. ``qk_norm=True`` applies a layer norm over each head's
features to the queries and the keys before their dot product (Dehghani et al. 2023; Henry et
al. 2020 normalize them to unit length with a learned scale instead).

Attention is written out (scores, causal mask, softmax, weighted sum) rather than fused, so that
its logits can be inspected: set ``record_logits = True`` on a :class:`CausalSelfAttention` and it
keeps the last scores it computed (detached) in ``.logits``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from companion import _checks
from companion.dyt import DyT

NORMS = ("layernorm", "rmsnorm", "dyt", "batchnorm", "none")
PLACEMENTS = ("post", "pre")


class SequenceBatchNorm(nn.Module):
    """Batch norm for a ``(batch, time, features)`` stream: one mean and variance per feature,
    taken over every position of every sequence of the batch (``torch.nn.BatchNorm1d`` on the
    ``batch * time`` rows), with running statistics for eval mode."""

    def __init__(self, num_features: int, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(_checks.positive_int("num_features", num_features), momentum=momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"x must be (batch, time, features), got shape {tuple(x.shape)}")
        return self.bn(x.reshape(-1, x.shape[-1])).reshape(x.shape)


def make_norm(kind: str, num_features: int) -> nn.Module:
    """The normalization layer called ``kind`` (one of :data:`NORMS`) over the last dimension."""
    if kind not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")
    num_features = _checks.positive_int("num_features", num_features)
    if kind == "layernorm":
        return nn.LayerNorm(num_features, eps=1e-5)
    if kind == "rmsnorm":
        return nn.RMSNorm(num_features, eps=1e-5)
    if kind == "dyt":
        return DyT(num_features)
    if kind == "batchnorm":
        return SequenceBatchNorm(num_features)
    return nn.Identity()


def causal_mask(seq_len: int) -> torch.Tensor:
    """Boolean ``(seq_len, seq_len)`` mask, True where position ``t`` may attend to ``s`` (``s <= t``)."""
    seq_len = _checks.positive_int("seq_len", seq_len)
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention,

    .. math::

        \\operatorname{Attn}(x) = \\operatorname{softmax}\\Big(\\frac{q k^\\top}{\\sqrt{d_h}} + M\\Big) v \\, W_o,
        \\qquad [q, k, v] = x W_{qkv} + b_{qkv},

    per head of :math:`d_h` = ``d_model // n_heads`` features, with :math:`M = -\\infty` above the
    diagonal. The parameters are laid out as ``torch.nn.MultiheadAttention``'s (``qkv`` holds
    ``in_proj_weight`` and ``in_proj_bias``, ``out`` is ``out_proj``). With ``qk_norm=True``,
    :math:`q` and :math:`k` pass through a layer norm over each head's :math:`d_h` features first,
    which bounds every logit by :math:`\\sqrt{d_h}` times the product of the two norms' gains.
    """

    def __init__(self, d_model: int, n_heads: int, qk_norm: bool = False) -> None:
        super().__init__()
        d_model = _checks.positive_int("d_model", d_model)
        n_heads = _checks.positive_int("n_heads", n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.qk_norm = _checks.boolean("qk_norm", qk_norm)
        self.q_norm = nn.LayerNorm(self.head_dim) if self.qk_norm else nn.Identity()
        self.k_norm = nn.LayerNorm(self.head_dim) if self.qk_norm else nn.Identity()
        self.record_logits = False
        self.logits: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, time, d_model = x.shape
        q, k, v = self.qkv(x).split(d_model, dim=-1)
        q, k, v = (t.reshape(batch, time, self.n_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        q, k = self.q_norm(q), self.k_norm(k)
        scores = q @ k.transpose(-2, -1) / math.sqrt(self.head_dim)  # (batch, heads, time, time)
        scores = scores.masked_fill(~causal_mask(time), float("-inf"))
        if self.record_logits:
            self.logits = scores.detach()
        heads = scores.softmax(dim=-1) @ v
        return self.out(heads.transpose(1, 2).reshape(batch, time, d_model))


class Block(nn.Module):
    """One transformer block: attention and a GELU MLP (``mlp_ratio * d_model`` hidden units), each
    wrapped in a residual connection, with the two norms placed as ``placement`` says."""

    def __init__(
        self, d_model: int, n_heads: int, norm: str = "layernorm", placement: str = "pre",
        qk_norm: bool = False, mlp_ratio: int = 4,
    ) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        self.placement = placement
        hidden = _checks.positive_int("mlp_ratio", mlp_ratio) * d_model
        self.attn = CausalSelfAttention(d_model, n_heads, qk_norm=qk_norm)
        self.mlp = nn.Sequential(nn.Linear(d_model, hidden), nn.GELU(), nn.Linear(hidden, d_model))
        self.norm1, self.norm2 = make_norm(norm, d_model), make_norm(norm, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.placement == "pre":
            x = x + self.attn(self.norm1(x))
            return x + self.mlp(self.norm2(x))
        x = self.norm1(x + self.attn(x))
        return self.norm2(x + self.mlp(x))


class DecoderTransformer(nn.Module):
    """A decoder-only (GPT-style) language model with a configurable norm.

    Parameters
    ----------
    vocab_size : int
        Number of token ids.
    d_model, n_layers, n_heads : int
        Width of the residual stream, number of blocks, attention heads per block.
    max_len : int
        Longest sequence (size of the learned position embedding).
    norm : str
        One of :data:`NORMS`.
    placement : {"post", "pre"}
        Norm on the stream after each residual sum, or on each branch before it.
    final_norm : bool
        A norm between the last block and the head; only with ``placement="pre"``.
    qk_norm : bool
        Layer norm on queries and keys in every attention (:class:`CausalSelfAttention`).

    All layers keep PyTorch's default initialization (embeddings :math:`\\mathcal{N}(0, 1)`).
    """

    def __init__(
        self, vocab_size: int, d_model: int = 64, n_layers: int = 4, n_heads: int = 4, max_len: int = 64,
        norm: str = "layernorm", placement: str = "pre", final_norm: bool = True, qk_norm: bool = False,
    ) -> None:
        super().__init__()
        self.vocab_size = _checks.positive_int("vocab_size", vocab_size)
        self.max_len = _checks.positive_int("max_len", max_len)
        n_layers = _checks.positive_int("n_layers", n_layers)
        if _checks.boolean("final_norm", final_norm) and placement == "post":
            raise ValueError("final_norm=True needs placement='pre': post-LN already ends on a norm")
        self.token = nn.Embedding(self.vocab_size, d_model)
        self.position = nn.Embedding(self.max_len, d_model)
        self.blocks = nn.ModuleList(
            Block(d_model, n_heads, norm=norm, placement=placement, qk_norm=qk_norm) for _ in range(n_layers)
        )
        self.final = make_norm(norm, d_model) if final_norm else nn.Identity()
        self.head = nn.Linear(d_model, self.vocab_size)

    def forward(self, ids: torch.Tensor, return_stream: bool = False):
        """Logits ``(batch, time, vocab_size)`` for token ids ``(batch, time)``.

        With ``return_stream=True`` also the list of residual streams: after the embedding, after
        each block, and the head's input (after the final norm, if any).
        """
        if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long or ids.ndim != 2:
            raise TypeError("ids must be a 2-D (batch, time) int64 torch.Tensor")
        if ids.shape[1] > self.max_len:
            raise ValueError(f"sequence of {ids.shape[1]} tokens is longer than max_len={self.max_len}")
        if ids.numel() and (ids.min() < 0 or ids.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size})")
        x = self.token(ids) + self.position(torch.arange(ids.shape[1]))
        stream = [x]
        for block in self.blocks:
            x = block(x)
            stream.append(x)
        x = self.final(x)
        logits = self.head(x)
        return (logits, stream + [x]) if return_stream else logits


def copy_encoder_layer(block: Block, layer: nn.TransformerEncoderLayer) -> None:
    """Load the weights of a ``torch.nn.TransformerEncoderLayer`` (``activation="gelu"``,
    ``dim_feedforward = 4 * d_model``) into ``block``, whose parameters have the same layout."""
    if not isinstance(block, Block) or not isinstance(layer, nn.TransformerEncoderLayer):
        raise TypeError("copy_encoder_layer(block, layer) needs a Block and a torch.nn.TransformerEncoderLayer")
    pairs = {
        "attn.qkv": (layer.self_attn.in_proj_weight, layer.self_attn.in_proj_bias),
        "attn.out": (layer.self_attn.out_proj.weight, layer.self_attn.out_proj.bias),
        "mlp.0": (layer.linear1.weight, layer.linear1.bias), "mlp.2": (layer.linear2.weight, layer.linear2.bias),
        "norm1": (layer.norm1.weight, layer.norm1.bias), "norm2": (layer.norm2.weight, layer.norm2.bias),
    }
    state = {}
    for name, (weight, bias) in pairs.items():
        state[f"{name}.weight"], state[f"{name}.bias"] = weight.detach().clone(), bias.detach().clone()
    block.load_state_dict(state)


def attentions(model: nn.Module) -> list[CausalSelfAttention]:
    """Every :class:`CausalSelfAttention` of ``model``, in order."""
    return [m for m in model.modules() if isinstance(m, CausalSelfAttention)]


def logit_stats(model: nn.Module) -> tuple[float, float]:
    """The largest attention logit and the mean attention entropy (nats) over the heads, queries
    and layers of the last forward pass; call after a forward with ``record_logits`` set."""
    logits = [a.logits for a in attentions(model)]
    if not logits or any(t is None for t in logits):
        raise RuntimeError("no recorded logits: set record_logits = True on the attentions and run a forward")
    scores = torch.stack(logits)
    p = scores.softmax(dim=-1)
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    return float(scores[torch.isfinite(scores)].max()), float(entropy.mean())


def warmup_factor(step: int, warmup: int) -> float:
    """Learning-rate multiplier of a linear warm-up: ``(step + 1) / warmup`` for the first
    ``warmup`` steps, then 1 (``warmup=0``: no warm-up)."""
    return 1.0 if step >= warmup else (step + 1) / warmup


def train_language_model(
    model: nn.Module,
    batches: Callable[[], tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    lr: float,
    warmup: int = 0,
    on_step: Callable[[int, nn.Module], None] | None = None,
) -> np.ndarray:
    """Train ``model`` with Adam on next-token cross-entropy; return the loss of every step.

    Parameters
    ----------
    batches : callable
        Returns the next ``(inputs, targets)`` pair of int64 ``(batch, time)`` tensors.
    steps : int
        Number of optimizer steps.
    lr : float
        Peak learning rate, reached after ``warmup`` steps of linear warm-up (then constant).
    on_step : callable, optional
        Called as ``on_step(step, model)`` after each forward pass, before the update (for
        recording, e.g. :func:`logit_stats`).

    Returns
    -------
    numpy.ndarray
        ``steps`` losses; once a loss is not finite, training stops and the rest are NaN.
    """
    steps = _checks.positive_int("steps", steps)
    lr = _checks.positive_float("lr", lr)
    warmup = _checks.non_negative_int("warmup", warmup)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: warmup_factor(step, warmup))
    losses = np.full(steps, np.nan)
    model.train()
    for step in range(steps):
        inputs, targets = batches()
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        if on_step is not None:
            on_step(step, model)
        if not torch.isfinite(loss):
            break
        losses[step] = loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return losses


@torch.no_grad()
def evaluate_loss(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean next-token cross-entropy of ``model`` on one batch, in the model's current mode."""
    logits = model(inputs)
    return float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)))


__all__ = [
    "NORMS", "PLACEMENTS", "SequenceBatchNorm", "make_norm", "causal_mask", "CausalSelfAttention", "Block",
    "DecoderTransformer", "copy_encoder_layer", "attentions", "logit_stats", "warmup_factor", "train_language_model", "evaluate_loss",
]
