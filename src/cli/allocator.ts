/**
 * glibc's malloc gives large blocks back to the kernel when they are freed (mmap above M_MMAP_THRESHOLD, trimming
 * above M_TRIM_THRESHOLD), so each new tensor of several MB is faulted in page by page on its first write: about
 * 4 ms per MB on the bench machine, up to 0.5 s of a SparK step. These two variables make it keep and reuse
 * freed memory (PyTorch's reference runs in the bench get the same two). glibc reads them when the process
 * starts, so the training commands re-run themselves with them set; SPARKTS_MALLOC=0 keeps the environment as it is.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:os';

export const MALLOC_TUNING: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '1000000000',
  MALLOC_TRIM_THRESHOLD_: '1000000000',
};

/** Whether this process should re-run itself with MALLOC_TUNING: on Linux (glibc), unless set or turned off. */
export function wantsMallocRelaunch(): boolean {
  return process.platform === 'linux' && process.env.SPARKTS_MALLOC !== '0' &&
    Object.keys(MALLOC_TUNING).some((k) => process.env[k] === undefined);
}

/**
 * Runs this same command again in a child process with MALLOC_TUNING added and resolves to its exit code (128 +
 * the signal's number where a signal ended it), or null where it could not start (the caller goes on itself).
 * The child gets a process group of its own, so a Ctrl-C reaches it once, forwarded from here: it stops at the
 * end of its step and saves, as it would have alone.
 */
export function relaunchWithMallocTuning(): Promise<number | null> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit', env: { ...process.env, ...MALLOC_TUNING }, detached: true,
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
