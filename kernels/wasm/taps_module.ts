/**
 * The WebAssembly kernels that move a filter bank between its stored layout, where a filter's taps are the
 * innermost index (w[k, c, r·S + s]), and one matrix per tap (conv2d_positions.ts drives them):
 *
 *   packTaps(src, sT, sK, taps, total, kc, dst, tapBytes)
 *       for every tap j < taps, the packA strip layout (module.ts, strips of MR = 2 rows) of the total × kc matrix
 *       A_j[t, k] = src[t·sT + k·sK + j] (strides in floats), tap j's block tapBytes after tap j − 1's:
 *       dst[j·tapBytes/4 + s·2·kc + k·2 + l] = A_j[2s + l, k], 0 past `total`.
 *       Two rows' taps are contiguous runs: four taps of both rows are two vector loads, two lane shuffles and four
 *       64-bit lane stores (one per tap); the remaining taps go one by one.
 *   interleaveTaps(src, dst, taps, e0, e1, tapFloats)
 *       the inverse layout change for the weight gradient: dst[e·taps + j] = src[j·tapFloats + e] for e ∈ [e0, e1),
 *       j < taps; four taps × four elements at a time through a 4×4 lane transpose.
 */
import type { ModuleBuilder } from './builder.ts';
import { bump, bumpBy, forLoop, transpose4 } from './emit.ts';

export function emitTaps(m: ModuleBuilder): void {
  const packParams = [['src', 'i32'], ['sT', 'i32'], ['sK', 'i32'], ['taps', 'i32'], ['total', 'i32'], ['kc', 'i32'],
    ['dst', 'i32'], ['tapBytes', 'i32']] as const;
  m.func('packTaps', packParams, [], (f) => {
    for (const n of ['t0', 'k', 'j', 'taps4', 'row0', 'row1', 'sK4', 'dp']) f.local('i32', n);
    const a = f.local('v128'), b = f.local('v128'), lo = f.local('v128'), hi = f.local('v128');
    f.get('taps').i32Const(-4).i32And().set('taps4');
    f.get('sK').i32Const(2).i32Shl().set('sK4');
    forLoop(f, 't0', 'total', 2, () => f.i32Const(0), () => {
      f.get('src').get('t0').get('sT').i32Mul().i32Const(2).i32Shl().i32Add().set('row0');
      f.get('row0').get('sT').i32Const(2).i32Shl().i32Add().set('row1');
      f.get('t0').i32Const(1).i32Add().get('total').i32LtS().if(() => {
        // two rows: d walks the strip's k positions (8 bytes each), dp the taps' blocks
        forLoop(f, 'k', 'kc', 1, () => f.i32Const(0), () => {
          f.get('dst').set('dp');
          forLoop(f, 'j', 'taps4', 4, () => f.i32Const(0), () => {
            f.get('row0').get('j').i32Const(2).i32Shl().i32Add().v128Load().set(a);
            f.get('row1').get('j').i32Const(2).i32Shl().i32Add().v128Load().set(b);
            f.get(a).get(b).i32x4Shuffle([0, 4, 1, 5]).set(lo); // a0 b0 a1 b1
            f.get(a).get(b).i32x4Shuffle([2, 6, 3, 7]).set(hi); // a2 b2 a3 b3
            for (const [v, lane] of [[lo, 0], [lo, 1], [hi, 0], [hi, 1]] as const) {
              f.get('dp').get(v).v128Store64Lane(lane);
              bumpBy(f, 'dp', 'tapBytes');
            }
          });
          forLoop(f, 'j', 'taps', 1, () => f.get('taps4'), () => {
            f.get('dp').get('row0').get('j').i32Const(2).i32Shl().i32Add().f32Load().f32Store();
            f.get('dp').get('row1').get('j').i32Const(2).i32Shl().i32Add().f32Load().f32Store(4);
            bumpBy(f, 'dp', 'tapBytes');
          });
          bump(f, 'dst', 8);
          bumpBy(f, 'row0', 'sK4');
          bumpBy(f, 'row1', 'sK4');
        });
      }, () => {
        // the last, single row: the second lane is zero
        forLoop(f, 'k', 'kc', 1, () => f.i32Const(0), () => {
          f.get('dst').set('dp');
          forLoop(f, 'j', 'taps', 1, () => f.i32Const(0), () => {
            f.get('dp').get('row0').get('j').i32Const(2).i32Shl().i32Add().f32Load().f32Store();
            f.get('dp').f32Const(0).f32Store(4);
            bumpBy(f, 'dp', 'tapBytes');
          });
          bump(f, 'dst', 8);
          bumpBy(f, 'row0', 'sK4');
        });
      });
    });
  });

  const interleaveParams = [['src', 'i32'], ['dst', 'i32'], ['taps', 'i32'], ['e0', 'i32'], ['e1', 'i32'], ['tapFloats', 'i32']] as const;
  m.func('interleaveTaps', interleaveParams, [], (f) => {
    for (const n of ['e', 'e4', 'j', 'taps4', 'tb', 's', 'd', 'rowBytes']) f.local('i32', n);
    const r = [0, 1, 2, 3].map(() => f.local('v128'));
    const t = [0, 1, 2, 3].map(() => f.local('v128'));
    const o = [0, 1, 2, 3].map(() => f.local('v128'));
    f.get('taps').i32Const(-4).i32And().set('taps4');
    f.get('tapFloats').i32Const(2).i32Shl().set('tb');
    f.get('taps').i32Const(2).i32Shl().set('rowBytes');
    // e4: the end of the whole groups of four elements from e0
    f.get('e1').get('e0').i32Sub().i32Const(-4).i32And().get('e0').i32Add().set('e4');
    forLoop(f, 'e', 'e4', 4, () => f.get('e0'), () => {
      forLoop(f, 'j', 'taps4', 4, () => f.i32Const(0), () => {
        // r_i = taps j + i at elements e … e + 3; o_i = elements e + i at taps j … j + 3
        f.get('src').get('j').get('tapFloats').i32Mul().get('e').i32Add().i32Const(2).i32Shl().i32Add().set('s');
        for (let i = 0; i < 4; i++) {
          f.get('s').v128Load().set(r[i]);
          if (i < 3) bumpBy(f, 's', 'tb');
        }
        transpose4(f, r, t, o);
        f.get('dst').get('e').get('taps').i32Mul().get('j').i32Add().i32Const(2).i32Shl().i32Add().set('d');
        for (let i = 0; i < 4; i++) {
          f.get('d').get(o[i]).v128Store();
          if (i < 3) bumpBy(f, 'd', 'rowBytes');
        }
      });
      forLoop(f, 'j', 'taps', 1, () => f.get('taps4'), () => {
        f.get('src').get('j').get('tapFloats').i32Mul().get('e').i32Add().i32Const(2).i32Shl().i32Add().set('s');
        f.get('dst').get('e').get('taps').i32Mul().get('j').i32Add().i32Const(2).i32Shl().i32Add().set('d');
        // the four elements' entries are `taps` floats apart in dst
        for (let i = 0; i < 4; i++) {
          f.get('d');
          if (i > 0) f.get('rowBytes').i32Const(i).i32Mul().i32Add();
          f.get('s').f32Load(4 * i).f32Store();
        }
      });
    });
    forLoop(f, 'e', 'e1', 1, () => f.get('e4'), () => {
      forLoop(f, 'j', 'taps', 1, () => f.i32Const(0), () => {
        f.get('dst').get('e').get('taps').i32Mul().get('j').i32Add().i32Const(2).i32Shl().i32Add();
        f.get('src').get('j').get('tapFloats').i32Mul().get('e').i32Add().i32Const(2).i32Shl().i32Add().f32Load();
        f.f32Store();
      });
    });
  });
}
