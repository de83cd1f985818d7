// The config schemas of the phase apps (one zod schema per app: defaults, flags, help and validation;
// see @latent-sft/config) and the blocks they share: data, training, LoRA, device. The defaults are
// the tiny CPU pipeline (docs/pipeline.md); real runs override them from a --config file.
import { defineConfig } from '@latent-sft/config';
import { LATENT_KIND_NAMES } from '@latent-sft/latent';
import { z } from 'zod';

/** Config schema version of every phase app (bump when a field changes meaning). */
export const SCHEMA_VERSION = 1;

const out = z.string().min(1).describe('output folder of this phase (must not hold another run)');
const device = z.enum(['cpu', 'cuda']).default('cpu').describe('execution device');
const allowConfigFields = z
  .string()
  .default('')
  .describe(
    'comma-separated config.json / adapter_config.json fields to load although unknown or unsupported (they are ignored: the model may then differ from HF)',
  );
const resume = z.boolean().default(false).describe('continue the run already in the output folder');
const allowConfigChange = z
  .boolean()
  .default(false)
  .describe('with --resume: continue under a config that differs from the one the run was started with (recorded in phase.json)');

/** Which problems to train on and how many. */
export const dataSchema = z
  .object({
    source: z
      .enum(['multiplication', 'gsm8k-aug'])
      .default('multiplication')
      .describe('multiplication: generated partial-product CoT; gsm8k-aug: GSM8K train with GSM8k-Aug equation CoT'),
    count: z.number().int().positive().default(48).describe('number of training examples'),
    digitsA: z.number().int().min(1).max(12).default(2).describe('digits of the first factor (multiplication)'),
    digitsB: z.number().int().min(1).max(12).default(2).describe('digits of the second factor (multiplication)'),
    split: z
      .enum(['train', 'all'])
      .default('train')
      .describe("multiplication: 'train' never draws a problem of the held-out test split (eval dataset multiplication-<A>x<B>); 'all' ignores the split"),
    seed: z.number().int().min(0).default(7).describe('seed of the generator / of the subset drawn from the dataset'),
    maxTokens: z.number().int().positive().default(512).describe('leave out examples whose full CoT sequence is longer (gsm8k-aug)'),
    dataDir: z.string().optional().describe("data folder (default: the repo's data/)"),
  })
  .prefault({})
  .describe('training data');

/** The optimisation settings of one phase (defaults overridden per app). */
function trainSchema(d: { steps: number; lr: number; batchSize: number }) {
  return z
    .object({
      steps: z.number().int().positive().default(d.steps).describe('optimizer steps'),
      batchSize: z.number().int().positive().default(d.batchSize).describe('examples per step'),
      lr: z.number().positive().default(d.lr).describe('peak learning rate (AdamW)'),
      schedule: z.enum(['linear', 'cosine', 'constant']).default('linear').describe('LR schedule after the warmup (DeepSpeed WarmupDecayLR = linear)'),
      warmupRatio: z.number().min(0).max(1).default(0.05).describe('warmup steps as a fraction of steps (rounded up)'),
      weightDecay: z.number().min(0).default(0.01).describe('AdamW decoupled weight decay'),
      clipNorm: z.number().positive().default(1).describe('global gradient-norm clip'),
      seed: z.number().int().min(0).default(42).describe('seed of data order and LoRA init'),
      checkpointEvery: z.number().int().min(0).default(0).describe('save every N steps (0: only after the last)'),
      keepLast: z.number().int().positive().default(2).describe('checkpoints kept'),
    })
    .prefault({})
    .describe('training');
}

/** The paper's LoRA (spec §3, every official stage-1/2 script): r 64, alpha 2r = 128, dropout 0.1. */
export const PAPER_LORA = { r: 64, dropout: 0.1 } as const;

function loraSchema() {
  return z
    .object({
      r: z.number().int().positive().default(PAPER_LORA.r).describe('LoRA rank (paper: 64)'),
      alpha: z.number().positive().optional().describe('LoRA alpha (default 2r, as the official scripts: 128 at r 64)'),
      dropout: z.number().min(0).max(0.99).default(PAPER_LORA.dropout).describe('LoRA dropout (paper: 0.1)'),
    })
    .prefault({})
    .describe('LoRA on q,k,v,o,gate,up,down_proj (+ embed_tokens for the encoder), as the official scripts');
}

const compute = z.enum(['float32', 'float16', 'bfloat16']).default('float32').describe('compute dtype (float32 masters)');
// Run control (RUN_CONTROL_KEYS): the same weights bit for bit either way, so not part of the config hash.
const recompute = z
  .enum(['none', 'layers'])
  .default('none')
  .describe(
    "activation recomputation: 'layers' keeps only each decoder layer's input for the backward and recomputes the layer (less memory, one more forward)",
  );

/** cot-sft: explicit CoT SFT (base → M0) or the No-CoT baseline. */
export const cotSftSchema = z
  .object({
    out,
    allowConfigFields,
    base: z
      .discriminatedUnion('kind', [
        z.object({
          kind: z.literal('init'),
          hiddenSize: z.number().int().positive().default(64).describe('hidden size of the random-init Llama-3-shaped model'),
          intermediateSize: z.number().int().positive().default(128).describe('MLP width'),
          layers: z.number().int().positive().default(2).describe('decoder layers'),
          heads: z.number().int().positive().default(4).describe('attention heads'),
          kvHeads: z.number().int().positive().default(2).describe('key/value heads'),
          initSeed: z.number().int().min(0).default(1).describe('seed of the weight init'),
          vocab: z
            .enum(['full', 'corpus'])
            .default('full')
            .describe(
              "full: the tokenizer's whole vocabulary; corpus: only the ids of the training data + special tokens + the 256 byte tokens (vocab_subset.json), for small models trained from scratch",
            ),
        }),
        z.object({ kind: z.literal('checkpoint'), dir: z.string().min(1).describe('HF checkpoint folder (config.json, model.safetensors, tokenizer files)') }),
      ])
      .default({ kind: 'init', hiddenSize: 64, intermediateSize: 128, layers: 2, heads: 4, kvHeads: 2, initSeed: 1, vocab: 'full' })
      .describe('base model'),
    tokenizer: z.enum(['llama-3.2', 'qwen3']).default('llama-3.2').describe('tokenizer written into the model folder (random-init base only)'),
    variant: z.enum(['cot', 'no-cot']).default('cot').describe('cot: explicit CoT SFT (M0); no-cot: the No-CoT baseline'),
    data: dataSchema,
    train: trainSchema({ steps: 40, lr: 3e-3, batchSize: 4 }),
    compute,
    recompute,
    params: z
      .enum(['float32', 'bfloat16'])
      .default('float32')
      .describe("storage of the parameters and AdamW moments: float32 masters, or bfloat16 (PyTorch's bf16 recipe; needs compute bfloat16)"),
    device,
    resume,
    allowConfigChange,
  })
  .refine((c) => c.params === 'float32' || c.compute === 'bfloat16', {
    path: ['params'],
    message: 'bfloat16 parameters need compute bfloat16 (the forward reads them as they are)',
  });
export const cotSftConfig = defineConfig(cotSftSchema);

/**
 * The latent spec fields a config may set (@latent-sft/latent LatentSpec). Phase 1's encoder step
 * declares the spec (unset fields: DEFAULT_LATENT_SPEC); every later phase reads the latent.json of its
 * input folders, takes unset fields from there and refuses a field that differs.
 */
export const latentSpecSchema = z
  .object({
    kind: z
      .enum(LATENT_KIND_NAMES)
      .optional()
      .describe('latent kind: soft-topk (v2), soft-full (v1) or hidden (ablation: the encoder state itself); default: recorded in latent.json, else soft-topk'),
    compressionRate: z.number().int().positive().optional().describe('CoT tokens per latent (default: recorded, else 4)'),
    topK: z.number().int().positive().optional().describe('top-k width of the soft embedding (default: recorded, else 10)'),
    ltim: z.boolean().optional().describe('LTIM encoder mask (false: causal ablation; default: recorded, else true)'),
    ltsum: z.boolean().optional().describe('LTSuM decoder mask (false: causal ablation; default: recorded, else true)'),
  })
  .prefault({})
  .describe('latent spec (latent.json of the input model)');

/** The held-out selections of the phase-1 apps: the metric compared and whether higher is better. */
export const PHASE1_SELECTIONS = {
  'gold-cot-exact': { metric: 'exact', mode: 'max' },
  'gold-cot-ce': { metric: 'ce', mode: 'min' },
} as const;

/** Best-checkpoint selection of a phase-1 step by the gold-CoT evaluation (the official scripts' choice of checkpoint). */
const selectSchema = z
  .object({
    metric: z
      .enum(['none', 'gold-cot-exact', 'gold-cot-ce'])
      .default('none')
      .describe(
        'score every checkpoint (train.checkpointEvery) on held-out problems with latents from their gold CoT and output the best one: ' +
          'gold-cot-exact = greedy answer accuracy (max), gold-cot-ce = answer CE (min); none: the last checkpoint',
      ),
    examples: z
      .number()
      .int()
      .positive()
      .default(64)
      .describe('held-out problems: the next N of the training data stream after data.count (never trained on; multiplication: never in the test split)'),
    batchSize: z.number().int().positive().default(64).describe('held-out problems per forward'),
  })
  .prefault({})
  .describe('best-checkpoint selection by a held-out gold-CoT evaluation');

const phase1Common = {
  select: selectSchema,
  out,
  allowConfigFields,
  latent: latentSpecSchema,
  positions: z.enum(['dual-track', 'contiguous']).default('dual-track').describe('decoder position ids (v2 dual-track, v1 contiguous)'),
  data: dataSchema,
  lora: loraSchema(),
  compute,
  recompute,
  device,
  resume,
  allowConfigChange,
};

/** phase1 encoder: LoRA on E (incl. embed_tokens) from M0 + compress token; D = M0 frozen. */
export const phase1EncoderSchema = z.object({
  ...phase1Common,
  base: z.string().min(1).describe('M0: the CoT-SFT HF checkpoint folder (with tokenizer files)'),
  train: trainSchema({ steps: 30, lr: 1e-2, batchSize: 4 }),
});
export const phase1EncoderConfig = defineConfig(phase1EncoderSchema);

/** phase1 decoder: E = merged step-1 encoder (frozen), LoRA on D = M0. */
export const phase1DecoderSchema = z.object({
  ...phase1Common,
  base: z.string().min(1).describe('M0: the decoder to adapt (HF checkpoint folder with tokenizer files)'),
  encoder: z.string().min(1).describe('merged step-1 encoder (phase1 encoder output hf/)'),
  train: trainSchema({ steps: 30, lr: 1e-2, batchSize: 4 }),
});
export const phase1DecoderConfig = defineConfig(phase1DecoderSchema);

/** phase1 union: new LoRAs on the merged step-1 encoder and the merged step-2 decoder. */
export const phase1UnionSchema = z.object({
  ...phase1Common,
  encoder: z.string().min(1).describe('merged step-1 encoder (phase1 encoder output hf/)'),
  decoder: z.string().min(1).describe('merged step-2 decoder (phase1 decoder output hf/)'),
  train: trainSchema({ steps: 30, lr: 1e-2, batchSize: 4 }),
});
export const phase1UnionConfig = defineConfig(phase1UnionSchema);

/** merge-lora: adapter + base → HF checkpoint. */
export const mergeLoraSchema = z.object({
  out,
  allowConfigFields,
  base: z.string().min(1).describe('HF checkpoint folder the adapter was trained on'),
  adapter: z.string().min(1).describe('PEFT adapter folder (adapter_config.json + adapter_model.safetensors)'),
});
export const mergeLoraConfig = defineConfig(mergeLoraSchema);

/** cache-latents: top-k teacher distributions of the union encoder over the training set. */
export const cacheLatentsSchema = z
  .object({
    out,
    allowConfigFields,
    encoder: z.string().min(1).describe('merged step-1 encoder (HF folder, vocabulary V+1)'),
    adapter: z.string().optional().describe('union encoder adapter (phase1 union output lora_adapter/encoder_weight); omit for a merged encoder'),
    decoder: z.string().min(1).describe('decoder whose input embedding W scores the latents (M1 or the step-2 decoder; holds the tokenizer)'),
    latent: latentSpecSchema,
    data: dataSchema,
    batchSize: z.number().int().positive().default(8).describe('examples per forward'),
    chunkSize: z.number().int().positive().default(16).describe('examples per chunk file'),
    compute: compute.describe(
      'compute dtype of the encoder: float16 / bfloat16 keep its weights and W in that dtype (a 16-bit checkpoint read as stored) and compute as phase 1 does at that dtype; the cache stays float32 (bfloat16: CUDA only)',
    ),
    device,
    resume,
    allowConfigChange,
  })
  .refine((c) => c.compute !== 'bfloat16' || c.device === 'cuda', {
    path: ['compute'],
    message: "bfloat16 needs --device cuda (ONNX Runtime's CPU provider lacks bfloat16 kernels: MatMul, Mul); use float16 or float32 on the CPU",
  });
export const cacheLatentsConfig = defineConfig(cacheLatentsSchema);

/** phase2: CE + KL from the cached teachers; new LoRA on M1; merged M2. */
export const phase2Schema = z
  .object({
    out,
    allowConfigFields,
    model: z.string().min(1).describe('M1: the merged union decoder (HF folder with tokenizer files)'),
    cache: z.string().min(1).describe('latent cache folder (cache-latents output)'),
    latent: latentSpecSchema,
    data: dataSchema,
    gumbel: z
      .object({
        enabled: z.boolean().default(false).describe('Gumbel-perturb the teachers each epoch (spec §4.3, HEAD; not applicable to hidden latents)'),
        scale: z.number().positive().default(1).describe('noise_scale'),
        temperature: z.number().positive().default(1).describe('gumbel_temperature'),
      })
      .prefault({})
      .describe('Gumbel perturbation of the targets'),
    ceWeight: z.number().min(0).default(1).describe('weight of the answer CE'),
    klWeight: z.number().min(0).default(1).describe('weight of the latent KL (hidden latents: of the hidden-state MSE)'),
    lora: loraSchema(),
    train: trainSchema({ steps: 30, lr: 1e-2, batchSize: 4 }),
    compute,
    recompute,
    device,
    resume,
    allowConfigChange,
  })
  .refine((c) => c.ceWeight > 0 || c.klWeight > 0, {
    path: ['klWeight'],
    message: 'ceWeight and klWeight are both 0: the loss would train nothing; give one of them a positive weight',
  });
export const phase2Config = defineConfig(phase2Schema);
