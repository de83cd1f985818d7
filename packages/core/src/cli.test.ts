// runMain's error lines: bad input and errors of the environment are one line; real bugs keep their stack.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { environmentError } from './cli.js';

describe('environmentError', () => {
  it('names the path and the cause of a system error, and memory that cannot be allocated', () => {
    const dir = mkdtempSync(join(tmpdir(), 'core-cli-'));
    writeFileSync(join(dir, 'file'), 'x');
    let caught: unknown;
    try {
      writeFileSync(join(dir, 'file', 'below'), 'y'); // a file used as a folder: ENOTDIR from Node itself
    } catch (e) {
      caught = e;
    }
    expect(environmentError(caught)).toBe(`${join(dir, 'file', 'below')}: a part of the path is not a folder (ENOTDIR)`);
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC', path: '/runs/x/model.safetensors' });
    expect(environmentError(full)).toBe('/runs/x/model.safetensors: no space left on the device (ENOSPC)');
    let big: unknown;
    try {
      new Float32Array(2 ** 40);
    } catch (e) {
      big = e;
    }
    expect(environmentError(big)).toMatch(/^out of memory: .+ \(a smaller model, batch or sequence length needs less\)$/);
  });

  it('leaves real bugs (no system code, no allocation failure) to the stack trace', () => {
    expect(environmentError(new TypeError("Cannot read properties of undefined (reading 'x')"))).toBeNull();
    expect(environmentError(Object.assign(new Error('odd'), { code: 'ERR_SOMETHING' }))).toBeNull();
    expect(environmentError('a string')).toBeNull();
  });
});
