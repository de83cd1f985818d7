// The experiment plans: the stage graph (order, dependencies, what each row changes), and every stage
// config of every committed plan accepted by its app's own CLI (`--print-config`), so a typo in a plan
// fails here and not an hour into a GPU run.
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@latent-sft/core';
import { runCli as cacheLatentsCli } from '@latent-sft/cache-latents-app';
import { runCli as cotSftCli } from '@latent-sft/cot-sft-app';
import { runCli as evalCli } from '@latent-sft/eval-app';
import { runCli as mergeLoraCli } from '@latent-sft/merge-lora-app';
import { runCli as phase1Cli } from '@latent-sft/phase1-app';
import { runCli as phase2Cli } from '@latent-sft/phase2-app';
import { describe, expect, it } from 'vitest';
import { type Stage, checkOrder, planSchema, selectStages, stageGraph } from './plan.js';

const PLANS = join(import.meta.dirname, '..', '..', 'configs', 'table1');
const plans = readdirSync(PLANS)
  .filter((f) => f.endsWith('.json'))
  .sort();

async function printConfig(st: Stage, file: string): Promise<Record<string, unknown>> {
  let text = '';
  const io = {
    logger: silentLogger,
    write: (t: string) => {
      text += t;
    },
  };
  const argv = (cmd: string[]) => [...cmd, '--config', file, '--print-config'];
  switch (st.app) {
    case 'cot-sft':
      await cotSftCli(argv([]), io);
      break;
    case 'phase1-encoder':
      await phase1Cli(argv(['encoder']), io);
      break;
    case 'phase1-decoder':
      await phase1Cli(argv(['decoder']), io);
      break;
    case 'phase1-union':
      await phase1Cli(argv(['union']), io);
      break;
    case 'merge-lora':
      await mergeLoraCli(argv([]), io);
      break;
    case 'cache-latents':
      await cacheLatentsCli(argv([]), io);
      break;
    case 'phase2':
      await phase2Cli(argv([]), io);
      break;
    case 'eval':
      await evalCli(argv(['run']), io.write, silentLogger);
      break;
  }
  return JSON.parse(text) as Record<string, unknown>;
}

describe('experiment plans', () => {
  it('the committed plans are table1/{gsm8k,multiplication,multiplication-4x4,multiplication-official,smoke}.json', () => {
    expect(plans).toEqual(['gsm8k.json', 'multiplication-4x4.json', 'multiplication-official.json', 'multiplication.json', 'smoke.json']);
  });

  for (const name of plans) {
    it(`${name}: every stage config is accepted by its app`, async () => {
      const plan = planSchema.parse(JSON.parse(readFileSync(join(PLANS, name), 'utf8')));
      const dir = mkdtempSync(join(tmpdir(), 'plan-'));
      const stages = stageGraph(plan, dir);
      checkOrder(stages);
      expect(stages).toHaveLength((2 + 6 * plan.rows.length + 2 + plan.rows.length) * (plan.trainingSeeds?.length ?? 1));
      for (const st of stages) {
        const file = join(dir, `${st.id.replaceAll('/', '__')}.json`);
        writeFileSync(file, JSON.stringify(st.config));
        const resolved = await printConfig(st, file);
        expect(resolved['out'], st.id).toBe(join(dir, st.out));
      }
    }, 60_000);
  }

  it('a misspelt key in a stage config is refused by the app', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plan-bad-'));
    const file = join(dir, 'cot.json');
    writeFileSync(file, JSON.stringify({ out: join(dir, 'cot'), trian: { steps: 3 } }));
    const st: Stage = { id: 'cot', app: 'cot-sft', out: 'cot', deps: [], config: {} };
    await expect(printConfig(st, file)).rejects.toThrow(/trian.*unknown key/);
  });
});

describe('stageGraph', () => {
  const plan = planSchema.parse(JSON.parse(readFileSync(join(PLANS, 'smoke.json'), 'utf8')));
  const stages = stageGraph(plan, '/x', '/data');
  const byId = new Map(stages.map((s) => [s.id, s]));
  const cfg = (id: string) => (byId.get(id) as Stage).config;

  it('chains each row on the CoT-SFT model and evaluates every row in its mode', () => {
    expect(byId.get('r4/phase1-encoder')?.deps).toEqual(['cot']);
    expect(cfg('r4/phase1-encoder')['base']).toBe('/x/cot/hf');
    expect(byId.get('r4/phase2')?.deps).toEqual(['r4/m1', 'r4/latents']);
    expect(cfg('r4/m1')).toMatchObject({ base: '/x/r4/phase1-decoder/hf', adapter: '/x/r4/phase1-union/lora_adapter/decoder_weight' });
    expect(cfg('eval/no-cot')).toMatchObject({ mode: 'no-cot', model: '/x/no-cot/hf', 'method-name': 'No-CoT', 'data-dir': '/data' });
    expect(cfg('eval/cot')).toMatchObject({ mode: 'explicit', model: '/x/cot/hf', 'method-name': 'CoT-SFT' });
    expect(cfg('eval/r4')).toMatchObject({ mode: 'latent', model: '/x/r4/phase2/hf', 'method-name': 'Latent-SFT(4)' });
    expect(cfg('no-cot')).toMatchObject({ variant: 'no-cot', data: { dataDir: '/data' } });
    expect(byId.get('cot')?.examples).toBe((plan.stages.cotSft.train['steps'] as number) * (plan.stages.cotSft.train['batchSize'] as number));
  });

  it('passes each ablation switch to the stages it changes, and only those', () => {
    // The row's latent spec goes to the phase-1 encoder stage only; later stages read its latent.json.
    expect(cfg('r4-hidden/phase1-encoder')['latent']).toEqual({ kind: 'hidden', compressionRate: 4, ltim: true, ltsum: true });
    expect(cfg('r4/phase1-encoder')['latent']).toEqual({ kind: 'soft-topk', compressionRate: 4, topK: 10, ltim: true, ltsum: true });
    expect(cfg('r2-no-ltim/phase1-encoder')['latent']).toEqual({ kind: 'soft-topk', compressionRate: 2, topK: 10, ltim: false, ltsum: true });
    for (const id of ['r4-hidden/phase1-decoder', 'r4-hidden/phase1-union', 'r4-hidden/latents', 'r4-hidden/phase2', 'r2-no-ltim/latents']) {
      for (const f of ['latent', 'r', 'k', 'ltim', 'ltsum']) expect(cfg(id)[f], `${id} ${f}`).toBeUndefined();
    }
    expect(cfg('r4-hidden/phase2')['gumbel']).toMatchObject({ enabled: false });
    expect(cfg('r4/phase2')['gumbel']).toMatchObject({ enabled: true });
  });

  it('trainingSeeds: the whole graph once per seed under seed-<t>/, train.seed t, init seed model.initSeed + t, labels suffixed', () => {
    const seeded = planSchema.parse({ ...plan, trainingSeeds: [4, 9] });
    const st = stageGraph(seeded, '/x');
    checkOrder(st);
    expect(st).toHaveLength(2 * stages.length);
    const by = new Map(st.map((s) => [s.id, s]));
    const c = (id: string) => (by.get(id) as Stage).config;
    for (const t of [4, 9]) {
      const pre = `seed-${t}/`;
      expect(st.filter((s) => s.id.startsWith(pre)).map((s) => s.id.slice(pre.length))).toEqual(stages.map((s) => s.id));
      expect(c(`${pre}cot`)).toMatchObject({ out: `/x/${pre}cot`, base: { initSeed: plan.model.initSeed + t }, train: { seed: t } });
      expect(c(`${pre}r4/phase1-union`)).toMatchObject({
        train: { seed: t },
        encoder: `/x/${pre}r4/phase1-encoder/hf`,
        decoder: `/x/${pre}r4/phase1-decoder/hf`,
      });
      expect(c(`${pre}r4/phase2`)['train']).toMatchObject({ seed: t });
      expect(by.get(`${pre}r4/phase1-encoder`)?.deps).toEqual([`${pre}cot`]);
      expect(c(`${pre}eval/r4`)).toMatchObject({ model: `/x/${pre}r4/phase2/hf`, 'method-name': `Latent-SFT(4) [training seed ${t}]` });
      expect(c(`${pre}r4/phase1-encoder`)['data']).toEqual(plan.data); // the data stays the same
    }
    // Without trainingSeeds nothing moves and the plan's own seeds stay.
    expect(cfg('cot')['train']).toEqual(plan.stages.cotSft.train);
    expect(planSchema.safeParse({ ...plan, trainingSeeds: [1, 1] }).success).toBe(false);
  });

  it("cache-latents gets the plan's compute dtype, as the training stages do (float32 plan, bfloat16 plan); its app resolves it", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plan-compute-'));
    const latents = async (compute: string, device: string): Promise<[Stage, string]> => {
      const st = stageGraph(planSchema.parse({ ...plan, compute, device }), dir);
      const by = new Map(st.map((s) => [s.id, s]));
      const cache = by.get('r4/latents') as Stage;
      for (const id of ['cot', 'r4/phase1-encoder', 'r4/phase2']) expect((by.get(id) as Stage).config['compute'], id).toBe(compute);
      const file = join(dir, `latents-${compute}-${device}.json`);
      writeFileSync(file, JSON.stringify(cache.config));
      return [cache, file];
    };
    for (const [compute, device] of [
      ['float32', 'cpu'],
      ['bfloat16', 'cuda'],
    ] as const) {
      const [cache, file] = await latents(compute, device);
      expect(cache.config).toMatchObject({ compute, device });
      expect(await printConfig(cache, file)).toMatchObject({ compute, device, out: join(dir, 'r4', 'latents') });
    }
    // bfloat16 on the CPU: passed on as the plan says (never swapped for another dtype); the app refuses it.
    const [cache, file] = await latents('bfloat16', 'cpu');
    expect(cache.config['compute']).toBe('bfloat16');
    await expect(printConfig(cache, file)).rejects.toThrow(/bfloat16 needs --device cuda/);
  });

  it('passes the select block to the three phase-1 stages only', () => {
    const sel = { metric: 'gold-cot-exact', examples: 32 };
    const p = planSchema.parse({ ...plan, stages: { ...plan.stages, phase1Decoder: { ...plan.stages.phase1Decoder, select: sel } } });
    const st = new Map(stageGraph(p, '/x').map((s) => [s.id, s.config]));
    expect(st.get('r4/phase1-decoder')?.['select']).toEqual(sel);
    expect(st.get('r4/phase1-encoder')?.['select']).toEqual({});
    expect(st.get('r4/phase2')?.['select']).toBeUndefined();
  });

  it('--only: the named stages and their transitive dependencies, in order; an unknown id in one line', () => {
    expect(selectStages(stages, ['eval/cot']).map((s) => s.id)).toEqual(['cot', 'eval/cot']);
    expect(selectStages(stages, ['r4/m1', 'eval/no-cot']).map((s) => s.id)).toEqual([
      'no-cot',
      'cot',
      'r4/phase1-encoder',
      'r4/phase1-decoder',
      'r4/phase1-union',
      'r4/m1',
      'eval/no-cot',
    ]);
    expect(() => selectStages(stages, ['eval/r9'])).toThrow(/field 'only': no stage 'eval\/r9' in this plan/);
  });

  it('rejects duplicate row ids and bad plans', () => {
    const dup = { ...plan, rows: [plan.rows[0], plan.rows[0]] } as typeof plan;
    expect(() => stageGraph(dup, '/x')).toThrow(/duplicate stage ids/);
    expect(planSchema.safeParse({ ...plan, rows: [{ id: 'Bad Id', label: 'x', r: 4 }] }).success).toBe(false);
    expect(planSchema.safeParse({ ...plan, extra: 1 }).success).toBe(false);
    expect(() => checkOrder([{ id: 'a', app: 'eval', out: 'a', deps: ['b'], config: {} }])).toThrow(/depends on b/);
  });
});
