/**
 * Optimizer: the base of SGD, AdamW and LAMB. It keeps PyTorch's shape of things: a list of parameter groups,
 * each with its own lr / weightDecay (which a schedule overwrites every iteration, spark-spec §8.2) and the
 * SparK scales lrScale / weightDecayScale (§8.3, §9); per-parameter state (moment buffers, step counts); and a
 * state dict whose parameters are numbered 0, 1, … over the groups in order.
 *
 * Updates happen in place on `p.data`, so parameters keep their identity (build the optimizer after any
 * `module.to(dtype)`, which replaces them). A parameter whose `grad` is null is skipped. Arithmetic is done in
 * JavaScript doubles and stored in the parameter's dtype: state buffers are allocated in that dtype, so a float32
 * model keeps float32 state, as PyTorch does.
 *
 * The state dict is `{ meta, tensors }`: `tensors` holds every state buffer under `state.<i>.<name>` (ready for
 * io.saveSafetensors), `meta` everything else as plain JSON (hyperparameters, step counts); `packStateDict` /
 * `unpackStateDict` turn it into a safetensors tensor map plus one JSON string and back.
 * Left out: closures, sparse gradients, `maximize`, AMSGrad, adding groups after a state dict was loaded.
 */
import { backend } from '../backend/registry.ts';
import { Tensor } from '../tensor/tensor.ts';
import { allocateFloat, isFloat, type FloatArray, type FloatDType } from '../tensor/dtype.ts';
import { shapeStr, sameShape } from '../tensor/shape.ts';
import { clearGrads } from '../autograd/backward.ts';

/** What a user (or noDecayGroups / layerDecayGroups) hands the optimizer; missing fields come from its defaults. */
export type ParamGroupSpec<H = object> = {
  params: readonly Tensor[];
  /** a label for logs and state dicts ('decay', 'layer3_no_decay', …) */
  name?: string;
  /** the parameters' names, same order as params; kept for logs and checked on load when both sides have them */
  paramNames?: readonly string[];
  lr?: number;
  weightDecay?: number;
  /** the schedule sets lr = scheduleLr · lrScale (default 1) */
  lrScale?: number;
  /** the schedule sets weightDecay = scheduleWd · weightDecayScale (default 1; 0 for the no-decay group) */
  weightDecayScale?: number;
} & Partial<H>;

/** A live parameter group: every field filled in; lr and weightDecay may be set freely between steps. */
export type ParamGroup<H = object> = {
  params: Tensor[];
  name: string;
  paramNames?: string[];
  lr: number;
  weightDecay: number;
  lrScale: number;
  weightDecayScale: number;
} & H;

export type JsonValue = number | string | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The JSON half of a state dict. Non-finite numbers are written as the strings 'Infinity', '-Infinity', 'NaN'. */
export interface OptimizerMeta {
  format: 'sparkts-optimizer/1';
  /** 'SGD' | 'AdamW' | 'LAMB' */
  type: string;
  /** each group's hyperparameters, with `params` = the indices of its parameters */
  paramGroups: { [key: string]: JsonValue; params: number[] }[];
  /** scalar per-parameter state by parameter index (e.g. AdamW's step) */
  state: { [index: string]: { [key: string]: JsonValue } };
  /** optimizer-wide values (LAMB: groupSteps, globalGradNorm, maxGradNorm) */
  extra: { [key: string]: JsonValue };
}

export interface OptimizerStateDict {
  meta: OptimizerMeta;
  /** `state.<i>.<buffer>` → a copy of that buffer, shaped like parameter i */
  tensors: Record<string, Tensor>;
}

export class OptimizerStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OptimizerStateError';
  }
}

/** Per-parameter state: a step count (AdamW) and named buffers in the parameter's dtype. */
export interface ParamState {
  step: number;
  buffers: Map<string, FloatArray>;
}

export abstract class Optimizer<H extends object> {
  readonly paramGroups: ParamGroup<H>[] = [];
  protected readonly state = new Map<Tensor, ParamState>();
  private readonly defaults: { lr: number; weightDecay: number } & H;
  abstract readonly type: string;

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<H>[], defaults: { lr: number; weightDecay: number } & H) {
    this.defaults = defaults;
    if (params.length === 0) throw new Error('optimizer got an empty parameter list');
    const specs: readonly ParamGroupSpec<H>[] = params[0] instanceof Tensor
      ? [{ params: params as readonly Tensor[] } as ParamGroupSpec<H>]
      : (params as readonly ParamGroupSpec<H>[]);
    for (const spec of specs) this.addParamGroup(spec);
  }

  /** Add a group; its missing hyperparameters come from the constructor's defaults. */
  addParamGroup(spec: ParamGroupSpec<H>): void {
    if (!spec || !Array.isArray(spec.params)) throw new Error('addParamGroup: a group needs a params array (mixing bare tensors and groups is not allowed)');
    const seen = new Set<Tensor>();
    for (const g of this.paramGroups) for (const p of g.params) seen.add(p);
    for (const p of spec.params) {
      if (!(p instanceof Tensor)) throw new Error('addParamGroup: params must be tensors');
      if (!isFloat(p.dtype)) throw new Error(`addParamGroup: only float parameters can be optimized, not ${p.dtype}`);
      if (seen.has(p)) throw new Error('addParamGroup: a parameter appears in more than one group (or twice in one)');
      seen.add(p);
    }
    if (spec.paramNames && spec.paramNames.length !== spec.params.length) {
      throw new Error(`addParamGroup: ${spec.paramNames.length} paramNames for ${spec.params.length} params`);
    }
    const group = {
      ...this.defaults,
      ...spec,
      params: [...spec.params],
      name: spec.name ?? `group${this.paramGroups.length}`,
      lrScale: spec.lrScale ?? 1,
      weightDecayScale: spec.weightDecayScale ?? 1,
    } as ParamGroup<H>;
    if (spec.paramNames) group.paramNames = [...spec.paramNames];
    else delete group.paramNames;
    this.validateGroup(group);
    this.paramGroups.push(group);
  }

  /** Check a group's hyperparameters; subclasses add their own checks. */
  protected validateGroup(group: ParamGroup<H>): void {
    if (!(group.lr >= 0)) throw new Error(`invalid learning rate ${group.lr}`);
    if (!(group.weightDecay >= 0)) throw new Error(`invalid weight decay ${group.weightDecay}`);
  }

  abstract step(): void;

  /** Clears every parameter's grad: set to null, or with { setToNone: false } zeroed in place (see clearGrads). */
  zeroGrad(options: { setToNone?: boolean } = {}): void {
    clearGrads(this.paramGroups.flatMap((g) => g.params), options.setToNone ?? true);
  }

  /** The state of p, created empty on first use. */
  protected stateOf(p: Tensor): ParamState {
    let s = this.state.get(p);
    if (!s) {
      s = { step: 0, buffers: new Map() };
      this.state.set(p, s);
    }
    return s;
  }

  /** A state buffer of p, created as zeros in p's dtype (float32 ones in the backend's resident memory, if any). */
  protected buffer(s: ParamState, p: Tensor, name: string): FloatArray {
    let b = s.buffers.get(name);
    if (!b) {
      b = (p.dtype === 'float32' ? backend().resident?.zeros(p.size) : null) ?? allocateFloat(p.dtype as FloatDType, p.size);
      s.buffers.set(name, b);
    }
    return b;
  }

  /** p's gradient storage, or null when p has none; checks the size. */
  protected gradOf(p: Tensor): FloatArray | null {
    const g = p.grad;
    if (!g) return null;
    if (g.size !== p.size) throw new Error(`optimizer: grad of shape ${shapeStr(g.shape)} for a parameter of shape ${shapeStr(p.shape)}`);
    if (!isFloat(g.dtype)) throw new Error(`optimizer: grad has dtype ${g.dtype}`);
    return g.data as FloatArray;
  }

  /** Whether a per-parameter step count belongs in the state dict (AdamW: yes; SGD: no). */
  protected readonly keepsParamStep: boolean = false;
  /** Optimizer-wide values for the state dict. */
  protected extraState(): { [key: string]: JsonValue } {
    return {};
  }
  protected loadExtraState(_extra: { [key: string]: JsonValue }): void {}

  /** A snapshot: copies of every buffer plus JSON metadata (see OptimizerStateDict). */
  /** Bring state kept on a device back into the host buffers (before a snapshot); subclasses with device state. */
  protected syncStateToHost(): void {}
  /** Forget state kept on a device (after a load: the host buffers are the truth again). */
  protected dropDeviceState(): void {}

  stateDict(): OptimizerStateDict {
    this.syncStateToHost();
    const tensors: Record<string, Tensor> = {};
    const state: OptimizerMeta['state'] = {};
    const paramGroups: OptimizerMeta['paramGroups'] = [];
    let index = 0;
    for (const group of this.paramGroups) {
      const indices: number[] = [];
      for (const p of group.params) {
        const s = this.state.get(p);
        if (s) {
          if (this.keepsParamStep) state[String(index)] = { step: s.step };
          for (const [name, buf] of s.buffers) tensors[`state.${index}.${name}`] = new Tensor(buf.slice(), p.shape, p.dtype);
        }
        indices.push(index++);
      }
      const entry: OptimizerMeta['paramGroups'][number] = { params: indices };
      for (const [k, v] of Object.entries(group)) {
        if (k === 'params') continue;
        entry[k] = toJson(v, `paramGroups.${k}`);
      }
      paramGroups.push(entry);
    }
    return { meta: { format: 'sparkts-optimizer/1', type: this.type, paramGroups, state, extra: this.extraState() }, tensors };
  }

  /**
   * Restore a snapshot into this optimizer, whose groups must have the same sizes (the parameters themselves
   * are this optimizer's: they are matched by position, as in PyTorch). Group hyperparameters and all state
   * are replaced; buffers are copied (converted to each parameter's dtype). All problems are reported at once.
   */
  loadStateDict(sd: OptimizerStateDict): void {
    const { meta, tensors } = sd;
    const problems: string[] = [];
    if (meta.format !== 'sparkts-optimizer/1') problems.push(`unknown format ${JSON.stringify(meta.format)}`);
    if (meta.type !== this.type) problems.push(`state dict is for ${meta.type}, this optimizer is ${this.type}`);
    if (meta.paramGroups.length !== this.paramGroups.length) {
      problems.push(`state dict has ${meta.paramGroups.length} parameter groups, this optimizer ${this.paramGroups.length}`);
    }
    const params: Tensor[] = this.paramGroups.flatMap((g) => g.params);
    this.paramGroups.forEach((group, gi) => {
      const saved = meta.paramGroups[gi];
      if (!saved) return;
      if (saved.params.length !== group.params.length) {
        problems.push(`group ${gi} (${group.name}): state dict has ${saved.params.length} parameters, this optimizer ${group.params.length}`);
      }
      const names = saved.paramNames;
      if (Array.isArray(names) && group.paramNames && names.join('\n') !== group.paramNames.join('\n')) {
        problems.push(`group ${gi} (${group.name}): parameter names differ from the state dict's`);
      }
    });
    const byIndex = new Map<number, Map<string, Tensor>>();
    for (const [key, t] of Object.entries(tensors)) {
      const m = /^state\.(\d+)\.(.+)$/.exec(key);
      if (!m) { problems.push(`unexpected tensor key ${key}`); continue; }
      const i = Number(m[1]);
      const p = params[i];
      if (!p) { problems.push(`${key}: no parameter ${i}`); continue; }
      if (!sameShape(p.shape, t.shape)) { problems.push(`${key}: shape ${shapeStr(t.shape)}, parameter ${shapeStr(p.shape)}`); continue; }
      if (!isFloat(t.dtype)) { problems.push(`${key}: dtype ${t.dtype}`); continue; }
      if (!byIndex.has(i)) byIndex.set(i, new Map());
      byIndex.get(i)!.set(m[2], t);
    }
    for (const i of Object.keys(meta.state)) if (!params[Number(i)]) problems.push(`state.${i}: no such parameter`);
    if (problems.length) throw new OptimizerStateError(`loadStateDict (${this.type}): ${problems.join('; ')}`);
    this.dropDeviceState();

    this.paramGroups.forEach((group, gi) => {
      const saved = meta.paramGroups[gi];
      const slots = group as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(saved)) {
        if (k === 'params') continue;
        if (k === 'paramNames') { if (Array.isArray(v)) slots[k] = v.map(String); continue; }
        slots[k] = fromJson(v, slots[k]);
      }
      this.validateGroup(group);
    });
    this.state.clear();
    params.forEach((p, i) => {
      const bufs = byIndex.get(i);
      const scalars = meta.state[String(i)];
      if (!bufs && !scalars) return;
      const s = this.stateOf(p);
      if (scalars && typeof scalars.step === 'number') s.step = scalars.step;
      for (const [name, t] of bufs ?? []) this.buffer(s, p, name).set(t.data as FloatArray);
    });
    this.loadExtraState(meta.extra ?? {});
  }
}

/** Numbers stay numbers unless non-finite (JSON has no Infinity/NaN): those become strings. */
function toJson(v: unknown, where: string): JsonValue {
  if (typeof v === 'number') return Number.isFinite(v) ? v : String(v);
  if (typeof v === 'string' || typeof v === 'boolean' || v === null) return v;
  if (Array.isArray(v)) return v.map((x) => toJson(x, where));
  throw new Error(`stateDict: ${where} is not JSON-able`);
}

/** Undo toJson, guided by the current value's type (a string where a number lives is a non-finite number). */
function fromJson(v: JsonValue, current: unknown): unknown {
  if (typeof current === 'number' && typeof v === 'string') return Number(v);
  if (Array.isArray(v)) return v.map((x, i) => fromJson(x, Array.isArray(current) ? current[i] : undefined));
  return v;
}

/** A number saved by toJson. */
export function jsonNumber(v: JsonValue | undefined, fallback: number): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  return fallback;
}

/**
 * For safetensors: the buffers under `<prefix>state.<i>.<name>` and the metadata as one JSON string
 * (store it under a metadata key of your choice, e.g. io.saveSafetensors(path, tensors, { optimizer: metadata })).
 */
export function packStateDict(sd: OptimizerStateDict, prefix = ''): { tensors: Record<string, Tensor>; metadata: string } {
  const tensors: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(sd.tensors)) tensors[prefix + k] = t;
  return { tensors, metadata: JSON.stringify(sd.meta) };
}

/** The inverse of packStateDict; tensors whose keys lack the prefix are ignored (a file may hold a model too). */
export function unpackStateDict(tensors: Record<string, Tensor>, metadata: string, prefix = ''): OptimizerStateDict {
  let meta: OptimizerMeta;
  try {
    meta = JSON.parse(metadata) as OptimizerMeta;
  } catch (e) {
    throw new OptimizerStateError(`unpackStateDict: metadata is not JSON (${(e as Error).message})`);
  }
  if (!meta || meta.format !== 'sparkts-optimizer/1' || !Array.isArray(meta.paramGroups)) {
    throw new OptimizerStateError('unpackStateDict: metadata is not a sparkts optimizer state');
  }
  const own: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(tensors)) {
    if (k.startsWith(prefix + 'state.')) own[k.slice(prefix.length)] = t;
  }
  return { meta, tensors: own };
}

const identity = (x: number): number => x;
/** Rounding to a dtype: Math.fround for float32, nothing for float64 (to mirror PyTorch's float32 temporaries). */
export function rounder(dtype: string): (x: number) => number {
  return dtype === 'float32' ? Math.fround : identity;
}

/** Common checks for Adam-style betas and eps. */
export function checkAdamHyper(betas: readonly [number, number], eps: number): void {
  if (!(betas[0] >= 0 && betas[0] < 1)) throw new Error(`invalid beta1 ${betas[0]}`);
  if (!(betas[1] >= 0 && betas[1] < 1)) throw new Error(`invalid beta2 ${betas[1]}`);
  if (!(eps >= 0)) throw new Error(`invalid eps ${eps}`);
}
