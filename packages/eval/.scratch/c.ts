import { compareAnswers } from '../src/equivalence.js';
import type { AnswerKind } from '../src/equivalence.js';
const cases: Array<[string, string, AnswerKind, boolean]> = [
 ['3.50','3.5','numeric',true],['-9,867,630','-9867630','numeric',true],['-9867631','-9867630','numeric',false],['2125','2,125','numeric',true],['$18.00','18','numeric',true],
 ['18 dollars','18','numeric',true],['50%','50','numeric',true],['18.','18','numeric',true],['3244047.1','3244047.0999999996','numeric',true],['14053029.67','14053029.666666666','numeric',true],
 ['14053030','14053029.666666666','numeric',false],['\\frac{7}{2}','3.5','numeric',true],['7/2','3.5','numeric',true],['abc','18','numeric',false],['-5','5','numeric',false],['0.00011','0','numeric',false],['0.00009','0','numeric',true],
 ['25','025','integer',true],['025','25','integer',true],['25.5','25','integer',false],['25.0','025','integer',true],['26','025','integer',false],['\\text{25}','025','integer',true],
 ['0.5','\\frac{1}{2}','latex',true],['\\dfrac{1}{2}','\\frac12','latex',true],['\\frac{\\sqrt{3}}{3}','\\frac{1}{\\sqrt{3}}','latex',true],['2\\sqrt{5}','\\sqrt{20}','latex',true],
 ['\\left( 3, \\frac{\\pi}{2} \\right)','(3,\\frac{\\pi}{2})','latex',true],['(3,\\pi/2)','\\left( 3, \\frac{\\pi}{2} \\right)','latex',true],['[3,4)','(3,4]','latex',false],['(3,4]','(3,4]','latex',true],
 ['(2,12) \\cup (12,102)','(2,12)\\cup(12,102)','latex',true],['(2,12) \\cup (12,101)','(2,12)\\cup(12,102)','latex',false],['\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}','\\{1\\pm\\sqrt{5},-2\\}','latex',true],
 ['1+\\sqrt{19}, 1-\\sqrt{19}','1 \\pm \\sqrt{19}','latex',true],['1+\\sqrt{19}','1 \\pm \\sqrt{19}','latex',false],['3, 7, 5','3, 5, 7','latex',true],['3, 5','3, 5, 7','latex',false],
 ['\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}','\\begin{pmatrix}-1&0\\\\0&-1\\end{pmatrix}','latex',true],['\\begin{pmatrix} 0.2 \\\\ -3.6 \\end{pmatrix}','\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}','latex',true],
 ['\\begin{pmatrix} 1/5 \\\\ 18/5 \\end{pmatrix}','\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}','latex',false],['(1/5, -18/5)','\\begin{pmatrix} 1/5 \\\\ -18/5 \\end{pmatrix}','latex',true],
 ['C','\\text{(C)}','latex',true],['(C)','\\text{(C)}','latex',true],['\\text{(D)}','\\text{(C)}','latex',false],['Even','\\text{even}','latex',true],['odd','\\text{even}','latex',false],
 ['30','30^\\circ','latex',true],['30^{\\circ}','30^\\circ','latex',true],['\\frac{270}{7}','\\frac{270}7\\text{ degrees}','latex',true],['864','864 \\mbox{ inches}^2','latex',true],['15','15\\mbox{ cm}^2','latex',true],
 ['5.4','5.4 \\text{ cents}','latex',true],['36','\\$36','latex',true],['32348','\\$32,\\!348','latex',true],['11111111100','11,\\! 111,\\! 111,\\! 100','latex',true],['10080','10,\\!080','latex',true],
 ['2x+3','y = 2x + 3','latex',true],['y=3+2x','y = 2x + 3','latex',true],['2x+4','y = 2x + 3','latex',false],['10x-14y+22z+8=0','5x - 7y + 11z + 4 = 0','latex',true],['5x-7y+11z+5=0','5x - 7y + 11z + 4 = 0','latex',false],
 ['5','x=5','latex',true],['[-2,7]','x \\in [-2,7]','latex',true],['x^3-6+3x','x^3+3x-6','latex',true],['ab+2a+5b+10','(a+5)(b+2)','latex',true],['ab+2a+5b+11','(a+5)(b+2)','latex',false],
 ['\\frac{\\cos x}{\\sin x}','\\cot x','latex',true],['\\tan x','\\cot x','latex',false],['9i+6','6+9i','latex',true],['6-9i','6+9i','latex',false],['8\\pi','8 \\pi','latex',true],['25.13','8\\pi','latex',false],
 ['1.8','1\\frac{4}{5}','latex',true],['137.5','137 \\frac{1}{2}','latex',true],['0.35625','.35625','latex',true],['6.72\\times10^{-5}','.0000672','latex',true],['52_8','52_8','latex',true],['52','52_8','latex',false],
 ['4210_5','4210_{5}','latex',true],['3r^2','3R^2','latex',false],['\\frac{11}{20}+\\frac{9a}{20}','\\frac{11+9a}{20}','latex',true],['(-\\infty,0]','(-\\infty, 0]','latex',true],['(-\\infty,0)','(-\\infty, 0]','latex',false],
 ['\\infty','\\infty','latex',true],['2^{10000}','2^{10001}','latex',false],['','3','latex',false],['\\frac{1}{0}','\\frac{1}{0}','latex',true],['\\frac{2}{0}','\\frac{1}{0}','latex',false],['\\pi','3.14159','latex',false],
 ['\\sqrt{2}/2','\\frac{\\sqrt2}{2}','latex',true],['\\frac{\\pi^2}{8}','\\frac{\\pi^{2}}{8}','latex',true], ['x \\in (5, \\infty)','(5,\\infty)','latex',true],['e','\\text{east}','latex',false], ['\\text{east}','\\text{East}','latex',true],
];
let fails=0; const t0=performance.now();
for (const [p,g,k,exp] of cases) { const t=performance.now(); let c; try { c=compareAnswers(p,g,k);} catch(e){ console.log('THROW',p,g,(e as Error).message); fails++; continue; } const dt=performance.now()-t; if (c.equal!==exp) { fails++; console.log('WRONG', JSON.stringify(p), JSON.stringify(g), k, 'got', c.equal, c.method); } if (dt>150) console.log('SLOW',dt.toFixed(0),p,g); }
console.log('fails', fails, 'of', cases.length, (performance.now()-t0).toFixed(0),'ms');
