// The output folder of one phase run and its layout:
//   <out>/phase.json        which app owns the folder (app, configHash, createdAt)
//   <out>/config.json       the resolved config record (also beside every checkpoint)
//   <out>/checkpoints/      step-NNNNNN/ training checkpoints (train's CheckpointManager; resumable)
//   <out>/metrics.jsonl     one JSON record per step (loss, lr, gradNorm, ce, kl, ...)
//   <out>/hf/               merged HF checkpoint (+ tokenizer files)          cot-sft, phase1 encoder|decoder, merge-lora, phase2
//   <out>/lora_adapter/     PEFT adapter(s)                                      phase1 (union: encoder_weight/, decoder_weight/), phase2
//   <out>/base_model/       the resized pre-LoRA encoder (V+1 rows)             phase1 encoder
//   <out>/summary.json      steps, first/last loss (ce, kl), wall time          every app
// A folder that holds another app's run, or a finished/started run without --resume, is refused
// before anything is written. Final folders are written under `.tmp-<name>` and renamed into place.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigRecord } from '@latent-sft/config';
import { type Logger, UserError, inputError, writeJsonAtomic } from '@latent-sft/core';

/** File names inside an output folder. */
export const LAYOUT = {
  phase: 'phase.json',
  config: 'config.json',
  checkpoints: 'checkpoints',
  metrics: 'metrics.jsonl',
  hf: 'hf',
  adapter: 'lora_adapter',
  baseModel: 'base_model',
  summary: 'summary.json',
} as const;

interface PhaseFile {
  app: string;
  configHash: string;
  createdAt: string;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw inputError({ file: path }, `not readable JSON (${(e as Error).message})`);
  }
}

/**
 * Claims `out` for a run of `record.app`: creates it, or accepts it when empty, or (with `resume`)
 * when it holds a run of the same app. Anything else is a one-line error and nothing is written.
 */
export function claimOutDir(out: string, record: ConfigRecord, resume: boolean): void {
  const phasePath = join(out, LAYOUT.phase);
  if (existsSync(out)) {
    const entries = readdirSync(out);
    if (existsSync(phasePath)) {
      const prev = readJson(phasePath) as Partial<PhaseFile>;
      if (prev.app !== record.app) {
        throw new UserError(`${out}: holds a run of '${String(prev.app)}', not '${record.app}'; choose another output dir; nothing was overwritten`);
      }
      if (!resume) {
        const state = existsSync(join(out, LAYOUT.summary)) ? 'a finished' : 'an unfinished';
        throw new UserError(`${out}: already holds ${state} ${record.app} run; pass --resume to continue it or choose another output dir; nothing was overwritten`);
      }
    } else if (entries.length > 0) {
      throw new UserError(`${out}: not empty and holds no phase run (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', …' : ''}); choose another output dir; nothing was overwritten`);
    }
  }
  mkdirSync(out, { recursive: true });
  if (!existsSync(phasePath)) writeJsonAtomic(phasePath, { app: record.app, configHash: record.configHash, createdAt: record.createdAt } satisfies PhaseFile);
  writeJsonAtomic(join(out, LAYOUT.config), record);
}

/**
 * Claims `out` for a run that continues itself (eval run): true when `out` already holds a run of the
 * same app and config hash (the caller reuses its files). A run of the same app with another config is
 * refused unless `force`, which first removes `ownFiles` (and phase.json, config.json); so is a folder
 * holding no phase run but those files. Anything else: as claimOutDir.
 */
export function claimOrReuseOutDir(out: string, record: ConfigRecord, o: { force: boolean; ownFiles: readonly string[]; logger: Logger }): boolean {
  const phasePath = join(out, LAYOUT.phase);
  const prev = existsSync(phasePath) ? (readJson(phasePath) as Partial<PhaseFile>) : null;
  if (prev !== null && prev.app === record.app) {
    if (prev.configHash === record.configHash) {
      writeJsonAtomic(join(out, LAYOUT.config), record);
      return true;
    }
    if (!o.force) {
      throw new UserError(`${out}: holds a different ${record.app} run (config ${String(prev.configHash).slice(0, 12)} ≠ ${record.configHash.slice(0, 12)}); choose another output dir or pass --force to replace it`);
    }
  }
  if (o.force && existsSync(out) && (prev === null || prev.app === record.app)) {
    o.logger.warn({ out }, `replacing the ${record.app} run in the output dir (--force)`);
    for (const f of [...o.ownFiles, LAYOUT.phase, LAYOUT.config]) rmSync(join(out, f), { recursive: true, force: true });
  }
  claimOutDir(out, record, false);
  return false;
}

/** Writes a folder `<out>/<name>` atomically: `write` fills `<out>/.tmp-<name>`, which then replaces it. */
export function publishDir(out: string, name: string, write: (tmp: string) => void): string {
  const tmp = join(out, `.tmp-${name.replace(/\//g, '-')}`);
  const target = join(out, name);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  write(tmp);
  rmSync(target, { recursive: true, force: true });
  mkdirSync(join(target, '..'), { recursive: true });
  renameSync(tmp, target);
  return target;
}

/** Throws a one-line error naming `what` when `dir` is not an existing folder. */
export function requireDir(dir: string, what: string): void {
  if (!existsSync(dir)) throw inputError({ file: dir }, `${what} not found`);
}
