/**
 * The WebAssembly source of the SIMD kernels, written with `builder.ts` and emitted at load time. Every function
 * works on byte addresses into one imported memory and keeps no state of its own (no globals, no static
 * scratch), so one instance per worker over a shared memory can run the same function on disjoint ranges.
 *
 *   gemm:   packA / packB copy a block of op(A) / op(B) into the strip layout the micro-kernel streams
 *           (packed[s·W·kc + k·W + t], zero past the edge); `macro` runs the MR×NR micro-kernel over a packed
 *           mc×kc block of A and kc×nc panel of B, adding into (or storing to) C.
 *   conv:   im2col / col2im between an image group and its column matrix (conv2d.ts has the math); packTaps /
 *           interleaveTaps between a filter bank and one matrix per tap (taps_module.ts, conv2d_positions.ts).
 *   depthwise: `copyRows` (placing a plane inside a zero border), `dwCorr` (a stride-1 correlation of a
 *           zero-bordered plane with an R×S filter) and `dwGrad` (the filter gradient's correlation), f32x4 along
 *           the output row.
 *   active sites: `actGather` / `actScatter` (receptive fields of listed output sites to and from rows) and
 *           `actGatherOut` / `actScatterOut` (the output channels at the sites), active_conv.ts has the math.
 *   pointwise: `binary_<op>` (a contiguous operand with a full, per-row or splatted other one), `unary_<op>`
 *           (the ReLU family, neg, abs, sqrt) and the batch-norm channel passes `bnStats`, `bnNorm`,
 *           `bnBwdSums`, `bnBwdDx` with their `…Rows` twins for (rows, C) inputs (float64 arithmetic on widened
 *           f32x4 loads); elementwise.ts and norm.ts.
 * Sizes and strides are i32 parameters (the active-site kernels read theirs from an i32 block, `ACT`); only the
 * register tiles and the use of relaxed SIMD are fixed when the module is built. Every export takes i32
 * arguments only, so a worker pool can pass them through an Int32Array.
 * Left out: everything that is not a hot loop (blocking, validity ranges, copies in and out live in TypeScript).
 */
import { ModuleBuilder, type FunctionBuilder, type FuncRef } from './builder.ts';
import { bump, bumpBy, forLoop, minI32, transpose4 } from './emit.ts';
import { emitCopyPlanes, emitWinograd } from './winograd_module.ts';
import { emitWinogradK4S2 } from './winograd_k4s2_module.ts';
import { emitWinograd43 } from './winograd43_module.ts';
import { emitMaxPool } from './maxpool_module.ts';
import { emitLamb, emitSgd } from './lamb_module.ts';
import { emitTaps } from './taps_module.ts';

export interface KernelModuleOptions {
  /** Emit f32x4.relaxed_madd for the micro-kernel's multiply-adds (only where the runtime validated it). */
  relaxed: boolean;
  /** Import a shared memory (for worker threads); it then needs a maximum. */
  shared: boolean;
  /** Pages the shared memory's import declares as its maximum. */
  maximumPages?: number;
}

/**
 * Micro-tile: MR rows of op(A) by NR columns of op(B); NR is a multiple of 4 (one f32x4 per 4 columns). The
 * tile holds MR·NR/4 accumulators, plus NR/4 vectors of B, the splat of A and V8's product temporary: 14 of the
 * 15 xmm registers V8 allocates on x64 (xmm15 is its scratch), so nothing spills. Measured on the AMD EPYC of
 * this project's bench machine (single thread, f32x4.mul + f32x4.add): 2×16 ≈ 45–50 GFLOP/s, 5×8 ≈ 40–48,
 * 4×8 ≈ 40, and 3×16 or 4×12 (which spill) ≈ 23. Unrolling k did not help: V8 11 does not fold the constant
 * offset of load32_splat into the address and hoists the extra base registers, which then spill.
 */
export const MR = 2;
export const NR = 16;

/** winograd_module.ts's tile kernels (see there): over every tile of TH × TW per image, and over listed tiles. */
type TileGather = (plane: number, Wp: number, planeFloats: number, chans: number, c0: number, c1: number, T: number,
  TH: number, TW: number, mat: number, ldT: number) => void;
type TileScatter = (mat: number, ldT: number, chans: number, c0: number, c1: number, T: number, TH: number, TW: number,
  plane: number, Wp: number, planeFloats: number) => void;
type ListedTileGather = (plane: number, Wp: number, planeFloats: number, chans: number, c0: number, c1: number, T: number,
  tiles: number, mat: number, ldT: number) => void;
type ListedTileScatter = (mat: number, ldT: number, chans: number, c0: number, c1: number, T: number, tiles: number,
  plane: number, Wp: number, planeFloats: number) => void;

/** The instance's exports, as TypeScript sees them. All pointers are byte addresses. */
export interface KernelExports extends BinaryExports, UnaryExports {
  /** C[mc×nc] (acc ? += : =) packedA · packedB; tmp: MR·NR floats of scratch for edge tiles. */
  macro(mc: number, nc: number, kc: number, pa: number, pb: number, pc: number, ldc: number, acc: number, tmp: number): void;
  /** dst[s·W·kc + k·W + t] = src[(s·W + t)·sT + k·sK] (strides in floats), 0 for s·W + t ≥ total. W = MR. */
  packA(src: number, sT: number, sK: number, total: number, kc: number, dst: number): void;
  /** The same with W = NR. */
  packB(src: number, sT: number, sK: number, total: number, kc: number, dst: number): void;
  /**
   * col[(c·R + r)·S + s, oh·OW + ow] = x[c·H·W + ih·W + iw] or 0 (ih = oh·sH − pH + r·dH, likewise iw), c < Cg;
   * the column matrix's rows are ldcol floats apart (OH·OW for one image alone; more when several images sit
   * side by side in one matrix). ranges: i32 table, [ohLo, ohHi] per r then [owLo, owHi] per s: the outputs whose
   * tap lies inside the image.
   */
  im2col(x: number, col: number, ranges: number, Cg: number, H: number, W: number, R: number, S: number,
    OH: number, OW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number, ldcol: number): void;
  /** The adjoint: image (Cg×H×W, zeroed first) = Σ of dcol onto the positions its entries were read from. */
  col2im(dcol: number, image: number, ranges: number, Cg: number, H: number, W: number, R: number, S: number,
    OH: number, OW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number, ldcol: number): void;
  /** Max pool over planes [pl0, pl1) (maxpool_module.ts). */
  maxPool(x: number, y: number, argmax: number, rows: number, cols: number, H: number, W: number, OH: number, OW: number,
    dilH: number, dilW: number, pl0: number, pl1: number): void;
  /** One packA-layout matrix per filter tap: A_j[t, k] = src[t·sT + k·sK + j], blocks tapBytes apart (taps_module.ts). */
  packTaps(src: number, sT: number, sK: number, taps: number, total: number, kc: number, dst: number, tapBytes: number): void;
  /** dst[e·taps + j] = src[j·tapFloats + e] for e ∈ [e0, e1), j < taps (taps_module.ts). */
  interleaveTaps(src: number, dst: number, taps: number, e0: number, e1: number, tapFloats: number): void;
  /** bytes zero bytes from ptr (memory.fill). */
  zeroFill(ptr: number, bytes: number): void;
  /** copyRows over planes: plane p from src + p·srcPlane floats to dst + p·dstPlane floats. */
  copyPlanes(src: number, srcPlane: number, srcW: number, dst: number, dstPlane: number, dstW: number,
    rows: number, cols: number, planes: number): void;
  /** LAMB's update passes (lamb_module.ts): prm and norms are f64 blocks. */
  lambDir(w: number, g: number, m: number, v: number, u: number, n: number, prm: number, flags: number, norms: number): void;
  lambApply(w: number, u: number, n: number, prm: number): void;
  /** SGD's momentum update (lamb_module.ts): prm an f64 block [lr, μ, 1 − dampening]. */
  sgdMomentum(w: number, g: number, buf: number, n: number, prm: number): void;
  /** Winograd F(2×2, 3×3) filter and tile transforms (winograd_module.ts). */
  wgFilter(w: number, kc0: number, kc1: number, KC: number, U: number): void;
  wgFilterGrad(dU: number, kc0: number, kc1: number, KC: number, dw: number): void;
  /** Their scalar twins (which the vector kernels call for ranges of fewer than 4 filters). */
  wgFilterScalar(w: number, kc0: number, kc1: number, KC: number, U: number): void;
  wgFilterGradScalar(dU: number, kc0: number, kc1: number, KC: number, dw: number): void;
  wgGather_input: TileGather;
  wgGather_outputGrad: TileGather;
  wgScatter_output: TileScatter;
  wgScatter_inputGrad: TileScatter;
  /** The same over a listed subset of tiles: `tiles` holds each tile's byte offset from its image's channel-0 plane. */
  wgGatherListed_input: ListedTileGather;
  wgGatherListed_outputGrad: ListedTileGather;
  wgScatterListed_output: ListedTileScatter;
  wgScatterListed_inputGrad: ListedTileScatter;
  /** Winograd F(4×4, 3×3) (winograd43_module.ts): filter transforms over 36 ξ rows, tile kernels as above, tiles 4 apart. */
  wgFilter43(w: number, kc0: number, kc1: number, KC: number, U: number): void;
  wgFilterGrad43(dU: number, kc0: number, kc1: number, KC: number, dw: number): void;
  wgFlipFilters(w: number, K: number, C: number, k0: number, k1: number, wt: number): void;
  wgGather_input43: TileGather;
  wgGather_outputGrad43: TileGather;
  wgScatter_output43: TileScatter;
  /** The four-phase F(3×3, 2×2) of the k4 s2 p1 convolution (winograd_k4s2_module.ts); tile kernels as above, tiles 3 apart. */
  phaseSplit(x: number, H: number, W: number, xp: number, Hp: number, Wp: number, C: number, pl0: number, pl1: number): void;
  phaseMerge(xp: number, H: number, W: number, dx: number, Hp: number, Wp: number, C: number, pl0: number, pl1: number): void;
  wgPhaseFilter(w: number, k0: number, k1: number, K: number, C: number, U: number): void;
  wgPhaseFilterGrad(dU: number, k0: number, k1: number, K: number, C: number, dw: number): void;
  wgGather_phaseInput: TileGather;
  wgGather_phaseOutputGrad: TileGather;
  wgScatter_phaseOutput: TileScatter;
  wgScatter_phaseInputGrad: TileScatter;
  /**
   * Active sites, im2col: cols[v·vStride + j·jStride] = x[n, g·Cg + c, ih, iw] (0 outside the image), j = (c·R + r)·S
   * + s, for the `count` sites at `sites` (i32 flat output indices n·OH·OW + oh·OW + ow). prm: the ACT block.
   */
  actGather(prm: number, x: number, sites: number, count: number, cols: number, g: number, vStride: number, jStride: number): void;
  /** The adjoint: dx[n, g·Cg + c, ih, iw] += dcols[v·vStride + j·jStride] for the in-image taps. */
  actScatter(prm: number, dx: number, sites: number, count: number, dcols: number, g: number, vStride: number, jStride: number): void;
  /** rows[v·vStride + k·jStride] = dy[n, g·Kg + k, oh, ow] at each site. */
  actGatherOut(prm: number, dy: number, sites: number, count: number, rows: number, g: number, vStride: number, jStride: number): void;
  /** y[n, g·Kg + k, oh, ow] = rows[v·vStride + k·jStride] at each site. */
  actScatterOut(prm: number, y: number, sites: number, count: number, rows: number, g: number, vStride: number, jStride: number): void;
  /** dst[i·dstStride + j] = src[i·srcStride + j] for i < rows, j < cols (strides in floats). */
  copyRows(src: number, srcStride: number, dst: number, dstStride: number, rows: number, cols: number): void;
  /** Active-site depthwise forward, backward input, backward weight (see emitDepthwiseActive). */
  dwaFwd(xpad: number, wv: number, tapOff: number, T4: number, siteX: number, siteY: number, count: number, C: number,
    planeSz4: number, P4: number, y: number): void;
  dwaIn(dxpad: number, wv: number, tapOff: number, T4: number, siteX: number, siteY: number, count: number, C: number,
    planeSz4: number, P4: number, dy: number): void;
  dwaW(xpad: number, dwv: number, tapOff: number, T4: number, siteX: number, siteY: number, count: number, C: number,
    planeSz4: number, P4: number, dy: number): void;
  /**
   * out[o·OW + q] = Σ_{r,s} taps[r·S + s] · plane[(o + r·dH)·planeW + q + s·dW] for o < OH, q < OW (stride 1).
   * The plane must be readable up to 4·⌈OW/4⌉ − 1 + (S−1)·dW along a row (extra lanes are computed, not stored).
   */
  dwCorr(plane: number, planeW: number, taps: number, R: number, S: number, dH: number, dW: number,
    OH: number, OW: number, out: number): void;
  /**
   * sums[r·S + s] += Σ_{o,q} dy[o·OW + q] · plane[(o + r·dH)·planeW + q + s·dW] (stride 1), q < OW; dy rows must be
   * readable to 4·⌈OW/4⌉ floats with zeros past OW (the caller pads them).
   */
  dwGrad(plane: number, planeW: number, dy: number, dyW: number, R: number, S: number, dH: number, dW: number,
    OH: number, OW: number, sums: number): void;
  /** Batch-norm channel passes (see emitBatchNorm): statistics, normalisation, backward sums and dx. */
  bnStats(x: number, O: number, C: number, L: number, c0: number, c1: number, stats: number): void;
  bnNorm(x: number, y: number, C: number, L: number, r0: number, r1: number, coef: number): void;
  bnBwdSums(g: number, x: number, O: number, C: number, L: number, c0: number, c1: number, ms: number, sums: number): void;
  bnBwdDx(g: number, x: number, dx: number, C: number, L: number, r0: number, r1: number, batch: number, coef: number): void;
  /** Their twins for L = 1, x as (O, C) (see emitBatchNormRows). */
  bnStatsRows(x: number, O: number, C: number, c0: number, c1: number, stats: number): void;
  bnNormRows(x: number, y: number, C: number, r0: number, r1: number, coef: number): void;
  bnBwdSumsRows(g: number, x: number, O: number, C: number, c0: number, c1: number, ms: number, sums: number): void;
  bnBwdDxRows(g: number, x: number, dx: number, C: number, r0: number, r1: number, batch: number, coef: number): void;
}

/**
 * The micro-kernel: C[MR×NR] (acc ? += : =) Σₖ pa[k·MR + r] · pb[k·NR + c], accumulators in MR·NR/4 f32x4
 * registers. Per k step: NR/4 vector loads of B, MR splat-loads of A, MR·NR/4 multiply-adds (one fused
 * f32x4.relaxed_madd each where relaxed SIMD is on). C rows are ldc bytes apart.
 */
function emitMicro(m: ModuleBuilder, relaxed: boolean): FuncRef {
  const NV = NR / 4;
  return m.func('micro', [['kc', 'i32'], ['pa', 'i32'], ['pb', 'i32'], ['pc', 'i32'], ['ldc', 'i32'], ['acc', 'i32']], [], (f) => {
    const accs = Array.from({ length: MR }, () => Array.from({ length: NV }, () => f.local('v128')));
    const bs = Array.from({ length: NV }, () => f.local('v128'));
    const a = f.local('v128');
    f.local('i32', 'n');
    f.local('i32', 'row');
    // for n = kc … 1: NR/4 vector loads of B, then per row of A a splat and NR/4 multiply-adds.
    f.get('kc').set('n');
    f.block((done) => {
      f.get('n').i32Eqz().brIf(done);
      f.loop((top) => {
        for (let v = 0; v < NV; v++) f.get('pb').v128Load(16 * v).set(bs[v]);
        for (let r = 0; r < MR; r++) {
          f.get('pa').v128Load32Splat(4 * r).set(a);
          for (let v = 0; v < NV; v++) {
            if (relaxed) f.get(a).get(bs[v]).get(accs[r][v]).f32x4RelaxedMadd().set(accs[r][v]);
            else f.get(accs[r][v]).get(a).get(bs[v]).f32x4Mul().f32x4Add().set(accs[r][v]);
          }
        }
        bump(f, 'pa', MR * 4);
        bump(f, 'pb', NR * 4);
        f.get('n').i32Const(1).i32Sub().tee('n').brIf(top);
      });
    });
    // Store (or add into) the tile, row by row.
    f.get('acc').if(() => {
      f.get('pc').set('row');
      for (let r = 0; r < MR; r++) {
        for (let v = 0; v < NV; v++) {
          f.get('row').get('row').v128Load(16 * v).get(accs[r][v]).f32x4Add().v128Store(16 * v);
        }
        if (r + 1 < MR) bumpBy(f, 'row', 'ldc');
      }
    }, () => {
      f.get('pc').set('row');
      for (let r = 0; r < MR; r++) {
        for (let v = 0; v < NV; v++) f.get('row').get(accs[r][v]).v128Store(16 * v);
        if (r + 1 < MR) bumpBy(f, 'row', 'ldc');
      }
    });
  }, false);
}

/**
 * The macro-kernel: every NR-strip of the packed B panel against every MR-strip of the packed A block (B's strip
 * outer, so it stays in L1 while A's block streams from L2). Full tiles go straight into C; an edge tile is
 * computed into tmp (MR×NR) and its valid corner added to (or stored in) C.
 */
function emitMacro(m: ModuleBuilder, micro: FuncRef): void {
  const params = [['mc', 'i32'], ['nc', 'i32'], ['kc', 'i32'], ['pa', 'i32'], ['pb', 'i32'], ['pc', 'i32'],
    ['ldc', 'i32'], ['acc', 'i32'], ['tmp', 'i32']] as const;
  m.func('macro', params, [], (f) => {
    for (const n of ['js', 'is', 'rows', 'cols', 'pbs', 'pas', 'cs', 'r', 'c', 'src', 'dst', 'nr', 'mr']) f.local('i32', n);
    f.i32Const(NR).set('nr');
    f.i32Const(MR).set('mr');
    forLoop(f, 'js', 'nc', NR, () => f.i32Const(0), () => {
      f.get('nc').get('js').i32Sub().set('cols');
      minI32(f, 'cols', 'nr').set('cols');
      f.get('pb').get('js').get('kc').i32Mul().i32Const(4).i32Mul().i32Add().set('pbs');
      forLoop(f, 'is', 'mc', MR, () => f.i32Const(0), () => {
        f.get('mc').get('is').i32Sub().set('rows');
        minI32(f, 'rows', 'mr').set('rows');
        f.get('pa').get('is').get('kc').i32Mul().i32Const(4).i32Mul().i32Add().set('pas');
        f.get('pc').get('is').get('ldc').i32Mul().i32Add().get('js').i32Const(4).i32Mul().i32Add().set('cs');
        f.get('rows').i32Const(MR).i32Eq().get('cols').i32Const(NR).i32Eq().i32And().if(() => {
          f.get('kc').get('pas').get('pbs').get('cs').get('ldc').get('acc').call(micro);
        }, () => {
          f.get('kc').get('pas').get('pbs').get('tmp').i32Const(NR * 4).i32Const(0).call(micro);
          // C[r, c] (acc ? += : =) tmp[r·NR + c] for r < rows, c < cols.
          forLoop(f, 'r', 'rows', 1, () => f.i32Const(0), () => {
            f.get('tmp').get('r').i32Const(NR * 4).i32Mul().i32Add().set('src');
            f.get('cs').get('r').get('ldc').i32Mul().i32Add().set('dst');
            forLoop(f, 'c', 'cols', 1, () => f.i32Const(0), () => {
              f.get('dst');
              f.get('src').f32Load();
              f.get('dst').f32Load().f32Const(0).get('acc').select().f32Add();
              f.f32Store();
              bump(f, 'src', 4);
              bump(f, 'dst', 4);
            });
          });
        });
      });
    });
  });
}

/**
 * Packs `total` rows (t) by kc columns (k) of a strided matrix into strips of W: dst[s·W·kc + k·W + t].
 * Three paths per strip: W contiguous floats per k (sT = 1: vector copies), contiguous along k (sK = 1: 4×4
 * transposes), or neither / an edge strip (scalar, zero past `total`).
 */
function emitPack(m: ModuleBuilder, name: string, W: number): void {
  const params = [['src', 'i32'], ['sT', 'i32'], ['sK', 'i32'], ['total', 'i32'], ['kc', 'i32'], ['dst', 'i32']] as const;
  m.func(name, params, [], (f) => {
    for (const n of ['t0', 'valid', 'k', 't', 's', 'd', 'sT4', 'sK4', 'w', 'kc4', 'stripSrc']) f.local('i32', n);
    const r = [0, 1, 2, 3].map(() => f.local('v128'));
    const tt = [0, 1, 2, 3].map(() => f.local('v128'));
    const o = [0, 1, 2, 3].map(() => f.local('v128'));
    f.get('sT').i32Const(2).i32Shl().set('sT4');
    f.get('sK').i32Const(2).i32Shl().set('sK4');
    f.i32Const(W).set('w');
    f.get('kc').i32Const(-4).i32And().set('kc4');
    forLoop(f, 't0', 'total', W, () => f.i32Const(0), () => {
      f.get('total').get('t0').i32Sub().set('valid');
      minI32(f, 'valid', 'w').set('valid');
      f.get('src').get('t0').get('sT4').i32Mul().i32Add().set('stripSrc');
      f.block((stripDone) => {
        if (W % 4 === 0) {
          // Contiguous along t: W/4 vector copies per k.
          f.get('valid').i32Const(W).i32Eq().get('sT').i32Const(1).i32Eq().i32And().if(() => {
            f.get('stripSrc').set('s');
            forLoop(f, 'k', 'kc', 1, () => f.i32Const(0), () => {
              for (let v = 0; v < W / 4; v++) f.get('dst').get('s').v128Load(16 * v).v128Store(16 * v);
              bump(f, 'dst', W * 4);
              bumpBy(f, 's', 'sK4');
            });
            f.br(stripDone);
          });
          // Contiguous along k: 4 rows × 4 k at a time, transposed; the kc % 4 tail is scalar.
          f.get('valid').i32Const(W).i32Eq().get('sK').i32Const(1).i32Eq().i32And().if(() => {
            forLoop(f, 'k', 'kc4', 4, () => f.i32Const(0), () => {
              for (let tb = 0; tb < W; tb += 4) {
                // s = stripSrc + (tb·sT + k)·4
                f.get('stripSrc').get('k').i32Const(2).i32Shl().i32Add().i32Const(tb).get('sT4').i32Mul().i32Add().set('s');
                for (let i = 0; i < 4; i++) {
                  f.get('s').v128Load().set(r[i]);
                  if (i < 3) bumpBy(f, 's', 'sT4');
                }
                transpose4(f, r, tt, o);
                for (let i = 0; i < 4; i++) f.get('dst').get(o[i]).v128Store((i * W + tb) * 4);
              }
              bump(f, 'dst', 4 * W * 4);
            });
            forLoop(f, 'k', 'kc', 1, () => f.get('kc4'), () => {
              for (let t = 0; t < W; t++) {
                f.get('dst');
                f.get('stripSrc').get('k').i32Const(2).i32Shl().i32Add().i32Const(t).get('sT4').i32Mul().i32Add().f32Load();
                f.f32Store(t * 4);
              }
              bump(f, 'dst', W * 4);
            });
            f.br(stripDone);
          });
        }
        // General: for each t (zero past valid), walk k.
        forLoop(f, 't', 'w', 1, () => f.i32Const(0), () => {
          f.get('stripSrc').get('t').get('sT4').i32Mul().i32Add().set('s');
          f.get('dst').get('t').i32Const(2).i32Shl().i32Add().set('d');
          f.get('t').get('valid').i32LtS().if(() => {
            forLoop(f, 'k', 'kc', 1, () => f.i32Const(0), () => {
              f.get('d').get('s').f32Load().f32Store();
              bumpBy(f, 's', 'sK4');
              bump(f, 'd', W * 4);
            });
          }, () => {
            forLoop(f, 'k', 'kc', 1, () => f.i32Const(0), () => {
              f.get('d').f32Const(0).f32Store();
              bump(f, 'd', W * 4);
            });
          });
        });
        f.get('dst').get('kc').i32Const(W * 4).i32Mul().i32Add().set('dst');
      });
    });
  });
}

const CONV_PARAMS = [['Cg', 'i32'], ['H', 'i32'], ['W', 'i32'], ['R', 'i32'], ['S', 'i32'], ['OH', 'i32'], ['OW', 'i32'],
  ['sH', 'i32'], ['sW', 'i32'], ['pH', 'i32'], ['pW', 'i32'], ['dH', 'i32'], ['dW', 'i32'], ['ldcol', 'i32']] as const;

/**
 * The (c, r, s) row walk shared by im2col and col2im: for each row it sets `row` (the column matrix row's byte
 * address, rows ldcol floats apart), `lo`/`hi` (valid output rows), `wlo`/`whi` (valid output columns) and `plane0` (the address of
 * x[c, −pH + r·dH, −pW + s·dW], possibly outside the plane), then runs body.
 */
function convRows(f: FunctionBuilder, imageParam: string, colParam: string, body: () => void): void {
  for (const n of ['c', 'r', 's', 'row', 'lo', 'hi', 'wlo', 'whi', 'plane', 'plane0', 'HW4', 'LD4', 'W4']) f.local('i32', n);
  f.get(imageParam).set('plane');
  f.get('H').get('W').i32Mul().i32Const(2).i32Shl().set('HW4');
  f.get('ldcol').i32Const(2).i32Shl().set('LD4');
  f.get('W').i32Const(2).i32Shl().set('W4');
  f.get(colParam).set('row');
  forLoop(f, 'c', 'Cg', 1, () => f.i32Const(0), () => {
    forLoop(f, 'r', 'R', 1, () => f.i32Const(0), () => {
      f.get('ranges').get('r').i32Const(3).i32Shl().i32Add().i32Load(0).set('lo');
      f.get('ranges').get('r').i32Const(3).i32Shl().i32Add().i32Load(4).set('hi');
      forLoop(f, 's', 'S', 1, () => f.i32Const(0), () => {
        f.get('ranges').get('R').get('s').i32Add().i32Const(3).i32Shl().i32Add().i32Load(0).set('wlo');
        f.get('ranges').get('R').get('s').i32Add().i32Const(3).i32Shl().i32Add().i32Load(4).set('whi');
        // plane0 = plane + ((r·dH − pH)·W + s·dW − pW)·4
        f.get('plane').get('r').get('dH').i32Mul().get('pH').i32Sub().get('W').i32Mul()
          .get('s').get('dW').i32Mul().i32Add().get('pW').i32Sub().i32Const(2).i32Shl().i32Add().set('plane0');
        body();
        bumpBy(f, 'row', 'LD4');
      });
    });
    bumpBy(f, 'plane', 'HW4');
  });
}

function emitIm2col(m: ModuleBuilder): void {
  m.func('im2col', [['x', 'i32'], ['col', 'i32'], ['ranges', 'i32'], ...CONV_PARAMS], [], (f) => {
    for (const n of ['oh', 'ow', 'out', 'src', 'end', 'sW4', 'vend']) f.local('i32', n);
    f.get('sW').i32Const(2).i32Shl().set('sW4');
    convRows(f, 'x', 'col', () => {
      // Rows of the output outside [lo, hi) read only padding.
      f.get('row').i32Const(0).get('lo').get('OW').i32Mul().i32Const(2).i32Shl().memoryFill();
      f.get('row').get('hi').get('OW').i32Mul().i32Const(2).i32Shl().i32Add().i32Const(0)
        .get('OH').get('hi').i32Sub().get('OW').i32Mul().i32Const(2).i32Shl().memoryFill();
      forLoop(f, 'oh', 'hi', 1, () => f.get('lo'), () => {
        f.get('row').get('oh').get('OW').i32Mul().i32Const(2).i32Shl().i32Add().set('out');
        // src = plane0 + oh·sH·W·4 (the tap's input row), then column ow reads src + ow·sW·4.
        f.get('plane0').get('oh').get('sH').i32Mul().get('W4').i32Mul().i32Add().set('src');
        forLoop(f, 'ow', 'wlo', 1, () => f.i32Const(0), () => {
          f.get('out').get('ow').i32Const(2).i32Shl().i32Add().f32Const(0).f32Store();
        });
        f.get('sW').i32Const(1).i32Eq().if(() => {
          // vector copy of [wlo, whi − 3), then scalar
          f.get('whi').i32Const(3).i32Sub().set('vend');
          f.get('wlo').set('ow');
          f.block((done) => {
            f.get('ow').get('vend').i32GeS().brIf(done);
            f.loop((top) => {
              f.get('out').get('ow').i32Const(2).i32Shl().i32Add();
              f.get('src').get('ow').i32Const(2).i32Shl().i32Add().v128Load();
              f.v128Store();
              f.get('ow').i32Const(4).i32Add().tee('ow').get('vend').i32LtS().brIf(top);
            });
          });
          f.block((done) => {
            f.get('ow').get('whi').i32GeS().brIf(done);
            f.loop((top) => {
              f.get('out').get('ow').i32Const(2).i32Shl().i32Add();
              f.get('src').get('ow').i32Const(2).i32Shl().i32Add().f32Load();
              f.f32Store();
              f.get('ow').i32Const(1).i32Add().tee('ow').get('whi').i32LtS().brIf(top);
            });
          });
        }, () => {
          forLoop(f, 'ow', 'whi', 1, () => f.get('wlo'), () => {
            f.get('out').get('ow').i32Const(2).i32Shl().i32Add();
            f.get('src').get('ow').get('sW4').i32Mul().i32Add().f32Load();
            f.f32Store();
          });
        });
        forLoop(f, 'ow', 'OW', 1, () => f.get('whi'), () => {
          f.get('out').get('ow').i32Const(2).i32Shl().i32Add().f32Const(0).f32Store();
        });
      });
    });
  });
}

function emitCol2im(m: ModuleBuilder): void {
  m.func('col2im', [['dcol', 'i32'], ['image', 'i32'], ['ranges', 'i32'], ...CONV_PARAMS], [], (f) => {
    for (const n of ['oh', 'ow', 'in', 'dst', 'sW4', 'vend', 'a']) f.local('i32', n);
    f.get('sW').i32Const(2).i32Shl().set('sW4');
    f.get('image').i32Const(0).get('Cg').get('H').i32Mul().get('W').i32Mul().i32Const(2).i32Shl().memoryFill();
    convRows(f, 'image', 'dcol', () => {
      forLoop(f, 'oh', 'hi', 1, () => f.get('lo'), () => {
        f.get('row').get('oh').get('OW').i32Mul().i32Const(2).i32Shl().i32Add().set('in');
        f.get('plane0').get('oh').get('sH').i32Mul().get('W4').i32Mul().i32Add().set('dst');
        f.get('sW').i32Const(1).i32Eq().if(() => {
          f.get('whi').i32Const(3).i32Sub().set('vend');
          f.get('wlo').set('ow');
          f.block((done) => {
            f.get('ow').get('vend').i32GeS().brIf(done);
            f.loop((top) => {
              f.get('dst').get('ow').i32Const(2).i32Shl().i32Add().tee('a');
              f.get('a').v128Load();
              f.get('in').get('ow').i32Const(2).i32Shl().i32Add().v128Load();
              f.f32x4Add().v128Store();
              f.get('ow').i32Const(4).i32Add().tee('ow').get('vend').i32LtS().brIf(top);
            });
          });
          f.block((done) => {
            f.get('ow').get('whi').i32GeS().brIf(done);
            f.loop((top) => {
              f.get('dst').get('ow').i32Const(2).i32Shl().i32Add().tee('a');
              f.get('a').f32Load();
              f.get('in').get('ow').i32Const(2).i32Shl().i32Add().f32Load();
              f.f32Add().f32Store();
              f.get('ow').i32Const(1).i32Add().tee('ow').get('whi').i32LtS().brIf(top);
            });
          });
        }, () => {
          forLoop(f, 'ow', 'whi', 1, () => f.get('wlo'), () => {
            f.get('dst').get('ow').get('sW4').i32Mul().i32Add().tee('a');
            f.get('a').f32Load();
            f.get('in').get('ow').i32Const(2).i32Shl().i32Add().f32Load();
            f.f32Add().f32Store();
          });
        });
      });
    });
  });
}

/** dst[i·dstStride + j] = src[i·srcStride + j] for i < rows, j < cols (strides in floats): f32x4 then scalar. */
function emitCopyRows(m: ModuleBuilder): FuncRef {
  const params = [['src', 'i32'], ['srcStride', 'i32'], ['dst', 'i32'], ['dstStride', 'i32'], ['rows', 'i32'], ['cols', 'i32']] as const;
  return m.func('copyRows', params, [], (f) => {
    for (const n of ['i', 'j', 'vend', 's4', 'd4']) f.local('i32', n);
    f.get('srcStride').i32Const(2).i32Shl().set('s4');
    f.get('dstStride').i32Const(2).i32Shl().set('d4');
    f.get('cols').i32Const(3).i32Sub().set('vend');
    forLoop(f, 'i', 'rows', 1, () => f.i32Const(0), () => {
      f.i32Const(0).set('j');
      f.block((done) => {
        f.get('j').get('vend').i32GeS().brIf(done);
        f.loop((top) => {
          f.get('dst').get('j').i32Const(2).i32Shl().i32Add();
          f.get('src').get('j').i32Const(2).i32Shl().i32Add().v128Load();
          f.v128Store();
          f.get('j').i32Const(4).i32Add().tee('j').get('vend').i32LtS().brIf(top);
        });
      });
      f.block((done) => {
        f.get('j').get('cols').i32GeS().brIf(done);
        f.loop((top) => {
          f.get('dst').get('j').i32Const(2).i32Shl().i32Add();
          f.get('src').get('j').i32Const(2).i32Shl().i32Add().f32Load();
          f.f32Store();
          f.get('j').i32Const(1).i32Add().tee('j').get('cols').i32LtS().brIf(top);
        });
      });
      bumpBy(f, 'src', 's4');
      bumpBy(f, 'dst', 'd4');
    });
  });
}

/** Output vectors per register tile along a row in the depthwise correlation. */
const DW_TILE = 4;

/**
 * Depthwise correlation, stride 1: per output row, tiles of DW_TILE f32x4 outputs (16 columns) accumulate
 * Σ_{r,s} splat(tap) · plane row vector; a last partial tile runs one vector at a time. Lanes past OW are
 * computed from the zero border / padding and dropped by storing only whole vectors inside OW, then a scalar tail.
 */
function emitDwCorr(m: ModuleBuilder): void {
  const params = [['plane', 'i32'], ['planeW', 'i32'], ['taps', 'i32'], ['R', 'i32'], ['S', 'i32'], ['dH', 'i32'],
    ['dW', 'i32'], ['OH', 'i32'], ['OW', 'i32'], ['out', 'i32']] as const;
  m.func('dwCorr', params, [], (f) => {
    for (const n of ['o', 'q', 'r', 's', 'tp', 'src', 'rowSrc', 'dst', 'pw4', 'dW4', 'dHrow', 'qEnd', 'OWv', 'lanes']) f.local('i32', n);
    const acc = Array.from({ length: DW_TILE }, () => f.local('v128'));
    const tap = f.local('v128');
    f.get('planeW').i32Const(2).i32Shl().set('pw4');
    f.get('dW').i32Const(2).i32Shl().set('dW4');
    f.get('dH').get('pw4').i32Mul().set('dHrow');
    // OWv: OW rounded up to whole vectors
    f.get('OW').i32Const(3).i32Add().i32Const(-4).i32And().set('OWv');
    /** Accumulate `nv` vectors of outputs at column q of row o into acc[0..nv). */
    const tile = (nv: number) => {
      for (let v = 0; v < nv; v++) f.v128ConstF32([0, 0, 0, 0]).set(acc[v]);
      f.get('taps').set('tp');
      // rowSrc = plane + (o·planeW + q)·4
      f.get('plane').get('o').get('pw4').i32Mul().i32Add().get('q').i32Const(2).i32Shl().i32Add().set('rowSrc');
      forLoop(f, 'r', 'R', 1, () => f.i32Const(0), () => {
        f.get('rowSrc').set('src');
        forLoop(f, 's', 'S', 1, () => f.i32Const(0), () => {
          f.get('tp').v128Load32Splat().set(tap);
          for (let v = 0; v < nv; v++) {
            f.get(acc[v]).get(tap).get('src').v128Load(16 * v).f32x4Mul().f32x4Add().set(acc[v]);
          }
          bump(f, 'tp', 4);
          bumpBy(f, 'src', 'dW4');
        });
        bumpBy(f, 'rowSrc', 'dHrow');
      });
    };
    /** Store acc[0..nv) at out row o, column q, keeping only columns < OW. */
    const store = (nv: number) => {
      f.get('out').get('o').get('OW').i32Mul().get('q').i32Add().i32Const(2).i32Shl().i32Add().set('dst');
      for (let v = 0; v < nv; v++) {
        // whole vector inside OW?
        f.get('q').i32Const(4 * v + 4).i32Add().get('OW').i32LeS().if(() => {
          f.get('dst').get(acc[v]).v128Store(16 * v);
        }, () => {
          f.get('OW').get('q').i32Sub().i32Const(4 * v).i32Sub().set('lanes');
          for (let l = 0; l < 3; l++) {
            f.get('lanes').i32Const(l).i32GtS().if(() => {
              f.get('dst').get(acc[v]).f32x4ExtractLane(l).f32Store(16 * v + 4 * l);
            });
          }
        });
      }
    };
    forLoop(f, 'o', 'OH', 1, () => f.i32Const(0), () => {
      f.i32Const(0).set('q');
      f.get('OWv').i32Const(4 * DW_TILE - 1).i32Sub().set('qEnd');
      f.block((done) => {
        f.get('q').get('qEnd').i32GeS().brIf(done);
        f.loop((top) => {
          tile(DW_TILE);
          store(DW_TILE);
          f.get('q').i32Const(4 * DW_TILE).i32Add().tee('q').get('qEnd').i32LtS().brIf(top);
        });
      });
      f.block((done) => {
        f.get('q').get('OWv').i32GeS().brIf(done);
        f.loop((top) => {
          tile(1);
          store(1);
          f.get('q').i32Const(4).i32Add().tee('q').get('OWv').i32LtS().brIf(top);
        });
      });
    });
  });
}

/** Taps of a filter row summed at once by dwGrad: 8 accumulators, the dy vector, a product temporary. */
const DW_GRAD_TILE = 8;

/**
 * Depthwise filter gradient, stride 1: for each tap (r, s), Σ over rows o and vectors q of dy·plane, in f32x4
 * lanes, up to DW_GRAD_TILE taps along s at a time (each dy vector load serves them all); lanes summed at the end.
 */
function emitDwGrad(m: ModuleBuilder): void {
  const params = [['plane', 'i32'], ['planeW', 'i32'], ['dy', 'i32'], ['dyW', 'i32'], ['R', 'i32'], ['S', 'i32'],
    ['dH', 'i32'], ['dW', 'i32'], ['OH', 'i32'], ['OW', 'i32'], ['sums', 'i32']] as const;
  m.func('dwGrad', params, [], (f) => {
    for (const n of ['o', 'q', 'r', 's', 'src', 'g', 'pw4', 'dW4', 'dyw4', 'OWv', 'nt', 'sp']) f.local('i32', n);
    const acc = Array.from({ length: DW_GRAD_TILE }, () => f.local('v128'));
    const d = f.local('v128');
    f.get('planeW').i32Const(2).i32Shl().set('pw4');
    f.get('dW').i32Const(2).i32Shl().set('dW4');
    f.get('dyW').i32Const(2).i32Shl().set('dyw4');
    f.get('OW').i32Const(3).i32Add().i32Const(-4).i32And().set('OWv');
    // tapOff[t] = t·dW·4: tap t of a tile reads the plane that many bytes to the right of tap 0.
    const tapOff = Array.from({ length: DW_GRAD_TILE }, () => f.local('i32'));
    for (let t = 1; t < DW_GRAD_TILE; t++) f.get('dW4').i32Const(t).i32Mul().set(tapOff[t]);
    /** Sum nt ≤ DW_GRAD_TILE taps s … s+nt−1 of filter row r into sums. */
    const taps = (nt: number) => {
      for (let t = 0; t < nt; t++) f.v128ConstF32([0, 0, 0, 0]).set(acc[t]);
      forLoop(f, 'o', 'OH', 1, () => f.i32Const(0), () => {
        f.get('dy').get('o').get('dyw4').i32Mul().i32Add().set('g');
        // src = plane + ((o + r·dH)·planeW + s·dW)·4
        f.get('plane').get('o').get('r').get('dH').i32Mul().i32Add().get('pw4').i32Mul().i32Add()
          .get('s').get('dW4').i32Mul().i32Add().set('src');
        forLoop(f, 'q', 'OWv', 4, () => f.i32Const(0), () => {
          f.get('g').v128Load().set(d);
          for (let t = 0; t < nt; t++) {
            f.get(acc[t]).get(d).get('src');
            if (t > 0) f.get(tapOff[t]).i32Add();
            f.v128Load().f32x4Mul().f32x4Add().set(acc[t]);
          }
          bump(f, 'g', 16);
          bump(f, 'src', 16);
        });
      });
      for (let t = 0; t < nt; t++) {
        // sums[r·S + s + t] += Σ lanes
        f.get('sums').get('r').get('S').i32Mul().get('s').i32Add().i32Const(2).i32Shl().i32Add().set('sp');
        f.get('sp').get('sp').f32Load(4 * t);
        for (let l = 0; l < 4; l++) f.get(acc[t]).f32x4ExtractLane(l).f32Add();
        f.f32Store(4 * t);
      }
    };
    forLoop(f, 'r', 'R', 1, () => f.i32Const(0), () => {
      f.i32Const(0).set('s');
      f.block((done) => {
        f.loop((top) => {
          f.get('S').get('s').i32Sub().i32Const(DW_GRAD_TILE).i32LtS().brIf(done);
          taps(DW_GRAD_TILE);
          f.get('s').i32Const(DW_GRAD_TILE).i32Add().set('s');
          f.br(top);
        });
      });
      // The last S − s < DW_GRAD_TILE taps, by a code path specialised to their number.
      f.get('S').get('s').i32Sub().set('nt');
      for (let nt = 1; nt < DW_GRAD_TILE; nt++) {
        f.get('nt').i32Const(nt).i32Eq().if(() => taps(nt));
      }
    });
  });
}

/** Slots of the i32 parameter block the active-site kernels read (conv shape, as in Conv2dParams). */
export const ACT = {
  C: 0, H: 1, W: 2, R: 3, S: 4, OH: 5, OW: 6, sH: 7, sW: 8, pH: 9, pW: 10, dH: 11, dW: 12, Cg: 13, K: 14, Kg: 15,
} as const;
export const ACT_SLOTS = 16;

/** Loads the ACT block into locals of the same names, plus P4 = OH·OW·4 and HW4 = H·W·4. */
function loadAct(f: FunctionBuilder): void {
  for (const [name, slot] of Object.entries(ACT)) {
    f.local('i32', name);
    f.get('prm').i32Load(4 * slot).set(name);
  }
  f.local('i32', 'P');
  f.local('i32', 'HW4');
  f.get('OH').get('OW').i32Mul().set('P');
  f.get('H').get('W').i32Mul().i32Const(2).i32Shl().set('HW4');
}

/** Sets locals n, pos, oh, ow from the i32 site at address `sites` + v·4. */
function decodeSite(f: FunctionBuilder): void {
  f.get('sites').get('v').i32Const(2).i32Shl().i32Add().i32Load().set('site');
  f.get('site').get('P').i32DivU().set('n');
  f.get('site').get('n').get('P').i32Mul().i32Sub().set('pos');
  f.get('pos').get('OW').i32DivU().set('oh');
  f.get('pos').get('oh').get('OW').i32Mul().i32Sub().set('ow');
}

/**
 * actGather / actScatter: per site, the Cg·R·S receptive field in (c, r, s) order. A site whose field lies inside
 * the image walks addresses without tests; a border site tests each tap (unsigned compares: ih <u H ⇔ 0 ≤ ih < H).
 * `mode` picks the move: gather cols ← x (0 outside), scatter x += cols (nothing outside).
 */
function emitActiveFields(m: ModuleBuilder, name: string, mode: 'gather' | 'scatter'): void {
  const params = [['prm', 'i32'], ['img', 'i32'], ['sites', 'i32'], ['count', 'i32'], ['cols', 'i32'], ['g', 'i32'],
    ['vStride', 'i32'], ['jStride', 'i32']] as const;
  // For gather, `img` is x and `cols` the destination; for scatter, `cols` holds dcols and `img` is dx.
  m.func(name, params, [], (f) => {
    loadAct(f);
    for (const n of ['v', 'site', 'n', 'pos', 'oh', 'ow', 'ih0', 'iw0', 'xb', 'o', 'c', 'r', 's', 'ih', 'iw', 'cp', 'rp', 'sp',
      'dW4', 'dHrow', 'W4', 'jS4']) f.local('i32', n);
    f.get('jStride').i32Const(2).i32Shl().set('jS4');
    f.get('dW').i32Const(2).i32Shl().set('dW4');
    f.get('W').i32Const(2).i32Shl().set('W4');
    f.get('dH').get('W4').i32Mul().set('dHrow');
    /** Moves one tap between the image address on the stack's producer `addr` and cols at o. */
    const move = (addr: () => void) => {
      if (mode === 'gather') {
        f.get('o');
        addr();
        f.f32Load().f32Store();
      } else {
        addr();
        f.tee('sp');
        f.get('sp').f32Load().get('o').f32Load().f32Add().f32Store();
      }
    };
    forLoop(f, 'v', 'count', 1, () => f.i32Const(0), () => {
      decodeSite(f);
      f.get('cols').get('v').get('vStride').i32Mul().i32Const(2).i32Shl().i32Add().set('o');
      f.get('oh').get('sH').i32Mul().get('pH').i32Sub().set('ih0');
      f.get('ow').get('sW').i32Mul().get('pW').i32Sub().set('iw0');
      // xb = img + (n·C + g·Cg)·H·W·4
      f.get('img').get('n').get('C').i32Mul().get('g').get('Cg').i32Mul().i32Add().get('HW4').i32Mul().i32Add().set('xb');
      // interior: 0 ≤ ih0, ih0 + (R−1)·dH < H, 0 ≤ iw0, iw0 + (S−1)·dW < W
      f.get('ih0').i32Const(0).i32GeS()
        .get('ih0').get('R').i32Const(1).i32Sub().get('dH').i32Mul().i32Add().get('H').i32LtS().i32And()
        .get('iw0').i32Const(0).i32GeS().i32And()
        .get('iw0').get('S').i32Const(1).i32Sub().get('dW').i32Mul().i32Add().get('W').i32LtS().i32And();
      f.if(() => {
        f.get('xb').get('ih0').get('W').i32Mul().get('iw0').i32Add().i32Const(2).i32Shl().i32Add().set('cp');
        forLoop(f, 'c', 'Cg', 1, () => f.i32Const(0), () => {
          f.get('cp').set('rp');
          forLoop(f, 'r', 'R', 1, () => f.i32Const(0), () => {
            f.get('rp').set('sp');
            forLoop(f, 's', 'S', 1, () => f.i32Const(0), () => {
              if (mode === 'gather') {
                f.get('o').get('sp').f32Load().f32Store();
              } else {
                f.get('sp').get('sp').f32Load().get('o').f32Load().f32Add().f32Store();
              }
              bumpBy(f, 'o', 'jS4');
              bumpBy(f, 'sp', 'dW4');
            });
            bumpBy(f, 'rp', 'dHrow');
          });
          bumpBy(f, 'cp', 'HW4');
        });
      }, () => {
        f.get('xb').set('cp');
        forLoop(f, 'c', 'Cg', 1, () => f.i32Const(0), () => {
          forLoop(f, 'r', 'R', 1, () => f.i32Const(0), () => {
            f.get('ih0').get('r').get('dH').i32Mul().i32Add().set('ih');
            forLoop(f, 's', 'S', 1, () => f.i32Const(0), () => {
              f.get('iw0').get('s').get('dW').i32Mul().i32Add().set('iw');
              f.get('ih').get('H').i32LtU().get('iw').get('W').i32LtU().i32And().if(() => {
                move(() => f.get('cp').get('ih').get('W').i32Mul().get('iw').i32Add().i32Const(2).i32Shl().i32Add());
              }, () => {
                if (mode === 'gather') f.get('o').f32Const(0).f32Store();
              });
              bumpBy(f, 'o', 'jS4');
            });
          });
          bumpBy(f, 'cp', 'HW4');
        });
      });
    });
  });
}

/** actGatherOut / actScatterOut: the Kg output channels of group g at each site, a stride of OH·OW apart. */
function emitActiveOutputs(m: ModuleBuilder, name: string, mode: 'gather' | 'scatter'): void {
  const params = [['prm', 'i32'], ['img', 'i32'], ['sites', 'i32'], ['count', 'i32'], ['rows', 'i32'], ['g', 'i32'],
    ['vStride', 'i32'], ['jStride', 'i32']] as const;
  m.func(name, params, [], (f) => {
    loadAct(f);
    for (const n of ['v', 'site', 'n', 'pos', 'oh', 'ow', 'o', 'k', 'a', 'P4', 'jS4']) f.local('i32', n);
    f.get('P').i32Const(2).i32Shl().set('P4');
    f.get('jStride').i32Const(2).i32Shl().set('jS4');
    forLoop(f, 'v', 'count', 1, () => f.i32Const(0), () => {
      decodeSite(f);
      f.get('rows').get('v').get('vStride').i32Mul().i32Const(2).i32Shl().i32Add().set('o');
      // a = img + ((n·K + g·Kg)·P + pos)·4
      f.get('img').get('n').get('K').i32Mul().get('g').get('Kg').i32Mul().i32Add().get('P').i32Mul().get('pos').i32Add()
        .i32Const(2).i32Shl().i32Add().set('a');
      forLoop(f, 'k', 'Kg', 1, () => f.i32Const(0), () => {
        if (mode === 'gather') f.get('o').get('a').f32Load().f32Store();
        else f.get('a').get('o').f32Load().f32Store();
        bumpBy(f, 'o', 'jS4');
        bumpBy(f, 'a', 'P4');
      });
    });
  });
}

/**
 * Active-site depthwise passes over zero-bordered planes (active_conv.ts lays them out). A filter is a list of T4
 * "vector taps" (4 consecutive filter columns of one row, zero-padded past S), T4 a multiple of 4; vector tap t
 * reads the plane at byte offset tapOff[t] from the site's corner. Per site v, siteX[v] is the byte offset of its
 * corner in image n's channel-0 plane and siteY[v] that of its output in channel 0; channel c adds c·planeSz4 or
 * c·P4. Four taps per iteration go to four accumulators (or four independent read-modify-writes), so the adds
 * do not wait on each other.
 *   dwaFwd: y[site, c] = Σ_t lanes(w_c[t] · xpad[corner + tapOff[t]])
 *   dwaIn:  dxpad[corner + tapOff[t]] += w_c[t] · dy[site, c]          (for every t; zero taps add zeros)
 *   dwaW:   dwv_c[t] += dy[site, c] · xpad[corner + tapOff[t]]           (f32x4 sums per vector tap)
 */
function emitDepthwiseActive(m: ModuleBuilder, name: string, pass: 'fwd' | 'in' | 'w'): void {
  const params = [['planes', 'i32'], ['wv', 'i32'], ['tapOff', 'i32'], ['T4', 'i32'], ['siteX', 'i32'], ['siteY', 'i32'],
    ['count', 'i32'], ['C', 'i32'], ['planeSz4', 'i32'], ['P4', 'i32'], ['outs', 'i32']] as const;
  // planes: xpad (fwd, w) or dxpad (in); wv: filter vectors (fwd, in) or their gradient sums (w); outs: y (fwd) or dy.
  m.func(name, params, [], (f) => {
    for (const n of ['c', 'v', 't', 'corner', 'wa', 'ya', 'to', 'a', 'x0', 'x1', 'x2', 'x3', 'cx', 'cy', 'cw']) f.local('i32', n);
    const acc = [0, 1, 2, 3].map(() => f.local('v128'));
    const d = f.local('v128');
    forLoop(f, 'c', 'C', 1, () => f.i32Const(0), () => {
      f.get('c').get('planeSz4').i32Mul().get('planes').i32Add().set('cx');
      f.get('c').get('P4').i32Mul().get('outs').i32Add().set('cy');
      // wv for channel c: T4 vectors of 16 bytes
      f.get('c').get('T4').i32Mul().i32Const(4).i32Shl().get('wv').i32Add().set('cw');
      if (pass === 'w') {
        // For each group of 4 vector taps, a pass over the sites with 4 accumulators.
        forLoop(f, 't', 'T4', 4, () => f.i32Const(0), () => {
          for (let i = 0; i < 4; i++) f.v128ConstF32([0, 0, 0, 0]).set(acc[i]);
          f.get('tapOff').get('t').i32Const(2).i32Shl().i32Add().set('to');
          for (let i = 0; i < 4; i++) f.get('to').i32Load(4 * i).set(`x${i}`);
          forLoop(f, 'v', 'count', 1, () => f.i32Const(0), () => {
            f.get('siteY').get('v').i32Const(2).i32Shl().i32Add().i32Load().get('cy').i32Add().v128Load32Splat().set(d);
            f.get('siteX').get('v').i32Const(2).i32Shl().i32Add().i32Load().get('cx').i32Add().set('corner');
            for (let i = 0; i < 4; i++) {
              f.get(acc[i]).get(d).get('corner').get(`x${i}`).i32Add().v128Load().f32x4Mul().f32x4Add().set(acc[i]);
            }
          });
          f.get('cw').get('t').i32Const(4).i32Shl().i32Add().set('a');
          for (let i = 0; i < 4; i++) f.get('a').get('a').v128Load(16 * i).get(acc[i]).f32x4Add().v128Store(16 * i);
        });
        return;
      }
      forLoop(f, 'v', 'count', 1, () => f.i32Const(0), () => {
        f.get('siteX').get('v').i32Const(2).i32Shl().i32Add().i32Load().get('cx').i32Add().set('corner');
        f.get('siteY').get('v').i32Const(2).i32Shl().i32Add().i32Load().get('cy').i32Add().set('ya');
        f.get('cw').set('wa');
        f.get('tapOff').set('to');
        if (pass === 'fwd') for (let i = 0; i < 4; i++) f.v128ConstF32([0, 0, 0, 0]).set(acc[i]);
        else f.get('ya').v128Load32Splat().set(d);
        forLoop(f, 't', 'T4', 4, () => f.i32Const(0), () => {
          for (let i = 0; i < 4; i++) {
            if (pass === 'fwd') {
              f.get(acc[i]).get('wa').v128Load(16 * i).get('corner').get('to').i32Load(4 * i).i32Add().v128Load()
                .f32x4Mul().f32x4Add().set(acc[i]);
            } else {
              f.get('corner').get('to').i32Load(4 * i).i32Add().tee('a');
              f.get('a').v128Load().get('wa').v128Load(16 * i).get(d).f32x4Mul().f32x4Add().v128Store();
            }
          }
          bump(f, 'wa', 64);
          bump(f, 'to', 16);
        });
        if (pass === 'fwd') {
          f.get('ya');
          f.get(acc[0]).get(acc[1]).f32x4Add().get(acc[2]).get(acc[3]).f32x4Add().f32x4Add().set(d);
          f.get(d).f32x4ExtractLane(0).get(d).f32x4ExtractLane(1).f32Add()
            .get(d).f32x4ExtractLane(2).get(d).f32x4ExtractLane(3).f32Add().f32Add();
          f.f32Store();
        }
      });
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Pointwise passes: elementwise arithmetic, activations and the batch-norm channel passes. Each streams over rows,
// f32x4 for most of a row and scalar for its last n mod 4 elements; the TypeScript side (elementwise.ts, norm.ts)
// splits rows or channels over the worker threads.
// ---------------------------------------------------------------------------------------------------------------

/** The binary ops with a wasm kernel: those whose float32 result is exactly the reference's (see emitBinaryRow). */
export const BINARY_OPS = ['add', 'sub', 'mul', 'div', 'maximum', 'minimum'] as const;
export type WasmBinaryOp = typeof BINARY_OPS[number];
/** The unary maps with a wasm kernel (each exact in float32, see emitUnary). */
export const UNARY_OPS = ['neg', 'abs', 'sqrt', 'relu', 'relu6', 'reluGrad', 'relu6Grad'] as const;
export type WasmUnaryOp = typeof UNARY_OPS[number];

/**
 * binary_<op>(rev, a, b, out, r0, r1, C, L, sO, sC, sL): over rows r ∈ [r0, r1) of L elements, o = ⌊r / C⌋,
 * c = r mod C, a and out contiguous (row r at r·L), b read at o·sO + c·sC + i·sL with sL ∈ {0, 1} (a row of b,
 * or one value of b splatted along the row): out[r·L + i] = a[r·L + i] ∘ b[…], or b[…] ∘ a[r·L + i] when rev ≠ 0.
 */
export type BinaryExports = {
  [K in `binary_${WasmBinaryOp}`]: (rev: number, a: number, b: number, out: number, r0: number, r1: number, C: number,
    L: number, sO: number, sC: number, sL: number) => void };
/** unary_<op>(x, out, n): out[i] = op(x[i]) for i < n. */
export type UnaryExports = { [K in `unary_${WasmUnaryOp}`]: (x: number, out: number, n: number) => void };

/**
 * Walks n floats from the byte pointers `ptrs` (i32 locals, advanced in place; ptrs[0] drives the loop):
 * body(true, off) for the f32x4 at byte offset off, `unroll` vectors (off = 0, 16, …) per iteration while that
 * many remain, then one vector (off = 0) at a time, then body(false, 0) per remaining float. `ends` names three
 * scratch i32 locals.
 */
function stream(
  f: FunctionBuilder, ptrs: readonly string[], n: string, ends: readonly [string, string, string], unroll: number,
  body: (vector: boolean, off: number) => void,
): void {
  const [endU, end4, end] = ends, p0 = ptrs[0];
  f.get(p0).get(n).i32Const(-4 * unroll).i32And().i32Const(2).i32Shl().i32Add().set(endU);
  f.get(p0).get(n).i32Const(-4).i32And().i32Const(2).i32Shl().i32Add().set(end4);
  f.get(p0).get(n).i32Const(2).i32Shl().i32Add().set(end);
  const run = (until: string, vector: boolean, count: number) => {
    const step = (vector ? 16 : 4) * count;
    f.block((done) => {
      f.get(p0).get(until).i32GeU().brIf(done);
      f.loop((top) => {
        for (let k = 0; k < count; k++) body(vector, 16 * k);
        for (const p of ptrs) bump(f, p, step);
        f.get(p0).get(until).i32LtU().brIf(top);
      });
    });
  };
  if (unroll > 1) run(endU, true, unroll);
  run(end4, true, 1);
  run(end, false, 1);
}

/** Pushes the f32x4 (vector) or f32 (scalar) form of a binary op over the two values on the stack. */
function binaryInstr(f: FunctionBuilder, op: WasmBinaryOp, vector: boolean): void {
  switch (op) {
    case 'add': vector ? f.f32x4Add() : f.f32Add(); break;
    case 'sub': vector ? f.f32x4Sub() : f.f32Sub(); break;
    case 'mul': vector ? f.f32x4Mul() : f.f32Mul(); break;
    case 'div': vector ? f.f32x4Div() : f.f32Div(); break;
    case 'maximum': vector ? f.f32x4Max() : f.f32Max(); break;
    case 'minimum': vector ? f.f32x4Min() : f.f32Min(); break;
  }
}

/**
 * One row of a binary op: out[i] = a[i] ∘ b[i] (b ∘ a when rev), or with `splat` the one value at b in place of
 * b[i]. Why this equals the reference bit for bit: the reference computes in float64 and rounds to float32, and
 * for +, −, ×, ÷ of float32 operands that double rounding is innocuous (53 ≥ 2·24 + 2 bits), so it is the float32
 * operation; min/max return an operand, and wasm's propagate NaN and order −0 < +0 exactly as Math.min/Math.max.
 */
function emitBinaryRow(m: ModuleBuilder, op: WasmBinaryOp, rev: boolean, splat: boolean): FuncRef {
  const name = `binaryRow_${op}${rev ? '_rev' : ''}${splat ? '_splat' : ''}`;
  return m.func(name, [['a', 'i32'], ['b', 'i32'], ['out', 'i32'], ['n', 'i32']], [], (f) => {
    for (const n of ['e8', 'e4', 'e']) f.local('i32', n);
    const s = f.local('v128');
    const sf = f.local('f32');
    if (splat) {
      f.get('b').v128Load32Splat().set(s);
      f.get('b').f32Load().set(sf);
    }
    stream(f, splat ? ['a', 'out'] : ['a', 'b', 'out'], 'n', ['e8', 'e4', 'e'], 2, (vector, off) => {
      f.get('out');
      const loadA = () => (vector ? f.get('a').v128Load(off) : f.get('a').f32Load());
      const loadB = () => (splat ? f.get(vector ? s : sf) : vector ? f.get('b').v128Load(off) : f.get('b').f32Load());
      if (rev) { loadB(); loadA(); } else { loadA(); loadB(); }
      binaryInstr(f, op, vector);
      if (vector) f.v128Store(off); else f.f32Store();
    });
  }, false);
}

function emitBinary(m: ModuleBuilder, op: WasmBinaryOp): void {
  // rows[rev][splat]
  const rows = [false, true].map((rev) => [false, true].map((splat) => emitBinaryRow(m, op, rev, splat)));
  const params = [['rev', 'i32'], ['a', 'i32'], ['b', 'i32'], ['out', 'i32'], ['r0', 'i32'], ['r1', 'i32'], ['C', 'i32'],
    ['L', 'i32'], ['sO', 'i32'], ['sC', 'i32'], ['sL', 'i32']] as const;
  m.func(`binary_${op}`, params, [], (f) => {
    for (const n of ['r', 'o', 'c', 'L4', 'ar', 'br', 'or']) f.local('i32', n);
    f.get('L').i32Const(2).i32Shl().set('L4');
    forLoop(f, 'r', 'r1', 1, () => f.get('r0'), () => {
      f.get('r').get('C').i32DivU().set('o');
      f.get('r').get('o').get('C').i32Mul().i32Sub().set('c');
      f.get('a').get('r').get('L4').i32Mul().i32Add().set('ar');
      f.get('out').get('r').get('L4').i32Mul().i32Add().set('or');
      f.get('b').get('o').get('sO').i32Mul().get('c').get('sC').i32Mul().i32Add().i32Const(2).i32Shl().i32Add().set('br');
      const call = (rev: number, splat: number) => f.get('ar').get('br').get('or').get('L').call(rows[rev][splat]);
      f.get('rev').if(
        () => f.get('sL').if(() => call(1, 0), () => call(1, 1)),
        () => f.get('sL').if(() => call(0, 0), () => call(0, 1)),
      );
    });
  });
}

/**
 * unary_<op>, f32x4 with a scalar tail. Each map equals the reference bit for bit: neg/abs flip or clear the sign
 * bit, sqrt is correctly rounded (as is √ in float64 rounded to float32), and the ReLU family only selects between
 * x and constants by comparisons that are false for NaN, so NaN passes through relu/relu6 and gives 0 in their
 * gradients, and −0 stays −0, as in the reference's `v < 0 ? 0 : v`.
 */
function emitUnary(m: ModuleBuilder, op: WasmUnaryOp): void {
  m.func(`unary_${op}`, [['x', 'i32'], ['out', 'i32'], ['n', 'i32']], [], (f) => {
    for (const n of ['e8', 'e4', 'e']) f.local('i32', n);
    const v = f.local('v128');
    const sv = f.local('f32');
    const zero = f.local('v128'), one = f.local('v128'), six = f.local('v128');
    f.v128ConstF32([0, 0, 0, 0]).set(zero);
    f.v128ConstF32([1, 1, 1, 1]).set(one);
    f.v128ConstF32([6, 6, 6, 6]).set(six);
    const vector = () => {
      switch (op) {
        case 'neg': f.get(v).f32x4Neg(); break;
        case 'abs': f.get(v).f32x4Abs(); break;
        case 'sqrt': f.get(v).f32x4Sqrt(); break;
        // v & ~(v < 0): lanes below zero become +0
        case 'relu': f.get(v).get(v).get(zero).f32x4Lt().v128Andnot(); break;
        // bitselect(6, v & ~(v < 0), v > 6)
        case 'relu6': f.get(six).get(v).get(v).get(zero).f32x4Lt().v128Andnot().get(v).get(six).f32x4Gt().v128Bitselect(); break;
        case 'reluGrad': f.get(v).get(zero).f32x4Gt().get(one).v128And(); break;
        case 'relu6Grad': f.get(v).get(zero).f32x4Gt().get(v).get(six).f32x4Lt().v128And().get(one).v128And(); break;
      }
    };
    // select pops (a, b, cond) and pushes cond ? a : b
    const scalar = () => {
      switch (op) {
        case 'neg': f.get(sv).f32Neg(); break;
        case 'abs': f.get(sv).f32Abs(); break;
        case 'sqrt': f.get(sv).f32Sqrt(); break;
        case 'relu': f.f32Const(0).get(sv).get(sv).f32Const(0).f32Lt().select(); break;
        case 'relu6':
          f.f32Const(0).f32Const(6).get(sv).get(sv).f32Const(6).f32Gt().select().get(sv).f32Const(0).f32Lt().select();
          break;
        case 'reluGrad': f.f32Const(1).f32Const(0).get(sv).f32Const(0).f32Gt().select(); break;
        case 'relu6Grad':
          f.f32Const(1).f32Const(0).get(sv).f32Const(0).f32Gt().get(sv).f32Const(6).f32Lt().i32And().select();
          break;
      }
    };
    stream(f, ['x', 'out'], 'n', ['e8', 'e4', 'e'], 2, (isVector, off) => {
      if (isVector) {
        f.get('x').v128Load(off).set(v);
        f.get('out');
        vector();
        f.v128Store(off);
      } else {
        f.get('x').f32Load().set(sv);
        f.get('out');
        scalar();
        f.f32Store();
      }
    });
  });
}

/** Pushes lanes 0, 1 (hi: 2, 3) of the f32x4 in local v as an f64x2, exactly. */
function promote(f: FunctionBuilder, v: number, hi: boolean): FunctionBuilder {
  f.get(v);
  if (hi) f.get(v).i32x4Shuffle([2, 3, 2, 3]);
  return f.f64x2PromoteLowF32x4();
}

/** Pops two f64x2 (lo = lanes 0, 1 and hi = lanes 2, 3) and pushes them rounded into one f32x4. */
function demotePair(f: FunctionBuilder, lo: number, hi: number): FunctionBuilder {
  return f.get(lo).f32x4DemoteF64x2Zero().get(hi).f32x4DemoteF64x2Zero().i32x4Shuffle([0, 1, 4, 5]);
}

/** Pushes the sum of the two lanes of each f64x2 local, added in order, as an f64. */
function sumLanes(f: FunctionBuilder, accs: readonly number[]): void {
  accs.forEach((a, i) => {
    f.get(a).f64x2ExtractLane(0).get(a).f64x2ExtractLane(1).f64Add();
    if (i > 0) f.f64Add();
  });
}

/**
 * Batch-norm kernels over x viewed as (O, C, L): row (o, c) of L floats at (o·C + c)·L. They follow norm.ts's
 * reference formulas in float64 (f32x4 loads widened exactly to f64x2 pairs), so the statistics keep the
 * reference's float64 accuracy and the per-element results are the reference's bit for bit, given the same
 * per-channel coefficients. Per-channel values are planar float64 arrays: component j of channel c at
 * (j·C + c)·8 bytes from the pointer.
 *   bnStats(x, O, C, L, c0, c1, stats):  for c ∈ [c0, c1): μ = Σx / M, then σ² = Σ(x − μ)² / M (two passes),
 *     M = O·L; stats = (μ, σ²).
 *   bnNorm(x, y, C, L, r0, r1, coef):  rows r ∈ [r0, r1), c = r mod C: y = x·scale + shift; coef = (scale, shift).
 *   bnBwdSums(g, x, O, C, L, c0, c1, ms, sums):  with ms = (μ, s): sums = (Σg, Σ(g·(x − μ))·s).
 *   bnBwdDx(g, x, dx, C, L, r0, r1, batch, coef):  with coef = (k, a, b, μ, s):
 *     batch: dx = k·((g − a) − ((x − μ)·s)·b),  otherwise dx = k·g.
 * The sums of these go lane-wise, so their order differs from the reference's. With L = 1 (x is (O, C), the
 * layout of the sparse batch norm over gathered sites) a row is one float; the `…Rows` twins instead run along
 * the C channels of a row of x with f32x4 / f64x2 vectors of per-channel values, over rows o ∈ [r0, r1) (or
 * channels [c0, c1) for the sums), and add each channel's terms in the reference's order (o = 0, 1, …), so their
 * statistics and sums are the reference's bit for bit as well.
 */
function emitBatchNorm(m: ModuleBuilder): void {
  const ends = ['e8', 'e4', 'e'] as const;
  /** out = base + ((o·C + c)·L)·4, the row (o, c). */
  const rowAddr = (f: FunctionBuilder, base: string, out: string) =>
    f.get(base).get('o').get('C').i32Mul().get('c').i32Add().get('L').i32Mul().i32Const(2).i32Shl().i32Add().set(out);
  /** c = r mod C, and the row pointers of r. */
  const rowOf = (f: FunctionBuilder, bases: readonly [string, string][]) => {
    f.get('r').get('r').get('C').i32DivU().get('C').i32Mul().i32Sub().set('c');
    for (const [base, out] of bases) f.get(base).get('r').get('L').i32Mul().i32Const(2).i32Shl().i32Add().set(out);
  };
  /** Pushes component j of channel c of the planar array at `base`: f64 at base + (j·C + c)·8 (needs local C8 = C·8). */
  const planar = (f: FunctionBuilder, base: string, j: number) => {
    f.get(base).get('c').i32Const(3).i32Shl().i32Add();
    for (let i = 0; i < j; i++) f.get('C8').i32Add();
    return f.f64Load();
  };
  const declareC8 = (f: FunctionBuilder) => {
    f.local('i32', 'C8');
    f.get('C').i32Const(3).i32Shl().set('C8');
  };

  m.func('bnStats', [['x', 'i32'], ['O', 'i32'], ['C', 'i32'], ['L', 'i32'], ['c0', 'i32'], ['c1', 'i32'], ['stats', 'i32']], [], (f) => {
    for (const n of ['c', 'o', 'p', ...ends]) f.local('i32', n);
    declareC8(f);
    // two vectors per iteration, each as two f64x2 halves: four independent accumulators
    const acc = [0, 1, 2, 3].map(() => f.local('v128'));
    const v = f.local('v128'), mu2 = f.local('v128'), d = f.local('v128');
    for (const n of ['s', 'ds', 'mu', 'M']) f.local('f64', n);
    f.get('O').get('L').i32Mul().f64ConvertI32U().set('M');
    /** Σ over channel c of x (centred: of (x − μ)²), in acc and s; leaves the total / M on the stack. */
    const pass = (centred: boolean) => {
      for (const a of acc) f.f64Const(0).f64x2Splat().set(a);
      f.f64Const(0).set('s');
      forLoop(f, 'o', 'O', 1, () => f.i32Const(0), () => {
        rowAddr(f, 'x', 'p');
        stream(f, ['p'], 'L', ends, 2, (vector, off) => {
          if (!vector) {
            if (centred) {
              f.get('p').f32Load().f64PromoteF32().get('mu').f64Sub().set('ds');
              f.get('s').get('ds').get('ds').f64Mul().f64Add().set('s');
            } else {
              f.get('s').get('p').f32Load().f64PromoteF32().f64Add().set('s');
            }
            return;
          }
          f.get('p').v128Load(off).set(v);
          for (const hi of [false, true]) {
            const a = acc[2 * (off / 16) + (hi ? 1 : 0)];
            if (centred) {
              promote(f, v, hi).get(mu2).f64x2Sub().set(d);
              f.get(a).get(d).get(d).f64x2Mul().f64x2Add().set(a);
            } else {
              f.get(a);
              promote(f, v, hi).f64x2Add().set(a);
            }
          }
        });
      });
      sumLanes(f, acc);
      f.get('s').f64Add().get('M').f64Div();
    };
    forLoop(f, 'c', 'c1', 1, () => f.get('c0'), () => {
      pass(false);
      f.set('mu');
      f.get('mu').f64x2Splat().set(mu2);
      f.get('stats').get('c').i32Const(3).i32Shl().i32Add().set('p');
      f.get('p').get('mu').f64Store();
      f.get('p').get('C8').i32Add();
      pass(true);
      f.f64Store();
    });
  });

  m.func('bnNorm', [['x', 'i32'], ['y', 'i32'], ['C', 'i32'], ['L', 'i32'], ['r0', 'i32'], ['r1', 'i32'], ['coef', 'i32']], [], (f) => {
    for (const n of ['r', 'c', 'px', 'py', ...ends]) f.local('i32', n);
    declareC8(f);
    const v = f.local('v128'), sc = f.local('v128'), sh = f.local('v128'), lo = f.local('v128'), hi = f.local('v128');
    forLoop(f, 'r', 'r1', 1, () => f.get('r0'), () => {
      rowOf(f, [['x', 'px'], ['y', 'py']]);
      planar(f, 'coef', 0).f64x2Splat().set(sc);
      planar(f, 'coef', 1).f64x2Splat().set(sh);
      stream(f, ['px', 'py'], 'L', ends, 2, (vector, off) => {
        if (!vector) {
          f.get('py').get('px').f32Load().f64PromoteF32().get(sc).f64x2ExtractLane(0).f64Mul().get(sh).f64x2ExtractLane(0).f64Add()
            .f32DemoteF64().f32Store();
          return;
        }
        f.get('px').v128Load(off).set(v);
        promote(f, v, false).get(sc).f64x2Mul().get(sh).f64x2Add().set(lo);
        promote(f, v, true).get(sc).f64x2Mul().get(sh).f64x2Add().set(hi);
        f.get('py');
        demotePair(f, lo, hi).v128Store(off);
      });
    });
  });

  const sumsParams = [['g', 'i32'], ['x', 'i32'], ['O', 'i32'], ['C', 'i32'], ['L', 'i32'], ['c0', 'i32'], ['c1', 'i32'],
    ['ms', 'i32'], ['sums', 'i32']] as const;
  m.func('bnBwdSums', sumsParams, [], (f) => {
    for (const n of ['c', 'o', 'pg', 'px', ...ends]) f.local('i32', n);
    declareC8(f);
    // two vectors per iteration, each as lo and hi halves: Σg and Σg·(x − μ)·s in four accumulators each
    const accG = [0, 1, 2, 3].map(() => f.local('v128')), accX = [0, 1, 2, 3].map(() => f.local('v128'));
    const gv = f.local('v128'), xv = f.local('v128'), gh = f.local('v128'), mu2 = f.local('v128'), s2 = f.local('v128');
    for (const n of ['sg', 'sx', 'mu', 's', 'gs']) f.local('f64', n);
    forLoop(f, 'c', 'c1', 1, () => f.get('c0'), () => {
      planar(f, 'ms', 0).tee('mu').f64x2Splat().set(mu2);
      planar(f, 'ms', 1).tee('s').f64x2Splat().set(s2);
      for (const a of [...accG, ...accX]) f.f64Const(0).f64x2Splat().set(a);
      f.f64Const(0).set('sg');
      f.f64Const(0).set('sx');
      forLoop(f, 'o', 'O', 1, () => f.i32Const(0), () => {
        rowAddr(f, 'g', 'pg');
        rowAddr(f, 'x', 'px');
        stream(f, ['pg', 'px'], 'L', ends, 2, (vector, off) => {
          if (!vector) {
            f.get('pg').f32Load().f64PromoteF32().set('gs');
            f.get('sg').get('gs').f64Add().set('sg');
            f.get('sx').get('gs').get('px').f32Load().f64PromoteF32().get('mu').f64Sub().f64Mul().get('s').f64Mul().f64Add().set('sx');
            return;
          }
          f.get('pg').v128Load(off).set(gv);
          f.get('px').v128Load(off).set(xv);
          for (const hi of [false, true]) {
            const k = 2 * (off / 16) + (hi ? 1 : 0);
            promote(f, gv, hi).set(gh);
            f.get(accG[k]).get(gh).f64x2Add().set(accG[k]);
            f.get(accX[k]).get(gh);
            promote(f, xv, hi).get(mu2).f64x2Sub().f64x2Mul().get(s2).f64x2Mul().f64x2Add().set(accX[k]);
          }
        });
      });
      f.get('sums').get('c').i32Const(3).i32Shl().i32Add().set('pg');
      f.get('pg');
      sumLanes(f, accG);
      f.get('sg').f64Add().f64Store();
      f.get('pg').get('C8').i32Add();
      sumLanes(f, accX);
      f.get('sx').f64Add().f64Store();
    });
  });

  const dxParams = [['g', 'i32'], ['x', 'i32'], ['dx', 'i32'], ['C', 'i32'], ['L', 'i32'], ['r0', 'i32'], ['r1', 'i32'],
    ['batch', 'i32'], ['coef', 'i32']] as const;
  m.func('bnBwdDx', dxParams, [], (f) => {
    for (const n of ['r', 'c', 'pg', 'px', 'pd', ...ends]) f.local('i32', n);
    declareC8(f);
    const co = [0, 1, 2, 3, 4].map(() => f.local('v128')); // k, a, b, μ, s
    const gv = f.local('v128'), xv = f.local('v128'), lo = f.local('v128'), hi = f.local('v128');
    const rows = (batch: boolean) => forLoop(f, 'r', 'r1', 1, () => f.get('r0'), () => {
      rowOf(f, [['g', 'pg'], ['x', 'px'], ['dx', 'pd']]);
      co.forEach((l, j) => planar(f, 'coef', j).f64x2Splat().set(l));
      stream(f, ['pg', 'px', 'pd'], 'L', ends, 1, (vector) => {
        if (!vector) {
          f.get('pd');
          dxTerm(f, co, batch, () => f.get('pg').f32Load().f64PromoteF32(), () => f.get('px').f32Load().f64PromoteF32(), false);
          f.f32DemoteF64().f32Store();
          return;
        }
        f.get('pg').v128Load().set(gv);
        if (batch) f.get('px').v128Load().set(xv);
        for (const isHi of [false, true]) {
          dxTerm(f, co, batch, () => promote(f, gv, isHi), () => promote(f, xv, isHi), true);
          f.set(isHi ? hi : lo);
        }
        f.get('pd');
        demotePair(f, lo, hi).v128Store();
      });
    });
    f.get('batch').if(() => rows(true), () => rows(false));
  });

  emitBatchNormRows(m);
}

/**
 * Pushes dx = k·((g − a) − ((x − μ)·s)·b) (batch) or k·g, as f64x2 (vector) or f64, from the coefficient locals
 * co = (k, a, b, μ, s) (f64x2; lane 0 for a scalar) and the pushers of g and x: the reference's expression, in
 * its order.
 */
function dxTerm(f: FunctionBuilder, co: readonly number[], batch: boolean, g: () => void, x: () => void, vector: boolean): void {
  const coef = (j: number) => (vector ? f.get(co[j]) : f.get(co[j]).f64x2ExtractLane(0));
  const sub = () => (vector ? f.f64x2Sub() : f.f64Sub());
  const mul = () => (vector ? f.f64x2Mul() : f.f64Mul());
  coef(0);
  g();
  if (batch) {
    coef(1); sub();
    x(); coef(3); sub(); coef(4); mul(); coef(2); mul(); sub();
  }
  mul();
}

/**
 * The L = 1 twins (see emitBatchNorm): x is (O, C) and each kernel walks a row's C channels, f32x4 of data against
 * f64x2 pairs of the planar per-channel arrays, which the row loop advances along with the data.
 *   bnStatsRows(x, O, C, c0, c1, stats)       channels [c0, c1): stats = (μ, σ²), summed over o in order
 *   bnNormRows(x, y, C, r0, r1, coef)          rows [r0, r1): y = x·scale + shift
 *   bnBwdSumsRows(g, x, O, C, c0, c1, ms, sums) channels [c0, c1): sums = (Σg, Σ(g·(x − μ))·s)
 *   bnBwdDxRows(g, x, dx, C, r0, r1, batch, coef)
 */
function emitBatchNormRows(m: ModuleBuilder): void {
  const ends = ['e8', 'e4', 'e'] as const;
  /**
   * For each row o in [from, to): body over channels [c0, c1) of the row, vectors of 4 channels then single ones,
   * with `data` pointers at x[o, c] and `per` pointers at the planar arrays' channel c (component 0).
   */
  const rowsLoop = (
    f: FunctionBuilder, from: string, to: string, c0: string, c1: string, data: readonly [string, string][],
    per: readonly [string, string][], body: (vector: boolean) => void,
  ) => {
    forLoop(f, 'o', to, 1, () => f.get(from), () => {
      for (const [base, p] of data) f.get(base).get('o').get('C').i32Mul().get(c0).i32Add().i32Const(2).i32Shl().i32Add().set(p);
      for (const [base, p] of per) f.get(base).get(c0).i32Const(3).i32Shl().i32Add().set(p);
      f.get(c1).get(c0).i32Sub().set('n');
      stream(f, data.map(([, p]) => p), 'n', ends, 1, (vector) => {
        body(vector);
        for (const [, p] of per) bump(f, p, vector ? 32 : 8);
      });
    });
  };
  const declare = (f: FunctionBuilder, names: readonly string[]) => {
    for (const n of ['o', 'n', 'C8', ...ends, ...names]) f.local('i32', n);
    f.get('C').i32Const(3).i32Shl().set('C8');
  };
  /** f64x2 of component j at planar pointer p (lo: channels c, c + 1; hi: c + 2, c + 3). */
  const pair = (f: FunctionBuilder, p: string, j: number, hi: boolean) => {
    f.get(p);
    for (let i = 0; i < j; i++) f.get('C8').i32Add();
    return f.v128Load(hi ? 16 : 0);
  };
  const one = (f: FunctionBuilder, p: string, j: number) => {
    f.get(p);
    for (let i = 0; i < j; i++) f.get('C8').i32Add();
    return f.f64Load();
  };
  /** arr[c] (component j) (op)= value, for the pair or the single channel at p; the value is pushed by `value`. */
  const accumulate = (f: FunctionBuilder, p: string, j: number, vector: boolean, hi: boolean, value: () => void) => {
    f.get(p);
    for (let i = 0; i < j; i++) f.get('C8').i32Add();
    f.tee('n2');
    if (vector) {
      f.get('n2').v128Load(hi ? 16 : 0);
      value();
      f.f64x2Add().v128Store(hi ? 16 : 0);
    } else {
      f.get('n2').f64Load();
      value();
      f.f64Add().f64Store();
    }
  };
  /** arr[c] (component j) = value for c in [c0, c1) (scalar loop, once per call). */
  const fill = (f: FunctionBuilder, arr: string, j: number, value: (c: string) => void) => {
    forLoop(f, 'c', 'c1', 1, () => f.get('c0'), () => {
      f.get(arr).get('c').i32Const(3).i32Shl().i32Add();
      for (let i = 0; i < j; i++) f.get('C8').i32Add();
      value('c');
      f.f64Store();
    });
  };

  m.func('bnStatsRows', [['x', 'i32'], ['O', 'i32'], ['C', 'i32'], ['c0', 'i32'], ['c1', 'i32'], ['stats', 'i32']], [], (f) => {
    declare(f, ['c', 'n2', 'p', 'q', 'zero']);
    const v = f.local('v128'), d = f.local('v128');
    f.local('f64', 'M');
    f.local('f64', 'ds');
    f.get('O').f64ConvertI32U().set('M');
    const at = (j: number) => (c: string) => f.get('stats').get(c).i32Const(3).i32Shl().i32Add().get(j === 1 ? 'C8' : 'zero').i32Add().f64Load();
    // Σ_o x[o, c] into stats.μ, then ÷ M
    fill(f, 'stats', 0, () => f.f64Const(0));
    rowsLoop(f, 'zero', 'O', 'c0', 'c1', [['x', 'p']], [['stats', 'q']], (vector) => {
      if (!vector) return accumulate(f, 'q', 0, false, false, () => f.get('p').f32Load().f64PromoteF32());
      f.get('p').v128Load().set(v);
      for (const hi of [false, true]) accumulate(f, 'q', 0, true, hi, () => promote(f, v, hi));
    });
    fill(f, 'stats', 0, (c) => { at(0)(c); f.get('M').f64Div(); });
    // Σ_o (x[o, c] − μ_c)² into stats.σ², then ÷ M
    fill(f, 'stats', 1, () => f.f64Const(0));
    rowsLoop(f, 'zero', 'O', 'c0', 'c1', [['x', 'p']], [['stats', 'q']], (vector) => {
      if (!vector) {
        f.get('p').f32Load().f64PromoteF32().get('q').f64Load().f64Sub().set('ds');
        return accumulate(f, 'q', 1, false, false, () => f.get('ds').get('ds').f64Mul());
      }
      f.get('p').v128Load().set(v);
      for (const hi of [false, true]) {
        promote(f, v, hi);
        pair(f, 'q', 0, hi).f64x2Sub().set(d);
        accumulate(f, 'q', 1, true, hi, () => f.get(d).get(d).f64x2Mul());
      }
    });
    fill(f, 'stats', 1, (c) => { at(1)(c); f.get('M').f64Div(); });
  });

  m.func('bnNormRows', [['x', 'i32'], ['y', 'i32'], ['C', 'i32'], ['r0', 'i32'], ['r1', 'i32'], ['coef', 'i32']], [], (f) => {
    declare(f, ['px', 'py', 'q', 'zero']);
    const v = f.local('v128'), lo = f.local('v128'), hi = f.local('v128');
    rowsLoop(f, 'r0', 'r1', 'zero', 'C', [['x', 'px'], ['y', 'py']], [['coef', 'q']], (vector) => {
      if (!vector) {
        f.get('py').get('px').f32Load().f64PromoteF32();
        one(f, 'q', 0).f64Mul();
        one(f, 'q', 1).f64Add().f32DemoteF64().f32Store();
        return;
      }
      f.get('px').v128Load().set(v);
      for (const h of [false, true]) {
        promote(f, v, h);
        pair(f, 'q', 0, h).f64x2Mul();
        pair(f, 'q', 1, h).f64x2Add().set(h ? hi : lo);
      }
      f.get('py');
      demotePair(f, lo, hi).v128Store();
    });
  });

  m.func('bnBwdSumsRows', [['g', 'i32'], ['x', 'i32'], ['O', 'i32'], ['C', 'i32'], ['c0', 'i32'], ['c1', 'i32'], ['ms', 'i32'], ['sums', 'i32']], [], (f) => {
    declare(f, ['c', 'n2', 'pg', 'px', 'qm', 'qs', 'zero']);
    const gv = f.local('v128'), xv = f.local('v128'), gh = f.local('v128');
    f.local('f64', 'gs');
    fill(f, 'sums', 0, () => f.f64Const(0));
    fill(f, 'sums', 1, () => f.f64Const(0));
    rowsLoop(f, 'zero', 'O', 'c0', 'c1', [['g', 'pg'], ['x', 'px']], [['ms', 'qm'], ['sums', 'qs']], (vector) => {
      if (!vector) {
        f.get('pg').f32Load().f64PromoteF32().set('gs');
        accumulate(f, 'qs', 0, false, false, () => f.get('gs'));
        // (g·(x − μ))·s
        return accumulate(f, 'qs', 1, false, false, () => {
          f.get('gs').get('px').f32Load().f64PromoteF32();
          one(f, 'qm', 0).f64Sub().f64Mul();
          one(f, 'qm', 1).f64Mul();
        });
      }
      f.get('pg').v128Load().set(gv);
      f.get('px').v128Load().set(xv);
      for (const hi of [false, true]) {
        promote(f, gv, hi).set(gh);
        accumulate(f, 'qs', 0, true, hi, () => f.get(gh));
        accumulate(f, 'qs', 1, true, hi, () => {
          f.get(gh);
          promote(f, xv, hi);
          pair(f, 'qm', 0, hi).f64x2Sub().f64x2Mul();
          pair(f, 'qm', 1, hi).f64x2Mul();
        });
      }
    });
  });

  const dxParams = [['g', 'i32'], ['x', 'i32'], ['dx', 'i32'], ['C', 'i32'], ['r0', 'i32'], ['r1', 'i32'], ['batch', 'i32'], ['coef', 'i32']] as const;
  m.func('bnBwdDxRows', dxParams, [], (f) => {
    declare(f, ['pg', 'px', 'pd', 'q', 'zero']);
    const co = [0, 1, 2, 3, 4].map(() => f.local('v128'));
    const gv = f.local('v128'), xv = f.local('v128'), lo = f.local('v128'), hi = f.local('v128');
    const rows = (batch: boolean) => rowsLoop(f, 'r0', 'r1', 'zero', 'C', [['g', 'pg'], ['x', 'px'], ['dx', 'pd']], [['coef', 'q']], (vector) => {
      if (!vector) {
        // the per-channel values of this channel, lane 0 of the coefficient locals
        co.forEach((l, j) => one(f, 'q', j).f64x2Splat().set(l));
        f.get('pd');
        dxTerm(f, co, batch, () => f.get('pg').f32Load().f64PromoteF32(), () => f.get('px').f32Load().f64PromoteF32(), false);
        f.f32DemoteF64().f32Store();
        return;
      }
      f.get('pg').v128Load().set(gv);
      if (batch) f.get('px').v128Load().set(xv);
      for (const h of [false, true]) {
        co.forEach((l, j) => pair(f, 'q', j, h).set(l));
        dxTerm(f, co, batch, () => promote(f, gv, h), () => promote(f, xv, h), true);
        f.set(h ? hi : lo);
      }
      f.get('pd');
      demotePair(f, lo, hi).v128Store();
    });
    f.get('batch').if(() => rows(true), () => rows(false));
  });
}

/** Builds the kernel module's bytes. */
export function buildKernelModule(opts: KernelModuleOptions): Uint8Array {
  const m = new ModuleBuilder();
  m.importMemory('env', 'memory', opts.shared
    ? { initial: 1, maximum: opts.maximumPages ?? 65536, shared: true }
    : { initial: 1 });
  const micro = emitMicro(m, opts.relaxed);
  emitMacro(m, micro);
  emitPack(m, 'packA', MR);
  emitPack(m, 'packB', NR);
  emitIm2col(m);
  emitCol2im(m);
  emitCopyPlanes(m, emitCopyRows(m));
  m.func('zeroFill', [['ptr', 'i32'], ['bytes', 'i32']], [], (f) => { f.get('ptr').i32Const(0).get('bytes').memoryFill(); });
  emitWinograd(m);
  emitWinogradK4S2(m);
  emitWinograd43(m);
  emitMaxPool(m);
  emitDwCorr(m);
  emitDwGrad(m);
  emitActiveFields(m, 'actGather', 'gather');
  emitActiveFields(m, 'actScatter', 'scatter');
  emitActiveOutputs(m, 'actGatherOut', 'gather');
  emitActiveOutputs(m, 'actScatterOut', 'scatter');
  emitDepthwiseActive(m, 'dwaFwd', 'fwd');
  emitDepthwiseActive(m, 'dwaIn', 'in');
  emitDepthwiseActive(m, 'dwaW', 'w');
  for (const op of BINARY_OPS) emitBinary(m, op);
  for (const op of UNARY_OPS) emitUnary(m, op);
  emitBatchNorm(m);
  emitLamb(m);
  emitSgd(m);
  emitTaps(m);
  return m.build();
}
