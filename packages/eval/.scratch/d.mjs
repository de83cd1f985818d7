import { ComputeEngine } from '@cortex-js/compute-engine';
const ce = new ComputeEngine();
for (const s of ['\\cot x','\\frac{\\cos x}{\\sin x}','\\frac{2}{0}']) { const e=ce.parse(s); const v=e.subs({x:ce.number(0.739)}).N(); console.log(s, JSON.stringify(v.json), v.isNumberLiteral, v.re, v.im, e.N().isNaN, JSON.stringify(e.N().json)); }
