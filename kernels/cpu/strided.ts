/**
 * Strided iteration, the loop skeleton under every elementwise, copy and reduction kernel.
 * Operands are described by per-axis strides over one common logical shape (a stride of 0 broadcasts).
 * Adjacent axes that are contiguous for every operand are merged first, so a typical call runs one or two
 * loops; the innermost axis is handed to a row callback that the kernels write as a tight loop.
 */

export interface Collapsed {
  shape: number[];
  strides: number[][];
}

/** Merge axes i and i+1 wherever stride[i] == stride[i+1] * shape[i+1] holds for every operand. */
export function collapse(shape: readonly number[], strides: readonly (readonly number[])[]): Collapsed {
  const outShape: number[] = [];
  const outStrides: number[][] = strides.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === 1) continue; // a size-1 axis moves nothing
    const last = outShape.length - 1;
    const mergeable = last >= 0 && strides.every((s, k) => outStrides[k][last] === s[i] * shape[i]);
    if (mergeable) {
      outShape[last] *= shape[i];
      strides.forEach((s, k) => { outStrides[k][last] = s[i]; });
    } else {
      outShape.push(shape[i]);
      strides.forEach((s, k) => outStrides[k].push(s[i]));
    }
  }
  if (outShape.length === 0) {
    outShape.push(1);
    outStrides.forEach((s) => s.push(0));
  }
  return { shape: outShape, strides: outStrides };
}

/**
 * Call `row(offsets, n, innerStrides)` once per innermost row of `shape`, with each operand's starting offset.
 * `offsets` is reused between calls: read it, don't keep it.
 */
export function forEachRow(
  shape: readonly number[],
  strides: readonly (readonly number[])[],
  base: readonly number[],
  row: (offsets: number[], n: number, inner: number[]) => void,
): void {
  if (shape.some((d) => d === 0)) return;
  const c = collapse(shape, strides);
  const nd = c.shape.length;
  const k = strides.length;
  const inner = c.strides.map((s) => s[nd - 1]);
  const n = c.shape[nd - 1];
  const offsets = base.slice();
  const idx = new Array<number>(nd - 1).fill(0);
  for (;;) {
    row(offsets, n, inner);
    // odometer increment over the outer axes
    let ax = nd - 2;
    while (ax >= 0) {
      idx[ax]++;
      for (let j = 0; j < k; j++) offsets[j] += c.strides[j][ax];
      if (idx[ax] < c.shape[ax]) break;
      for (let j = 0; j < k; j++) offsets[j] -= c.strides[j][ax] * c.shape[ax];
      idx[ax] = 0;
      ax--;
    }
    if (ax < 0) return;
  }
}
