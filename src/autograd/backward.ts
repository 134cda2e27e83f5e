/**
 * The backward pass: order the recorded graph topologically from the root, then walk it in reverse,
 * summing gradients per tensor and handing each op its output gradient. Leaves (and tensors that asked
 * with retainGrad) accumulate into .grad across calls. Unless retainGraph is set, every visited op drops
 * its inputs and backward afterwards, so activations are freed and a second pass is a clear error.
 */
import type { Tensor } from '../tensor/tensor.ts';
import type { FloatArray } from '../tensor/dtype.ts';
import { shapeStr, sameShape } from '../tensor/shape.ts';
import { noGrad } from './mode.ts';
import { add } from '../ops/elementwise.ts';
import { onesLike } from '../tensor/create.ts';
import { backend } from '../backend/registry.ts';

export function runBackward(root: Tensor, gradient: Tensor | undefined, retainGraph: boolean): void {
  if (!root.requiresGrad) {
    throw new Error('backward: this tensor does not require grad and has no grad_fn (was it computed under noGrad, or from tensors without requiresGrad?)');
  }
  if (gradient === undefined && root.size !== 1) {
    throw new Error(`backward: the gradient can be implied only for a scalar; pass one for shape ${shapeStr(root.shape)}`);
  }
  if (gradient !== undefined && !sameShape(gradient.shape, root.shape)) {
    throw new Error(`backward: gradient of shape ${shapeStr(gradient.shape)} does not match the tensor's ${shapeStr(root.shape)}`);
  }
  noGrad(() => {
    const order = topologicalOrder(root);
    const grads = new Map<Tensor, Tensor>();
    grads.set(root, gradient ?? onesLike(root));
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      if (!g) continue;
      grads.delete(t);
      if (t.isLeaf || t.retainsGrad) t.grad = accumulateGrad(t.grad, g);
      const fn = t.gradFn;
      if (!fn) continue;
      if (!fn.backward) {
        throw new Error(`backward: the graph through ${fn.op} was already released by an earlier backward; pass { retainGraph: true } to the first call to go through it twice`);
      }
      const inputGrads = fn.backward(g);
      fn.inputs.forEach((input, k) => {
        const gk = inputGrads[k];
        if (!gk || !input.requiresGrad) return;
        const prev = grads.get(input);
        grads.set(input, prev ? add(prev, gk) : gk);
      });
      if (!retainGraph) {
        fn.backward = null;
        fn.inputs = [];
      }
    }
  });
}

/**
 * Grads that clearGrads zeroed in place and no backward has added to since: the next gradient is copied into
 * them (no fresh buffer to allocate and fault in: 36M parameters' worth cost about 110 ms per SparK step).
 */
const zeroedGrads = new WeakSet<Tensor>();

/** prev + g as a leaf's new .grad; a leaf's .grad is its own copy, so no two tensors ever share one gradient buffer. */
function accumulateGrad(prev: Tensor | null, g: Tensor): Tensor {
  if (!prev) return g.clone();
  if (zeroedGrads.has(prev) && !prev.isOnDevice && !g.isOnDevice && prev.dtype === g.dtype && sameShape(prev.shape, g.shape)) {
    zeroedGrads.delete(prev);
    (prev.data as FloatArray).set(g.data as FloatArray);
    return prev;
  }
  return add(prev, g);
}

/**
 * Clears the grads of `params`: set to null (PyTorch's set_to_none, the default), or zeroed in place
 * (set_to_none=False, PyTorch 1.x's default), so that the next backward writes into the same buffers. A grad
 * held on a device is set to null either way.
 */
export function clearGrads(params: Iterable<Tensor>, setToNone = true): void {
  for (const p of params) {
    const g = p.grad;
    if (!g) continue;
    if (setToNone || g.isOnDevice) {
      p.grad = null;
    } else {
      // kept from step to step: into resident memory, where the optimizers read it in place (and the threads zero it)
      const data = g.makeResident().data as FloatArray;
      if (!(data instanceof Float32Array && backend().resident?.zero(data))) data.fill(0);
      zeroedGrads.add(g);
    }
  }
}

/** Inputs before the ops that use them; iterative DFS so deep graphs do not overflow the stack. */
function topologicalOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const visited = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  visited.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, next] = top;
    const inputs = t.gradFn?.inputs ?? [];
    if (next < inputs.length) {
      top[1]++;
      const child = inputs[next];
      if (child.requiresGrad && !visited.has(child)) {
        visited.add(child);
        stack.push([child, 0]);
      }
    } else {
      order.push(t);
      stack.pop();
    }
  }
  return order;
}
