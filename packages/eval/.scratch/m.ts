import { readFileSync } from 'node:fs';
import { extractBoxed } from '../src/extract.js';
import { compareAnswers } from '../src/equivalence.js';
import { normalizeLatex } from '../src/latex.js';
const rows = readFileSync('../../data/math500/test.jsonl','utf8').split('\n').filter(Boolean).map((l)=>JSON.parse(l));
let ok=0; const t0=performance.now(); const methods: Record<string,number>={};
for (const r of rows) { const b=extractBoxed(r.solution); const t=performance.now(); const c=compareAnswers(b, r.answer, 'latex'); const dt=performance.now()-t;
  methods[c.method]=(methods[c.method]??0)+1;
  if(c.equal) ok++; else console.log('FAIL', r.unique_id, JSON.stringify(b), '|', JSON.stringify(r.answer), '|', normalizeLatex(b??''), '|', normalizeLatex(r.answer));
  if (dt>200) console.log('SLOW', dt.toFixed(0), r.answer);
}
console.log(ok, rows.length, methods, (performance.now()-t0).toFixed(0),'ms');
