import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UserError } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { buildCli, defineCommand, defineConfig, type ConfigOf } from './index.js';
import { yargsOptionsFromSchema } from './cli.js';

const schema = z.object({
  seed: z.number().int().default(42).describe('random seed'),
  optim: z
    .object({ lr: z.number().default(1e-4).describe('peak learning rate') })
    .prefault({})
    .describe('optimizer'),
  schedule: z.enum(['linear', 'cosine']).default('linear').describe('LR schedule'),
  bf16: z.boolean().default(false).describe('use bfloat16'),
  mode: z
    .discriminatedUnion('kind', [
      z.object({ kind: z.literal('cot') }),
      z.object({ kind: z.literal('latent'), r: z.number().int().describe('CoT tokens per latent') }),
    ])
    .default({ kind: 'cot' })
    .describe('training mode'),
});
const def = defineConfig(schema);

function harness() {
  const seen: Array<ConfigOf<typeof schema>> = [];
  const printed: string[] = [];
  const cli = buildCli({
    name: 'train-test',
    out: (t) => printed.push(t),
    commands: [
      defineCommand({
        command: 'train',
        describe: 'train a model',
        schema: def,
        handler: (c) => {
          seen.push(c);
        },
      }),
    ],
  });
  return { cli, seen, printed };
}

async function failureOf(argv: string[]): Promise<string> {
  const { cli } = harness();
  const err = await (async () => cli.parseAsync(argv))().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UserError);
  const msg = (err as Error).message;
  expect(msg).not.toContain('\n');
  return msg;
}

describe('yargsOptionsFromSchema', () => {
  it('derives one described flag per field with types, choices and shown defaults', () => {
    const table = yargsOptionsFromSchema(def);
    expect(Object.keys(table)).toEqual(['seed', 'optim.lr', 'schedule', 'bf16', 'mode.kind', 'mode.r']);
    for (const [flag, o] of Object.entries(table)) {
      expect(typeof o.describe === 'string' && o.describe.length > 0, flag).toBe(true);
      expect(o.default, flag).toBeUndefined();
    }
    expect(table['optim.lr']).toMatchObject({ type: 'number', describe: 'peak learning rate', defaultDescription: '0.0001' });
    expect(table['schedule']).toMatchObject({ type: 'string', choices: ['linear', 'cosine'], defaultDescription: 'linear' });
    expect(table['bf16']).toMatchObject({ type: 'boolean', defaultDescription: 'false' });
    expect(table['mode.kind']).toMatchObject({ choices: ['cot', 'latent'], describe: 'training mode', defaultDescription: 'cot' });
    expect(table['mode.r']?.describe).toBe('CoT tokens per latent [when mode.kind is latent]');
  });
});

describe('buildCli', () => {
  it('parses dotted flags, union fields and negated booleans into the typed config', async () => {
    const { cli, seen } = harness();
    await cli.parseAsync(['train', '--optim.lr', '3e-4', '--mode.kind', 'latent', '--mode.r', '4', '--no-bf16', '--seed', '1']);
    expect(seen).toEqual([{ seed: 1, optim: { lr: 3e-4 }, schedule: 'linear', bf16: false, mode: { kind: 'latent', r: 4 } }]);
  });

  it('--config file values are kept unless a flag overrides them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cli-test-'));
    const file = join(dir, 'run.json');
    writeFileSync(file, JSON.stringify({ seed: 5, optim: { lr: 2e-5 }, bf16: true }));
    const { cli, seen } = harness();
    await cli.parseAsync(['train', '--config', file, '--seed', '9']);
    expect(seen).toEqual([{ seed: 9, optim: { lr: 2e-5 }, schedule: 'linear', bf16: true, mode: { kind: 'cot' } }]);
  });

  it('--print-config prints the resolved config and does not run the handler', async () => {
    const { cli, seen, printed } = harness();
    await cli.parseAsync(['train', '--print-config', '--schedule', 'cosine']);
    expect(seen).toEqual([]);
    expect(JSON.parse(printed.join(''))).toEqual({ seed: 42, optim: { lr: 1e-4 }, schedule: 'cosine', bf16: false, mode: { kind: 'cot' } });
  });

  it('strict: yargs itself rejects an unknown flag (raw .fail() capture)', async () => {
    const { cli, seen } = harness();
    const captured: string[] = [];
    const run = async () =>
      cli
        .fail((msg, e) => {
          captured.push(msg ?? e?.message ?? '');
          throw e ?? new Error(msg);
        })
        .parseAsync(['train', '--optim.lr', '1e-3', '--warmup', '5']);
    await expect(run()).rejects.toThrow('Unknown argument: warmup');
    expect(captured).toEqual(['Unknown argument: warmup']);
    expect(seen).toEqual([]);
  });

  it('strict: an unknown flag is a one-line error with a suggestion', async () => {
    const msg = await failureOf(['train', '--optim.lrr', '1']);
    expect(msg).toBe("unknown argument 'optim.lrr' (did you mean '--optim.lr'?)");
    expect(await failureOf(['trian'])).toBe("unknown argument 'trian' (did you mean 'train'?)");
    // A misspelled command with flags: the command is named, not the first (valid) flag.
    expect(await failureOf(['trian', '--seed', '3', '--optim.lr', '1'])).toBe("unknown command 'trian' (did you mean 'train'?)");
    expect(await failureOf(['zzzzzz', '--seed', '3'])).toBe("unknown command 'zzzzzz' (commands: train)");
  });

  it('a union field alone selects the default variant; a field of another variant asks for the kind', async () => {
    const { cli, seen } = harness();
    const withDefault = buildCli({
      name: 't',
      out: () => undefined,
      commands: [
        defineCommand({
          command: 'train',
          describe: 'd',
          schema: defineConfig(
            z.object({
              base: z
                .discriminatedUnion('kind', [
                  z.object({ kind: z.literal('init'), vocab: z.enum(['full', 'corpus']).default('full').describe('v') }),
                  z.object({ kind: z.literal('checkpoint'), dir: z.string().describe('d') }),
                ])
                .default({ kind: 'init', vocab: 'full' })
                .describe('base'),
            }),
          ),
          handler: (c) => {
            seen.push(c as never);
          },
        }),
      ],
    });
    await withDefault.parseAsync(['train', '--base.vocab', 'corpus']);
    expect(seen).toEqual([{ base: { kind: 'init', vocab: 'corpus' } }]);
    await expect(withDefault.parseAsync(['train', '--base.dir', 'x'])).rejects.toThrow(/base\.kind/);
    await cli.parseAsync(['train', '--mode.kind', 'latent', '--mode.r', '2']);
    expect(seen[1]).toMatchObject({ mode: { kind: 'latent', r: 2 } });
  });

  it('bad values and choices are one-line errors naming the flag', async () => {
    const { cli } = harness();
    await expect(cli.parseAsync(['train', '--optim.lr', 'abc'])).rejects.toThrow("flag '--optim.lr': not a number");
    expect(await failureOf(['train', '--schedule', 'step'])).toBe('Invalid values: Argument: schedule, Given: "step", Choices: "linear", "cosine"');
    await expect(harness().cli.parseAsync(['train', '--mode.kind', 'latent'])).rejects.toThrow(/^config: field 'mode\.r'/);
  });

  it('errors thrown by a handler propagate unchanged', async () => {
    const cli = buildCli({
      name: 'x',
      commands: [
        defineCommand({
          command: 'run',
          describe: 'run',
          schema: def,
          handler: () => {
            throw new UserError('boom');
          },
        }),
      ],
    });
    await expect(cli.parseAsync(['run'])).rejects.toThrow('boom');
  });
});
