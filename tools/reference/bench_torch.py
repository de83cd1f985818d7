#!/usr/bin/env python3
"""PyTorch anchor for the GPU benchmarks (tools/bench): the same configs our TS benchmark runs, measured
in the same device call. Prints one JSON object per benchmark on stdout (prefix 'BENCH ').

  train   full training step (forward + backward + AdamW + clip 1.0), Llama-3.2-1B shape, random init,
          batch B x T tokens, attention sdpa (and eager with --eager), one row per recipe (--recipes):
            bf16                      bf16 params, foreach AdamW (torch's default)
            bf16-fused                bf16 params, AdamW(fused=True)
            bf16-fused-compile        the same + torch.compile(model)  (the strongest recipe a user would pick)
            fp32master-fused          fp32 params + bf16 autocast, AdamW(fused=True)  (our precision recipe)
            fp32master-fused-compile  the same + torch.compile(model)
  lora    LoRA-only step (PEFT r=64, alpha=128, dropout 0.1 on q,k,v,o,gate,up,down), same shape (phase-1 step
          shape), bf16 base: recipes peft (foreach AdamW), peft-fused (AdamW fused=True)
  lora7b  the same LoRA step on the DeepSeek-R1-Distill-Qwen-7B shape (Qwen2: hidden 3584, 28 layers, 28/4
          heads, MLP 18944, vocab 152064, biases, untied), fused AdamW, gradient checkpointing off and on
  train7b full fine-tuning of that shape, bf16 parameters + fused AdamW (bf16 states), checkpointing off and on
  attn    torch's scaled_dot_product_attention forward + backward (bf16) at fused-check's flash-time shapes
          (Llama-3.2-1B: 8 x 32/8 heads x 512 x 64; Qwen2-7B: 8 x 28/4 x 512 x 128): causal (flash backend) and
          with an explicit additive float mask of the same pattern (what a mask that is not plainly causal gets)
  gen     HF generate, batch 64, 128-token prompts, 256 new tokens, greedy: dynamic KV cache (hf-generate) and
          static cache with generate's automatic torch.compile (hf-static-compile)
Every row names its recipe; a recipe that fails prints a row with "error" instead of numbers.
Usage: python3 tools/reference/bench_torch.py [--which train,lora,lora7b,train7b,gen,gemm,attn] [--recipes a,b] [--batch 8]
       [--seq 512] [--steps 10] [--gen-model HF_DIR] [--gen-batch 64] [--gen-new 256]
"""
import argparse
import json
import time
import traceback

import torch
import transformers
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

LLAMA_1B = dict(vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                num_attention_heads=32, num_key_value_heads=8, head_dim=64, max_position_embeddings=131072,
                rms_norm_eps=1e-5, rope_theta=500000.0,
                rope_scaling=dict(rope_type="llama3", factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                  original_max_position_embeddings=8192),
                tie_word_embeddings=True, bos_token_id=128000, eos_token_id=128001, pad_token_id=128001)
# deepseek-ai/DeepSeek-R1-Distill-Qwen-7B config.json (Qwen2ForCausalLM).
QWEN_7B = dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28,
               num_attention_heads=28, num_key_value_heads=4, max_position_embeddings=131072, rms_norm_eps=1e-6,
               rope_theta=10000.0, tie_word_embeddings=False, use_sliding_window=False, sliding_window=4096,
               bos_token_id=151646, eos_token_id=151643)
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TRAIN_RECIPES = ["bf16", "bf16-fused", "bf16-fused-compile", "fp32master-fused", "fp32master-fused-compile"]
LORA_RECIPES = ["peft", "peft-fused"]
LORA7B_RECIPES = ["peft-fused", "peft-fused-ckpt"]
TRAIN7B_RECIPES = ["bf16-fused", "bf16-fused-ckpt"]
GEN_RECIPES = ["hf-generate", "hf-static-compile"]


def build(shape, attn, dtype):
    torch.manual_seed(0)
    cfg = (LlamaConfig if shape is LLAMA_1B else Qwen2Config)(**shape)
    # Built (and randomly initialised) on the GPU: HF's init of 7.6 B parameters on the host took
    # minutes and once outlasted a lease.
    with torch.device("cuda"):
        return AutoModelForCausalLM.from_config(cfg, attn_implementation=attn, dtype=dtype)


def flops_per_token(n_params, shape, T):
    L, d = shape["num_hidden_layers"], shape["hidden_size"]
    return 6 * n_params + 12 * L * d * T  # forward+backward matmuls + attention (PaLM appendix B)


def lora_flops_per_token(n_params, n_trainable, shape, T):
    # forward 2N, activation gradients 2N, LoRA weight gradients 2·trainable, attention 12·L·d·T
    L, d = shape["num_hidden_layers"], shape["hidden_size"]
    return 4 * n_params + 2 * n_trainable + 12 * L * d * T


def timed_steps(step, steps, warmup=3):
    for _ in range(warmup):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def bench_step(args, bench, recipe, attn="sdpa"):
    """One training-step benchmark: full (train) or LoRA (lora, lora7b) under a named recipe."""
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    shape = QWEN_7B if bench in ("lora7b", "train7b") else LLAMA_1B
    master = recipe.startswith("fp32master")
    m = build(shape, attn, torch.float32 if master else torch.bfloat16)
    m.train()
    lora = bench in ("lora", "lora7b")
    if lora:
        from peft import LoraConfig, get_peft_model
        m = get_peft_model(m, LoraConfig(r=64, lora_alpha=128, lora_dropout=0.1, task_type="CAUSAL_LM",
                                         target_modules=LORA_TARGETS))
    if recipe.endswith("-ckpt"):
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if lora:
            m.enable_input_require_grads()
    params = [p for p in m.parameters() if p.requires_grad]
    n_params = sum(p.numel() for p in m.parameters())
    n_trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=1e-5, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                            fused="fused" in recipe)
    model = torch.compile(m) if recipe.endswith("-compile") else m
    B, T = args.batch, args.seq
    ids = torch.randint(0, 128000, (B, T), device="cuda")

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=master):
            out = model(input_ids=ids, labels=ids)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    dt = timed_steps(step, args.steps)
    tok = B * T / dt
    fpt = lora_flops_per_token(n_params, n_trainable, shape, T) if lora else flops_per_token(n_params, shape, T)
    res = dict(bench=bench, impl="pytorch", recipe=recipe, attn=attn, batch=B, seq=T, step_s=dt,
               tokens_per_s=tok, tflops=tok * fpt / 1e12, peak_gib_torch=torch.cuda.max_memory_allocated() / 2**30,
               params=n_params, trainable=n_trainable)
    del model, m, opt
    return res


def bench_gen(args, recipe):
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    if args.gen_model:  # an HF folder (e.g. tools/bench random-checkpoint's 7B shape), loaded in bf16
        m = transformers.AutoModelForCausalLM.from_pretrained(args.gen_model, torch_dtype=torch.bfloat16, attn_implementation="sdpa").cuda().eval()
    else:
        m = build(LLAMA_1B, "sdpa", torch.bfloat16).eval()
    B, P, N = args.gen_batch, 128, args.gen_new
    ids = torch.randint(0, min(128000, m.config.vocab_size), (B, P), device="cuda")
    mask = torch.ones_like(ids)
    extra = dict(cache_implementation="static") if recipe == "hf-static-compile" else {}

    def run():
        with torch.no_grad():
            m.generate(input_ids=ids, attention_mask=mask, max_new_tokens=N, min_new_tokens=N, do_sample=False,
                       pad_token_id=128001, **extra)

    dt = timed_steps(run, 2, warmup=2 if extra else 1)
    return dict(bench="gen", impl="pytorch", recipe=recipe, model=args.gen_model or "llama-3.2-1b", batch=B, prompt=P, new_tokens=N, s=dt,
                new_tokens_per_s=B * N / dt, ms_per_step=1000 * dt / N,
                peak_gib_torch=torch.cuda.max_memory_allocated() / 2**30)


# The matrix products of tools/bench/src/gemm-probe.ts (keep the two lists equal): [name, M, N, K, transA, transB].
GEMM_SHAPES = [
    ("1b.q_proj.fwd", 4096, 2048, 2048, 0, 1), ("1b.k_proj.fwd", 4096, 512, 2048, 0, 1),
    ("1b.up_proj.fwd", 4096, 8192, 2048, 0, 1), ("1b.down_proj.fwd", 4096, 2048, 8192, 0, 1),
    ("1b.up_proj.dx", 4096, 2048, 8192, 0, 0), ("1b.up_proj.dw", 8192, 2048, 4096, 1, 0),
    ("1b.lora_a.fwd", 4096, 64, 2048, 0, 1), ("1b.lora_b.fwd", 4096, 2048, 64, 0, 1), ("1b.lora_a.dw", 64, 2048, 4096, 1, 0),
    ("7b.q_proj.fwd", 1328, 3584, 3584, 0, 1), ("7b.up_proj.fwd", 1328, 18944, 3584, 0, 1),
    ("7b.down_proj.fwd", 1328, 3584, 18944, 0, 1), ("7b.up_proj.dx", 1328, 3584, 18944, 0, 0),
]


def bench_gemm(runs=20, repeat=16):
    """torch.matmul (bf16, cuBLAS as PyTorch calls it) on gemm-probe's shapes: us per product, one row each."""
    g = torch.Generator(device="cuda").manual_seed(1)
    rows = []
    for name, M, N, K, ta, tb in GEMM_SHAPES:
        a = (0.02 * torch.randn(*((K, M) if ta else (M, K)), device="cuda", generator=g)).to(torch.bfloat16)
        b = (0.02 * torch.randn(*((N, K) if tb else (K, N)), device="cuda", generator=g)).to(torch.bfloat16)
        A, B = (a.t() if ta else a), (b.t() if tb else b)
        for _ in range(3):
            torch.matmul(A, B)
        torch.cuda.synchronize()
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(runs * repeat):
            torch.matmul(A, B)
        e1.record()
        torch.cuda.synchronize()
        us = e0.elapsed_time(e1) * 1000 / (runs * repeat)
        rows.append(dict(bench="gemm", impl="pytorch", recipe="torch.matmul", dtype="bfloat16", shape=name, m=M, n=N, k=K,
                         trans_a=ta, trans_b=tb, us=us, tflops=2 * M * N * K / us / 1e6))
    return rows


ATTN_SHAPES = [("llama-1b", 8, 32, 8, 512, 64), ("qwen2-7b", 8, 28, 4, 512, 128)]


def bench_attn(runs=20):
    """SDPA forward + backward per call (ms, CUDA events) on the flash-time shapes, GQA heads expanded as HF does."""
    g = torch.Generator(device="cuda").manual_seed(1)
    rows = []
    for name, B, H, G, T, D in ATTN_SHAPES:
        q = torch.randn(B, H, T, D, device="cuda", generator=g).to(torch.bfloat16).requires_grad_()
        k = torch.randn(B, G, T, D, device="cuda", generator=g).to(torch.bfloat16).requires_grad_()
        v = torch.randn(B, G, T, D, device="cuda", generator=g).to(torch.bfloat16).requires_grad_()
        do = torch.randn(B, H, T, D, device="cuda", generator=g).to(torch.bfloat16)
        causal = torch.full((T, T), float("-inf"), device="cuda").triu(1).to(torch.bfloat16)
        for mode in ("causal", "float-mask"):
            def once():
                kk, vv = k.repeat_interleave(H // G, dim=1), v.repeat_interleave(H // G, dim=1)
                if mode == "causal":
                    o = torch.nn.functional.scaled_dot_product_attention(q, kk, vv, is_causal=True)
                else:
                    o = torch.nn.functional.scaled_dot_product_attention(q, kk, vv, attn_mask=causal)
                torch.autograd.backward(o, do)
            for _ in range(3):
                once()
            torch.cuda.synchronize()
            e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            e0.record()
            for _ in range(runs):
                once()
            e1.record()
            torch.cuda.synchronize()
            ms = e0.elapsed_time(e1) / runs
            # The same FLOP count fused-check's flash-time uses (9 products of T x S x D per head, mask ignored).
            flops = 9 * 2 * B * H * T * T * D
            rows.append(dict(bench="attn", impl="pytorch", recipe=f"sdpa-{mode}", shape=name, dims=[B, H, G, T, D], ms=ms,
                             tflops=flops / (ms / 1000) / 1e12))
    return rows


def emit(fn, bench, recipe):
    try:
        row = fn()
    except Exception as e:  # a recipe that does not run is a row that says so, never a silent gap
        traceback.print_exc()
        row = dict(bench=bench, impl="pytorch", recipe=recipe, error=f"{type(e).__name__}: {e}"[:300])
    print("BENCH " + json.dumps(row), flush=True)
    torch.cuda.empty_cache()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--which", default="train,lora,gen")
    ap.add_argument("--recipes", default="", help="comma list; default: every recipe of each benchmark")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=512)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--eager", action="store_true")
    ap.add_argument("--gen-model", default="", help="gen: an HF checkpoint folder instead of the random Llama-3.2-1B")
    ap.add_argument("--gen-batch", type=int, default=64)
    ap.add_argument("--gen-new", type=int, default=256)
    args = ap.parse_args()
    meta = dict(torch=torch.__version__, transformers=transformers.__version__, gpu=torch.cuda.get_device_name(0))
    print("BENCH " + json.dumps(dict(bench="meta", **meta)), flush=True)
    which = args.which.split(",")
    only = set(r for r in args.recipes.split(",") if r)
    pick = lambda recipes: [r for r in recipes if not only or r in only]
    for bench, recipes in (("train", TRAIN_RECIPES), ("lora", LORA_RECIPES), ("lora7b", LORA7B_RECIPES), ("train7b", TRAIN7B_RECIPES)):
        if bench in which:
            for r in pick(recipes):
                emit(lambda: bench_step(args, bench, r), bench, r)
            if bench == "train" and args.eager:
                emit(lambda: bench_step(args, bench, "bf16", attn="eager"), bench, "bf16-eager")
    if "gen" in which:
        for r in pick(GEN_RECIPES):
            emit(lambda: bench_gen(args, r), "gen", r)
    if "attn" in which:
        for row in bench_attn():
            print("BENCH " + json.dumps(row), flush=True)
    if "gemm" in which:
        for row in bench_gemm():
            print("BENCH " + json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
