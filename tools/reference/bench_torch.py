#!/usr/bin/env python3
"""PyTorch anchor for the GPU benchmarks (tools/bench): the same configs our TS benchmark runs, measured
in the same device call. Prints one JSON object per benchmark on stdout (prefix 'BENCH ').

  train   full training step (forward + backward + AdamW), Llama-3.2-1B shape, random init, bf16 weights,
          batch B x T tokens, attention sdpa (and eager with --eager)
  lora    LoRA-only step (r=64, alpha=128, q,k,v,o,gate,up,down), same shape (phase-1 step shape)
  gen     HF generate, batch 64, 128-token prompts, 256 new tokens, greedy, KV cache
Usage: python3 tools/reference/bench_torch.py [--which train,lora,gen] [--batch 8] [--seq 512] [--steps 10]
"""
import argparse
import json
import time

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig

LLAMA_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
                rms_norm_eps=1e-5, rope_theta=500000.0,
                rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                  original_max_position_embeddings=8192),
                tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001, pad_token_id=128001)


def model_1b(attn):
    torch.manual_seed(0)
    cfg = LlamaConfig(**LLAMA_1B)
    m = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=torch.bfloat16)
    return m.cuda()


def flops_per_token(m, T):
    n = sum(p.numel() for p in m.parameters())
    L, d = LLAMA_1B["num_hidden_layers"], LLAMA_1B["hidden_size"]
    return 6 * n + 12 * L * d * T  # forward+backward matmuls + attention (PaLM appendix B)


def timed_steps(step, steps, warmup=3):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def bench_train(args, attn, lora=False):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    m = model_1b(attn)
    m.train()
    if lora:
        from peft import LoraConfig, get_peft_model
        m = get_peft_model(m, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.1, task_type="CAUSAL_LM",
                                         target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj",
                                                         "up_proj", "down_proj"]))
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    B, T = args.batch, args.seq
    ids = torch.randint(0, 128000, (B, T), device="cuda")

    def step():
        out = m(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    dt = timed_steps(step, args.steps)
    tok = B * T / dt
    fpt = flops_per_token(m, T) if not lora else (2 * sum(p.numel() for p in m.parameters()) + 4 * sum(p.numel() for p in params) + 12 * 16 * 2048 * T)
    res = dict(bench="lora" if lora else "train", impl="pytorch", attn=attn, batch=B, seq=T, step_s=dt,
               tokens_per_s=tok, tflops=tok * fpt / 1e12, peak_gib=torch.cuda.max_memory_allocated() / 2**30,
               trainable=sum(p.numel() for p in params))
    del m, opt
    return res


def bench_gen(args):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    m = model_1b("sdpa").eval()
    B, P, N = 64, 128, 256
    ids = torch.randint(0, 128000, (B, P), device="cuda")
    mask = torch.ones_like(ids)

    def run():
        with torch.no_grad():
            m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=N, min_new_tokens=N, do_sample=False,
                       pad_token_id=128001)

    dt = timed_steps(run, 2, warmup=1)
    return dict(bench="gen", impl="pytorch-hf-generate", batch=B, prompt=P, new_tokens=N, s=dt,
                new_tokens_per_s=B * N / dt, peak_gib=torch.cuda.max_memory_allocated() / 2**30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", default="train,lora,gen")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--eager", action="store_true")
    args = ap.parse_args()
    meta = dict(torch=torch.__version__, transformers=transformers.__version__, gpu=torch.cuda.get_device_name(0))
    print("BENCH " + json.dumps(dict(bench="meta", **meta)), flush=True)
    which = args.which.split(",")
    if "train" in which:
        print("BENCH " + json.dumps(bench_train(args, "sdpa")), flush=True)
        if args.eager:
            print("BENCH " + json.dumps(bench_train(args, "eager")), flush=True)
    if "lora" in which:
        print("BENCH " + json.dumps(bench_train(args, "sdpa", lora=True)), flush=True)
    if "gen" in which:
        print("BENCH " + json.dumps(bench_gen(args)), flush=True)


if __name__ == "__main__":
    main()
