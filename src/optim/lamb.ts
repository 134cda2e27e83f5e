/**
 * LAMB exactly as spark-spec §8.4: timm 0.5.4 `timm/optim/lamb.py` (SparK's `TheSameAsTimmLAMB`), plus the
 * recorded global gradient norm. One step:
 *   1. g = sqrt(Σ over all parameters with a grad of Σ grad²)  (recorded as `globalGradNorm`); when g > maxGradNorm
 *      every grad is divided by g / maxGradNorm, **in place** (as timm's `p.grad.div_`).
 *   2. per group: step += 1 (the step counter is per group, and counts every step() call);
 *      bc1 = 1 − β1^step, bc2 = 1 − β2^step (both 1 when biasCorrection is off).
 *   3. per parameter with a grad:
 *        m ← β1·m + β3·g  (β3 = 1 − β1 with gradAveraging, else 1);   v ← β2·v + (1 − β2)·g²
 *        u = (m / bc1) / (sqrt(v) / sqrt(bc2) + eps)
 *        if wd ≠ 0: u += wd·p
 *        if wd ≠ 0 or alwaysAdapt: u *= trust ratio ‖p‖/‖u‖ (1 when either norm is 0; min(·, 1) with trustClip)
 *        p ← p − lr·u
 *      so the no-decay group (wd 0) takes a plain Adam step unless alwaysAdapt is set.
 * SparK pretraining: betas (0.9, 0.95 ResNet / 0.999 ConvNeXt), eps 1e-6, maxGradNorm 5, the rest default.
 * SparK ResNet fine-tuning: maxGradNorm 1e7, alwaysAdapt true, biasCorrection false (spark-spec §9).
 * Defaults: lr 1e-3, weightDecay 0.01, betas (0.9, 0.999), eps 1e-6, maxGradNorm **5** (SparK's pretraining value;
 * timm's own default is 1.0); pass Infinity to disable clipping.
 * The norms are accumulated in doubles for every dtype (timm accumulates the global norm in a float32 tensor).
 */
import { Tensor, type DeviceData } from '../tensor/tensor.ts';
import { backend } from '../backend/registry.ts';
import type { DeviceKernels } from '../backend/device.ts';
import { noGrad } from '../autograd/mode.ts';
import { add, mul } from '../ops/elementwise.ts';
import { sum } from '../ops/reduce.ts';
import { allocateFloat, type FloatArray, type FloatDType } from '../tensor/dtype.ts';
import { lambUpdate } from '../../kernels/cpu/lamb.ts';
import { Optimizer, checkAdamHyper, jsonNumber, rounder, type JsonValue, type ParamGroup, type ParamGroupSpec } from './optimizer.ts';

export interface LAMBHyper {
  betas: readonly [number, number];
  eps: number;
  biasCorrection: boolean;
  gradAveraging: boolean;
  trustClip: boolean;
  alwaysAdapt: boolean;
}

export interface LAMBOptions extends Partial<LAMBHyper> {
  lr?: number;
  weightDecay?: number;
  /** global gradient-norm clip threshold (optimizer-wide, as timm's `defaults['max_grad_norm']`) */
  maxGradNorm?: number;
}

export class LAMB extends Optimizer<LAMBHyper> {
  readonly type = 'LAMB';
  maxGradNorm: number;
  /** The global gradient norm of the last step, before clipping (SparK logs it as `orig_norm`). */
  globalGradNorm = 0;
  /** Per group: the number of step() calls so far (timm's group['step']). */
  groupSteps: number[] = [];
  private scratch: Record<FloatDType, FloatArray> = { float32: new Float32Array(0), float64: new Float64Array(0) };
  /** On a device backend, exp_avg and exp_avg_sq live there (the host buffers are refreshed for stateDict). */
  private onDevice = new Map<Tensor, { m: DeviceData; v: DeviceData }>();

  constructor(params: readonly Tensor[] | readonly ParamGroupSpec<LAMBHyper>[], options: LAMBOptions = {}) {
    super(params, {
      lr: options.lr ?? 1e-3,
      weightDecay: options.weightDecay ?? 0.01,
      betas: options.betas ?? [0.9, 0.999],
      eps: options.eps ?? 1e-6,
      biasCorrection: options.biasCorrection ?? true,
      gradAveraging: options.gradAveraging ?? true,
      trustClip: options.trustClip ?? false,
      alwaysAdapt: options.alwaysAdapt ?? false,
    });
    this.maxGradNorm = options.maxGradNorm ?? 5;
    if (!(this.maxGradNorm > 0)) throw new Error(`LAMB: invalid maxGradNorm ${this.maxGradNorm}`);
  }

  protected override validateGroup(group: ParamGroup<LAMBHyper>): void {
    super.validateGroup(group);
    checkAdamHyper(group.betas, group.eps);
  }

  private scratchFor(dtype: FloatDType, n: number): FloatArray {
    if (this.scratch[dtype].length < n) this.scratch[dtype] = allocateFloat(dtype, n);
    return this.scratch[dtype];
  }

  step(): void {
    const device = backend().device;
    const all = this.paramGroups.flatMap((g) => g.params);
    if (device && all.every((p) => p.dtype === 'float32' && (!p.grad || p.grad.dtype === 'float32'))) {
      this.stepOnDevice(device);
      return;
    }
    // state left on a device by earlier steps comes home first
    if (this.onDevice.size > 0) {
      this.syncStateToHost();
      this.dropDeviceState();
    }
    // 1. global grad norm and clipping factor (timm: clip = g / max when g > max, else 1; grads divided by it)
    let sq = 0;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = this.gradOf(p);
        if (g) sq += sumSquares(g);
      }
    }
    const norm = Math.sqrt(sq);
    this.globalGradNorm = norm;
    const clip = norm > this.maxGradNorm ? norm / this.maxGradNorm : 1;

    const update = backend().lambUpdate ?? lambUpdate;
    this.paramGroups.forEach((group, gi) => {
      const { lr, weightDecay: wd, eps, biasCorrection, gradAveraging, trustClip, alwaysAdapt } = group;
      const [beta1, beta2] = group.betas;
      const beta3 = gradAveraging ? 1 - beta1 : 1;
      const step = (this.groupSteps[gi] ?? 0) + 1;
      this.groupSteps[gi] = step;
      const bc1 = biasCorrection ? 1 - beta1 ** step : 1;
      const bc2Sqrt = Math.sqrt(biasCorrection ? 1 - beta2 ** step : 1);

      for (const p of group.params) {
        const g = this.gradOf(p);
        if (!g) continue;
        const w = p.data as Float32Array | Float64Array;
        const n = w.length;
        const r = rounder(p.dtype);
        const s = this.stateOf(p);
        const m = this.buffer(s, p, 'exp_avg');
        const v = this.buffer(s, p, 'exp_avg_sq');
        const u = this.scratchFor(p.dtype as FloatDType, n);
        const trustRatio = (wNorm2: number, uNorm2: number) => {
          if (wd === 0 && !alwaysAdapt) return 1;
          const wNorm = Math.sqrt(wNorm2), uNorm = Math.sqrt(uNorm2);
          let ratio = wNorm > 0 && uNorm > 0 ? r(wNorm) / r(uNorm) : 1;
          if (trustClip) ratio = Math.min(ratio, 1);
          return r(ratio);
        };
        update(w, g, m, v, u, { clip, beta1, beta2, beta3, bc1, bc2Sqrt, eps, wd, lr }, trustRatio, r);
      }
    });
  }

  /** The same step with every tensor on the device: one scalar (the global norm) comes back to the host. */
  private stepOnDevice(device: DeviceKernels): void {
    const withGrad = this.paramGroups.flatMap((g) => g.params).filter((p) => p.grad);
    // 1. ‖g‖ over all parameters, summed on the device
    const norm = noGrad(() => {
      let acc: Tensor | null = null;
      for (const p of withGrad) {
        if (p.grad!.size !== p.size) throw new Error(`optimizer: grad of shape ${p.grad!.shape} for a parameter of shape ${p.shape}`);
        const sq = sum(mul(p.grad!, p.grad!));
        const next: Tensor = acc ? add(acc, sq) : sq;
        if (acc) { acc.dispose(); sq.dispose(); }
        acc = next;
      }
      const total = acc ? acc.item() : 0;
      acc?.dispose();
      return Math.sqrt(total);
    });
    this.globalGradNorm = norm;
    const clip = norm > this.maxGradNorm ? norm / this.maxGradNorm : 1;

    this.paramGroups.forEach((group, gi) => {
      const { lr, weightDecay, eps, biasCorrection, gradAveraging, trustClip, alwaysAdapt } = group;
      const [beta1, beta2] = group.betas;
      const step = (this.groupSteps[gi] ?? 0) + 1;
      this.groupSteps[gi] = step;
      for (const p of group.params) {
        if (!p.grad) continue;
        let st = this.onDevice.get(p);
        if (!st) {
          const s = this.stateOf(p);
          st = { m: device.upload(this.buffer(s, p, 'exp_avg') as Float32Array), v: device.upload(this.buffer(s, p, 'exp_avg_sq') as Float32Array) };
          this.onDevice.set(p, st);
        }
        const g = p.grad.deviceCopy ?? (p.grad.data as Float32Array);
        const w = p.deviceCopy ?? (p.data as Float32Array);
        const next = device.lambStep(w, g, st.m, st.v, p.size, {
          lr, beta1, beta2, beta3: gradAveraging ? 1 - beta1 : 1, eps, weightDecay,
          bc1: biasCorrection ? 1 - beta1 ** step : 1, bc2Sqrt: Math.sqrt(biasCorrection ? 1 - beta2 ** step : 1),
          gradScale: 1 / clip, adapt: weightDecay !== 0 || alwaysAdapt, trustClip,
        });
        st.m.dispose();
        st.v.dispose();
        this.onDevice.set(p, { m: next.m, v: next.v });
        p.adoptDevice(next.w);
        // timm divides the grads in place when clipping
        if (clip !== 1) p.grad = noGrad(() => mul(p.grad!, 1 / clip));
      }
    });
  }

  protected override syncStateToHost(): void {
    for (const [p, { m, v }] of this.onDevice) {
      const s = this.stateOf(p);
      (this.buffer(s, p, 'exp_avg') as Float32Array).set(m.read());
      (this.buffer(s, p, 'exp_avg_sq') as Float32Array).set(v.read());
    }
  }

  protected override dropDeviceState(): void {
    for (const { m, v } of this.onDevice.values()) { m.dispose(); v.dispose(); }
    this.onDevice.clear();
  }

  protected override extraState(): { [key: string]: JsonValue } {
    return {
      groupSteps: this.paramGroups.map((_, i) => this.groupSteps[i] ?? 0),
      globalGradNorm: Number.isFinite(this.globalGradNorm) ? this.globalGradNorm : String(this.globalGradNorm),
      maxGradNorm: Number.isFinite(this.maxGradNorm) ? this.maxGradNorm : String(this.maxGradNorm),
    };
  }

  protected override loadExtraState(extra: { [key: string]: JsonValue }): void {
    const steps = Array.isArray(extra.groupSteps) ? extra.groupSteps : [];
    this.groupSteps = this.paramGroups.map((_, i) => jsonNumber(steps[i], 0));
    this.globalGradNorm = jsonNumber(extra.globalGradNorm, 0);
    this.maxGradNorm = jsonNumber(extra.maxGradNorm, this.maxGradNorm);
  }
}

/**
 * Σ a², in doubles (a top-level loop: inside the step's closures V8 kept such loops slow), over four running sums
 * so that the additions do not wait on each other: 0.88 → 0.38 ns per float32 element measured alone.
 */
function sumSquares(a: FloatArray): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const n = a.length, n4 = n - (n % 4);
  for (let i = 0; i < n4; i += 4) {
    const a0 = a[i], a1 = a[i + 1], a2 = a[i + 2], a3 = a[i + 3];
    s0 += a0 * a0;
    s1 += a1 * a1;
    s2 += a2 * a2;
    s3 += a3 * a3;
  }
  for (let i = n4; i < n; i++) s0 += a[i] * a[i];
  return (s0 + s1) + (s2 + s3);
}
