// Base tokenizer ids → our ids of a vocabulary subset (pure; the exported web page uses it too, with
// the tokenizer.json vocabulary it fetched): a base id in the subset maps to its position; one outside
// it is spelled with the subset ids of its byte-level characters, so any text stays encodable.

/** Our ids of `baseIds`; `fromBase` maps base id → our id, `baseToken`/`baseId` read the base vocabulary. */
export function subsetIds(
  baseIds: readonly number[],
  fromBase: ReadonlyMap<number, number>,
  baseToken: (id: number) => string | undefined,
  baseId: (token: string) => number | undefined,
): number[] {
  const out: number[] = [];
  for (const b of baseIds) {
    const id = fromBase.get(b);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    const token = baseToken(b) ?? '';
    for (const ch of token) {
      const byte = baseId(ch);
      const mapped = byte === undefined ? undefined : fromBase.get(byte);
      if (mapped === undefined) throw new Error(`token ${JSON.stringify(token)} (base id ${b}) has no byte-level spelling in the subset`);
      out.push(mapped);
    }
  }
  return out;
}
