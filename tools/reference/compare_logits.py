#!/usr/bin/env python3
"""Compares our last-position logits (tools/bench/src/forward-1b.ts) with HF transformers on the same
checkpoint (written by our safetensors writer), in float32 and bfloat16. Prints "CMP {...}" lines.
Usage: python3 tools/reference/compare_logits.py DIR"""
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM

d = sys.argv[1]
ours = json.load(open(os.path.join(d, "ours.json")))
B, T = ours["B"], ours["T"]
ids = torch.tensor(ours["ids"]).reshape(B, T).cuda()
for dtype, key in ((torch.float32, "float32"), (torch.bfloat16, "bfloat16")):
    m = AutoModelForCausalLM.from_pretrained(os.path.join(d, "model"), dtype=dtype, attn_implementation="sdpa").cuda().eval()
    with torch.no_grad():
        ref = m(input_ids=ids).logits[:, -1].float()
    mine = torch.tensor(ours[key]).cuda()
    cos = torch.nn.functional.cosine_similarity(mine, ref, dim=-1)
    print("CMP " + json.dumps(dict(dtype=key, max_abs=(mine - ref).abs().max().item(), ref_abs_max=ref.abs().max().item(),
                                   cos=cos.tolist(), argmax_equal=(mine.argmax(-1) == ref.argmax(-1)).tolist())), flush=True)
    del m
    torch.cuda.empty_cache()
