/**
 * Strided copy: dst[view] = src[view]. With the right strides and offsets this one kernel is permute,
 * slice/narrow, expand (stride 0), pad (a window of the destination) and concat (one window per input).
 */
import type { DataArray } from '../../src/tensor/dtype.ts';
import { forEachRow } from './strided.ts';

export function stridedCopy(
  shape: readonly number[],
  src: DataArray, srcOffset: number, srcStrides: readonly number[],
  dst: DataArray, dstOffset: number, dstStrides: readonly number[],
): void {
  if (src instanceof BigInt64Array !== dst instanceof BigInt64Array) {
    throw new Error('stridedCopy: int64 and non-int64 arrays cannot be copied into each other');
  }
  const s = src as Float64Array;
  const d = dst as Float64Array;
  forEachRow(shape, [srcStrides, dstStrides], [srcOffset, dstOffset], (o, n, inner) => {
    const is = inner[0], id = inner[1];
    let ps = o[0], pd = o[1];
    for (let i = 0; i < n; i++, ps += is, pd += id) d[pd] = s[ps];
  });
}
