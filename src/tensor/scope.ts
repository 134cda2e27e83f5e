/**
 * tidy(fn): device memory scopes. gpu.js textures are not garbage-collected promptly (a texture's JS handle
 * is tiny, so the collector sees no pressure), so a training step runs inside `tidy`: every tensor *created*
 * on a device inside it is disposed at the end unless it is part of what fn returns. Tensors that already
 * existed (parameters, buffers) keep the device copies they adopt. Scopes nest; a kept tensor passes to the
 * enclosing scope. This stack is module-level state, like grad mode: it is only ever touched by tidy.
 */
import type { Tensor } from './tensor.ts';

const scopes: Set<Tensor>[] = [];

/** Called by Tensor when it is created over a device copy. */
export function trackDeviceTensor(t: Tensor): void {
  if (scopes.length > 0) scopes[scopes.length - 1].add(t);
}

/** Every tensor reachable from a returned value (tensors, arrays, plain objects). */
function reachable(value: unknown, found: Set<unknown>, isTensor: (v: unknown) => v is Tensor, seen = new Set<unknown>()): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    found.add(value);
    return;
  }
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const v of items) reachable(v, found, isTensor, seen);
}

/** Run fn; dispose the device tensors it created, except those in its result. */
export function tidy<T>(fn: () => T): T {
  const mine = new Set<Tensor>();
  scopes.push(mine);
  let result: T;
  try {
    result = fn();
  } finally {
    scopes.pop();
  }
  const keep = new Set<unknown>();
  reachable(result, keep, (v): v is Tensor => mine.has(v as Tensor) || (typeof v === 'object' && v !== null && 'deviceCopy' in v && 'shape' in v));
  for (const t of mine) {
    if (keep.has(t)) trackDeviceTensor(t);
    else t.dispose();
  }
  return result;
}
