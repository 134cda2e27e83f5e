/**
 * The WebAssembly source of the SIMD kernels, written with `builder.ts` and emitted at load time. Every function
 * works on byte addresses into one imported memory and keeps no state of its own (no globals, no static
 * scratch), so one instance per worker over a shared memory can run the same function on disjoint ranges.
 *
 *   gemm:   packA / packB copy a block of op(A) / op(B) into the strip layout the micro-kernel streams
 *           (packed[s·W·kc + k·W + t], zero past the edge); `macro` runs the MR×NR micro-kernel over a packed
 *           mc×kc block of A and kc×nc panel of B, adding into (or storing to) C.
 *   conv:   im2col / col2im between an image group and its column matrix (conv2d.ts has the math).
 *   depthwise: `copyRows` (placing a plane inside a zero border), `dwCorr` (a stride-1 correlation of a
 *           zero-bordered plane with an R×S filter) and `dwGrad` (the filter gradient's correlation), f32x4 along
 *           the output row.
 *   active sites: `actGather` / `actScatter` (receptive fields of listed output sites to and from rows) and
 *           `actGatherOut` / `actScatterOut` (the output channels at the sites), active_conv.ts has the math.
 * Sizes and strides are i32 parameters (the active-site kernels read theirs from an i32 block, `ACT`); only the
 * register tiles and the use of relaxed SIMD are fixed when the module is built. Every export takes i32
 * arguments only, so a worker pool can pass them through an Int32Array.
 * Left out: everything that is not a hot loop (blocking, validity ranges, copies in and out live in TypeScript).
 */
import { ModuleBuilder, type FunctionBuilder, type FuncRef } from './builder.ts';

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

/** The instance's exports, as TypeScript sees them. All pointers are byte addresses. */
export interface KernelExports {
  /** C[mc×nc] (acc ? += : =) packedA · packedB; tmp: MR·NR floats of scratch for edge tiles. */
  macro(mc: number, nc: number, kc: number, pa: number, pb: number, pc: number, ldc: number, acc: number, tmp: number): void;
  /** dst[s·W·kc + k·W + t] = src[(s·W + t)·sT + k·sK] (strides in floats), 0 for s·W + t ≥ total. W = MR. */
  packA(src: number, sT: number, sK: number, total: number, kc: number, dst: number): void;
  /** The same with W = NR. */
  packB(src: number, sT: number, sK: number, total: number, kc: number, dst: number): void;
  /**
   * col[(c·R + r)·S + s, oh·OW + ow] = x[c·H·W + ih·W + iw] or 0 (ih = oh·sH − pH + r·dH, likewise iw), c < Cg.
   * ranges: i32 table, [ohLo, ohHi] per r then [owLo, owHi] per s: the outputs whose tap lies inside the image.
   */
  im2col(x: number, col: number, ranges: number, Cg: number, H: number, W: number, R: number, S: number,
    OH: number, OW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number): void;
  /** The adjoint: image (Cg×H×W, zeroed first) = Σ of dcol onto the positions its entries were read from. */
  col2im(dcol: number, image: number, ranges: number, Cg: number, H: number, W: number, R: number, S: number,
    OH: number, OW: number, sH: number, sW: number, pH: number, pW: number, dH: number, dW: number): void;
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
}

/** Pushes min(a, b) of two i32 locals. */
function minI32(f: FunctionBuilder, a: string | number, b: string | number): FunctionBuilder {
  return f.get(a).get(b).get(a).get(b).i32LtS().select();
}

/** for (i = from; i < end; i += step) body(), with i and end locals; `from` pushed by the caller's `init`. */
function forLoop(f: FunctionBuilder, i: string, end: string | number, step: number, init: () => void, body: () => void): void {
  init();
  f.set(i);
  f.block((done) => {
    f.get(i).get(end).i32GeS().brIf(done);
    f.loop((top) => {
      body();
      f.get(i).i32Const(step).i32Add().tee(i).get(end).i32LtS().brIf(top);
    });
  });
}

/** x = x + c for an i32 local. */
function bump(f: FunctionBuilder, x: string | number, c: number): void {
  f.get(x).i32Const(c).i32Add().set(x);
}

/** x = x + y for i32 locals. */
function bumpBy(f: FunctionBuilder, x: string | number, y: string | number): void {
  f.get(x).get(y).i32Add().set(x);
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

/** 4×4 transpose of the f32 lanes of locals r0..r3 into o0..o3 (o_i = lane i of each r), with shuffles. */
function transpose4(f: FunctionBuilder, r: number[], t: number[], o: number[]): void {
  const shuf = (x: number, y: number, lanes: number[], out: number) => f.get(x).get(y).i32x4Shuffle(lanes).set(out);
  shuf(r[0], r[1], [0, 4, 1, 5], t[0]); // a0 b0 a1 b1
  shuf(r[0], r[1], [2, 6, 3, 7], t[1]); // a2 b2 a3 b3
  shuf(r[2], r[3], [0, 4, 1, 5], t[2]); // c0 d0 c1 d1
  shuf(r[2], r[3], [2, 6, 3, 7], t[3]); // c2 d2 c3 d3
  shuf(t[0], t[2], [0, 1, 4, 5], o[0]); // a0 b0 c0 d0
  shuf(t[0], t[2], [2, 3, 6, 7], o[1]);
  shuf(t[1], t[3], [0, 1, 4, 5], o[2]);
  shuf(t[1], t[3], [2, 3, 6, 7], o[3]);
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
  ['sH', 'i32'], ['sW', 'i32'], ['pH', 'i32'], ['pW', 'i32'], ['dH', 'i32'], ['dW', 'i32']] as const;

/**
 * The (c, r, s) row walk shared by im2col and col2im: for each row it sets `row` (the column matrix row's byte
 * address), `lo`/`hi` (valid output rows), `wlo`/`whi` (valid output columns) and `plane0` (the address of
 * x[c, −pH + r·dH, −pW + s·dW], possibly outside the plane), then runs body.
 */
function convRows(f: FunctionBuilder, imageParam: string, colParam: string, body: () => void): void {
  for (const n of ['c', 'r', 's', 'row', 'lo', 'hi', 'wlo', 'whi', 'plane', 'plane0', 'HW4', 'P4', 'W4']) f.local('i32', n);
  f.get(imageParam).set('plane');
  f.get('H').get('W').i32Mul().i32Const(2).i32Shl().set('HW4');
  f.get('OH').get('OW').i32Mul().i32Const(2).i32Shl().set('P4');
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
        bumpBy(f, 'row', 'P4');
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
function emitCopyRows(m: ModuleBuilder): void {
  const params = [['src', 'i32'], ['srcStride', 'i32'], ['dst', 'i32'], ['dstStride', 'i32'], ['rows', 'i32'], ['cols', 'i32']] as const;
  m.func('copyRows', params, [], (f) => {
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
  emitCopyRows(m);
  emitDwCorr(m);
  emitDwGrad(m);
  emitActiveFields(m, 'actGather', 'gather');
  emitActiveFields(m, 'actScatter', 'scatter');
  emitActiveOutputs(m, 'actGatherOut', 'gather');
  emitActiveOutputs(m, 'actScatterOut', 'scatter');
  emitDepthwiseActive(m, 'dwaFwd', 'fwd');
  emitDepthwiseActive(m, 'dwaIn', 'in');
  emitDepthwiseActive(m, 'dwaW', 'w');
  return m.build();
}
