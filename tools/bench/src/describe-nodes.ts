// What a node named in an ORT profile is: its op, attributes, inputs (dtype, shape, producer) and outputs
// (dtype, shape, consumers), from the step graph the Trainer would build (Trainer.stepGraphs) — the
// profile's node names are the graph's. Used by train-bench and phase-bench's `--nodes` (no device needed).
import type { Graph } from '@latent-sft/graph';
import type { StepGraphs } from '@latent-sft/train';

/** One text block per name in `names` (a name the graph lacks says so). */
export function describeNodes(g: Graph, names: readonly string[]): string[] {
  const producer = new Map<string, string>();
  const consumers = new Map<string, string[]>();
  for (const n of g.nodes) {
    for (const o of n.outputs) producer.set(o, `${n.op} ${n.name}`);
    for (const i of n.inputs) if (i !== '') consumers.set(i, [...(consumers.get(i) ?? []), `${n.op} ${n.name}`]);
  }
  const val = (v: string) => {
    if (v === '') return '-';
    const t = g.value(v);
    return `${v}: ${t.dtype}${t.shapeText}`;
  };
  return names.map((name) => {
    const n = g.nodes.find((x) => x.name === name);
    if (n === undefined) return `NODE ${name}: not in graph '${g.name}' (${g.nodes.length} nodes)`;
    const attrs = Object.entries(n.attrs)
      .map(([k, v]) => `${k}=${JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? Number(x) : x))?.slice(0, 80)}`)
      .join(' ');
    const lines = [`NODE ${n.name}: ${n.op}${attrs ? ` {${attrs}}` : ''}`];
    for (const i of n.inputs) lines.push(`  in  ${val(i)}  <- ${i === '' ? '' : (producer.get(i) ?? 'graph input / initializer')}`);
    for (const o of n.outputs) lines.push(`  out ${val(o)}  -> ${(consumers.get(o) ?? ['(graph output)']).slice(0, 6).join(', ')}`);
    return lines.join('\n');
  });
}

/**
 * Prints, for each graph of a step (`--nodes` of the benches), its node count by op type (most first; what a
 * step launches before ORT's own fusions), then describeNodes of `names` (none for `--nodes ''`).
 */
export function printStepNodes(graphs: StepGraphs, names: readonly string[]): void {
  for (const g of [graphs.fused, graphs.grad, graphs.update]) {
    if (!g) continue;
    const byOp = new Map<string, number>();
    for (const n of g.nodes) byOp.set(n.op, (byOp.get(n.op) ?? 0) + 1);
    const ops = Object.fromEntries([...byOp].sort((a, b) => b[1] - a[1]));
    process.stdout.write(`NODES ${JSON.stringify({ graph: g.name, total: g.nodes.length, ops })}\n`);
    // The most repeated node kinds: op with its input dtypes and shapes (where a step's node count comes from).
    const kinds = new Map<string, number>();
    for (const n of g.nodes) {
      const key = `${n.op}(${n.inputs.map((i) => (i === '' ? '-' : `${g.value(i).dtype}${g.value(i).shapeText}`)).join(', ')})`;
      kinds.set(key, (kinds.get(key) ?? 0) + 1);
    }
    const top = [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 40);
    process.stdout.write(`NODEKINDS ${JSON.stringify({ graph: g.name, top: Object.fromEntries(top) })}\n`);
    for (const t of describeNodes(
      g,
      names.filter((n) => n !== ''),
    ))
      process.stdout.write(`${t}\n`);
  }
}
