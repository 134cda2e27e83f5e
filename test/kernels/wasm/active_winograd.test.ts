/**
 * The active-site convolution by Winograd over the active tiles (kernels/wasm/active_winograd.ts) against the
 * reference twins of kernels/cpu/active_conv.ts, on random sizes (odd and even) and channel counts with the
 * thresholds lowered, on the default runtime (every thread), with SparK-like masks: cells of 1 to 4 outputs kept
 * at random, so that tiles are wholly kept, wholly dropped, or (odd cells) kept in part. Outputs start as NaN; off
 * the sites the forward's outputs must be exactly 0, as in the reference (the input gradient's positions that no
 * site reaches may carry rounding inside a partly kept tile: active_winograd.ts).
 * Tolerance: winograd.test.ts's normwise float32 bound, 2·(terms + 2)·u·S with S the scale of the filter bank
 * times the largest input (or output gradient at the sites) of the image; Winograd's rounding mixes a tile's
 * taps, so a plain sum's own magnitude does not bound it.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fc from 'fast-check';
import {
  activeConv2dBackwardInputRef, activeConv2dBackwardWeightRef, activeConv2dRef,
} from '../../../kernels/cpu/active_conv.ts';
import type { Conv2dParams } from '../../../kernels/cpu/conv2d.ts';
import { activeConv2dBackwardInputWasm, activeConv2dBackwardWeightWasm, activeConv2dWasm } from '../../../kernels/wasm/active_conv.ts';
import { activeWinogradTiles } from '../../../kernels/wasm/active_winograd.ts';
import { assertClose, randomF32, seeded, wasmOrSkip } from './helpers.ts';

const always = { winogradMinChannels: 1, winogradMinSize: 1 };

/** Sites of kept cells (cell × cell outputs, kept with probability `keep`), in image order. */
function cellSites(N: number, H: number, W: number, cell: number, keep: number, rand: () => number): Int32Array {
  const out: number[] = [];
  for (let n = 0; n < N; n++) {
    const rows = Math.ceil(H / cell), cols = Math.ceil(W / cell);
    const kept = Array.from({ length: rows * cols }, () => rand() < keep);
    for (let h = 0; h < H; h++) {
      for (let w = 0; w < W; w++) if (kept[Math.floor(h / cell) * cols + Math.floor(w / cell)]) out.push((n * H + h) * W + w);
    }
  }
  return Int32Array.from(out);
}

let worst = 0;

function check(p: Conv2dParams, sites: Int32Array, seed: number): void {
  const { N, C, K, H, W } = p;
  const rand = seeded(seed);
  const HW = H * W, nx = N * C * HW, nw = K * C * 9, ny = N * K * HW;
  const x = randomF32(nx, rand), w = randomF32(nw, rand), dy = randomF32(ny, rand);
  const isSite = new Uint8Array(N * HW);
  for (const s of sites) isSite[s] = 1;
  // scales: Σ|w| over a filter's taps and channels times the image's largest |x| (or |dy| at the sites)
  const wSum = (k: number, c: number) => w.subarray((k * C + c) * 9, (k * C + c) * 9 + 9).reduce((s, v) => s + Math.abs(v), 0);
  const imageMax = (a: Float32Array, chans: number, n: number, siteOnly: boolean) => {
    let m = 0;
    for (let c = 0; c < chans; c++) for (let i = 0; i < HW; i++) if (!siteOnly || isSite[n * HW + i]) m = Math.max(m, Math.abs(a[(n * chans + c) * HW + i]));
    return m;
  };
  const close = (what: string, got: Float32Array, want: Float64Array, scale: (i: number) => number, terms: number) => {
    const mag = Float64Array.from(got, (_, i) => scale(i));
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (2 * (terms + 2) * 2 ** -24 * mag[i] || 1));
    assertClose(`${what} ${JSON.stringify(p)} (${sites.length} sites)`, got, want, mag, terms);
  };
  const xMax = Array.from({ length: N }, (_, n) => imageMax(x, C, n, false));
  const dyMax = Array.from({ length: N }, (_, n) => imageMax(dy, K, n, true));
  const yS = (i: number) => { const n = Math.floor(i / (K * HW)), k = Math.floor(i / HW) % K; let s = 0; for (let c = 0; c < C; c++) s += wSum(k, c); return s * xMax[n]; };
  const dxS = (i: number) => { const n = Math.floor(i / (C * HW)), c = Math.floor(i / HW) % C; let s = 0; for (let k = 0; k < K; k++) s += wSum(k, c); return s * dyMax[n]; };
  const dwS = (i: number) => {
    const k = Math.floor(i / (C * 9)), c = Math.floor(i / 9) % C;
    let s = 0;
    for (let n = 0; n < N; n++) {
      let dySum = 0, xm = 0;
      for (let j = 0; j < HW; j++) {
        if (isSite[n * HW + j]) dySum += Math.abs(dy[(n * K + k) * HW + j]);
        xm = Math.max(xm, Math.abs(x[(n * C + c) * HW + j]));
      }
      s += dySum * xm;
    }
    return s;
  };
  const y = new Float32Array(ny).fill(NaN), yRef = new Float64Array(ny);
  activeConv2dWasm(x, w, y, p, sites, always);
  activeConv2dRef(x, w, yRef, p, sites);
  close('forward', y, yRef, yS, C * 9);
  for (let i = 0; i < ny; i++) if (yRef[i] === 0 && y[i] !== 0) assert.unreachable(`forward [${i}]: ${y[i]} off the sites`);
  const dx = new Float32Array(nx).fill(NaN), dxRef = new Float64Array(nx);
  activeConv2dBackwardInputWasm(dy, w, dx, p, sites, always);
  activeConv2dBackwardInputRef(dy, w, dxRef, p, sites);
  close('backward input', dx, dxRef, dxS, K * 9);
  const dw = new Float32Array(nw).fill(NaN), dwRef = new Float64Array(nw);
  activeConv2dBackwardWeightWasm(x, dy, dw, p, sites, always);
  activeConv2dBackwardWeightRef(x, dy, dwRef, p, sites);
  close('backward weight', dw, dwRef, dwS, sites.length);
}

const params = (N: number, C: number, K: number, H: number, W: number): Conv2dParams =>
  ({ N, C, K, H, W, R: 3, S: 3, OH: H, OW: W, strideH: 1, strideW: 1, padH: 1, padW: 1, dilationH: 1, dilationW: 1, groups: 1 });

test('active-site Winograd == reference restricted to the sites, on cell masks', () => {
  if (!wasmOrSkip('active-site Winograd')) return;
  const arb = fc.record({
    N: fc.integer({ min: 1, max: 3 }), C: fc.integer({ min: 1, max: 20 }), K: fc.integer({ min: 1, max: 20 }),
    H: fc.integer({ min: 1, max: 13 }), W: fc.integer({ min: 1, max: 13 }),
    cell: fc.integer({ min: 1, max: 4 }), keep: fc.constantFrom(0.3, 0.6, 1), seed: fc.nat(),
  });
  let ran = 0;
  fc.assert(fc.property(arb, ({ N, C, K, H, W, cell, keep, seed }) => {
    const p = params(N, C, K, H, W);
    const sites = cellSites(N, H, W, cell, keep, seeded(seed ^ 0x5bd1));
    if (activeWinogradTiles(p, sites, always)) ran++;
    check(p, sites, seed);
  }), { numRuns: 120 });
  assert.ok(ran > 40, `the Winograd path ran in ${ran} of 120 cases`);
  console.log(`active-site Winograd: worst error ${worst.toFixed(3)} of the tolerance`);
});

test('active-site Winograd: SparK-sized masks take it by default; scattered sites keep im2col', () => {
  if (!wasmOrSkip('active-site Winograd thresholds')) return;
  const p = params(4, 32, 48, 24, 24);
  const sparkMask = cellSites(4, 24, 24, 8, 0.4, seeded(3));
  assert.ok(activeWinogradTiles(p, sparkMask), 'cells of 8 at 24²');
  check(p, sparkMask, 11);
  const scattered = Int32Array.from({ length: 300 }, (_, i) => i * 7);
  assert.not.ok(activeWinogradTiles(p, scattered), 'one site in most tiles');
  assert.not.ok(activeWinogradTiles({ ...p, C: 8 }, sparkMask), 'too few channels');
});

test.run();
