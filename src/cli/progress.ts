import type { RunProgress } from '../run.js';

/**
 * A one-line progress bar for a pieced run on a terminal, redrawn in place:
 * `[########------------]  5/12 pieces  1,204,311 of 2,890,000 files  0:42 left`. The time left
 * comes from the rate of the pieces this process finished (a resumed run's earlier pieces do not
 * count toward the rate).
 */
export class ProgressBar {
  private first: { at: number; filesDone: number } | undefined;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly now: () => number = Date.now,
    private readonly width = 24,
  ) {}

  update(progress: RunProgress): void {
    const at = this.now();
    this.first ??= { at, filesDone: progress.filesDone };
    this.stream.write(`\r${this.line(progress, at)}\x1b[K`);
    this.drawn = true;
  }

  /** Ends the bar's line, so that what follows starts on a line of its own. */
  done(): void {
    if (this.drawn) this.stream.write('\n');
    this.drawn = false;
  }

  line(progress: RunProgress, at: number): string {
    const { pieces, piecesDone, files, filesDone } = progress;
    const filled = pieces === 0 ? this.width : Math.round((piecesDone / pieces) * this.width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(this.width - filled)}]`;
    const count = (n: number) => n.toLocaleString('en-US');
    const digits = String(pieces).length;
    return `${bar} ${String(piecesDone).padStart(digits)}/${pieces} pieces  ${count(filesDone)} of ${count(files)} files  ${this.left(progress, at)}`;
  }

  private left(progress: RunProgress, at: number): string {
    if (progress.piecesDone >= progress.pieces) return 'done';
    const since = this.first;
    const rate = since && at > since.at ? (progress.filesDone - since.filesDone) / (at - since.at) : 0;
    if (rate <= 0) return '--:-- left';
    const seconds = Math.ceil((progress.files - progress.filesDone) / rate / 1000);
    const hours = Math.floor(seconds / 3600);
    const minutes = Math.floor((seconds % 3600) / 60);
    const rest = String(seconds % 60).padStart(2, '0');
    return hours > 0 ? `${hours}:${String(minutes).padStart(2, '0')}:${rest} left` : `${minutes}:${rest} left`;
  }
}
