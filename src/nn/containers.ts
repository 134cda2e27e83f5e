/**
 * Containers: Sequential (chains layers, children named '0', '1', …), ModuleList (holds modules by index) and
 * ParameterList (holds parameters by index, e.g. SparK's mask_tokens.0 …).
 */
import type { Tensor } from '../tensor/tensor.ts';
import { Layer, Module, Parameter, type ForwardContext } from './module.ts';

export class ModuleList<M extends Module = Module> extends Module {
  [index: number]: M;
  length = 0;

  constructor(modules: readonly M[] = []) {
    super();
    modules.forEach((m) => this.push(m));
  }

  push(m: M): void {
    this[this.length++] = m;
  }

  *[Symbol.iterator](): Iterator<M> {
    for (let i = 0; i < this.length; i++) yield this[i];
  }

  map<T>(fn: (m: M, i: number) => T): T[] {
    return Array.from(this, fn);
  }
}

export class Sequential extends Layer {
  [index: number]: Layer;
  length = 0;

  constructor(layers: readonly Layer[] = []) {
    super();
    layers.forEach((l) => { this[this.length++] = l; });
  }

  *[Symbol.iterator](): Iterator<Layer> {
    for (let i = 0; i < this.length; i++) yield this[i];
  }

  forward(x: Tensor, ctx?: ForwardContext): Tensor {
    for (const layer of this) x = layer.forward(x, ctx);
    return x;
  }
}

export class ParameterList extends Module {
  [index: number]: Parameter;
  length = 0;

  constructor(params: readonly Parameter[] = []) {
    super();
    params.forEach((p) => { this[this.length++] = p; });
  }

  *[Symbol.iterator](): Iterator<Parameter> {
    for (let i = 0; i < this.length; i++) yield this[i];
  }
}
