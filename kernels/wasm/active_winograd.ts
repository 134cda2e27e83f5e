/**
 * Active-site 3×3 convolutions (stride 1, padding 1, one group) by Winograd F(2×2, 3×3) over only the 2×2 output
 * tiles that hold a site: SparK's masks keep or drop whole patches, so at the encoder's first three scales (cells of
 * 8, 4 and 2 outputs) every tile is wholly kept or wholly dropped, and the cost follows the visible fraction as the
 * im2col path's does (active_conv.ts), with Winograd's 2.25× fewer multiplies. With dyₘ = dy at the sites and 0
 * elsewhere (the output is 0 off the sites, so nothing else flows back):
 *
 *   forward          y  = conv(x, w) on the active tiles, then 0 at their outputs that are not sites
 *   backward input   dx = the adjoint's scatter-add over the active tiles: dV = Uᵀ·dM (dM from dyₘ), B·dV·Bᵀ added
 *                    onto each tile's 4×4 patch (winograd.ts's scatter-add input gradient). Where a tile is only
 *                    partly sites, a position that no site reaches gets its exact 0 plus rounding, within the
 *                    normwise Winograd bound of winograd.test.ts
 *   backward weight  dw = Σ over the active tiles of dM·Vᵀ (dM from dyₘ), as winograd.ts's weight gradient
 *
 * A tile list is an i32 table of each tile's byte offset from its image's channel-0 plane, for the listed tile
 * kernels (winograd_module.ts). Every stage runs whole-tensor (the encoder's maps are small): the tile transforms
 * split channels over the threads, the 16 gemms are tasks. Where the sites are scattered (fewer than
 * MIN_SITES_PER_TILE per active tile on average), the im2col path is cheaper and active_conv.ts keeps the call;
 * activeWinogradTiles decides, and its tiles are the ones the passes run over.
 * kernels/cpu/active_conv.ts's `…Ref` functions are the reference twins.
 */
import type { Conv2dParams } from '../cpu/conv2d.ts';
import type { WasmRuntime } from './runtime.ts';
import {
  SAME_3X3, filterTransform, inputPlanes, xiGemms, tiling, winogradApplies, type Tiling, type WinogradOptions,
} from './winograd.ts';

/**
 * Sites per active tile (of 4 outputs) from which Winograd pays: its 16 products per tile against im2col's 9 per
 * site break even at 16/9 sites per tile.
 */
const MIN_SITES_PER_TILE = 2;

/**
 * The tiles (t = (n·TH + ty)·TW + tx, ascending) whose outputs include a site, and whether they are whole: every
 * output of theirs inside the image is a site.
 */
export interface ActiveTiles { tiles: Int32Array; whole: boolean }

function activeTiles(p: Conv2dParams, sites: Int32Array, t: Tiling): ActiveTiles {
  const P = p.OH * p.OW, on = new Uint8Array(t.T);
  for (const site of sites) {
    const n = Math.floor(site / P), pos = site - n * P, oh = Math.floor(pos / p.OW), ow = pos - oh * p.OW;
    on[(n * t.TH + (oh >> 1)) * t.TW + (ow >> 1)] = 1;
  }
  let count = 0, outputs = 0;
  for (let tile = 0; tile < t.T; tile++) {
    if (!on[tile]) continue;
    count++;
    const r = tile % (t.TH * t.TW), ty = Math.floor(r / t.TW), tx = r - ty * t.TW;
    outputs += Math.min(2, p.OH - 2 * ty) * Math.min(2, p.OW - 2 * tx);
  }
  const tiles = new Int32Array(count);
  for (let tile = 0, k = 0; tile < t.T; tile++) if (on[tile]) tiles[k++] = tile;
  return { tiles, whole: outputs === sites.length };
}

/**
 * The active tiles where p's active-site passes run here (a Winograd shape with sites dense enough in their
 * tiles), for the pass to use; else null.
 */
export function activeWinogradTiles(p: Conv2dParams, sites: Int32Array, opts: WinogradOptions = {}): ActiveTiles | null {
  if (!winogradApplies(p, opts) || sites.length === 0) return null;
  const active = activeTiles(p, sites, tiling(p, 2));
  return sites.length >= MIN_SITES_PER_TILE * active.tiles.length ? active : null;
}

/** The tile table for planes of `chans` channels, planeFloats and Wp floats: 3 entries of slack past the list. */
function tileTable(rt: WasmRuntime, tiles: Int32Array, t: Tiling, chans: number, planeFloats: number, Wp: number): number {
  const ptr = rt.alloc(tiles.length + 3), i32 = rt.i32, at = ptr >>> 2;
  for (let k = 0; k < tiles.length; k++) {
    const tile = tiles[k], n = Math.floor(tile / (t.TH * t.TW)), r = tile - n * t.TH * t.TW, ty = Math.floor(r / t.TW), tx = r - ty * t.TW;
    i32[at + k] = (n * chans * planeFloats + 2 * ty * Wp + 2 * tx) * 4;
  }
  i32.fill(0, at + tiles.length, at + tiles.length + 3);
  return ptr;
}

/** out (N × chans × H × W) = the planes' H × W corner, 0 where keep is 0 (per image position n·H·W + pos). */
function maskedFromPlanes(rt: WasmRuntime, planes: number, planeH: number, planeW: number, chans: number, p: { N: number; H: number; W: number }, keep: Uint8Array, out: Float32Array): void {
  const { N, H, W } = p;
  const f32 = rt.f32, base = planes >>> 2;
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < chans; c++) {
      const plane = base + (n * chans + c) * planeH * planeW, o = (n * chans + c) * H * W;
      for (let h = 0; h < H; h++) {
        const row = plane + h * planeW, k = n * H * W + h * W;
        for (let w = 0; w < W; w++) out[o + h * W + w] = keep[k + w] ? f32[row + w] : 0;
      }
    }
  }
}

/** y = the active-site conv (0 off the sites). */
export function activeConv2dWinograd(rt: WasmRuntime, x: Float32Array, w: Float32Array, y: Float32Array, p: Conv2dParams, sites: Int32Array, active: ActiveTiles): void {
  const { N, C, K, OH, OW } = p;
  const t = tiling(p, 2);
  const { tiles, whole } = active, T = tiles.length, ld = Math.ceil(T / 4) * 4;
  const mark = rt.mark();
  const U = filterTransform(rt, SAME_3X3, w, p);
  const planes = inputPlanes(rt, SAME_3X3, x, p, t);
  const inTiles = tileTable(rt, tiles, t, C, t.Hp * t.Wp, t.Wp);
  const V = rt.alloc(16 * C * ld), M = rt.alloc(16 * K * ld);
  rt.runPieces(C, (c0, c1) => [['wgGatherListed_input', [planes, t.Wp, t.Hp * t.Wp, C, c0, c1, T, inTiles, V, ld]]]);
  xiGemms(rt, 16, { M: K, N: T, K: C, transA: false, transB: false },
    (xi) => U + xi * K * C * 4, (xi) => V + xi * C * ld * 4, (xi) => M + xi * K * ld * 4, { b: ld, c: ld });
  const yp = rt.alloc(N * K * t.Ho * t.Wo);
  rt.zero(yp, N * K * t.Ho * t.Wo);
  const outTiles = tileTable(rt, tiles, t, K, t.Ho * t.Wo, t.Wo);
  rt.runPieces(K, (k0, k1) => [['wgScatterListed_output', [M, ld, K, k0, k1, T, outTiles, yp, t.Wo, t.Ho * t.Wo]]]);
  if (whole) {
    // the active tiles' outputs are the sites, the rest is 0 already
    const yPtr = rt.alloc(N * K * OH * OW);
    rt.copyPlanes(yp, t.Ho * t.Wo, t.Wo, yPtr, OH * OW, OW, OH, OW, N * K);
    rt.read(yPtr, N * K * OH * OW, y, 0);
  } else {
    const isSite = new Uint8Array(N * OH * OW);
    for (const site of sites) isSite[site] = 1;
    maskedFromPlanes(rt, yp, t.Ho, t.Wo, K, { N, H: OH, W: OW }, isSite, y);
  }
  rt.reset(mark);
}

/** dx = ∂⟨active-site conv, dy⟩/∂x. */
export function activeConv2dBackwardInputWinograd(rt: WasmRuntime, dy: Float32Array, w: Float32Array, dx: Float32Array, p: Conv2dParams, sites: Int32Array, active: ActiveTiles): void {
  const { N, C, K, H, W } = p;
  const t = tiling(p, 2);
  const { tiles } = active, T = tiles.length, ld = Math.ceil(T / 4) * 4;
  const mark = rt.mark();
  const U = filterTransform(rt, SAME_3X3, w, p);
  const dyp = siteGradPlanes(rt, dy, p, sites, t);
  const dM = rt.alloc(16 * K * ld), dV = rt.alloc(16 * C * ld);
  const outTiles = tileTable(rt, tiles, t, K, t.Ho * t.Wo, t.Wo), inTiles = tileTable(rt, tiles, t, C, t.Hp * t.Wp, t.Wp);
  rt.runPieces(K, (k0, k1) => [['wgGatherListed_outputGrad', [dyp, t.Wo, t.Ho * t.Wo, K, k0, k1, T, outTiles, dM, ld]]]);
  xiGemms(rt, 16, { M: C, N: T, K, transA: true, transB: false },
    (xi) => U + xi * K * C * 4, (xi) => dM + xi * K * ld * 4, (xi) => dV + xi * C * ld * 4, { b: ld, c: ld });
  const dxp = rt.alloc(N * C * t.Hp * t.Wp);
  rt.zero(dxp, N * C * t.Hp * t.Wp);
  rt.runPieces(C, (c0, c1) => [['wgScatterListed_inputGrad', [dV, ld, C, c0, c1, T, inTiles, dxp, t.Wp, t.Hp * t.Wp]]]);
  const dxPtr = rt.alloc(N * C * H * W);
  SAME_3X3.fromPlanes(rt, dxp, dxPtr, p, t);
  rt.read(dxPtr, N * C * H * W, dx, 0);
  rt.reset(mark);
}

/**
 * dyₘ, dy at the sites and 0 elsewhere, in planes of whole tiles (N·K planes of Ho × Wo, one float of slack): each
 * image's site positions once, then each of its K planes copied at those positions.
 */
function siteGradPlanes(rt: WasmRuntime, dy: Float32Array, p: Conv2dParams, sites: Int32Array, t: Tiling): number {
  const { N, K, OH, OW } = p;
  const P = OH * OW, Q = t.Ho * t.Wo;
  const planes = rt.alloc(N * K * Q + 4);
  rt.zero(planes, N * K * Q + 4);
  const count = new Int32Array(N + 1);
  for (const site of sites) count[Math.floor(site / P) + 1]++;
  for (let n = 0; n < N; n++) count[n + 1] += count[n];
  const from = new Int32Array(sites.length), to = new Int32Array(sites.length), at = count.slice(0, N);
  for (const site of sites) {
    const n = Math.floor(site / P), pos = site - n * P, oh = Math.floor(pos / OW);
    from[at[n]] = pos;
    to[at[n]++] = oh * t.Wo + pos - oh * OW;
  }
  const f32 = rt.f32, base = planes >>> 2;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const src = (n * K + k) * P, dst = base + (n * K + k) * Q;
      for (let v = count[n]; v < count[n + 1]; v++) f32[dst + to[v]] = dy[src + from[v]];
    }
  }
  return planes;
}

/** dw = ∂⟨active-site conv, dy⟩/∂w. */
export function activeConv2dBackwardWeightWinograd(rt: WasmRuntime, x: Float32Array, dy: Float32Array, dw: Float32Array, p: Conv2dParams, sites: Int32Array, active: ActiveTiles): void {
  const { C, K } = p;
  const t = tiling(p, 2);
  const { tiles } = active, T = tiles.length, ld = Math.ceil(T / 4) * 4;
  const mark = rt.mark();
  const planes = inputPlanes(rt, SAME_3X3, x, p, t);
  const dyp = siteGradPlanes(rt, dy, p, sites, t);
  const V = rt.alloc(16 * C * ld), dM = rt.alloc(16 * K * ld), dU = rt.alloc(16 * K * C);
  const inTiles = tileTable(rt, tiles, t, C, t.Hp * t.Wp, t.Wp), outTiles = tileTable(rt, tiles, t, K, t.Ho * t.Wo, t.Wo);
  rt.runPieces(C, (c0, c1) => [['wgGatherListed_input', [planes, t.Wp, t.Hp * t.Wp, C, c0, c1, T, inTiles, V, ld]]]);
  rt.runPieces(K, (k0, k1) => [['wgGatherListed_outputGrad', [dyp, t.Wo, t.Ho * t.Wo, K, k0, k1, T, outTiles, dM, ld]]]);
  xiGemms(rt, 16, { M: K, N: C, K: T, transA: false, transB: true },
    (xi) => dM + xi * K * ld * 4, (xi) => V + xi * C * ld * 4, (xi) => dU + xi * K * C * 4, { a: ld, b: ld });
  const dwPtr = rt.alloc(K * C * 9);
  SAME_3X3.filterGrad(rt, dU, dwPtr, p);
  rt.read(dwPtr, K * C * 9, dw, 0);
  rt.reset(mark);
}
