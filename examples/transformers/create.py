"""Create a tiny Hugging Face text classifier (random weights, built from a config: no
download from any hub) in ``model/`` next to this file, or in FOLDER.

    python examples/transformers/create.py [FOLDER]

A one-layer BERT (hidden size 32) with a WordPiece vocabulary written here, labels
NEGATIVE / POSITIVE, saved with ``save_pretrained`` (config.json, model.safetensors,
tokenizer files). ``build`` also makes the other tasks' models the tests serve: a
token classifier, a bare encoder (feature extraction) and a GPT-2 causal LM.
"""

from __future__ import annotations

import inspect
import sys
import tempfile
from pathlib import Path

WORDS = [
    *("the", "a", "an", "is", "was", "not", "very", "good", "bad", "great", "awful"),
    *("movie", "film", "book", "cat", "dog", "sat", "on", "mat", "hello", "world"),
    *("paris", "london", "i", "love", "hate", "it", "this", "that", "and", "or"),
    *("##s", "##ed", "##ing"),
]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
KINDS = ("classifier", "tagger", "encoder", "generator")


def tokenizer():  # type: ignore[no-untyped-def]
    """A WordPiece tokenizer over WORDS (transformers 5 takes the vocabulary as a mapping,
    4 as a vocab.txt file)."""
    from transformers import BertTokenizerFast

    tokens = [*SPECIALS, *WORDS]
    if "vocab_file" not in inspect.signature(BertTokenizerFast.__init__).parameters:
        return BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, model_max_length=64)
    with tempfile.TemporaryDirectory() as scratch:
        vocab = Path(scratch) / "vocab.txt"
        vocab.write_text("\n".join(tokens) + "\n", encoding="utf-8")
        return BertTokenizerFast(vocab_file=str(vocab), model_max_length=64)


def build(folder: Path, kind: str = "classifier", seed: int = 0) -> Path:
    """Save a tiny ``kind`` model (one of KINDS) and its tokenizer into ``folder``."""
    import torch
    import transformers

    torch.manual_seed(seed)
    tok = tokenizer()
    size = len(SPECIALS) + len(WORDS)
    common = dict(
        vocab_size=size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=64, initializer_range=0.5,
    )  # fmt: skip
    model: object
    if kind == "classifier":
        labels = {0: "NEGATIVE", 1: "POSITIVE"}
        config = transformers.BertConfig(
            **common, num_labels=2, id2label=labels, label2id={v: k for k, v in labels.items()}
        )
        model = transformers.BertForSequenceClassification(config)
    elif kind == "tagger":
        labels = {0: "O", 1: "B-LOC", 2: "I-LOC"}
        config = transformers.BertConfig(
            **common, num_labels=3, id2label=labels, label2id={v: k for k, v in labels.items()}
        )
        model = transformers.BertForTokenClassification(config)
    elif kind == "encoder":
        model = transformers.BertModel(transformers.BertConfig(**common))
    elif kind == "generator":
        sep = SPECIALS.index("[SEP]")
        config = transformers.GPT2Config(
            vocab_size=size, n_embd=32, n_layer=1, n_head=2, n_positions=64, initializer_range=0.5,
            bos_token_id=sep, eos_token_id=sep, pad_token_id=SPECIALS.index("[PAD]"),
        )  # fmt: skip
        model = transformers.GPT2LMHeadModel(config)
        model.generation_config.do_sample = False  # greedy (the pipeline samples by default)
    else:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    model.save_pretrained(str(folder))  # type: ignore[attr-defined]
    tok.save_pretrained(str(folder))
    return folder


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent / "model"
    build(folder)
    print(f"wrote {folder}")


if __name__ == "__main__":
    main()
