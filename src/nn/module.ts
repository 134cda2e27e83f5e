/**
 * Module: the PyTorch-style container of parameters, buffers and child modules.
 * Nothing is registered by hand: a module's own properties are read in definition order, and
 *   a Parameter is a parameter, any other Tensor is a buffer, a Module is a child,
 * so `this.conv1 = new Conv2d(...)` gives the dotted names PyTorch would (`layer1.0.conv1.weight`).
 * Buffer properties carry PyTorch's names (`running_mean`, `num_batches_tracked`) so state dicts match.
 * ModuleList/Sequential children are the properties '0', '1', …
 */
import { Tensor } from '../tensor/tensor.ts';
import { shapeStr, sameShape } from '../tensor/shape.ts';
import { isFloat, type FloatDType } from '../tensor/dtype.ts';
import { noGrad } from '../autograd/mode.ts';
import { clearGrads } from '../autograd/backward.ts';
import { cast } from '../ops/elementwise.ts';

/**
 * A trainable tensor: a leaf that requires grad, kept by identity across optimizer steps and loads. Its float32
 * elements live in the backend's resident memory where there is one (Tensor.makeResident): the convolutions read
 * weights and the optimizers update them in place.
 */
export class Parameter extends Tensor {
  constructor(t: Tensor, requiresGrad = true) {
    super(t.deviceCopy?.share() ?? t.data, t.shape, t.dtype);
    this.requiresGrad = requiresGrad;
    this.makeResident();
  }
}

/** Per-call state threaded through forward: SparK passes its visibility mask here, plain models ignore it. */
export interface ForwardContext {
  /** (B, 1, f, f), 1 = visible; see models/spark. */
  readonly activeB1ff?: Tensor;
}

export interface LoadResult { missingKeys: string[]; unexpectedKeys: string[] }

export class StateDictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StateDictError';
  }
}

export class Module {
  training = true;

  /** Own entries in definition order: [name, value] for tensors and modules. */
  private ownEntries(): [string, Tensor | Module][] {
    const out: [string, Tensor | Module][] = [];
    for (const [name, value] of Object.entries(this)) {
      if (value instanceof Tensor || value instanceof Module) out.push([name, value]);
    }
    return out;
  }

  /** [name, child] of direct children. */
  namedChildren(): [string, Module][] {
    return this.ownEntries().filter((e): e is [string, Module] => e[1] instanceof Module);
  }

  /** Every module in the tree (this one first, depth first), with its dotted name. */
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) out.push(...child.namedModules(prefix ? `${prefix}.${name}` : name));
    return out;
  }

  /** Parameters in PyTorch's order: a module's own, then each child's. Shared parameters are listed once. */
  namedParameters(): [string, Parameter][] {
    return this.collect((v): v is Parameter => v instanceof Parameter);
  }

  namedBuffers(): [string, Tensor][] {
    return this.collect((v): v is Tensor => v instanceof Tensor && !(v instanceof Parameter));
  }

  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  private collect<T extends Tensor>(keep: (v: Tensor) => v is T): [string, T][] {
    const out: [string, T][] = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const [name, v] of m.ownEntries()) {
        if (v instanceof Tensor && keep(v) && !seen.has(v)) {
          seen.add(v);
          out.push([prefix ? `${prefix}.${name}` : name, v]);
        }
      }
    }
    return out;
  }

  /** Parameters and buffers by dotted name, each module's parameters before its buffers, as PyTorch orders them. */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const [prefix, m] of this.namedModules()) {
      const own = m.ownEntries().filter((e): e is [string, Tensor] => e[1] instanceof Tensor);
      const ordered = [...own.filter(([, t]) => t instanceof Parameter), ...own.filter(([, t]) => !(t instanceof Parameter))];
      for (const [name, t] of ordered) out[prefix ? `${prefix}.${name}` : name] = t;
    }
    return out;
  }

  /**
   * Copy values into this module's tensors by name (dtype converted where both are floats; integer buffers
   * stay integers). strict (the default) fails on any missing or unexpected key; shape mismatches always fail.
   * The error lists every problem at once.
   */
  loadStateDict(dict: Record<string, Tensor>, options: { strict?: boolean } = {}): LoadResult {
    const strict = options.strict ?? true;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in dict));
    const unexpectedKeys = Object.keys(dict).filter((k) => !(k in own));
    const problems: string[] = [];
    for (const [k, src] of Object.entries(dict)) {
      const dst = own[k];
      if (!dst) continue;
      if (!sameShape(dst.shape, src.shape)) problems.push(`size mismatch for ${k}: checkpoint ${shapeStr(src.shape)}, model ${shapeStr(dst.shape)}`);
      else if (isFloat(dst.dtype) !== isFloat(src.dtype) && !(dst.dtype === 'int64' && src.dtype === 'int32')) {
        problems.push(`dtype mismatch for ${k}: checkpoint ${src.dtype}, model ${dst.dtype}`);
      }
    }
    if (strict) {
      if (missingKeys.length) problems.push(`missing keys: ${missingKeys.join(', ')}`);
      if (unexpectedKeys.length) problems.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    }
    if (problems.length) throw new StateDictError(`loadStateDict (${this.constructor.name}): ${problems.join('; ')}`);
    for (const [k, src] of Object.entries(dict)) {
      const dst = own[k];
      if (dst) copyInto(dst, src);
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Set training mode here and below (dropout, drop path, batch-norm statistics). */
  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Convert every float parameter and buffer to `dtype` (shared tensors stay shared); integer buffers are kept. */
  /** On a device backend (setBackend('gpu')), move every float32 parameter and buffer to the device. */
  toDevice(): this {
    for (const [, m] of this.namedModules()) {
      for (const [, t] of m.ownEntries()) if (t instanceof Tensor) t.toDevice();
    }
    return this;
  }

  to(dtype: FloatDType): this {
    const converted = new Map<Tensor, Tensor>();
    for (const [, m] of this.namedModules()) {
      const slots = m as unknown as Record<string, unknown>;
      for (const [name, t] of m.ownEntries()) {
        if (!(t instanceof Tensor) || !isFloat(t.dtype) || t.dtype === dtype) continue;
        let next = converted.get(t);
        if (!next) {
          const data = noGrad(() => cast(t, dtype)).detach();
          next = t instanceof Parameter ? new Parameter(data, t.requiresGrad) : data;
          converted.set(t, next);
        }
        slots[name] = next;
      }
    }
    return this;
  }

  /** Clears every parameter's grad: set to null, or with { setToNone: false } zeroed in place (see clearGrads). */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.parameters(), options.setToNone ?? true);
  }

  numParameters(): number {
    return this.parameters().reduce((n, p) => n + p.size, 0);
  }

  /** Call fn on every module, children before parents (as torch.nn.Module.apply). */
  apply(fn: (m: Module) => void): this {
    for (const [, child] of this.namedChildren()) child.apply(fn);
    fn(this);
    return this;
  }
}

function copyInto(dst: Tensor, src: Tensor): void {
  const d = dst.data, s = src.data;
  if (d instanceof BigInt64Array) {
    for (let i = 0; i < d.length; i++) d[i] = s instanceof BigInt64Array ? s[i] : BigInt(Math.trunc(Number(s[i])));
  } else if (s instanceof BigInt64Array) {
    for (let i = 0; i < d.length; i++) d[i] = Number(s[i]);
  } else {
    d.set(s);
  }
}

/** A module whose forward maps one tensor to one tensor; what Sequential chains. */
export abstract class Layer extends Module {
  abstract forward(x: Tensor, ctx?: ForwardContext): Tensor;
}
