#!/usr/bin/env python3
"""Golden values for the Latent-SFT objectives of @latent-sft/phases (PyTorch + HF transformers, CPU).

Implements, independently from the TypeScript code and straight from the spec (latent-sft-spec.md
§2.5, §2.6, §3.2–§3.5, §4.1–§4.4), on the tiny-llama fixture (packages/models/test/fixtures/tiny-llama,
vocab 256, hidden 64, tied embeddings):
  phase1  Step-3 "union" loss: encoder E = the fixture as an AutoModel with vocabulary 257 (one extra
          row for <|compress_token|> = id 256, drawn here from a seeded normal and stored), run with the
          LTIM additive mask over  P <think> S_1 L S_2 L ... </think>; final normed hidden states at the
          compress positions -> logits h·Wᵀ with W = the DECODER input embedding, detached -> top-4
          softmax -> z = Σ p W[idx] -> scattered into the decoder input embeddings at the -100 slots ->
          decoder (the fixture as a CausalLM) with the LTSuM additive mask and dual-track positions ->
          mean CE over the labels (spacers, </think>, answer). LoRA (r 4, alpha 8, no dropout, random
          non-zero A and B, stored) on E: q,k,v,o,gate,up,down + embed_tokens; on D: q,k,v,o,gate,up,down.
  phase2  P <think> Z x m </think> ANS: teacher top-4 (probs, ids) per slot (stored) -> z = Σ p W[idx]
          at the slots -> decoder + LoRA (as above) with plain causal+padding attention -> loss =
          CE(</think>, answer) + KL(teacher ‖ student at the previous position) over the top-4 ids.
Both use a batch of 2 examples of different lengths (right padding with the pad id 251) and store the
loss and the gradient of EVERY LoRA tensor; the base weights and W are frozen (no gradient).
Masks: boolean keep[q,k] built from the spec's rules, padded rows/columns blocked; a row that keeps
nothing keeps its diagonal (the TS convention; such rows are pad rows, never supervised). Additive
form: 0 keep / finfo(float64).min block. Everything runs in float64 (eager attention) and is stored
as float32 (masks, ids, positions as int64).
Writes OUT_DIR/phase-goldens.safetensors and OUT_DIR/phase-goldens.json (generator, versions, seed,
the handcrafted id parts of every example).
Usage: python3 tools/reference/phase_goldens.py [OUT_DIR]   (default packages/phases/test/fixtures)
"""
import json
import os
import sys

import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import LlamaConfig, LlamaForCausalLM, LlamaModel

SEED = 4321
GENERATOR = "tools/reference/phase_goldens.py"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "packages", "models", "test", "fixtures", "tiny-llama")

V = 256
COMPRESS = 256           # the encoder's extra token
PAD = 251                # pad_token_id of the fixture
PLACEHOLDER = -100
IGNORE = -100
THINK = [240, 241]       # multi-piece markers, as Llama-3's `<` `think` `>`
END_THINK = [242, 243]
R = 2                    # compression rate
K = 4                    # top-k width
LORA_R, LORA_ALPHA = 4, 8.0
SCALING = LORA_ALPHA / LORA_R
LINEAR_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# Handcrafted examples (answer ends with 252, the fixture's second EOS id, which is not the pad id).
PHASE1 = [
    dict(prefix=[10, 11, 12], cot=[50, 51, 52, 53, 54], answer=[30, 31, 252]),
    dict(prefix=[20, 21], cot=[60, 61, 62], answer=[33, 252]),
]
PHASE2 = [
    dict(prefix=[10, 11, 12], m=3, answer=[30, 31, 252]),
    dict(prefix=[20, 21], m=2, answer=[33, 252]),
]


# ---- sequences, masks, positions (spec §2.5, §2.6, §3.3, §3.4, §4.1) -----------------------------------
def chunks(cot):
    return [cot[i:i + R] for i in range(0, len(cot), R)]


def encoder_sequence(ex):
    ids = ex["prefix"] + THINK
    pos = []
    for c in chunks(ex["cot"]):
        ids = ids + c
        pos.append(len(ids))
        ids = ids + [COMPRESS]
    return ids + END_THINK, pos


def decoder_sequence(ex):
    """Label list of the full sequence with everything before the first placeholder removed from the CoT."""
    cs = chunks(ex["cot"])
    ids = ex["prefix"] + THINK
    labels = [IGNORE] * len(ids)
    for i in range(len(cs)):
        ids.append(PLACEHOLDER)
        labels.append(IGNORE)
        if i + 1 < len(cs):
            ids += cs[i + 1]
            labels += cs[i + 1]
    ids += END_THINK + ex["answer"]
    labels += END_THINK + ex["answer"]
    return ids, labels


def latent_sequence(ex):
    s = len(ex["prefix"]) + len(THINK)
    ids = ex["prefix"] + THINK + [PLACEHOLDER] * ex["m"] + END_THINK + ex["answer"]
    labels = [IGNORE] * (s + ex["m"]) + END_THINK + ex["answer"]
    return ids, labels, s


def ltim(ids):
    T = len(ids)
    keep = torch.zeros(T, T, dtype=torch.bool)
    for q in range(T):
        for k in range(q + 1):
            if ids[q] == PAD or ids[k] == PAD:
                continue
            if ids[k] == COMPRESS and q > k:   # no position sees an EARLIER compress token
                continue
            keep[q, k] = True
    return keep


def ltsum(ids):
    T = len(ids)
    slots = [i for i, v in enumerate(ids) if v == PLACEHOLDER]
    first, last = slots[0], slots[-1]
    final = next(i for i in range(last + 1, T) if ids[i:i + len(END_THINK)] == END_THINK)
    seg = []   # ("init",), ("Z", i), ("S", i), ("final",)
    cur = -1
    for p in range(T):
        if p < first:
            seg.append(("init", 0))
        elif p >= final:
            seg.append(("final", 0))
        elif p in slots:
            cur = slots.index(p)
            seg.append(("Z", cur))
        else:
            seg.append(("S", cur))
    keep = torch.zeros(T, T, dtype=torch.bool)
    for q in range(T):
        for k in range(q + 1):
            if ids[q] == PAD or ids[k] == PAD:
                continue
            (sq, iq), (sk, ik) = seg[q], seg[k]
            if sq == "init":
                ok = sk == "init"                                            # rule 1
            elif sq == "S":
                ok = (sk == "S" and ik == iq) or (sk == "Z" and ik == iq)    # rule 2
            elif sq == "Z":
                ok = sk == "init" or (sk == "Z" and ik <= iq)                # rule 3
            else:
                ok = sk in ("init", "Z", "final")                            # rule 4
            keep[q, k] = ok
    return keep


def causal(ids):
    T = len(ids)
    keep = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for p in range(T):
        if ids[p] == PAD:
            keep[p, :] = False
            keep[:, p] = False
    return keep


def dual_track(ids):
    out, first, n = [], -1, 0
    for p, v in enumerate(ids):
        if first < 0 and v != PLACEHOLDER:
            out.append(p)
        elif v == PLACEHOLDER:
            if first < 0:
                first = p
            n += 1
            out.append(first - 1 + n)
        else:
            out.append(out[-1] + 1)
    return out


def pad_to(seq, T, value):
    return seq + [value] * (T - len(seq))


def pad_keep(keep, T):
    out = torch.zeros(T, T, dtype=torch.bool)
    n = keep.shape[0]
    out[:n, :n] = keep
    return out


def additive(keep):
    keep = keep.clone()
    for q in range(keep.shape[0]):
        if not keep[q].any():
            keep[q, q] = True
    minv = torch.finfo(torch.float64).min
    return torch.where(keep, torch.zeros((), dtype=torch.float64), torch.full((), minv, dtype=torch.float64))


# ---- models and LoRA ------------------------------------------------------------------------------------
class LoraLinear(torch.nn.Module):
    """PEFT Linear without dropout: y = x Wᵀ + s · (x Aᵀ) Bᵀ."""

    def __init__(self, base, A, B):
        super().__init__()
        self.base, self.A, self.B = base, A, B

    def forward(self, x):
        return self.base(x) + SCALING * (x @ self.A.t()) @ self.B.t()


class LoraEmbedding(torch.nn.Module):
    """PEFT Embedding: y = W[ids] + s · (Aᵀ[ids]) Bᵀ, A [r, V], B [D, r]."""

    def __init__(self, base, A, B):
        super().__init__()
        self.base, self.A, self.B = base, A, B
        self.weight = base.weight

    def forward(self, ids):
        return self.base(ids) + SCALING * torch.nn.functional.embedding(ids, self.A.t()) @ self.B.t()


def config(vocab):
    with open(os.path.join(FIXTURE, "config.json")) as f:
        d = json.load(f)
    d = {k: v for k, v in d.items() if k not in ("architectures", "model_type")}
    d["vocab_size"] = vocab
    cfg = LlamaConfig(**d)
    cfg._attn_implementation = "eager"
    return cfg


def load_decoder(weights):
    model = LlamaForCausalLM(config(V)).double()
    missing, unexpected = model.load_state_dict({k: v.double() for k, v in weights.items()}, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    model.tie_weights()
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(), "lm_head not tied"
    return model.eval()


def load_encoder(weights, extra_row):
    model = LlamaModel(config(V + 1)).double()
    sd = {k[len("model."):]: v.double() for k, v in weights.items() if k.startswith("model.")}
    sd["embed_tokens.weight"] = torch.cat([sd["embed_tokens.weight"], extra_row[None].double()], 0)
    model.load_state_dict(sd, strict=True)
    return model.eval()


def add_lora(layers_owner, prefix, g, lora, embed=None):
    """Wraps the linear modules of every layer (and optionally the embedding) with random LoRA pairs.
    Returns {peft_name: tensor} (leaf tensors requiring grad)."""
    layers = layers_owner.layers
    cfg = layers_owner.config
    if embed is not None:
        A = (0.1 * torch.randn(LORA_R, cfg.vocab_size, generator=g, dtype=torch.float64)).requires_grad_()
        B = (0.1 * torch.randn(cfg.hidden_size, LORA_R, generator=g, dtype=torch.float64)).requires_grad_()
        layers_owner.embed_tokens = LoraEmbedding(layers_owner.embed_tokens, A, B)
        lora[f"{prefix}embed_tokens.lora_embedding_A"] = A
        lora[f"{prefix}embed_tokens.lora_embedding_B"] = B
    for i, layer in enumerate(layers):
        for m in LINEAR_TARGETS:
            block = layer.self_attn if m in ("q_proj", "k_proj", "v_proj", "o_proj") else layer.mlp
            base = getattr(block, m)
            A = (0.1 * torch.randn(LORA_R, base.in_features, generator=g, dtype=torch.float64)).requires_grad_()
            B = (0.1 * torch.randn(base.out_features, LORA_R, generator=g, dtype=torch.float64)).requires_grad_()
            setattr(block, m, LoraLinear(base, A, B))
            kind = "self_attn" if block is layer.self_attn else "mlp"
            lora[f"{prefix}layers.{i}.{kind}.{m}.lora_A.weight"] = A
            lora[f"{prefix}layers.{i}.{kind}.{m}.lora_B.weight"] = B
    return lora


def freeze(model):
    for p in model.parameters():
        p.requires_grad_(False)


def soft_topk(logits, W):
    top = logits.topk(K, dim=-1)
    probs = torch.softmax(top.values, dim=-1)
    return probs, top.indices, torch.einsum("bmk,bmkd->bmd", probs, W[top.indices])


# ---- phase 1 (union) ------------------------------------------------------------------------------------
def phase1(weights, g, out):
    extra = 0.08 * torch.randn(64, generator=g, dtype=torch.float64)
    enc = load_encoder(weights, extra)
    dec = load_decoder(weights)
    freeze(enc)
    freeze(dec)
    lora = {}
    add_lora(enc, "encoder.base_model.model.", g, lora, embed=True)
    add_lora(dec.model, "decoder.base_model.model.model.", g, lora)

    encs = [encoder_sequence(ex) for ex in PHASE1]
    decs = [decoder_sequence(ex) for ex in PHASE1]
    B = len(PHASE1)
    Te = max(len(e[0]) for e in encs)
    Td = max(len(d[0]) for d in decs)
    m = max(len(e[1]) for e in encs)
    enc_ids = torch.tensor([pad_to(e[0], Te, PAD) for e in encs])
    enc_keep = torch.stack([pad_keep(ltim(e[0]), Te) for e in encs])
    enc_pos = torch.arange(Te).repeat(B, 1)
    cpos = torch.tensor([pad_to(e[1], m, 0) for e in encs])
    valid = torch.tensor([[i < len(e[1]) for i in range(m)] for e in encs])
    dec_ids = torch.tensor([pad_to(d[0], Td, PAD) for d in decs])
    dec_keep = torch.stack([pad_keep(ltsum(d[0]), Td) for d in decs])
    dec_pos = torch.tensor([pad_to(dual_track(d[0]), Td, 0) for d in decs])
    labels = torch.tensor([pad_to(d[1], Td, IGNORE) for d in decs])

    h = enc(input_ids=enc_ids, attention_mask=torch.stack([additive(k) for k in enc_keep])[:, None],
            position_ids=enc_pos).last_hidden_state                       # [B, Te, d]
    hs = h[torch.arange(B)[:, None], cpos]                                # [B, m, d]
    W = dec.model.embed_tokens.weight.detach()                            # decoder's 256 rows, detached
    probs, idx, z = soft_topk(hs @ W.t(), W)
    emb = W[torch.where(dec_ids == PLACEHOLDER, torch.full_like(dec_ids, PAD), dec_ids)].clone()
    for b, d in enumerate(decs):
        slots = [i for i, v in enumerate(d[0]) if v == PLACEHOLDER]
        assert len(slots) == len(encs[b][1]), "compress count != placeholder count"
        for j, p in enumerate(slots):
            emb[b, p] = z[b, j]
    res = dec(inputs_embeds=emb, attention_mask=torch.stack([additive(k) for k in dec_keep])[:, None],
              position_ids=dec_pos, labels=labels)
    res.loss.backward()
    assert W.grad is None and dec.model.embed_tokens.weight.grad is None

    out["phase1.encoder_input_ids"] = enc_ids
    out["phase1.encoder_keep"] = enc_keep
    out["phase1.encoder_position_ids"] = enc_pos
    out["phase1.compress_positions"] = cpos
    out["phase1.latent_valid"] = valid
    out["phase1.decoder_ids"] = dec_ids
    out["phase1.decoder_keep"] = dec_keep
    out["phase1.position_ids"] = dec_pos
    out["phase1.labels"] = labels
    out["phase1.compress_embedding"] = extra
    out["phase1.latent_probs"] = probs.detach()
    out["phase1.latent_indices"] = idx
    out["phase1.loss"] = res.loss.detach().reshape(1)
    for name, t in lora.items():
        out[f"phase1.param.{name}"] = t.detach()
        out[f"phase1.grad.{name}"] = t.grad.detach()


# ---- phase 2 --------------------------------------------------------------------------------------------
def phase2(weights, g, out):
    dec = load_decoder(weights)
    freeze(dec)
    lora = add_lora(dec.model, "base_model.model.model.", g, {})
    seqs = [latent_sequence(ex) for ex in PHASE2]
    B = len(PHASE2)
    T = max(len(s[0]) for s in seqs)
    m = max(ex["m"] for ex in PHASE2)
    ids = torch.tensor([pad_to(s[0], T, PAD) for s in seqs])
    labels = torch.tensor([pad_to(s[1], T, IGNORE) for s in seqs])
    # Teacher top-K per slot: random distinct ids (never the latent-end id 242), softmax of random logits.
    t_idx = torch.zeros(B, m, K, dtype=torch.int64)
    t_probs = torch.zeros(B, m, K, dtype=torch.float64)
    for b, ex in enumerate(PHASE2):
        for t in range(ex["m"]):
            t_idx[b, t] = torch.randperm(200, generator=g)[:K]
            t_probs[b, t] = torch.softmax(2 * torch.randn(K, generator=g, dtype=torch.float64), -1)
    W = dec.model.embed_tokens.weight.detach()
    emb = W[torch.where(ids == PLACEHOLDER, torch.full_like(ids, PAD), ids)].clone()
    for b, (s_ids, _, s) in enumerate(seqs):
        for t in range(PHASE2[b]["m"]):
            emb[b, s + t] = (t_probs[b, t, :, None] * W[t_idx[b, t]]).sum(0)
    attn = (ids != PAD).to(torch.int64)                 # 2-D mask, -100 slots count as real tokens
    pos = torch.arange(T).repeat(B, 1)
    res = dec(inputs_embeds=emb, attention_mask=attn, position_ids=pos, labels=labels)
    o = res.logits
    kl_sum = 0.0
    for b, (_, _, s) in enumerate(seqs):
        e = s + PHASE2[b]["m"]
        logp = torch.log_softmax(o[b, s - 1:e - 1], -1)              # the previous position predicts Z_t
        p = t_probs[b, :PHASE2[b]["m"]]
        q = p / (p.sum(-1, keepdim=True) + 1e-12)
        picked = logp.gather(-1, t_idx[b, :PHASE2[b]["m"]])
        kl_t = (q * (torch.log(q.clamp_min(1e-12)) - picked)).sum(-1)
        kl_sum = kl_sum + kl_t.mean()
    kl = kl_sum / B
    loss = 1.0 * res.loss + 1.0 * kl
    loss.backward()

    out["phase2.input_ids"] = ids
    out["phase2.labels"] = labels
    out["phase2.teacher_probs"] = t_probs
    out["phase2.teacher_indices"] = t_idx
    out["phase2.latent_start"] = torch.tensor([s for _, _, s in seqs])
    out["phase2.loss"] = loss.detach().reshape(1)
    out["phase2.ce"] = res.loss.detach().reshape(1)
    out["phase2.kl"] = kl.detach().reshape(1)
    for name, t in lora.items():
        out[f"phase2.param.{name}"] = t.detach()
        out[f"phase2.grad.{name}"] = t.grad.detach()


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "packages", "phases", "test", "fixtures")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(SEED)
    weights = load_file(os.path.join(FIXTURE, "model.safetensors"))
    g = torch.Generator().manual_seed(SEED)
    out = {}
    phase1(weights, g, out)
    phase2(weights, g, out)
    tensors = {k: (v.float() if v.is_floating_point() else v.to(torch.int64)).contiguous().clone() for k, v in out.items()}
    save_file(tensors, os.path.join(out_dir, "phase-goldens.safetensors"),
              metadata={"generator": GENERATOR, "seed": str(SEED)})
    meta = {
        "generator": GENERATOR, "seed": SEED, "torch": torch.__version__, "transformers": transformers.__version__,
        "python": sys.version.split()[0], "attn_implementation": "eager", "compute_dtype": "float64",
        "stored_dtype": "float32", "fixture": "packages/models/test/fixtures/tiny-llama",
        "ids": {"vocab": V, "compress": COMPRESS, "pad": PAD, "placeholder": PLACEHOLDER, "ignore": IGNORE,
                "think": THINK, "end_think": END_THINK},
        "r": R, "k": K, "lora": {"r": LORA_R, "alpha": LORA_ALPHA, "dropout": 0.0,
                                 "encoder_targets": LINEAR_TARGETS + ["embed_tokens"], "decoder_targets": LINEAR_TARGETS},
        "phase1_examples": PHASE1, "phase2_examples": PHASE2,
        "cases": {
            "phase1": "union step: LTIM encoder (vocab 257) -> soft top-4 latents (W = decoder embedding, detached) -> "
                      "LTSuM decoder with dual-track positions -> mean CE; grad.<name> for every LoRA tensor",
            "phase2": "teacher top-4 soft embeddings at the slots, causal+padding decoder -> CE + KL (previous position); "
                      "grad.<name> for every LoRA tensor",
        },
        "tensors": {k: list(v.shape) for k, v in sorted(tensors.items())},
    }
    with open(os.path.join(out_dir, "phase-goldens.json"), "w") as f:
        json.dump(meta, f, indent=2)
    print("phase1 loss", float(tensors["phase1.loss"]), "phase2 loss", float(tensors["phase2.loss"]),
          "ce", float(tensors["phase2.ce"]), "kl", float(tensors["phase2.kl"]))


if __name__ == "__main__":
    main()
