"""An offline, deterministic character-level corpus: the English help text that ships with Python.

Python's standard library holds the text of its own interactive help (``help("if")``,
``help("with")``, ...) in :mod:`pydoc_data.topics`: about 460,000 characters of technical English
on the language itself. It is on every machine that has Python, needs no download and no
licence beyond Python's, and loads in milliseconds, which is why the transformer chapters train on
it. (The text changes a little between Python releases; the vocabulary below does not.)

The vocabulary is **fixed**, not read off the text: the 95 printable ASCII characters and the
newline, plus one symbol for everything else (curly quotes, dashes, a handful of others). A
fixed vocabulary keeps the model's shape the same on every Python version, and a small one keeps
the embedding and output layers small enough to train in seconds on a CPU.
"""

from __future__ import annotations

import torch

from companion import _checks

#: The fixed vocabulary: newline, the 95 printable ASCII characters, and "\x00" for any other.
VOCAB: str = "\x00\n" + "".join(chr(c) for c in range(32, 127))
_INDEX = {ch: i for i, ch in enumerate(VOCAB)}
UNKNOWN = 0


def python_help_text() -> str:
    """The text of Python's interactive help topics, in sorted topic order, joined by blank lines."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def encode(text: str) -> torch.Tensor:
    """Characters to token ids (int64) in :data:`VOCAB`; characters outside it map to ``UNKNOWN``."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return torch.tensor([_INDEX.get(ch, UNKNOWN) for ch in text], dtype=torch.long)


def decode(ids: torch.Tensor) -> str:
    """Token ids back to characters (``UNKNOWN`` becomes ``"?"``)."""
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        raise TypeError("ids must be an int64 torch.Tensor")
    if ids.numel() and (ids.min() < 0 or ids.max() >= len(VOCAB)):
        raise ValueError(f"ids must lie in [0, {len(VOCAB)}), got {int(ids.min())}..{int(ids.max())}")
    return "".join("?" if i == UNKNOWN else VOCAB[i] for i in ids.tolist())


def train_val_tokens(val_fraction: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """The encoded help text split into a leading training part and a trailing validation part.

    The split is by position (the last ``val_fraction`` of the text), not random, so that no
    window of the validation text overlaps the training text.
    """
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, float) or not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be a float in (0, 1), got {val_fraction!r}")
    ids = encode(python_help_text())
    cut = int(len(ids) * (1.0 - val_fraction))
    return ids[:cut], ids[cut:]


def random_windows(
    tokens: torch.Tensor, batch_size: int, seq_len: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random windows for next-token prediction.

    Parameters
    ----------
    tokens : torch.Tensor
        1-D int64 token ids.
    batch_size, seq_len : int
        The batch is ``(batch_size, seq_len)``.
    generator : torch.Generator
        Chooses the window starts, so that a seeded generator gives the same batches every run.

    Returns
    -------
    inputs, targets : torch.Tensor
        ``targets[:, t] == inputs[:, t + 1]``: each position predicts the next character.
    """
    if not isinstance(tokens, torch.Tensor) or tokens.dtype != torch.long or tokens.ndim != 1:
        raise TypeError("tokens must be a 1-D int64 torch.Tensor")
    batch_size = _checks.positive_int("batch_size", batch_size)
    seq_len = _checks.positive_int("seq_len", seq_len)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    if len(tokens) < seq_len + 2:
        raise ValueError(f"tokens holds {len(tokens)} ids, fewer than seq_len + 2 = {seq_len + 2}")
    starts = torch.randint(0, len(tokens) - seq_len - 1, (batch_size,), generator=generator)
    offsets = torch.arange(seq_len + 1)
    windows = tokens[starts[:, None] + offsets]
    return windows[:, :-1], windows[:, 1:]


__all__ = ["VOCAB", "UNKNOWN", "python_help_text", "encode", "decode", "train_val_tokens", "random_windows"]
