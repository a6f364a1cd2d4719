"""Token log-probs of the fine-tuning loss on a tiny random Gemma 3: the shared-prefix pass gives
the same values and LoRA gradients as scoring every example on its own."""

import pytest

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")

from transformers import Gemma3ForCausalLM, Gemma3TextConfig  # noqa: E402

from priorcache.platform.llm.lora_model import TokenExample, adapter_disabled, candidate_scores, target_logprobs  # noqa: E402

PREFIX = (2, 11, 12, 13, 14, 15, 16)
EXAMPLES = [
    TokenExample(PREFIX + (20, 21, 22), (30, 31)),
    TokenExample(PREFIX + (23,), (32, 33, 34)),
    TokenExample(PREFIX + (20, 24, 25, 26, 27), (35,)),
]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    # Sliding-window layers with a window shorter than the texts: the cached prefix must still
    # be attended to exactly as in one pass.
    config = Gemma3TextConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                              num_attention_heads=2, num_key_value_heads=1, head_dim=16, sliding_window=4,
                              layer_types=["sliding_attention", "sliding_attention", "full_attention"])
    lora = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"])
    tuned = peft.get_peft_model(Gemma3ForCausalLM(config).eval(), lora)
    for name, param in tuned.named_parameters():
        if "lora_B" in name:  # peft starts B at zero: make the adapter do something
            torch.nn.init.normal_(param, std=0.5)
    return tuned


def one_by_one(model, examples):
    """Reference: each example alone, full logits, no cache."""
    out = []
    for ex in examples:
        ids = torch.tensor([list(ex.context) + list(ex.target[:-1])])
        logits = model(input_ids=ids).logits[0].float()
        rows = range(len(ex.context) - 1, len(ex.context) - 1 + len(ex.target))
        out.append(torch.log_softmax(logits[list(rows)], dim=-1).gather(1, torch.tensor(ex.target)[:, None])[:, 0])
    return out


def test_shared_prefix_pass_matches_scoring_each_example_alone(model):
    with torch.no_grad():
        batched, reference = target_logprobs(model, EXAMPLES), one_by_one(model, EXAMPLES)
    for got, want in zip(batched, reference):
        assert torch.allclose(got, want, atol=1e-5)


def test_shared_prefix_pass_gives_the_same_lora_gradients(model):
    def grads(logprobs):
        model.zero_grad()
        (-torch.cat(logprobs).mean()).backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}

    batched, reference = grads(target_logprobs(model, EXAMPLES)), grads(one_by_one(model, EXAMPLES))
    assert batched.keys() == reference.keys() and batched
    for name in batched:
        assert torch.allclose(batched[name], reference[name], atol=1e-5), name


def test_scores_are_mean_token_logprobs_and_the_adapter_can_be_switched_off(model):
    tuned = candidate_scores(model, EXAMPLES)
    with adapter_disabled(model):
        base = candidate_scores(model, EXAMPLES)
    with torch.no_grad():
        assert tuned == pytest.approx([float(lp.mean()) for lp in one_by_one(model, EXAMPLES)], abs=1e-5)
    assert max(abs(t - b) for t, b in zip(tuned, base)) > 1e-3
