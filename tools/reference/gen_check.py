"""Teacher-forced check of our GPU generation engine against HF transformers on the same checkpoint.

For each dumped row (generate-bench.ts --dump: prompt ids and our greedy output ids, explicit mode),
HF runs ONE forward pass over prompt + output (bf16, or --dtype) and, at every generated position,
compares our token with HF's argmax there: agreement fraction, and the logit margin HF gives its own
top token over ours (0 when they agree). A correct engine agrees except at near-ties (bf16 noise),
where the margin stays small; a wrong cache, position or mask shows as disagreement with large margins.
Prints one "CHECK {json}" line. Usage: python3 tools/reference/gen_check.py DUMP.json MODEL_DIR [--dtype bfloat16]
"""
import argparse
import json

import torch
from transformers import AutoModelForCausalLM


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dump")
    ap.add_argument("model")
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()
    d = json.load(open(args.dump))
    dtype = getattr(torch, args.dtype)
    m = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=dtype, attn_implementation="sdpa").cuda().eval()
    agree, total, margins = 0, 0, []
    for row in d["rows"]:
        p, o = row["prompt"], row["output"]
        ids = torch.tensor([p + o], device="cuda")
        with torch.no_grad():
            logits = m(ids).logits[0].float()
        for j, tok in enumerate(o):
            lg = logits[len(p) + j - 1]
            top = int(lg.argmax())
            agree += int(top == tok)
            total += 1
            margins.append(float(lg[top] - lg[tok]))
    margins.sort()
    out = dict(check="gen-teacher-forced", engine=d.get("engine"), attention=d.get("attention", "gqa"), dtype=args.dtype, rows=len(d["rows"]), tokens=total,
               agree=agree / max(1, total), max_margin=margins[-1] if margins else 0.0,
               p99_margin=margins[int(0.99 * (len(margins) - 1))] if margins else 0.0,
               logit_std=float(logits.std()))
    print("CHECK " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
