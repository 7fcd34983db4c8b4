/**
 * Edit distance where insertion, deletion, substitution and swapping two neighbours each
 * cost one (optimal string alignment), so `lsiten` is one edit from `listen`.
 */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, at(i - 2, j - 2) + 1);
      }
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

const normalize = (key: string): string => key.toLowerCase().replace(/[-_\s]/g, '');

/**
 * The known key the unknown one was probably meant to be: the same up to case and `_`/`-`
 * (`maxCaptureRows`), or within a couple of typing mistakes (`lisen`). Undefined if none is close.
 */
export function suggestKey(unknown: string, known: readonly string[]): string | undefined {
  const wanted = normalize(unknown);
  const exact = known.find((key) => normalize(key) === wanted);
  if (exact !== undefined) return exact;
  const allowed = wanted.length <= 4 ? 1 : 2;
  let best: string | undefined;
  let bestDistance = allowed + 1;
  for (const key of known) {
    const distance = editDistance(wanted, normalize(key));
    if (distance < bestDistance) {
      best = key;
      bestDistance = distance;
    }
  }
  return best;
}
