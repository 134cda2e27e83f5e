/**
 * The WebAssembly kernels of Winograd F(4×4, 3×3) (winograd.ts's F43 scheme drives them): the tile transforms
 * (winograd_module.ts's gather and scatter, 6×6 input patches of tiles 4 apart) and the filter transforms.
 *
 * At the points 0, 1, −1, 2, −2, ∞ (Lavin & Gray, 2015), for 6 inputs d and a 3-tap filter g the 4 outputs
 * y_i = Σ_r g_r·d_{i+r} are y = Aᵀ[(G·g) ⊙ (Bᵀ·d)] with the matrices below; in 2-D, Aᵀ[(G·g·Gᵀ) ⊙ (Bᵀ·d·B)]A:
 * 36 multiplies per 4×4 outputs and channel pair, where F(2×2, 3×3) takes 64 and im2col 144.
 *
 *   wgFilter43(w, kc0, kc1, KC, U)       U[ξ][kc] = (G·g_kc·Gᵀ)[ξ] for filters kc ∈ [kc0, kc1) of w (KC 3×3
 *                                        filters), ξ = 6i + j; U is 36 rows of KC floats
 *   wgFilterGrad43(dU, kc0, kc1, KC, dw) dw_kc = Gᵀ·dU_kc·G, the adjoint (dU read 4 filters at a time: its
 *                                        rows need 3 floats of slack past the last)
 *   wgFlipFilters(w, K, C, k0, k1, wt)   wt[c, k, 8 − t] = w[k, c, t] for k ∈ [k0, k1): the filters of the
 *                                        transposed convolution (the input gradient as a forward convolution)
 *
 * The filter transforms take four consecutive filters per f32x4 vector; a last group of fewer (past kc1) reads
 * filter kc for its empty lanes and stores only the live ones. All arithmetic is float32.
 */
import type { FunctionBuilder, ModuleBuilder } from './builder.ts';
import { forLoop } from './emit.ts';
import { emitTileGather, emitTileScatter, sandwich, transpose, type TransformMatrix } from './winograd_module.ts';

export const F43_BT: TransformMatrix = [
  [4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1],
];
export const F43_G: TransformMatrix = [
  [1 / 4, 0, 0], [-1 / 6, -1 / 6, -1 / 6], [-1 / 6, 1 / 6, -1 / 6], [1 / 24, 1 / 12, 1 / 6], [1 / 24, -1 / 12, 1 / 6], [0, 0, 1],
];
export const F43_AT: TransformMatrix = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]];

const FILTER_PARAMS = (src: string, dst: string) => [[src, 'i32'], ['kc0', 'i32'], ['kc1', 'i32'], ['KC', 'i32'], [dst, 'i32']] as const;

/**
 * The walk over groups of four filters k = kc0, kc0 + 4, …: sets `live1`..`live3` (filter k + l < kc1) and `all`
 * (all four live), then runs body. Locals it declares: k, all, live1..3, KC4.
 */
function groupWalk(f: FunctionBuilder, body: () => void): void {
  for (const n of ['k', 'all', 'live1', 'live2', 'live3', 'KC4']) f.local('i32', n);
  f.get('KC').i32Const(2).i32Shl().set('KC4');
  forLoop(f, 'k', 'kc1', 4, () => f.get('kc0'), () => {
    for (let l = 1; l < 4; l++) f.get('k').i32Const(l).i32Add().get('kc1').i32LtS().set(`live${l}`);
    f.get('k').i32Const(4).i32Add().get('kc1').i32LeS().set('all');
    body();
  });
}

/** Runs put(l) for each live lane l of the group (lane 0 always). */
function perLiveLane(f: FunctionBuilder, put: (l: number) => void): void {
  for (let l = 0; l < 4; l++) {
    if (l === 0) put(l); else f.get(`live${l}`).if(() => put(l));
  }
}

function emitFilters(m: ModuleBuilder): void {
  m.func('wgFilter43', FILTER_PARAMS('src', 'dst'), [], (f) => {
    f.local('i32', 'lane');
    const g = Array.from({ length: 3 }, () => Array.from({ length: 3 }, () => f.local('v128')));
    groupWalk(f, () => {
      // g[r][s] = tap (r, s) of filters k … k + 3 (36 bytes apart; an empty lane reads filter k)
      for (let j = 0; j < 9; j++) {
        f.get('src').get('k').i32Const(36).i32Mul().i32Add().f32Load(4 * j).f32x4Splat();
        for (let l = 1; l < 4; l++) {
          f.get('src').get('k').i32Const(l).get(`live${l}`).i32Mul().i32Add().i32Const(36).i32Mul().i32Add().f32Load(4 * j);
          f.f32x4ReplaceLane(l);
        }
        f.set(g[Math.floor(j / 3)][j % 3]);
      }
      const U = sandwich(f, F43_G, g);
      const at = (xi: number) => f.get('dst').get('k').i32Const(2).i32Shl().i32Add().get('KC4').i32Const(xi).i32Mul().i32Add();
      f.get('all').if(() => {
        for (let xi = 0; xi < 36; xi++) at(xi).get(U[Math.floor(xi / 6)][xi % 6]).v128Store();
      }, () => {
        perLiveLane(f, (l) => {
          for (let xi = 0; xi < 36; xi++) at(xi).get(U[Math.floor(xi / 6)][xi % 6]).f32x4ExtractLane(l).f32Store(4 * l);
        });
      });
    });
  });
  const GT = transpose(F43_G);
  m.func('wgFilterGrad43', FILTER_PARAMS('src', 'dst'), [], (f) => {
    const u = Array.from({ length: 6 }, () => Array.from({ length: 6 }, () => f.local('v128')));
    groupWalk(f, () => {
      for (let xi = 0; xi < 36; xi++) {
        f.get('src').get('k').i32Const(2).i32Shl().i32Add().get('KC4').i32Const(xi).i32Mul().i32Add().v128Load();
        f.set(u[Math.floor(xi / 6)][xi % 6]);
      }
      const dw = sandwich(f, GT, u);
      perLiveLane(f, (l) => {
        for (let t = 0; t < 9; t++) {
          f.get('dst').get('k').i32Const(l).i32Add().i32Const(36).i32Mul().i32Add();
          f.get(dw[Math.floor(t / 3)][t % 3]).f32x4ExtractLane(l).f32Store(4 * t);
        }
      });
    });
  });
  const flipParams = [['src', 'i32'], ['K', 'i32'], ['C', 'i32'], ['k0', 'i32'], ['k1', 'i32'], ['dst', 'i32']] as const;
  m.func('wgFlipFilters', flipParams, [], (f) => {
    for (const n of ['k', 'c', 's', 'd', 'dStep']) f.local('i32', n);
    f.get('K').i32Const(36).i32Mul().set('dStep');
    forLoop(f, 'k', 'k1', 1, () => f.get('k0'), () => {
      f.get('src').get('k').get('C').i32Mul().i32Const(36).i32Mul().i32Add().set('s');
      f.get('dst').get('k').i32Const(36).i32Mul().i32Add().set('d');
      forLoop(f, 'c', 'C', 1, () => f.i32Const(0), () => {
        for (let t = 0; t < 9; t++) f.get('d').get('s').f32Load(4 * t).f32Store(4 * (8 - t));
        f.get('s').i32Const(36).i32Add().set('s');
        f.get('d').get('dStep').i32Add().set('d');
      });
    });
  });
}

export function emitWinograd43(m: ModuleBuilder): void {
  emitFilters(m);
  emitTileGather(m, 'input43', F43_BT, 4);
  emitTileScatter(m, 'output43', F43_AT, 4);
  emitTileGather(m, 'outputGrad43', transpose(F43_AT), 4);
}
