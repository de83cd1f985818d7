// The addon itself: it loads, runs on ORT 1.29 (API 29), and shares one libonnxruntime.so.1 with
// onnxruntime-node's binding in the same process.
import { readFileSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DeviceSession } from './index.js';
import { ortInfo } from './addon-info.js';
import { loadNative, nativeAddonPath } from './native.js';
import { Session, ortBinaryDir } from './session.js';
import { addStateModel } from './test-models.js';

/** Distinct (device, inode) pairs of mapped files whose name contains libonnxruntime.so. */
function mappedOrtLibraries(): Set<string> {
  const ids = new Set<string>();
  for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const path = line.split(/\s+/).slice(5).join(' ');
    if (!path.includes('libonnxruntime.so')) continue;
    const st = statSync(path);
    ids.add(`${st.dev}:${st.ino}`);
  }
  return ids;
}

describe('native addon', () => {
  it('loads from native/build and reports ORT 1.29 with its library file', () => {
    expect(nativeAddonPath()).toMatch(/packages\/runtime\/native\/build\/Release\/latent_sft_ort\.node$/);
    const info = ortInfo();
    expect(info.version).toBe('1.29.0');
    expect(info.apiVersion).toBe(29);
    expect(realpathSync(info.library ?? '')).toBe(realpathSync(join(ortBinaryDir(), 'libonnxruntime.so.1')));
    expect(info.providers).toContain('CPUExecutionProvider');
  });

  it('shares one libonnxruntime with onnxruntime-node in the process', async () => {
    const model = addStateModel('float32', [2]);
    const js = await Session.create(model);
    const out = await js.run({
      state_in: { dtype: 'float32', dims: [2], data: new Float32Array([1, 2]) },
      x: { dtype: 'float32', dims: [2], data: new Float32Array([3, 4]) },
    });
    const dev = DeviceSession.create(model);
    const b = dev
      .createBinding()
      .bindInput('state_in', dev.upload({ dtype: 'float32', dims: [2], data: new Float32Array([1, 2]) }))
      .bindInput('x', dev.upload({ dtype: 'float32', dims: [2], data: new Float32Array([3, 4]) }))
      .bindOutputToDevice('state_out');
    dev.run(b);
    expect(b.output('state_out').download()).toBeAllclose(out.state_out?.data ?? [], { atol: 0, rtol: 0 });
    expect(mappedOrtLibraries().size).toBe(1);
    await js.release();
  });

  it('checks byte lengths natively', () => {
    const t = loadNative().allocateCpu('int32', [3]);
    expect(() => t.upload(new Int32Array(4))).toThrow('upload of 16 bytes into a tensor of 12 bytes');
    expect(() => t.download(new Uint8Array(11))).toThrow('download of a tensor of 12 bytes into 11 bytes');
    expect(() => loadNative().allocateCpu('int32', [1.5])).toThrow('dims must be an array of non-negative integers');
    t.release();
    expect(() => t.info()).toThrow('device tensor used after release()');
  });
});
