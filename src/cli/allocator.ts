/**
 * Process settings for the training commands and the bench, which must be given when a process starts, so those
 * commands re-run themselves with them:
 * - glibc's malloc gives large blocks back to the kernel when they are freed (mmap above M_MMAP_THRESHOLD,
 *   trimming above M_TRIM_THRESHOLD), so each new tensor of several MB is faulted in page by page on its first
 *   write: about 4 ms per MB on the bench machine, up to 0.5 s of a SparK step. MALLOC_TUNING makes it keep and
 *   reuse freed memory (PyTorch's reference runs in the bench get the same two). Linux only; SPARKTS_MALLOC=0
 *   leaves the environment as it is.
 * - V8 collects garbage on helper threads by default, which then compete with the kernels' worker threads for the
 *   cores: the main thread waits at each join for a worker that a GC thread pushed off its core. With
 *   `--single-threaded-gc` (NODE_TUNING) the collector runs on the main thread only. Measured in the ResNet-18
 *   step (2 threads, best of 5, four pairs of runs): 251–306 → 221–253 ms. SPARKTS_GC=0 leaves it off.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export const MALLOC_TUNING: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '1000000000',
  MALLOC_TRIM_THRESHOLD_: '1000000000',
};

/** Node flags of the tuned process. */
export const NODE_TUNING: readonly string[] = ['--single-threaded-gc'];

/** MALLOC_TUNING, where it is wanted (Linux, not turned off) and not yet set. */
function mallocWanted(): boolean {
  return process.platform === 'linux' && process.env.SPARKTS_MALLOC !== '0' &&
    Object.keys(MALLOC_TUNING).some((k) => process.env[k] === undefined);
}

/**
 * NODE_TUNING's flags this process lacks (none where turned off, and none on Windows, where the relaunched child,
 * detached, would get a console window of its own).
 */
function flagsWanted(): string[] {
  if (process.env.SPARKTS_GC === '0' || process.platform === 'win32') return [];
  return NODE_TUNING.filter((flag) => !process.execArgv.includes(flag));
}

/** Whether this process should re-run itself with MALLOC_TUNING or NODE_TUNING (see the header). */
export function wantsTunedRelaunch(): boolean {
  return mallocWanted() || flagsWanted().length > 0;
}

/**
 * Runs this same command again in a child process with MALLOC_TUNING and NODE_TUNING added and resolves to its
 * exit code (128 + the signal's number where a signal ended it), or null where it could not start (the caller
 * goes on itself).
 * The child gets a process group of its own, so a Ctrl-C reaches it once, forwarded from here: it stops at the
 * end of its step and saves, as it would have alone.
 */
export function relaunchTuned(): Promise<number | null> {
  const env = mallocWanted() ? { ...process.env, ...MALLOC_TUNING } : process.env;
  const child = spawn(process.execPath, [...flagsWanted(), ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env, detached: true,
  });
  const forward = (signal: NodeJS.Signals) => { child.kill(signal); };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  return new Promise((resolve) => {
    const done = (code: number | null) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code);
    };
    child.once('error', () => done(null));
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
}
