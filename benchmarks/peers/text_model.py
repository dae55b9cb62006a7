"""The model of the text benchmark: a BERT-mini-sized text classifier (4 layers, hidden 256,
4 heads; random weights from a seed, built from a config: nothing is downloaded) with the
WordPiece tokenizer of examples/transformers/create.py, saved with ``save_pretrained``.

    python peers/text_model.py OUT_FOLDER
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CREATE = Path(__file__).resolve().parents[2] / "examples" / "transformers" / "create.py"


def main(out: str) -> None:
    import torch
    import transformers

    spec = importlib.util.spec_from_file_location("create", CREATE)
    assert spec is not None and spec.loader is not None
    create = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(create)
    torch.manual_seed(0)
    tokenizer = create.tokenizer()
    labels = {0: "NEGATIVE", 1: "POSITIVE"}
    config = transformers.BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=4,
        intermediate_size=1024,
        max_position_embeddings=128,
        num_labels=2,
        id2label=labels,
        label2id={v: k for k, v in labels.items()},
    )
    model = transformers.BertForSequenceClassification(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


if __name__ == "__main__":
    main(sys.argv[1])
