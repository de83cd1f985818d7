// Collapse flags of an experiment: which training stages their summary.json marks as collapsed
// (@latent-sft/train detectCollapse, rule in docs/pipeline.md), and for every stage the collapsed stages
// at or upstream of it, so a Table-1 row built on a collapsed phase is never shown as a plain result.
import { join } from 'node:path';
import { readSummary } from '@latent-sft/pipeline';
import type { Stage } from './plan.js';

export interface CollapseFlag {
  stage: string;
  message: string;
}

/** For every stage id: the collapsed stages among itself and its (transitive) dependencies, in stage order. */
export function collapseFlags(stages: readonly Stage[], dir: string): Map<string, CollapseFlag[]> {
  const own = new Map<string, CollapseFlag>();
  for (const st of stages) {
    const s = readSummary(join(dir, st.out));
    if (s?.collapse?.collapsed === true) own.set(st.id, { stage: st.id, message: s.collapse.message });
  }
  const flags = new Map<string, CollapseFlag[]>();
  for (const st of stages) {
    // dependencies come first (checkOrder)
    const seen = new Map<string, CollapseFlag>();
    for (const d of st.deps) for (const f of flags.get(d) ?? []) seen.set(f.stage, f);
    const mine = own.get(st.id);
    if (mine) seen.set(st.id, mine);
    flags.set(st.id, [...seen.values()]);
  }
  return flags;
}

/** A method label carrying its collapse flags: `w/o LTSuM ⚠ COLLAPSED (r4-no-ltsum/phase1-encoder)`. */
export function flaggedLabel(label: string, flags: readonly CollapseFlag[] | undefined): string {
  return flags && flags.length > 0 ? `${label} ⚠ COLLAPSED (${flags.map((f) => f.stage).join(', ')})` : label;
}
