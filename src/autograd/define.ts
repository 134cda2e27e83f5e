/**
 * How an op is defined: `defineOp(name, { forward, backward })`, the two side by side.
 * `forward` computes the result from its tensor inputs and attributes (by calling kernels; it is never itself
 * recorded). `backward` maps the output gradient to one gradient per tensor input, written with other ops,
 * or `null` for an input that gets none. A rule without a backward does not type-check; an op whose gradient
 * is not implemented says so with `backwardNotSupported`, it never returns zeros.
 */
import { Tensor } from '../tensor/tensor.ts';
import { shapeStr, sameShape } from '../tensor/shape.ts';
import { isGradEnabled, noGrad } from './mode.ts';

export type Grads<In extends readonly Tensor[]> = { [I in keyof In]: Tensor | null };

export interface OpContext<In extends readonly Tensor[], A> {
  readonly inputs: In;
  readonly attrs: A;
  readonly out: Tensor;
}

export interface OpRule<In extends readonly Tensor[], A> {
  forward(inputs: In, attrs: A): Tensor;
  backward(g: Tensor, ctx: OpContext<In, A>): Grads<In>;
}

export class BackwardNotSupported extends Error {
  constructor(op: string, why: string) {
    super(`${op}: backward is not supported (${why})`);
    this.name = 'BackwardNotSupported';
  }
}

export function backwardNotSupported(op: string, why: string): never {
  throw new BackwardNotSupported(op, why);
}

/** Every op defined so far, by name: the one table of forward/backward rules. */
export const opTable = new Map<string, OpRule<readonly Tensor[], unknown>>();

export function defineOp<In extends readonly Tensor[], A = undefined>(
  name: string,
  rule: OpRule<In, A>,
): (inputs: In, attrs: A) => Tensor {
  if (opTable.has(name)) throw new Error(`defineOp: op ${name} is defined twice`);
  opTable.set(name, rule as unknown as OpRule<readonly Tensor[], unknown>);
  return (inputs, attrs) => {
    const out = noGrad(() => rule.forward(inputs, attrs));
    if (isGradEnabled() && inputs.some((t) => t.requiresGrad)) {
      out.markRecorded({
        op: name,
        inputs,
        backward: (g) => {
          const grads = rule.backward(g, { inputs, attrs, out });
          grads.forEach((gi, i) => {
            if (gi && !sameShape(gi.shape, inputs[i].shape)) {
              throw new Error(`${name}: backward produced a gradient of shape ${shapeStr(gi.shape)} for input ${i} of shape ${shapeStr(inputs[i].shape)}`);
            }
          });
          return grads;
        },
      });
    }
    return out;
  };
}
