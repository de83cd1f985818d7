import { readFileSync } from 'node:fs';
import { compareAnswers } from '../src/equivalence.js';
import { normalizeLatex, parseBracketed, splitTopLevel } from '../src/latex.js';
const rows = readFileSync('../../data/math500/test.jsonl','utf8').split('\n').filter(Boolean).map((l)=>JSON.parse(l));
function changeDigit(s: string): string | null { const i = s.search(/\d/); if (i<0) return null; return s.slice(0,i)+String((Number(s[i])+1)%10)+s.slice(i+1); }
function flipSign(s: string): string { const n=normalizeLatex(s); const eq=splitTopLevel(n,'='); if (eq.length===2) return `${eq[0]}=-(${eq[1]})`;
  const br=parseBracketed(n); if (br) return `${br.open}-(${br.items[0]}),${br.items.slice(1).join(',')}${br.close}`;
  return n.startsWith('-') ? n.slice(1) : `-${n}`; }
function swapBrackets(s: string): string | null { const n=normalizeLatex(s); const br=parseBracketed(n); if(!br||br.open==='\\{') return null; return `${br.open==='('?'[':'('}${br.items.join(',')}${br.close}`; }
function dropElement(s: string): string | null { const n=normalizeLatex(s); const br=parseBracketed(n); if(br) return `${br.open}${br.items.slice(0,-1).join(',')}${br.close}`; const l=splitTopLevel(n,','); if(l.length>1 && !/^-?\d{1,3}(,\d{3})+$/.test(n)) return l.slice(0,-1).join(','); return null; }
let bad=0; const t0=performance.now();
rows.forEach((r,i)=>{ const kind=i%4; let p: string|null = null; let how='';
  if (kind===2) { p=swapBrackets(r.answer); how='swap'; } if (kind===3 && !p) { p=dropElement(r.answer); how='drop'; }
  if (!p && kind===1) { p=flipSign(r.answer); how='sign'; }
  if (!p) { p=changeDigit(r.answer); how='digit'; } if (!p) { p=flipSign(r.answer); how='sign'; }
  const t=performance.now(); const c=compareAnswers(p, r.answer, 'latex'); const dt=performance.now()-t;
  if (c.equal) { bad++; console.log('EQUAL', i, how, JSON.stringify(p), '|', JSON.stringify(r.answer), c.method); }
  if (dt>100) console.log('SLOW', dt.toFixed(0), JSON.stringify(p), r.answer);
});
console.log('equal', bad, (performance.now()-t0).toFixed(0),'ms');
