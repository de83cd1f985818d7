"""Golden numbers for @latent-sft/graph from PyTorch (float64 per-op gradients, float32 SGD trajectories).

Reads packages/graph/test/cases.json (the same case table the TypeScript runner uses) and writes
packages/graph/test/fixtures/graph-goldens.json with, per case: the inputs (generated here, so the TS
test uses identical values), random cotangents, forward outputs and the gradients of
sum_k sum(output_k * cotangent_k) w.r.t. every float input; and per model (2-layer MLP, 1-layer causal
attention): initial weights, the batch and the 20-step SGD loss trajectory in float32.

Run from the repository root:  python tools/reference/graph_goldens.py
Needs python 3.11, torch, numpy (no other dependencies). Deterministic on CPU.
"""
import json
import math
import pathlib

import torch
import torch.nn.functional as F

ROOT = pathlib.Path(__file__).resolve().parents[2]
CASES = ROOT / "packages/graph/test/cases.json"
OUT = ROOT / "packages/graph/test/fixtures/graph-goldens.json"
MAGIC = "latent-sft-graph-goldens"
VERSION = 1
GENERATOR = "torch.Generator(device='cpu').manual_seed(seed) (mt19937); cotangents use seed ^ 0x5eed"

DT = {"float64": torch.float64, "float32": torch.float32, "int64": torch.int64, "bool": torch.bool}


def gen_input(spec, case_dtype, gen):
    dtype = spec.get("dtype", case_dtype)
    shape = spec["shape"]
    n = math.prod(shape)
    dist = spec["dist"]
    if dist == "const":
        return torch.tensor(spec["values"], dtype=DT[dtype]).reshape(shape)
    if dist == "normal":
        return torch.randn(shape, generator=gen, dtype=torch.float64).to(DT[dtype])
    if dist == "positive":
        return (0.5 + 1.5 * torch.rand(shape, generator=gen, dtype=torch.float64)).to(DT[dtype])
    if dist == "bool":
        return torch.rand(shape, generator=gen, dtype=torch.float64) < 0.5
    if dist == "distinct":
        base = torch.tensor([(i - n / 2) * 0.37 + 0.11 for i in range(n)], dtype=torch.float64)
        return base[torch.randperm(n, generator=gen)].reshape(shape).to(DT[dtype])
    raise ValueError(f"unknown dist {dist}")


def ints(t):
    return [int(v) for v in t.reshape(-1).tolist()]


def onnx_slice(x, starts, ends, axes, steps):
    for s, e, a, st in zip(starts, ends, axes, steps):
        a = a % x.dim()
        d = x.shape[a]
        s = s + d if s < 0 else s
        e = e + d if e < 0 else e
        if st > 0:
            s, e = min(max(s, 0), d), min(max(e, 0), d)
        else:
            s, e = min(max(s, -1), d - 1), min(max(e, -1), d - 1)
        idx = torch.tensor(list(range(s, e, st)), dtype=torch.int64)
        x = torch.index_select(x, a, idx)
    return x


def run_op(op, attrs, xs):
    """The ONNX op `op` (opset 18 semantics) in torch; returns a list of outputs."""
    a = attrs
    if op == "MatMul":
        return [xs[0] @ xs[1]]
    if op == "Gemm":
        A = xs[0].T if a.get("transA", 0) else xs[0]
        B = xs[1].T if a.get("transB", 0) else xs[1]
        y = a.get("alpha", 1.0) * (A @ B)
        return [y + a.get("beta", 1.0) * xs[2] if len(xs) > 2 else y]
    binary = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div, "Pow": torch.pow}
    if op in binary:
        return [binary[op](xs[0], xs[1])]
    unary = {"Neg": torch.neg, "Sqrt": torch.sqrt, "Reciprocal": torch.reciprocal, "Exp": torch.exp,
             "Log": torch.log, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Erf": torch.special.erf,
             "Relu": torch.relu, "Sin": torch.sin, "Cos": torch.cos, "Identity": lambda t: t.clone()}
    if op in unary:
        return [unary[op](xs[0])]
    if op == "Softmax":
        return [torch.softmax(xs[0], a.get("axis", -1))]
    if op == "LogSoftmax":
        return [torch.log_softmax(xs[0], a.get("axis", -1))]
    if op in ("ReduceSum", "ReduceMean", "ReduceMax"):
        x = xs[0]
        dims = ints(xs[1]) if len(xs) > 1 else list(range(x.dim()))
        keep = bool(a.get("keepdims", 1))
        if op == "ReduceSum":
            return [x.sum(dim=dims, keepdim=keep)]
        if op == "ReduceMean":
            return [x.mean(dim=dims, keepdim=keep)]
        return [torch.amax(x, dim=dims, keepdim=keep)]
    if op == "Gather":
        data, idx = xs
        axis = a.get("axis", 0) % data.dim()
        n = data.shape[axis]
        flat = torch.remainder(idx.reshape(-1), n)
        out = torch.index_select(data, axis, flat)
        return [out.reshape(tuple(data.shape[:axis]) + tuple(idx.shape) + tuple(data.shape[axis + 1:]))]
    if op == "GatherElements":
        return [torch.gather(xs[0], a.get("axis", 0), xs[1])]
    if op == "Reshape":
        shape = [xs[0].shape[i] if v == 0 else v for i, v in enumerate(ints(xs[1]))]
        return [xs[0].reshape(shape)]
    if op == "Transpose":
        return [xs[0].permute(a["perm"])]
    if op == "Unsqueeze":
        x = xs[0]
        for ax in sorted(ints(xs[1])):
            x = x.unsqueeze(ax)
        return [x]
    if op == "Squeeze":
        x = xs[0]
        for ax in sorted((v % x.dim() for v in ints(xs[1])), reverse=True):
            x = x.squeeze(ax)
        return [x]
    if op == "Concat":
        return [torch.cat(xs, dim=a["axis"])]
    if op == "Slice":
        starts, ends = ints(xs[1]), ints(xs[2])
        axes = ints(xs[3]) if len(xs) > 3 else list(range(len(starts)))
        steps = ints(xs[4]) if len(xs) > 4 else [1] * len(starts)
        return [onnx_slice(xs[0], starts, ends, axes, steps)]
    if op == "Split":
        return list(torch.split(xs[0], ints(xs[1]), dim=a.get("axis", 0)))
    if op == "Expand":
        shape = torch.broadcast_shapes(tuple(xs[0].shape), tuple(ints(xs[1])))
        return [xs[0].expand(shape)]
    if op == "Where":
        return [torch.where(xs[0], xs[1], xs[2])]
    if op == "Cast":
        return [xs[0].to(DT[a["to"]])]
    if op == "TopK":
        r = torch.topk(xs[0], ints(xs[1])[0], dim=a.get("axis", -1), largest=bool(a.get("largest", 1)),
                       sorted=bool(a.get("sorted", 1)))
        return [r.values, r.indices]
    if op == "CrossEntropy":
        return [F.cross_entropy(xs[0], xs[1], ignore_index=a.get("ignoreIndex", -100))]
    raise ValueError(f"no torch implementation for {op}")


def dump(t):
    t = t.detach()
    if t.dtype == torch.bool:
        data = [int(v) for v in t.reshape(-1).tolist()]
    elif t.dtype == torch.int64:
        data = [int(v) for v in t.reshape(-1).tolist()]
    else:
        data = [float(v) for v in t.reshape(-1).tolist()]
    name = {torch.float64: "float64", torch.float32: "float32", torch.int64: "int64", torch.bool: "bool"}[t.dtype]
    return {"dtype": name, "shape": list(t.shape), "data": data}


def op_case(case):
    gen = torch.Generator(device="cpu").manual_seed(case["seed"])
    xs = [gen_input(s, case["dtype"], gen) for s in case["inputs"]]
    wrt = [i for i, s in enumerate(case["inputs"]) if s["dist"] not in ("const", "bool")]
    for i in wrt:
        xs[i].requires_grad_(True)
    ys = run_op(case["op"], case["attrs"], xs)
    chosen = case.get("outputs", list(range(len(ys))))
    cgen = torch.Generator(device="cpu").manual_seed(case["seed"] ^ 0x5EED)
    cots = [torch.randn(ys[k].shape, generator=cgen, dtype=torch.float64).to(ys[k].dtype) for k in chosen]
    loss = sum((ys[k] * c).sum() for k, c in zip(chosen, cots))
    grads = torch.autograd.grad(loss, [xs[i] for i in wrt])
    return {
        "inputs": [dump(x) for x in xs],
        "cotangents": [dump(c) for c in cots],
        "outputs": [dump(ys[k]) for k in chosen],
        "grads": {str(i): dump(g) for i, g in zip(wrt, grads)},
    }


def sgd_trajectory(params, loss_fn, lr, steps):
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    losses = []
    for _ in range(steps):
        loss = loss_fn(params)
        grads = torch.autograd.grad(loss, list(params.values()))
        losses.append(float(loss.item()))
        with torch.no_grad():
            params = {k: (p - lr * g).requires_grad_(True) for (k, p), g in zip(params.items(), grads)}
    return losses


def mlp(c):
    gen = torch.Generator(device="cpu").manual_seed(c["seed"])
    f = torch.float32
    labels = torch.randint(0, c["classes"], (c["batch"],), generator=gen, dtype=torch.int64)
    for i in c["ignore"]:
        labels[i] = -100
    params = {
        "w1": torch.randn(c["din"], c["hidden"], generator=gen, dtype=f) / math.sqrt(c["din"]),
        "b1": torch.zeros(c["hidden"], dtype=f),
        "w2": torch.randn(c["hidden"], c["classes"], generator=gen, dtype=f) / math.sqrt(c["hidden"]),
        "b2": torch.zeros(c["classes"], dtype=f),
    }
    x = torch.randn(c["batch"], c["din"], generator=gen, dtype=f)

    def loss_fn(p):
        h = torch.tanh(x @ p["w1"] + p["b1"])
        return F.cross_entropy(h @ p["w2"] + p["b2"], labels, ignore_index=-100)

    return {"params": {k: dump(v) for k, v in params.items()}, "batch": {"x": dump(x), "labels": dump(labels)},
            "losses": sgd_trajectory(params, loss_fn, c["lr"], c["steps"])}


def attention(c):
    gen = torch.Generator(device="cpu").manual_seed(c["seed"])
    f = torch.float32
    B, T, D = c["batch"], c["time"], c["dim"]
    params = {n: torch.randn(D, D, generator=gen, dtype=f) / math.sqrt(D) for n in ("wq", "wk", "wv", "wo")}
    x = torch.randn(B, T, D, generator=gen, dtype=f)
    target = torch.randn(B, T, D, generator=gen, dtype=f)
    mask = torch.triu(torch.full((T, T), -1e9, dtype=f), diagonal=1)

    def loss_fn(p):
        q, k, v = x @ p["wq"], x @ p["wk"], x @ p["wv"]
        s = (q @ k.transpose(1, 2)) * (1 / math.sqrt(D)) + mask
        out = (torch.softmax(s, -1) @ v) @ p["wo"]
        return ((out - target) ** 2).mean()

    return {"params": {k: dump(v) for k, v in params.items()}, "batch": {"x": dump(x), "target": dump(target)},
            "losses": sgd_trajectory(params, loss_fn, c["lr"], c["steps"])}


def main():
    torch.use_deterministic_algorithms(True)
    table = json.loads(CASES.read_text())
    out = {
        "magic": MAGIC, "version": VERSION, "cases_version": table["version"], "torch": torch.__version__,
        "generator": GENERATOR, "seeds": {c["name"]: c["seed"] for c in table["cases"]},
        "cases": {c["name"]: op_case(c) for c in table["cases"]},
        "models": {"mlp": mlp(table["models"]["mlp"]), "attention": attention(table["models"]["attention"])},
    }
    out["seeds"]["mlp"] = table["models"]["mlp"]["seed"]
    out["seeds"]["attention"] = table["models"]["attention"]["seed"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, separators=(",", ":")) + "\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, torch {torch.__version__})")


if __name__ == "__main__":
    main()
