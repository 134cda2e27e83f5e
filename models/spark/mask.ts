/**
 * SparK's masks. Convention everywhere: activeB1ff is (B, 1, fh, fw) with 1 = visible (kept), where
 * fh×fw is the patch grid (input / downsample ratio). Every image keeps exactly
 * round-half-even(fh·fw·(1 − maskRatio)) cells, drawn uniformly without replacement (any such sampler is
 * equivalent to the official argsort of uniform noise). At a map of side H the mask is replicated by H/fh
 * (nearest, whole blocks).
 */
import { Tensor } from '../../src/tensor/tensor.ts';
import { shapeStr } from '../../src/tensor/shape.ts';
import { defaultGenerator, type Generator } from '../../src/tensor/random.ts';

/** Python's round(): halves go to the even neighbour. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function visibleCount(fh: number, fw: number, maskRatio: number): number {
  return roundHalfEven(fh * fw * (1 - maskRatio));
}

/** A random (B, 1, fh, fw) bool mask keeping `keep` cells per image. */
export function randomActive(batch: number, fh: number, fw: number, keep: number, generator: Generator = defaultGenerator): Tensor {
  if (!(keep >= 0 && keep <= fh * fw)) throw new Error(`randomActive: cannot keep ${keep} of ${fh * fw} cells`);
  const data = new Uint8Array(batch * fh * fw);
  for (let b = 0; b < batch; b++) {
    const order = generator.permutation(fh * fw);
    for (let i = 0; i < keep; i++) data[b * fh * fw + order[i]] = 1;
  }
  return new Tensor(data, [batch, 1, fh, fw], 'bool');
}

/** Checks a user-given mask: (B, 1, fh, fw), values 0/1. Returns it as a bool tensor. */
export function checkActive(active: Tensor, batch: number, fh: number, fw: number): Tensor {
  const want = [batch, 1, fh, fw];
  if (active.ndim !== 4 || active.shape.some((d, i) => d !== want[i])) {
    throw new Error(`SparK: active must have shape ${shapeStr(want)} (1 = visible), got ${shapeStr(active.shape)}`);
  }
  const out = new Uint8Array(active.size);
  for (let i = 0; i < out.length; i++) {
    const v = Number(active.data[i]);
    if (v !== 0 && v !== 1) throw new Error(`SparK: active must hold only 0/1 (or booleans), found ${v}`);
    out[i] = v;
  }
  return new Tensor(out, active.shape, 'bool');
}
