// Child process of sigkill.test.ts: trains (or resumes) the toy in DIR up to STEPS, checkpointing every
// step and sleeping SLEEP_MS per step so the parent can SIGKILL it after some checkpoint.
// Usage: node --conditions=@latent-sft/source --import tsx resume-child.ts DIR STEPS SLEEP_MS
import { runToy } from './toy.js';

const [dir, steps, sleepMs] = process.argv.slice(2);
if (dir === undefined || steps === undefined || sleepMs === undefined) throw new Error('usage: resume-child.ts DIR STEPS SLEEP_MS');
await runToy({ dir, steps: Number(steps), checkpointEvery: 1, sleepMs: Number(sleepMs) });
