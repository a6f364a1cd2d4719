"""The scoring model in torch, for LoRA fine-tuning: load it from its GGUF, wrap it, score tokens.

transformers rebuilds the model from the same GGUF file llama.cpp serves (dequantised to fp32,
so the tuned adapter applies to the weights llama.cpp quantised). Candidate scores here are
those of the llama.cpp backend: log-probabilities of the candidate's tokens after the prompt's
tokens, reduced per candidate by the mean (or sum).

Imports torch, transformers and peft only inside functions: importing this module is cheap.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch
    from peft import PeftModel
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class TokenExample:
    """One scored text as token ids: `context` (prefix + state prompt), then `target` (a candidate)."""

    context: tuple[int, ...]
    target: tuple[int, ...]


def load_gguf_model(gguf_path: Path) -> "PreTrainedModel":
    """The GGUF's model in transformers, dequantised to fp32, in eval mode (43-62 s, ~3.3 GB)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32
    )
    return model.eval()


def target_logprobs(model: "PreTrainedModel | PeftModel", examples: Sequence[TokenExample]) -> list["torch.Tensor"]:
    """log p(target token | everything before it) for every target token of each example.

    The tokens all contexts share (the template's prefix: ~70% of an ALFWorld example) go
    through the model once, and their keys/values are repeated for the batch; gradients flow
    through them as through any activation. The rest is one right-padded forward pass, and the
    vocabulary projection (262k columns) is applied only to the rows that predict target tokens.
    """
    import torch
    from transformers import DynamicCache

    causal_lm = _causal_lm(model)
    # Leave every context at least its last token: its output predicts the first target token.
    shared = min(_common_prefix_length([ex.context for ex in examples]), min(len(ex.context) for ex in examples) - 1)
    cache = DynamicCache(config=causal_lm.config)
    if shared:
        causal_lm.model(input_ids=torch.tensor([examples[0].context[:shared]]), past_key_values=cache, use_cache=True)
        cache.batch_repeat_interleave(len(examples))
    # Inputs: the unshared context and all but the last target token (the last one predicts nothing).
    inputs = [list(ex.context[shared:]) + list(ex.target[:-1]) for ex in examples]
    width = max(len(ids) for ids in inputs)
    input_ids = torch.zeros((len(inputs), width), dtype=torch.long)
    attention = torch.ones((len(inputs), shared + width), dtype=torch.long)
    for row, ids in enumerate(inputs):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, shared + len(ids):] = 0
    hidden = causal_lm.model(input_ids=input_ids, attention_mask=attention, past_key_values=cache,
                             use_cache=True).last_hidden_state
    rows, cols, targets = [], [], []
    for row, ex in enumerate(examples):
        first = len(ex.context) - 1 - shared  # the last context token predicts the first target token
        rows += [row] * len(ex.target)
        cols += range(first, first + len(ex.target))
        targets += ex.target
    logits = causal_lm.lm_head(hidden[rows, cols]).float()
    logprobs = torch.log_softmax(logits, dim=-1).gather(1, torch.tensor(targets)[:, None])[:, 0]
    return list(torch.split(logprobs, [len(ex.target) for ex in examples]))


def candidate_scores(
    model: "PreTrainedModel | PeftModel", examples: Sequence[TokenExample], normalisation: str = "mean"
) -> list[float]:
    """Each example's target scored as the llama.cpp backend does (mean or sum of its token log-probs)."""
    import torch

    with torch.no_grad():
        per_token = target_logprobs(model, examples)
    reduce = torch.mean if normalisation == "mean" else torch.sum
    return [float(reduce(lp.double())) for lp in per_token]


def adapter_disabled(model: "PreTrainedModel | PeftModel") -> contextlib.AbstractContextManager:
    """Context in which a peft model computes as its base model (a no-op for a plain model)."""
    from peft import PeftModel

    return model.disable_adapter() if isinstance(model, PeftModel) else contextlib.nullcontext()


def _causal_lm(model: "PreTrainedModel | PeftModel") -> "PreTrainedModel":
    """The transformers causal LM inside a peft wrapper (LoRA layers injected), or the model itself."""
    from peft import PeftModel

    return model.get_base_model() if isinstance(model, PeftModel) else model


def _common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    first = sequences[0]
    length = min(len(seq) for seq in sequences)
    for seq in sequences[1:]:
        length = next((i for i in range(length) if seq[i] != first[i]), length)
    return length
