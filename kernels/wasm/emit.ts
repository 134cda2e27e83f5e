/**
 * Small emitting helpers shared by the kernel sources (module.ts, winograd_module.ts): counted loops, i32 bumps,
 * min, and the 4×4 lane transpose.
 */
import type { FunctionBuilder } from './builder.ts';

/** Pushes min(a, b) of two i32 locals. */
export function minI32(f: FunctionBuilder, a: string | number, b: string | number): FunctionBuilder {
  return f.get(a).get(b).get(a).get(b).i32LtS().select();
}

/** for (i = from; i < end; i += step) body(), with i and end locals; `from` pushed by the caller's `init`. */
export function forLoop(f: FunctionBuilder, i: string, end: string | number, step: number, init: () => void, body: () => void): void {
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
export function bump(f: FunctionBuilder, x: string | number, c: number): void {
  f.get(x).i32Const(c).i32Add().set(x);
}

/** x = x + y for i32 locals. */
export function bumpBy(f: FunctionBuilder, x: string | number, y: string | number): void {
  f.get(x).get(y).i32Add().set(x);
}

/** 4×4 transpose of the f32 lanes of locals r0..r3 into o0..o3 (o_i = lane i of each r), with shuffles. */
export function transpose4(f: FunctionBuilder, r: number[], t: number[], o: number[]): void {
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
