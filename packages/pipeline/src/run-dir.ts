// The output folder of one phase run and its layout:
//   <out>/phase.json        which app owns the folder (app, configHash, createdAt)
//   <out>/config.json       the resolved config record (also beside every checkpoint)
//   <out>/checkpoints/      step-NNNNNN/ training checkpoints (train's CheckpointManager; resumable)
//   <out>/metrics.jsonl     one JSON record per step (loss, lr, gradNorm, ce, kl, ...)
//   <out>/selection.jsonl   held-out scores per evaluated checkpoint (phase 1 with select.metric)
//   <out>/hf/               merged HF checkpoint (+ tokenizer files)          cot-sft, phase1 encoder|decoder, merge-lora, phase2
//   <out>/lora_adapter/     PEFT adapter(s)                                      phase1 (union: encoder_weight/, decoder_weight/), phase2
//   <out>/base_model/       the resized pre-LoRA encoder (V+1 rows)             phase1 encoder
//   <out>/summary.json      steps, first/last loss (ce, kl), wall time          every app
//   <out>/.lock             {pid, host, app, startedAt} of the process running in the folder (exclusive)
// A folder that holds another app's run, or a finished/started run without --resume, or a run whose
// config differs (without --allowConfigChange), or a folder locked by a live process, is refused
// before anything is written. Final folders are written under `.tmp-<name>` and renamed into place.
import { hostname } from 'node:os';
import { existsSync, linkSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ConfigRecord, configDiff } from '@latent-sft/config';
import { type Logger, UserError, inputError, writeJsonAtomic } from '@latent-sft/core';
import { diskWriteError } from '@latent-sft/train';

/** File names inside an output folder. */
export const LAYOUT = {
  phase: 'phase.json',
  config: 'config.json',
  lock: '.lock',
  checkpoints: 'checkpoints',
  metrics: 'metrics.jsonl',
  selection: 'selection.jsonl',
  hf: 'hf',
  adapter: 'lora_adapter',
  baseModel: 'base_model',
  summary: 'summary.json',
} as const;

/**
 * Top-level config keys that control the run, not what it computes: left out of the config hash and of
 * the resume comparison (recompute: the Trainer's activation recomputation gives the same bits).
 */
export const RUN_CONTROL_KEYS: readonly string[] = ['out', 'resume', 'allowConfigChange', 'recompute'];

interface PhaseFile {
  app: string;
  configHash: string;
  createdAt: string;
  /** Accepted config changes of resumes with --allowConfigChange. */
  configChanges?: Array<{ at: string; configHash: string; changed: string[] }>;
}

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw inputError({ file: path }, `not readable JSON (${(e as Error).message})`);
  }
}

/** The process holding a run folder. */
export interface LockHolder {
  pid: number;
  host: string;
  app: string;
  startedAt: string;
}

/** An exclusive lock on a run folder; release() removes it (only while it is still ours). */
export interface RunDirLock {
  readonly path: string;
  /** The dead holder whose stale lock was taken over, if any. */
  readonly tookOver: LockHolder | null;
  release(): void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function readHolder(path: string): LockHolder | null {
  try {
    const v = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockHolder>;
    return typeof v.pid === 'number' && typeof v.host === 'string' ? { pid: v.pid, host: v.host, app: String(v.app), startedAt: String(v.startedAt) } : null;
  } catch {
    return null;
  }
}

/**
 * Takes the exclusive lock `<dir>/.lock` for `app`. A lock held by a live process on this host (or by
 * any process of another host) is a one-line error naming it; the stale lock of a dead pid (a killed
 * run) is taken over. The lock file appears complete or not at all (written aside, then hard-linked).
 */
export function lockRunDir(dir: string, app: string): RunDirLock {
  const path = join(dir, LAYOUT.lock);
  const me: LockHolder = { pid: process.pid, host: hostname(), app, startedAt: new Date().toISOString() };
  const mine = join(dir, `.lock-${process.pid}`);
  writeFileSync(mine, `${JSON.stringify(me)}\n`);
  let tookOver: LockHolder | null = null;
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        linkSync(mine, path);
        break;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = readHolder(path);
      const busy = (h: LockHolder) =>
        new UserError(
          `${dir}: in use by another run (${h.app}, pid ${h.pid}` +
            `${h.host === me.host ? '' : ` on host ${h.host}`}, since ${h.startedAt}); wait for it to end or choose another output dir` +
            `${h.host === me.host ? '' : `; if it has ended, delete ${path}`}`,
        );
      if (holder !== null && holder.host !== me.host) throw busy(holder);
      if (holder !== null && holder.pid !== me.pid && isAlive(holder.pid)) throw busy(holder);
      if (attempt >= 3) throw new UserError(`${dir}: cannot take the lock ${path} (another process keeps replacing it); try again`);
      // Stale (dead pid, this process, or unreadable): move it aside, and only drop it if it is the one we judged.
      const aside = join(dir, `.lock-stale-${process.pid}`);
      try {
        renameSync(path, aside);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      const moved = readHolder(aside);
      if (JSON.stringify(moved) !== JSON.stringify(holder)) {
        // Another process took it over in between: give its lock back and report it.
        try {
          linkSync(aside, path);
        } catch {
          // a third process holds it now; ours is still not taken
        }
        rmSync(aside, { force: true });
        if (moved !== null) throw busy(moved);
        continue;
      }
      rmSync(aside, { force: true });
      if (holder !== null && holder.pid !== me.pid) tookOver = holder;
    }
  } finally {
    rmSync(mine, { force: true });
  }
  return {
    path,
    tookOver,
    release: () => {
      const h = readHolder(path);
      if (h !== null && h.pid === me.pid && h.startedAt === me.startedAt) unlinkSync(path);
    },
  };
}

function checkState(out: string, record: ConfigRecord, resume: boolean, entries: readonly string[]): PhaseFile | null {
  const phasePath = join(out, LAYOUT.phase);
  if (existsSync(phasePath)) {
    const prev = readJson(phasePath) as Partial<PhaseFile>;
    if (prev.app !== record.app) {
      throw new UserError(`${out}: holds a run of '${String(prev.app)}', not '${record.app}'; choose another output dir; nothing was overwritten`);
    }
    if (!resume) {
      const state = existsSync(join(out, LAYOUT.summary)) ? 'a finished' : 'an unfinished';
      const resumable = typeof record.config === 'object' && record.config !== null && Object.hasOwn(record.config, 'resume');
      throw new UserError(
        `${out}: already holds ${state} ${record.app} run; ${resumable ? 'pass --resume to continue it or ' : ''}choose another output dir; nothing was overwritten`,
      );
    }
    return prev as PhaseFile;
  }
  const foreign = entries.filter((e) => e !== LAYOUT.lock && !e.startsWith('.lock-'));
  if (foreign.length > 0) {
    throw new UserError(
      `${out}: not empty and holds no phase run (${foreign.slice(0, 3).join(', ')}${foreign.length > 3 ? ', …' : ''}); choose another output dir; nothing was overwritten`,
    );
  }
  return null;
}

/** The fields where `record` differs from the config the run in `out` was started or last resumed with. */
function changedFields(out: string, record: ConfigRecord): string[] {
  const path = join(out, LAYOUT.config);
  if (!existsSync(path)) return [];
  const prev = readJson(path) as Partial<ConfigRecord>;
  return configDiff(prev.config, record.config, RUN_CONTROL_KEYS);
}

/**
 * Claims `out` for a run of `record.app` and locks it: creates it, or accepts it when empty, or (with
 * `resume`) when it holds a run of the same app with the same config (a changed config only with
 * `record.config.allowConfigChange`, recorded in phase.json). Call it only after every input has been
 * validated. Anything else is a one-line error and nothing is written; `config.json` is rewritten only
 * once the run is accepted. Release the returned lock when the run ends (a killed run's lock is stale
 * and taken over by the next claim).
 */
export function claimOutDir(out: string, record: ConfigRecord, resume: boolean): RunDirLock {
  if (existsSync(out) && !statSync(out).isDirectory()) throw inputError({ field: 'out' }, `${out} exists and is not a folder`);
  const phasePath = join(out, LAYOUT.phase);
  // Read-only checks first, so a refused run creates nothing; repeated under the lock.
  if (existsSync(out)) {
    checkState(out, record, resume, readdirSync(out));
  }
  const created = !existsSync(out);
  mkdirSync(out, { recursive: true });
  let lock: RunDirLock | null = null;
  try {
    lock = lockRunDir(out, record.app);
    const prev = checkState(out, record, resume, readdirSync(out));
    const changed = prev === null ? [] : changedFields(out, record);
    const allow = (record.config as { allowConfigChange?: unknown } | null)?.allowConfigChange === true;
    if (changed.length > 0 && !allow) {
      throw new UserError(
        `${out}: --resume with a changed config (${changed.slice(0, 4).join(', ')}${changed.length > 4 ? ', …' : ''}); ` +
          'resume with the settings the run was started with, or pass --allowConfigChange to continue under the new ones; nothing was changed',
      );
    }
    if (prev === null) {
      writeJsonAtomic(phasePath, { app: record.app, configHash: record.configHash, createdAt: record.createdAt } satisfies PhaseFile);
    } else if (changed.length > 0) {
      const configChanges = [...(prev.configChanges ?? []), { at: record.createdAt, configHash: record.configHash, changed }];
      writeJsonAtomic(phasePath, { ...prev, configChanges } satisfies PhaseFile);
    }
    writeJsonAtomic(join(out, LAYOUT.config), record);
  } catch (e) {
    lock?.release();
    if (created) rmSync(out, { recursive: true, force: true }); // empty: created by this claim
    throw e;
  }
  return lock as RunDirLock;
}

/**
 * For `--force`: removes the files an earlier run of `app` wrote in `dir` (`files`, names inside
 * `dir`), identified by `<dir>/<marker>` (JSON whose `app` is `app`). A folder that holds no run of
 * `app` is refused and nothing is deleted; files not in `files` are left as they are.
 */
export function clearOwnRun(dir: string, o: { app: string; marker: string; files: readonly string[]; flag?: string }): void {
  const marker = join(dir, o.marker);
  const flag = o.flag ?? '--force';
  let app: unknown;
  try {
    app = (JSON.parse(readFileSync(marker, 'utf8')) as { app?: unknown } | null)?.app;
  } catch {
    app = undefined;
  }
  if (app !== o.app) {
    const what = app === undefined ? `no output of '${o.app}' (no readable ${o.marker})` : `a run of '${String(app)}', not '${o.app}'`;
    throw new UserError(`${dir}: holds ${what}; ${flag} only replaces what an earlier '${o.app}' wrote; choose another output dir; nothing was deleted`);
  }
  for (const f of o.files) {
    if (f.includes('/') || f.includes('\\') || f === '..' || f === '.') throw new Error(`clearOwnRun: '${f}' is not a file name inside the folder`);
    rmSync(join(dir, f), { recursive: true, force: true });
  }
}

/**
 * Claims `out` for a run that continues itself (eval run): true when `out` already holds a run of the
 * same app and config hash (the caller reuses its files). A run of the same app with another config is
 * refused unless `force`, which first removes `ownFiles` (and phase.json, config.json). A folder without
 * phase.json is cleared by `force` only when its legacy marker run.json names `legacyApp` (clearOwnRun);
 * a folder of user files is never touched. Anything else: as claimOutDir.
 */
export function claimOrReuseOutDir(
  out: string,
  record: ConfigRecord,
  o: { force: boolean; ownFiles: readonly string[]; logger: Logger; legacyApp?: string },
): boolean {
  const phasePath = join(out, LAYOUT.phase);
  const prev = existsSync(phasePath) ? (readJson(phasePath) as Partial<PhaseFile>) : null;
  if (prev !== null && prev.app === record.app) {
    if (prev.configHash === record.configHash) {
      writeJsonAtomic(join(out, LAYOUT.config), record);
      return true;
    }
    if (!o.force) {
      throw new UserError(
        `${out}: holds a different ${record.app} run (config ${String(prev.configHash).slice(0, 12)} ≠ ${record.configHash.slice(0, 12)}); choose another output dir or pass --force to replace it`,
      );
    }
  }
  if (o.force && existsSync(out)) {
    if (prev !== null && prev.app === record.app) {
      o.logger.warn({ out }, `replacing the ${record.app} run in the output dir (--force)`);
      for (const f of [...o.ownFiles, LAYOUT.phase, LAYOUT.config]) rmSync(join(out, f), { recursive: true, force: true });
    } else if (prev === null && readdirSync(out).length > 0) {
      // No phase.json: only a folder from before it (run.json of this app, legacy marker) is ours to clear.
      o.logger.warn({ out }, `replacing the ${o.legacyApp ?? record.app} run in the output dir (--force)`);
      clearOwnRun(out, { app: o.legacyApp ?? record.app, marker: 'run.json', files: o.ownFiles });
    }
  }
  claimOutDir(out, record, false);
  return false;
}

/** Writes a folder `<out>/<name>` atomically: `write` fills `<out>/.tmp-<name>`, which then replaces it. */
export function publishDir(out: string, name: string, write: (tmp: string) => void): string {
  const tmp = join(out, `.tmp-${name.replace(/\//g, '-')}`);
  const target = join(out, name);
  try {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    write(tmp);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw diskWriteError(e, tmp, `${name}/ (the previous ${name}/ and the checkpoints are kept)`);
  }
  rmSync(target, { recursive: true, force: true });
  mkdirSync(join(target, '..'), { recursive: true });
  renameSync(tmp, target);
  return target;
}

/** Throws a one-line error naming `what` when `dir` is not an existing folder. */
export function requireDir(dir: string, what: string): void {
  if (!existsSync(dir)) throw inputError({ file: dir }, `${what} not found`);
}
