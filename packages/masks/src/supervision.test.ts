import { Rng } from '@latent-sft/core';
import { describe, expect, it } from 'vitest';
import { formatMask, parseMask } from './grid.js';
import { supervisionMask, supervisionSegments } from './supervision.js';

// Token ids: Q 10, <think> 11, </think> 12, spacer tokens 22.., answer 30.., placeholder Z = -100.
const Q = 10,
  TH = 11,
  E = 12,
  Z = -100,
  PAD = 0;

describe('supervisionMask', () => {
  it('reproduces the spec §3.4 example matrix exactly (Q T Z1 c d Z2 e Z3 E A1 A2)', () => {
    const ids = [Q, TH, Z, 22, 23, Z, 24, Z, E, 30, 31];
    const expected = parseMask([
      'x',
      'x x',
      'x x x',
      '. . x x',
      '. . x x x',
      'x x x . . x',
      '. . . . . x x',
      'x x x . . x . x',
      'x x x . . x . x x',
      'x x x . . x . x x x',
      'x x x . . x . x x x x',
    ]);
    expect(formatMask(supervisionMask(ids, { endThinkIds: [E] }), 11)).toEqual(formatMask(expected, 11));
    expect(supervisionSegments(ids, { endThinkIds: [E] })).toEqual({ placeholders: [2, 5, 7], finalStart: 8 });
  });

  it('finds a multi-piece </think> after the last placeholder even when its pieces occur in the prompt', () => {
    // Llama-style </think> = [5,6,7], also present at the start of the prompt (spec §11 item 11).
    // ids: 5 6 7 T | Z1 | s | Z2 | 5 6 7 A ; initial = 0..3, spacer after Z1 = {5}, final = 7..10.
    const ids = [5, 6, 7, TH, Z, 22, Z, 5, 6, 7, 30];
    const expected = parseMask([
      'x',
      'x x',
      'x x x',
      'x x x x',
      'x x x x x',
      '. . . . x x',
      'x x x x x . x',
      'x x x x x . x x',
      'x x x x x . x x x',
      'x x x x x . x x x x',
      'x x x x x . x x x x x',
    ]);
    expect(formatMask(supervisionMask(ids, { endThinkIds: [5, 6, 7] }), 11)).toEqual(formatMask(expected, 11));
  });

  it('blocks pad-valued rows and columns (right padding, and pad = EOS as for DeepSeek)', () => {
    const mask = supervisionMask([Q, Z, E, 30, PAD, PAD], { endThinkIds: [E], padId: PAD });
    expect(formatMask(mask, 6)).toEqual(['x.....', 'xx....', 'xxx...', 'xxxx..', '......', '......']);
    // DeepSeek: pad id = EOS (77), so the final EOS row and column are blocked (spec §11 item 10).
    const ds = supervisionMask([Q, Z, E, 77], { endThinkIds: [E], padId: 77 });
    expect(formatMask(ds, 4)).toEqual(['x...', 'xx..', 'xxx.', '....']);
  });

  it('throws when there is no placeholder or no </think> after the last placeholder', () => {
    expect(() => supervisionMask([Q, TH, E, 30], { endThinkIds: [E] })).toThrow(/no placeholder -100.*shape \[4\]/);
    expect(() => supervisionMask([Q, E, Z, 22], { endThinkIds: [E] })).toThrow(/do not occur after the last placeholder \(position 2\)/);
    expect(() => supervisionMask([Q, Z, E], { endThinkIds: [] })).toThrow(/endThinkIds/);
  });

  it('satisfies the segment rules on random well-formed sequences', () => {
    const rng = Rng.fromSeed(21);
    for (let trial = 0; trial < 60; trial++) {
      // Build: prompt (1..4) + Z1 + spacer1 + ... + Zm + spacer_m (0..3 each) + </think> (1..3 pieces) + answer.
      const ids: number[] = [];
      const kind: string[] = []; // 'init' | 'z<i>' | 's<i>' | 'final'
      const promptLen = 1 + rng.int(4);
      for (let i = 0; i < promptLen; i++) {
        ids.push(10 + rng.int(3));
        kind.push('init');
      }
      const m = 1 + rng.int(4);
      for (let i = 0; i < m; i++) {
        ids.push(Z);
        kind.push(`z${i}`);
        const sp = rng.int(4);
        for (let j = 0; j < sp; j++) {
          ids.push(20 + rng.int(5));
          kind.push(`s${i}`);
        }
      }
      const endThink = Array.from({ length: 1 + rng.int(3) }, (_, j) => 90 + j);
      for (const id of endThink) {
        ids.push(id);
        kind.push('final');
      }
      const ans = 1 + rng.int(3);
      for (let j = 0; j < ans; j++) {
        ids.push(30 + rng.int(3));
        kind.push('final');
      }
      const T = ids.length;
      const mask = supervisionMask(ids, { endThinkIds: endThink });
      const z = (s: string): number => Number(s.slice(1));
      for (let q = 0; q < T; q++) {
        const kq = kind[q] as string;
        for (let k = 0; k < T; k++) {
          const kk = kind[k] as string;
          const got = mask[q * T + k];
          if (k > q) {
            expect(got, 'causal').toBe(0);
            continue;
          }
          let want: boolean;
          if (kq === 'init') want = kk === 'init';
          else if (kq === 'final')
            want = kk === 'init' || kk === 'final' || kk.startsWith('z'); // answer rows: prompt + all latents
          else if (kq.startsWith('z')) want = kk === 'init' || (kk.startsWith('z') && z(kk) <= z(kq));
          else want = kk === `s${z(kq)}` || kk === `z${z(kq)}`; // spacer rows: own latent + own spacer
          expect(got, `trial ${trial} q=${q}(${kq}) k=${k}(${kk})`).toBe(want ? 1 : 0);
        }
      }
    }
  });
});
