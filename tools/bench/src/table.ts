// CLI of bench-table.ts: prints the ours-vs-PyTorch table of run-gpu.sh logs.
// Usage: tsx src/table.ts LOG [LOG...]   (or stdin)
import { readFileSync } from 'node:fs';
import { benchTable, gemmTable, genTable, parseBenchLog } from './bench-table.js';

const files = process.argv.slice(2);
const text = files.length > 0 ? files.map((f) => readFileSync(f, 'utf8')).join('\n') : readFileSync(0, 'utf8');
const rows = parseBenchLog(text);
process.stdout.write(`${benchTable(rows)}\n\n${genTable(rows)}\n`);
if (rows.some((r) => r.bench === 'gemm')) process.stdout.write(`\n${gemmTable(rows)}\n`);
