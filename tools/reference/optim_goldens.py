#!/usr/bin/env python3
"""Golden trajectories for the reference optimizers of @latent-sft/train (run on the GPU machine).

For three small named float64 parameters and fixed per-step gradients (drawn once from a seeded CPU
torch.Generator and stored in the fixture), runs each optimizer below for 5 steps. Every step:
  p.grad = stored grad  ->  total_norm = clip_grad_norm_(params, 1.0)  ->  record lr  ->  opt.step()
  ->  sched.step()  ->  record params
with a LambdaLR whose lambda is HF's linear (get_linear_schedule_with_warmup) or cosine
(get_cosine_schedule_with_warmup, num_cycles 0.5) warmup/decay, written out below.
Runs: AdamW (betas 0.9/0.999, eps 1e-8, wd 0.01) with linear and cosine schedules; SGD with momentum
0.9 and weight decay, nesterov off (linear) and on (cosine); plain SGD (constant lr).
Output: packages/train/test/fixtures/optim-goldens.json (float64 values as JSON numbers, repr-exact).
The TS test (packages/train/src/optim.test.ts) compares with rtol 1e-10.
Usage: python3 tools/reference/optim_goldens.py [OUT_JSON]
"""
import json
import math
import os
import platform
import sys

import numpy as np
import torch

SEED = 20240611
GENERATOR = "tools/reference/optim_goldens.py"
MAGIC = "latent-sft/optim-goldens"
VERSION = 1
STEPS = 5
MAX_NORM = 1.0
SHAPES = {"w": [3, 4], "b": [4], "emb": [5, 2]}
# Gradient scale per step: some steps are clipped (total norm > 1), some are not.
GRAD_SCALES = [0.3, 2.0, 0.05, 5.0, 0.8]

RUNS = [
    dict(name="adamw-linear", optimizer=dict(kind="adamw", lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weightDecay=0.01),
         schedule=dict(kind="linear", warmupSteps=2, totalSteps=5)),
    dict(name="adamw-cosine", optimizer=dict(kind="adamw", lr=3e-2, beta1=0.8, beta2=0.99, eps=1e-6, weightDecay=0.1),
         schedule=dict(kind="cosine", warmupSteps=1, totalSteps=5)),
    dict(name="sgd-momentum-linear", optimizer=dict(kind="sgd", lr=0.1, momentum=0.9, weightDecay=0.01, nesterov=False),
         schedule=dict(kind="linear", warmupSteps=2, totalSteps=5)),
    dict(name="sgd-nesterov-cosine", optimizer=dict(kind="sgd", lr=0.1, momentum=0.9, weightDecay=0.01, nesterov=True),
         schedule=dict(kind="cosine", warmupSteps=1, totalSteps=5)),
    dict(name="sgd-plain-constant", optimizer=dict(kind="sgd", lr=0.05, momentum=0.0, weightDecay=0.0, nesterov=False),
         schedule=dict(kind="constant")),
]


def lr_lambda(schedule):
    kind = schedule["kind"]
    if kind == "constant":
        return lambda step: 1.0
    w, t = schedule["warmupSteps"], schedule["totalSteps"]
    if kind == "linear":  # transformers.optimization._get_linear_schedule_with_warmup_lr_lambda
        def f(step):
            if step < w:
                return float(step) / float(max(1, w))
            return max(0.0, float(t - step) / float(max(1, t - w)))
        return f
    if kind == "cosine":  # transformers.optimization._get_cosine_schedule_with_warmup_lr_lambda, num_cycles 0.5
        def f(step):
            if step < w:
                return float(step) / float(max(1, w))
            progress = float(step - w) / float(max(1, t - w))
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * 0.5 * 2.0 * progress)))
        return f
    raise ValueError(kind)


def make_optimizer(params, o):
    if o["kind"] == "adamw":
        return torch.optim.AdamW(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                                 weight_decay=o["weightDecay"], foreach=False)
    if o["kind"] == "sgd":
        return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"], weight_decay=o["weightDecay"],
                               nesterov=o["nesterov"], foreach=False)
    raise ValueError(o["kind"])


def flat(t):
    return [float(x) for x in t.detach().reshape(-1).tolist()]


def main():
    out_path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "packages", "train", "test", "fixtures", "optim-goldens.json")
    gen = torch.Generator(device="cpu").manual_seed(SEED)
    init = {name: torch.randn(shape, generator=gen, dtype=torch.float64) for name, shape in SHAPES.items()}
    grads = [{name: torch.randn(shape, generator=gen, dtype=torch.float64) * scale for name, shape in SHAPES.items()}
             for scale in GRAD_SCALES]

    runs = []
    for run in RUNS:
        params = [torch.nn.Parameter(init[name].clone()) for name in SHAPES]
        opt = make_optimizer(params, run["optimizer"])
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(run["schedule"]))
        steps = []
        for k in range(STEPS):
            for p, name in zip(params, SHAPES):
                p.grad = grads[k][name].clone()
            total_norm = torch.nn.utils.clip_grad_norm_(params, MAX_NORM)
            lr = opt.param_groups[0]["lr"]
            opt.step()
            sched.step()
            steps.append(dict(lr=float(lr), totalNorm=float(total_norm),
                              params={name: flat(p) for p, name in zip(params, SHAPES)}))
        runs.append(dict(name=run["name"], optimizer=run["optimizer"], schedule=run["schedule"], steps=steps))

    doc = dict(
        magic=MAGIC, version=VERSION, generator=GENERATOR, seed=SEED,
        rng="torch.Generator(device='cpu').manual_seed(seed); torch.randn(float64) for init then grads, in order",
        torch=torch.__version__, numpy=np.__version__, python=platform.python_version(),
        dtype="float64", maxNorm=MAX_NORM, gradScales=GRAD_SCALES,
        shapes=SHAPES,
        init={name: flat(t) for name, t in init.items()},
        grads=[{name: flat(g) for name, g in step.items()} for step in grads],
        procedure="per step: p.grad = grads[k]; total_norm = clip_grad_norm_(params, maxNorm); lr = group lr; "
                  "opt.step(); sched.step(); record params",
        runs=runs,
    )
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    size = os.path.getsize(out_path)
    assert size < 200_000, f"fixture too large: {size} bytes"
    print(f"wrote {out_path} ({size} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()
