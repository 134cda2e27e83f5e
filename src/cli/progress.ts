/**
 * Progress for long runs: a one-line bar redrawn in place on a terminal (loss, lr, images/s, ETA), or one plain
 * line every `every` steps when the output is not a terminal (logs, CI).
 */

export interface ProgressFields { loss: number; lr: number; imagesPerSecond: number }

function duration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

export class Progress {
  private readonly tty: boolean;
  private readonly started = Date.now();
  private startStep = -1;

  constructor(private readonly total: number, private readonly out: NodeJS.WriteStream = process.stderr, private readonly every = 10) {
    this.tty = Boolean(out.isTTY);
  }

  update(step: number, epoch: number, f: ProgressFields): void {
    if (this.startStep < 0) this.startStep = step - 1;
    const done = step - this.startStep;
    const elapsed = (Date.now() - this.started) / 1000;
    const eta = (elapsed / Math.max(1, done)) * (this.total - step);
    const text = `epoch ${epoch} step ${step}/${this.total} loss ${f.loss.toFixed(4)} lr ${f.lr.toExponential(2)} ${f.imagesPerSecond.toFixed(1)} img/s ETA ${duration(eta)}`;
    if (this.tty) {
      const width = 24, filled = Math.round((width * step) / Math.max(1, this.total));
      this.out.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}\x1b[K`);
    } else if (step % this.every === 0 || step === this.total) {
      this.out.write(`${text}\n`);
    }
  }

  message(line: string): void {
    this.out.write(this.tty ? `\r\x1b[K${line}\n` : `${line}\n`);
  }

  end(): void {
    if (this.tty) this.out.write('\n');
  }
}
