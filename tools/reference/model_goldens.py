#!/usr/bin/env python3
"""Golden values for the decoder graphs, made with PyTorch + HF transformers (run on the GPU machine).

Writes, for a tiny random Llama-3 (llama3 rope scaling, GQA, tied embeddings) and a tiny random Qwen2
(q/k/v biases, untied head), into OUT/<name>/:
  config.json            hub-style (transformers v4 keys: rope_theta + rope_scaling), as real checkpoints ship
  model.safetensors      the weights, fp32, written by save_pretrained
  goldens.safetensors    inputs and outputs of three cases (fp32 / int64), see CASES below
  goldens.json           generator, versions, seed, case descriptions
Cases:
  ids     input_ids [2,8] -> logits
  embeds  inputs_embeds (soft embeddings: top-4 probability-weighted embedding rows at some positions),
          a custom additive 4-D mask [2,1,8,8] (0 keep / finfo.min block) and non-contiguous
          position_ids -> logits and final normed hidden states
  train   input_ids + labels (-100 ignored) -> loss and the gradient of every parameter
Everything runs in float64 on the CPU for the goldens and is stored as float32 (the TS tests compare
fp32 ORT CPU results against them with atol 1e-4 on logits, rtol 1e-4 on gradients).
Usage: python3 tools/reference/model_goldens.py OUT_DIR
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

SEED = 1234
GENERATOR = "tools/reference/model_goldens.py"

LLAMA = dict(
    architectures=["LlamaForCausalLM"], model_type="llama", vocab_size=256, hidden_size=64,
    intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
    hidden_act="silu", max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
    rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                      original_max_position_embeddings=8192),
    tie_word_embeddings=True, attention_bias=False, mlp_bias=False, initializer_range=0.02,
    bos_token_id=250, eos_token_id=[251, 252], pad_token_id=251, torch_dtype="float32",
)
QWEN2 = dict(
    architectures=["Qwen2ForCausalLM"], model_type="qwen2", vocab_size=256, hidden_size=64,
    intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    hidden_act="silu", max_position_embeddings=4096, rms_norm_eps=1e-6, rope_theta=10000.0, rope_scaling=None,
    tie_word_embeddings=False, use_sliding_window=False, sliding_window=None, max_window_layers=2,
    initializer_range=0.02, bos_token_id=250, eos_token_id=251, torch_dtype="float32",
)


def build(cfg_dict, cls):
    torch.manual_seed(SEED)
    cfg = cls(**{k: v for k, v in cfg_dict.items() if k not in ("architectures", "model_type")})
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    # Spread the weights beyond the tiny init so the goldens exercise every term (norm weights, biases).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    return model


def cases(model, cfg_dict, g):
    V, T, B = cfg_dict["vocab_size"], 8, 2
    model64 = model.double().eval()
    out = {}
    ids = torch.randint(0, V - 8, (B, T), generator=g)
    out["ids.input_ids"] = ids
    with torch.no_grad():
        out["ids.logits"] = model64(input_ids=ids).logits

    # Soft embeddings at positions 3..5 (the latent slots), token embeddings elsewhere.
    W = model64.get_input_embeddings().weight.detach()
    emb = W[ids].clone()
    soft_logits = torch.randn(B, 3, V, generator=g, dtype=torch.float64) * 3
    top = soft_logits.topk(4, dim=-1)
    probs = torch.softmax(top.values, dim=-1)
    emb[:, 3:6] = torch.einsum("bmk,bmkd->bmd", probs, W[top.indices])
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool)).repeat(B, 1, 1)
    keep[0, 6, 4] = False  # a spacer-like hole
    keep[0, 7, 1:3] = False
    keep[1, 5, 0:2] = False
    minv = torch.finfo(torch.float64).min
    mask = torch.where(keep, torch.zeros((), dtype=torch.float64), torch.full((), minv, dtype=torch.float64))[:, None]
    pos = torch.tensor([[0, 1, 2, 3, 4, 3, 4, 5], [0, 1, 2, 3, 4, 5, 6, 7]])
    out["embeds.inputs_embeds"] = emb
    out["embeds.topk_indices"] = top.indices
    out["embeds.topk_probs"] = probs
    out["embeds.keep_mask"] = keep.to(torch.int64)
    out["embeds.position_ids"] = pos
    with torch.no_grad():
        o = model64(inputs_embeds=emb, attention_mask=mask, position_ids=pos, output_hidden_states=True)
        out["embeds.logits"] = o.logits
        out["embeds.last_hidden_state"] = model64.model(
            inputs_embeds=emb, attention_mask=mask, position_ids=pos).last_hidden_state

    labels = torch.randint(0, V - 8, (B, T), generator=g)
    labels[:, :3] = -100
    labels[1, 6] = -100
    out["train.input_ids"] = ids.clone()
    out["train.labels"] = labels
    model64.zero_grad()
    loss = model64(input_ids=ids, labels=labels).loss
    loss.backward()
    out["train.loss"] = loss.detach().reshape(1)
    for name, p in model64.named_parameters():
        out[f"train.grad.{name}"] = p.grad.detach()
    model.float()
    return {k: (v.float() if v.is_floating_point() else v.to(torch.int64)).contiguous().clone() for k, v in out.items()}


def main():
    out_dir = sys.argv[1]
    for name, cfg_dict, cls in (("tiny-llama", LLAMA, LlamaConfig), ("tiny-qwen2", QWEN2, Qwen2Config)):
        d = os.path.join(out_dir, name)
        os.makedirs(d, exist_ok=True)
        model = build(cfg_dict, cls)
        model.save_pretrained(d, safe_serialization=True)
        with open(os.path.join(d, "config.json"), "w") as f:  # hub-style keys, as real checkpoints ship
            json.dump(cfg_dict, f, indent=2)
        reloaded = AutoModelForCausalLM.from_pretrained(d, attn_implementation="eager", dtype=torch.float32)
        g = torch.Generator().manual_seed(SEED + 1)
        tensors = cases(model, cfg_dict, g)
        with torch.no_grad():  # the hub-style config must reproduce the model exactly
            a = reloaded.double()(input_ids=tensors["ids.input_ids"]).logits.float()
        assert torch.allclose(a, tensors["ids.logits"], atol=1e-5), "reloaded model differs"
        save_file(tensors, os.path.join(d, "goldens.safetensors"),
                  metadata={"generator": GENERATOR, "seed": str(SEED)})
        meta = {
            "generator": GENERATOR, "seed": SEED, "torch": torch.__version__,
            "transformers": transformers.__version__, "attn_implementation": "eager",
            "compute_dtype": "float64", "stored_dtype": "float32",
            "cases": {
                "ids": "input_ids [2,8] -> logits [2,8,V]",
                "embeds": "inputs_embeds [2,8,d] (soft top-4 at positions 3..5), additive mask from keep_mask "
                          "[2,1,8,8] (0 / finfo.min), position_ids [2,8] -> logits, last_hidden_state",
                "train": "input_ids, labels (-100 ignored; HF shifts) -> mean CE loss, grad.<param> per parameter",
            },
            "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())},
        }
        with open(os.path.join(d, "goldens.json"), "w") as f:
            json.dump(meta, f, indent=2)
        print(name, "loss", float(tensors["train.loss"]), "files", sorted(os.listdir(d)))


if __name__ == "__main__":
    main()
