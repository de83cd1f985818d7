// Atomic, verified checkpoints in one run directory:
//   <dir>/run.json              identity of the run (app, config hash, configChanges of accepted resumes); another run's dir is refused
//   <dir>/step-000123/          one checkpoint: tensor files (written by a pluggable TensorCodec),
//                               loop-state.json, config.json, manifest.json (sha256 + size of each file)
//   <dir>/latest.json           {step, dir} of the newest checkpoint, replaced atomically
// A save writes into .tmp-step-000123/, fsyncs every file, writes the manifest, fsyncs the folder and
// renames it into place, so a crash leaves either the whole checkpoint or none. Loading verifies every
// checksum; loadLatestValid() walks back to the newest checkpoint that verifies and reports the rest.
// Not here: the tensor file format. The models package injects its safetensors codec; tests use a
// small JSON+binary codec (test/raw-codec.ts).
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError, inputError, silentLogger, writeJsonAtomic, type Logger } from '@latent-sft/core';
import { loopStateFromJson, loopStateToJson, type LoopState } from './loop-state.js';

export type TensorDtype = 'float64' | 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** A named tensor to save: dtype, shape and its raw data. */
export interface CheckpointTensor {
  readonly name: string;
  readonly dtype: TensorDtype;
  readonly shape: readonly number[];
  readonly data: ArrayBufferView;
}

/** Writes and reads the tensor files of a checkpoint (e.g. safetensors, injected by the models package). */
export interface TensorCodec {
  /** Recorded in the manifest; a checkpoint is read only by a codec of the same format. */
  readonly format: string;
  /** Writes the tensors as files inside `dir` (which exists); returns the file names written. */
  write(dir: string, tensors: readonly CheckpointTensor[]): string[];
  /** Reads back the tensors from the files `write` returned. */
  read(dir: string, files: readonly string[]): CheckpointTensor[];
}

/** The run identity written beside every checkpoint (the config package's ConfigRecord fits). */
export interface RunRecord {
  readonly app: string;
  readonly schemaVersion: number;
  readonly configHash: string;
  readonly createdAt: string;
  readonly config: unknown;
}

export interface CheckpointInfo {
  readonly step: number;
  /** Absolute path of the step folder. */
  readonly dir: string;
  readonly metric: number | null;
}

export interface LoadedCheckpoint extends CheckpointInfo {
  readonly loopState: LoopState;
  readonly record: RunRecord;
  readonly tensors: CheckpointTensor[];
}

export interface CheckpointManagerOptions {
  dir: string;
  /** How many of the newest checkpoints to keep (>= 1). */
  keepLast: number;
  /** Also keep the checkpoint with the best metric. */
  keepBest: boolean;
  metricMode: 'min' | 'max';
  codec: TensorCodec;
  /** This run's config record, written as config.json in every checkpoint. */
  record: RunRecord;
  /** Continue the run already in `dir` (otherwise a dir holding checkpoints is refused). */
  resume: boolean;
  logger?: Logger;
}

const MANIFEST_FORMAT = 'latent-sft/checkpoint';
const MANIFEST_VERSION = 1;
const STEP_DIR = /^step-(\d{6,})$/;
const RESERVED = new Set(['manifest.json', 'loop-state.json', 'config.json']);

interface Manifest {
  format: string;
  version: number;
  step: number;
  metric: number | null;
  tensorFormat: string;
  tensorFiles: string[];
  files: Record<string, { sha256: string; bytes: number }>;
}

export const stepDirName = (step: number): string => `step-${String(step).padStart(6, '0')}`;

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

const sha256 = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw inputError({ file: path }, `cannot read (${(e as NodeJS.ErrnoException).code ?? String(e)})`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw inputError({ file: path }, `invalid JSON: ${(e as Error).message}`);
  }
}

function readManifest(stepDir: string): Manifest {
  const path = join(stepDir, 'manifest.json');
  const m = readJson(path) as Partial<Manifest> | null;
  if (m === null || typeof m !== 'object' || m.format !== MANIFEST_FORMAT) throw inputError({ file: path, field: 'format' }, `expected '${MANIFEST_FORMAT}'`);
  if (m.version !== MANIFEST_VERSION) throw inputError({ file: path, field: 'version' }, `unsupported version ${JSON.stringify(m.version)}`);
  if (typeof m.step !== 'number' || typeof m.files !== 'object' || m.files === null || !Array.isArray(m.tensorFiles)) {
    throw inputError({ file: path }, 'malformed manifest');
  }
  return m as Manifest;
}

const DISK_ERRORS: Record<string, string> = {
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  EROFS: 'read-only file system',
  EACCES: 'permission denied',
  EPERM: 'not permitted',
};

/**
 * A full disk, a read-only or unwritable folder while writing `what` as the one-line error naming the
 * path (`e.path` when the system reports one, else `path`); any other error unchanged.
 */
export function diskWriteError(e: unknown, path: string, what: string): unknown {
  const err = e as NodeJS.ErrnoException;
  const why = typeof err.code === 'string' ? DISK_ERRORS[err.code] : undefined;
  if (why === undefined) return e;
  return new UserError(`${err.path ?? path}: cannot write ${what} (${err.code}: ${why}); free space or fix the folder's permissions, then run again`);
}

/** Manages the checkpoints of one run directory. */
export class CheckpointManager {
  readonly dir: string;
  private readonly opts: CheckpointManagerOptions;
  private readonly logger: Logger;

  private constructor(opts: CheckpointManagerOptions) {
    this.opts = opts;
    this.dir = opts.dir;
    this.logger = opts.logger ?? silentLogger;
  }

  /** Opens (creating) a run dir; refuses one holding another app's run, or any checkpoints unless resume. */
  static open(opts: CheckpointManagerOptions): CheckpointManager {
    if (!Number.isInteger(opts.keepLast) || opts.keepLast < 1) throw new Error(`keepLast must be an integer >= 1, got ${opts.keepLast}`);
    const m = new CheckpointManager(opts);
    mkdirSync(opts.dir, { recursive: true });
    for (const name of readdirSync(opts.dir)) {
      if (name.startsWith('.tmp-step-') || name.startsWith('.trash-step-')) {
        rmSync(join(opts.dir, name), { recursive: true, force: true });
        m.logger.warn({ dir: join(opts.dir, name) }, 'removed an unfinished checkpoint folder');
      }
    }
    const runPath = join(opts.dir, 'run.json');
    const steps = m.steps();
    if (existsSync(runPath)) {
      const prev = readJson(runPath) as Partial<RunRecord> & { configChanges?: unknown[] };
      if (prev.app !== opts.record.app) {
        throw inputError({ file: runPath }, `this dir holds a run of app '${String(prev.app)}', not '${opts.record.app}'; choose another output dir`);
      }
      const same = prev.configHash === opts.record.configHash;
      if (steps.length > 0 && !opts.resume) {
        const what = same
          ? 'the same config'
          : `another config (hash ${String(prev.configHash).slice(0, 12)}, this run ${opts.record.configHash.slice(0, 12)})`;
        throw new UserError(
          `${opts.dir}: already holds checkpoints up to step ${steps[steps.length - 1]} of ${what}; ` +
            'resume that run (--resume) or choose another output dir; nothing was overwritten',
        );
      }
      if (!same && opts.resume) {
        // The caller accepted the change (e.g. --allowConfigChange): run.json keeps the history.
        m.logger.warn({ dir: opts.dir, previous: prev.configHash, current: opts.record.configHash }, 'resuming with a changed config');
        const configChanges = [
          ...(Array.isArray(prev.configChanges) ? prev.configChanges : []),
          { at: opts.record.createdAt, from: prev.configHash, to: opts.record.configHash },
        ];
        writeJsonAtomic(runPath, { ...opts.record, createdAt: prev.createdAt, configChanges });
      }
    } else {
      if (steps.length > 0) throw new UserError(`${opts.dir}: holds checkpoint folders but no run.json; choose another output dir`);
      writeJsonAtomic(runPath, opts.record);
    }
    return m;
  }

  /** Steps of the checkpoint folders present, ascending (complete or not). */
  steps(): number[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .map((n) => STEP_DIR.exec(n))
      .filter((x): x is RegExpExecArray => x !== null)
      .map((x) => Number(x[1]))
      .sort((a, b) => a - b);
  }

  /** Writes a checkpoint atomically, updates latest.json and prunes old checkpoints. */
  save(args: { step: number; loopState: LoopState; tensors: readonly CheckpointTensor[]; metric?: number }): CheckpointInfo {
    const { step, loopState } = args;
    if (loopState.step !== step) throw new Error(`checkpoint step ${step} != loop state step ${loopState.step}`);
    const metric = args.metric ?? null;
    if (metric !== null && !Number.isFinite(metric)) throw new Error(`checkpoint metric must be finite, got ${metric}`);
    const name = stepDirName(step);
    const finalDir = join(this.dir, name);
    const tmp = join(this.dir, `.tmp-${name}`);
    try {
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(tmp);
      const tensorFiles = this.opts.codec.write(tmp, args.tensors);
      for (const f of tensorFiles) {
        if (RESERVED.has(f) || f.includes('/') || f.startsWith('.')) throw new Error(`tensor codec wrote a reserved or nested file name '${f}'`);
      }
      writeFileSync(join(tmp, 'loop-state.json'), `${JSON.stringify(loopStateToJson(loopState), null, 2)}\n`);
      writeFileSync(join(tmp, 'config.json'), `${JSON.stringify(this.opts.record, null, 2)}\n`);
      const files: Manifest['files'] = {};
      for (const f of [...tensorFiles, 'loop-state.json', 'config.json']) {
        fsyncPath(join(tmp, f));
        const data = readFileSync(join(tmp, f));
        files[f] = { sha256: sha256(data), bytes: data.length };
      }
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        version: MANIFEST_VERSION,
        step,
        metric,
        tensorFormat: this.opts.codec.format,
        tensorFiles,
        files,
      };
      writeFileSync(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
      fsyncPath(join(tmp, 'manifest.json'));
      fsyncPath(tmp);
    } catch (e) {
      rmSync(tmp, { recursive: true, force: true });
      throw diskWriteError(e, tmp, `the checkpoint of step ${step} (the previous checkpoints are kept)`);
    }
    if (existsSync(finalDir)) {
      // Re-saving a step (after resuming from an older checkpoint): move the old one aside first.
      const trash = join(this.dir, `.trash-${name}`);
      renameSync(finalDir, trash);
      renameSync(tmp, finalDir);
      rmSync(trash, { recursive: true, force: true });
    } else {
      renameSync(tmp, finalDir);
    }
    fsyncPath(this.dir);
    writeJsonAtomic(join(this.dir, 'latest.json'), { step, dir: name });
    this.prune();
    return { step, dir: finalDir, metric };
  }

  private info(step: number): CheckpointInfo | null {
    const dir = join(this.dir, stepDirName(step));
    try {
      return { step, dir, metric: readManifest(dir).metric };
    } catch {
      return null;
    }
  }

  /** The checkpoint latest.json points at (or the newest folder with a manifest), without verifying. */
  latest(): CheckpointInfo | null {
    const p = join(this.dir, 'latest.json');
    if (existsSync(p)) {
      const l = readJson(p) as { step?: unknown };
      if (typeof l.step === 'number') {
        const i = this.info(l.step);
        if (i) return i;
      }
    }
    for (const s of this.steps().reverse()) {
      const i = this.info(s);
      if (i) return i;
    }
    return null;
  }

  /** The checkpoint with the best metric (earliest on ties), or null when none has a metric. */
  best(): CheckpointInfo | null {
    let best: CheckpointInfo | null = null;
    for (const s of this.steps()) {
      const i = this.info(s);
      if (!i || i.metric === null) continue;
      if (!best || (this.opts.metricMode === 'min' ? i.metric < (best.metric as number) : i.metric > (best.metric as number))) best = i;
    }
    return best;
  }

  /** Loads and verifies one checkpoint; a missing or corrupted file is a one-line error naming it. */
  load(step: number): LoadedCheckpoint {
    const dir = join(this.dir, stepDirName(step));
    if (!existsSync(dir)) throw new UserError(`${dir}: no checkpoint for step ${step}`);
    const manifest = readManifest(dir);
    if (manifest.step !== step) throw inputError({ file: join(dir, 'manifest.json'), field: 'step' }, `says step ${manifest.step}, folder is step ${step}`);
    if (manifest.tensorFormat !== this.opts.codec.format) {
      throw inputError(
        { file: join(dir, 'manifest.json'), field: 'tensorFormat' },
        `is '${manifest.tensorFormat}', this reader handles '${this.opts.codec.format}'`,
      );
    }
    for (const [f, want] of Object.entries(manifest.files)) {
      const path = join(dir, f);
      if (!existsSync(path)) throw inputError({ file: path }, 'missing (listed in manifest.json)');
      const data = readFileSync(path);
      if (data.length !== want.bytes) throw inputError({ file: path }, `corrupted: ${data.length} bytes, manifest says ${want.bytes}`);
      const got = sha256(data);
      if (got !== want.sha256) throw inputError({ file: path }, `corrupted: sha256 ${got.slice(0, 12)}… does not match manifest ${want.sha256.slice(0, 12)}…`);
    }
    const loopState = loopStateFromJson(readJson(join(dir, 'loop-state.json')), join(dir, 'loop-state.json'));
    if (loopState.step !== step) throw inputError({ file: join(dir, 'loop-state.json'), field: 'step' }, `is ${loopState.step}, folder is step ${step}`);
    const record = readJson(join(dir, 'config.json')) as RunRecord;
    const tensors = this.opts.codec.read(dir, manifest.tensorFiles);
    return { step, dir, metric: manifest.metric, loopState, record, tensors };
  }

  /** The newest checkpoint that verifies, and the newer ones skipped with why; null when none verifies. */
  loadLatestValid(): { checkpoint: LoadedCheckpoint | null; skipped: Array<{ step: number; reason: string }> } {
    const skipped: Array<{ step: number; reason: string }> = [];
    for (const s of this.steps().reverse()) {
      try {
        return { checkpoint: this.load(s), skipped };
      } catch (e) {
        if (!(e instanceof UserError)) throw e;
        skipped.push({ step: s, reason: e.message });
        this.logger.warn({ step: s, reason: e.message }, 'skipped a checkpoint that does not verify');
      }
    }
    return { checkpoint: null, skipped };
  }

  /** Deletes all but the newest keepLast checkpoints and (if keepBest) the best one. */
  private prune(): void {
    const steps = this.steps();
    const keep = new Set(steps.slice(-this.opts.keepLast));
    if (this.opts.keepBest) {
      const b = this.best();
      if (b) keep.add(b.step);
    }
    for (const s of steps) if (!keep.has(s)) rmSync(join(this.dir, stepDirName(s)), { recursive: true, force: true });
  }
}
