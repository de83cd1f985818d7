#!/usr/bin/env python3
"""Config-layout goldens: tiny random Llama-3 / Qwen2 / Qwen3 saved by transformers 5 (run on the GPU machine).

For each family it builds a tiny random-init model with the transformers 5 config classes
(`rope_parameters`), save_pretrained()s it, writes a transformers 4.x-style config.json by hand for the
same weights (`rope_theta` + `rope_scaling`, `torch_dtype`), checks that transformers loads both to the
same logits, and records logits at every position of one sequence longer than the llama3 scaling's
original context. Into OUT/<name>/:
  config.json             as save_pretrained wrote it (transformers 5 layout)
  config.v4.json          the same model in the transformers 4.x layout (hand-written, see v4_config)
  model.safetensors       fp32 weights, as save_pretrained wrote them
  generation_config.json  as save_pretrained wrote it
  goldens.safetensors     input_ids [1,T] int64 and logits [1,T,V] (computed in float64, stored float32)
  goldens.json            generator, versions, seed, sizes, the keys of both configs
Families:
  hf5-llama3  llama3 RoPE scaling (original context 48 < T, one frequency in the smoothed band), GQA, tied
  hf5-qwen2   q/k/v biases, untied head, theta 1e6
  hf5-qwen3   q/k RMSNorm per head, explicit head_dim != hidden/heads, no biases, tied, theta 1e6
Usage: python3 tools/reference/hf_compat_goldens.py --out OUT_DIR
(the TS tests read packages/models/test/fixtures/hf5-*; see packages/models/src/hf-compat.test.ts).
"""
import argparse
import json
import os
import shutil
import tempfile

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config, Qwen3Config

SEED = 4321
T = 80  # > ORIGINAL_CONTEXT: positions past the pre-scaling context are covered
ORIGINAL_CONTEXT = 48
GENERATOR = "tools/reference/hf_compat_goldens.py"

COMMON = dict(
    vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, hidden_act="silu", initializer_range=0.02, attention_dropout=0.0,
    bos_token_id=120, eos_token_id=121,
)
# Llama-3: head_dim 16, theta 5e5: wavelengths 2*pi*theta^(2i/16) = 6.3, 32.4, 167, ...; with
# original context 48, low/high freq factors 1/4 the bands are high (< 12), smoothed (12..48), low (> 48).
LLAMA3 = dict(
    COMMON, head_dim=16, max_position_embeddings=ORIGINAL_CONTEXT * 8, rms_norm_eps=1e-5,
    rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0, low_freq_factor=1.0,
                         high_freq_factor=4.0, original_max_position_embeddings=ORIGINAL_CONTEXT),
    tie_word_embeddings=True, attention_bias=False, mlp_bias=False, pretraining_tp=1,
)
QWEN2 = dict(
    COMMON, max_position_embeddings=4096, rms_norm_eps=1e-6,
    rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
    tie_word_embeddings=False, use_sliding_window=False, max_window_layers=2,
)
QWEN3 = dict(
    COMMON, head_dim=32, max_position_embeddings=4096, rms_norm_eps=1e-6,
    rope_parameters=dict(rope_type="default", rope_theta=1000000.0),
    tie_word_embeddings=True, attention_bias=False, use_sliding_window=False, max_window_layers=2,
)
FAMILIES = (
    ("hf5-llama3", "llama", "LlamaForCausalLM", LlamaConfig, LLAMA3),
    ("hf5-qwen2", "qwen2", "Qwen2ForCausalLM", Qwen2Config, QWEN2),
    ("hf5-qwen3", "qwen3", "Qwen3ForCausalLM", Qwen3Config, QWEN3),
)


def v4_config(model_type, architecture, kw):
    """The transformers 4.x spelling of `kw`: rope_theta + rope_scaling (null without scaling), torch_dtype."""
    rope = dict(kw["rope_parameters"])
    theta = rope.pop("rope_theta")
    out = {"architectures": [architecture], "model_type": model_type}
    out.update({k: v for k, v in kw.items() if k != "rope_parameters"})
    out["rope_theta"] = theta
    out["rope_scaling"] = None if rope["rope_type"] == "default" else rope
    if model_type == "qwen2":
        out["sliding_window"] = 4096  # what 4.x Qwen2 checkpoints carry next to use_sliding_window false
    if model_type == "qwen3":
        out["sliding_window"] = None
    out["torch_dtype"] = "float32"
    out["use_cache"] = True
    return out


def build(cls, kw):
    torch.manual_seed(SEED)
    cfg = cls(**kw)
    model = AutoModelForCausalLM.from_config(cfg, attn_implementation="eager")
    # Spread the weights beyond the tiny init so every term matters (norm weights incl. q/k norms, biases).
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.05 * torch.randn_like(p))
            else:
                p.copy_(0.08 * torch.randn_like(p))
    return model.float().eval()


def logits64(model_dir, ids):
    m = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager", dtype=torch.float32)
    m = m.double().eval()
    with torch.no_grad():
        return m(input_ids=ids).logits


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="output folder (one sub-folder per family)")
    args = ap.parse_args()
    for name, model_type, architecture, cls, kw in FAMILIES:
        d = os.path.join(args.out, name)
        os.makedirs(d, exist_ok=True)
        model = build(cls, kw)
        model.save_pretrained(d, safe_serialization=True)
        with open(os.path.join(d, "config.json")) as f:
            saved = json.load(f)
        if "rope_parameters" not in saved:
            raise SystemExit(f"{name}: save_pretrained wrote no rope_parameters (keys {sorted(saved)}); "
                             f"transformers {transformers.__version__} is not the 5.x layout this script documents")
        v4 = v4_config(model_type, architecture, kw)
        with open(os.path.join(d, "config.v4.json"), "w") as f:
            json.dump(v4, f, indent=2)

        g = torch.Generator().manual_seed(SEED + 1)
        ids = torch.randint(0, kw["vocab_size"] - 8, (1, T), generator=g)
        gold = logits64(d, ids)
        # The 4.x-layout folder (same weights) must give the same model.
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(os.path.join(d, "model.safetensors"), os.path.join(tmp, "model.safetensors"))
            shutil.copy(os.path.join(d, "config.v4.json"), os.path.join(tmp, "config.json"))
            other = logits64(tmp, ids)
        diff_v4 = float((other - gold).abs().max())
        if diff_v4 > 1e-9:
            raise SystemExit(f"{name}: the 4.x config gives logits {diff_v4} away from the 5.x one")
        # The fp32 model (what the TS tests run in) is close to the float64 reference.
        with torch.no_grad():
            diff32 = float((model(input_ids=ids).logits.double() - gold).abs().max())
        if diff32 > 1e-4:
            raise SystemExit(f"{name}: fp32 logits {diff32} away from float64")

        tensors = {"input_ids": ids.to(torch.int64).contiguous(), "logits": gold.float().contiguous()}
        save_file(tensors, os.path.join(d, "goldens.safetensors"), metadata={"generator": GENERATOR, "seed": str(SEED)})
        meta = {
            "generator": GENERATOR, "seed": SEED, "torch": torch.__version__, "transformers": transformers.__version__,
            "attn_implementation": "eager", "compute_dtype": "float64", "stored_dtype": "float32",
            "seq_len": T, "original_context": ORIGINAL_CONTEXT if model_type == "llama" else None,
            "max_abs_fp32_vs_float64": diff32, "max_abs_v4_vs_v5_config": diff_v4,
            "config.json keys (save_pretrained)": sorted(saved), "config.v4.json keys (hand-written)": sorted(v4),
            "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())},
        }
        with open(os.path.join(d, "goldens.json"), "w") as f:
            json.dump(meta, f, indent=2)
        print(name, "fp32-vs-f64", diff32, "files", sorted(os.listdir(d)), "config keys", sorted(saved))


if __name__ == "__main__":
    main()
