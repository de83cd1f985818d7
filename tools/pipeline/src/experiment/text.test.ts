// Rerun commands survive the real shell unchanged (a crafted folder name runs nothing), and table
// cells render as literal text.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { markdownCode, markdownText, shellCommand, shellQuote } from './text.js';

/** What `sh` passes as arguments for a command line (one per output line). */
function shellArgs(line: string): string[] {
  const r = spawnSync('sh', ['-c', `printf '%s\\n' ${line}`], { encoding: 'utf8' });
  expect(r.status).toBe(0);
  return r.stdout.split('\n').slice(0, -1);
}

describe('shellQuote', () => {
  it('hands every word to the program unchanged, whatever it contains', () => {
    const words = ['--config', '/tmp/a b/$(touch pwned)/`id`/c.json', "it's", 'x;y&&z|w', '*', '~', '-', 'plain/path-1.json', ''];
    expect(shellArgs(shellCommand(words))).toEqual(words);
    expect(shellQuote('/tmp/out/configs/r4__phase2.json')).toBe('/tmp/out/configs/r4__phase2.json');
    expect(shellQuote('/tmp/$(x)')).toBe("'/tmp/$(x)'");
  });
});

describe('Markdown', () => {
  it('escapes markup in labels and keeps code cells inside their column', () => {
    expect(markdownText('Latent-SFT(4) | *x*\n[a](b) <img>')).toBe('Latent-SFT(4) \\| \\*x\\* \\[a\\](b) \\<img\\>');
    expect(markdownText('- w/o LTIM (4)')).toBe('- w/o LTIM (4)');
    expect(markdownCode("pnpm x --config '/a|b`c'")).toBe("``pnpm x --config '/a\\|b`c'``");
    expect(markdownCode('pnpm x')).toBe('`pnpm x`');
  });
});
