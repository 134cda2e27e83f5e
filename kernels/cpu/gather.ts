/**
 * Index-driven copies and their adjoints.
 *   indexSelect: x viewed as (outer, n, inner) → out (outer, m, inner), out[o,i,j] = x[o, index[i], j]
 *   indexAdd:    the adjoint, dx[o, index[i], j] += dy[o, i, j]
 *   gather:      out[…, i_d, …] = x[…, index[…, i_d, …], …] along axis d (index has the output's shape)
 *   scatterAdd:  the adjoint of gather
 *   sitesGather: x (N, C, P) → rows (V, C), rows[v, c] = x[n, c, p] for site v at flat position sites[v] = n·P + p
 *                (the SparK encoder's visible positions of an NCHW map, P = H·W, without a channels-last copy)
 *   sitesScatter: the adjoint, y (N, C, P) zero except y[n, c, p] += rows[v, c]
 * Indices are checked by the op layer before they reach these loops.
 */
import type { FloatArray } from '../../src/tensor/dtype.ts';
import { stridesOf } from '../../src/tensor/shape.ts';

export function indexSelect(x: FloatArray, outer: number, n: number, inner: number, index: Int32Array, out: FloatArray): void {
  const m = index.length;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const src = (o * n + index[i]) * inner;
      const dst = (o * m + i) * inner;
      for (let j = 0; j < inner; j++) out[dst + j] = x[src + j];
    }
  }
}

export function indexAdd(dy: FloatArray, outer: number, n: number, inner: number, index: Int32Array, dx: FloatArray): void {
  const m = index.length;
  dx.fill(0);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < m; i++) {
      const dst = (o * n + index[i]) * inner;
      const src = (o * m + i) * inner;
      for (let j = 0; j < inner; j++) dx[dst + j] += dy[src + j];
    }
  }
}

/** Visit every element of `indexShape`, giving its flat position and the x offset it points at along `axis`. */
function forEachGathered(
  xShape: readonly number[], indexShape: readonly number[], axis: number, index: Int32Array,
  visit: (flat: number, xOffset: number) => void,
): void {
  const xStrides = stridesOf(xShape);
  const nd = indexShape.length;
  const idx = new Array<number>(nd).fill(0);
  for (let flat = 0; flat < index.length; flat++) {
    let off = 0;
    for (let d = 0; d < nd; d++) off += (d === axis ? index[flat] : idx[d]) * xStrides[d];
    visit(flat, off);
    for (let d = nd - 1; d >= 0; d--) {
      if (++idx[d] < indexShape[d]) break;
      idx[d] = 0;
    }
  }
}

export function gather(x: FloatArray, xShape: readonly number[], axis: number, index: Int32Array, indexShape: readonly number[], out: FloatArray): void {
  forEachGathered(xShape, indexShape, axis, index, (flat, off) => { out[flat] = x[off]; });
}

export function scatterAdd(dy: FloatArray, xShape: readonly number[], axis: number, index: Int32Array, indexShape: readonly number[], dx: FloatArray): void {
  dx.fill(0);
  forEachGathered(xShape, indexShape, axis, index, (flat, off) => { dx[off] += dy[flat]; });
}

export function sitesGather(x: FloatArray, N: number, C: number, P: number, sites: Int32Array, rows: FloatArray): void {
  const V = sites.length;
  for (let v = 0; v < V; v++) {
    const s = sites[v], n = Math.floor(s / P), base = n * C * P + (s - n * P);
    for (let c = 0; c < C; c++) rows[v * C + c] = x[base + c * P];
  }
}

export function sitesScatter(rows: FloatArray, N: number, C: number, P: number, sites: Int32Array, y: FloatArray): void {
  y.fill(0);
  const V = sites.length;
  for (let v = 0; v < V; v++) {
    const s = sites[v], n = Math.floor(s / P), base = n * C * P + (s - n * P);
    for (let c = 0; c < C; c++) y[base + c * P] += rows[v * C + c];
  }
}
