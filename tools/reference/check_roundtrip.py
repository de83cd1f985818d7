#!/usr/bin/env python3
"""Loads the folders written by tools/bench/src/roundtrip-export.ts with HF transformers and PEFT and
compares logits with ours (issue 4 round trip). Prints one line per model and check; exits 1 on failure.
Usage: python3 tools/reference/check_roundtrip.py DIR"""
import json
import os
import sys

import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

ok = True
root = sys.argv[1]
for name in sorted(os.listdir(root)):
    d = os.path.join(root, name)
    ours = json.load(open(os.path.join(d, "ours.json")))
    ids = torch.tensor(ours["ids"])
    V = ours["vocab"]
    shape = (ids.shape[0], ids.shape[1], V)
    base = AutoModelForCausalLM.from_pretrained(os.path.join(d, "model"), dtype=torch.float32, attn_implementation="eager")
    with torch.no_grad():
        ref = base(input_ids=ids).logits
    peft = PeftModel.from_pretrained(base, os.path.join(d, "adapter"))
    with torch.no_grad():
        ref_lora = peft(input_ids=ids).logits
        merged = peft.merge_and_unload()
        ref_merged = merged(input_ids=ids).logits
    for label, mine, theirs in (("checkpoint", ours["logits"], ref), ("lora-in-graph vs PEFT", ours["loraLogits"], ref_lora),
                                ("mergeLora vs PEFT merge_and_unload", ours["mergedLogits"], ref_merged)):
        err = (torch.tensor(mine).reshape(shape) - theirs).abs().max().item()
        good = err <= 1e-4
        ok = ok and good
        print(f"ROUNDTRIP {name} {label}: max abs logit error {err:.3g} {'OK' if good else 'FAIL'}")
    print(f"ROUNDTRIP {name} adapter changes logits by {(ref_lora - ref).abs().max().item():.3g}")
sys.exit(0 if ok else 1)
