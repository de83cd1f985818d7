import { readFileSync } from 'node:fs';
import { extractBoxed } from '../src/extract.js';
const rows = readFileSync('../../data/math500/test.jsonl','utf8').split('\n').filter(Boolean).map((l)=>JSON.parse(l));
let n=0; for (const r of rows) { const b=extractBoxed(r.solution); if (b!==r.answer) { n++; console.log(JSON.stringify(b), '|', JSON.stringify(r.answer)); } }
console.log(n);
