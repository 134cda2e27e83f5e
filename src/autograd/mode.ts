/**
 * Grad mode: whether ops record themselves on the tape. Like torch.no_grad, it is process-wide state,
 * scoped by `noGrad(fn)` and restored even when fn throws.
 */
let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run fn without recording anything for autograd. */
export function noGrad<T>(fn: () => T): T {
  const previous = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}
