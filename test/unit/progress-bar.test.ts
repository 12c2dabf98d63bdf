import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProgressBar } from '../../src/cli/progress.js';

const progress = (piecesDone: number, filesDone: number) => ({ jobId: 1, runId: 1, pieces: 10, piecesDone, files: 1_000_000, filesDone, resumed: false });

describe('the progress bar of orca-reconcile run', () => {
  it('shows pieces, files and the time left from the rate of this process, then done', () => {
    let now = 0;
    let written = '';
    const stream = new Writable({ write: (chunk: Buffer, _encoding, callback) => ((written += chunk.toString()), callback()) });
    const bar = new ProgressBar(stream, () => now, 10);

    // A resumed run: 200,000 files were done before; the rate counts only what this process did.
    bar.update(progress(2, 200_000));
    now = 10_000;
    bar.update(progress(3, 300_000));
    now = 70_000;
    bar.update(progress(9, 900_000));
    bar.update(progress(10, 1_000_000));
    bar.done();

    expect(written.split('\r').filter(Boolean)).toEqual([
      '[##--------]  2/10 pieces  200,000 of 1,000,000 files  --:-- left\x1b[K',
      // 100,000 files in 10 s: 700,000 left is 70 s.
      '[###-------]  3/10 pieces  300,000 of 1,000,000 files  1:10 left\x1b[K',
      '[#########-]  9/10 pieces  900,000 of 1,000,000 files  0:10 left\x1b[K',
      '[##########] 10/10 pieces  1,000,000 of 1,000,000 files  done\x1b[K\n',
    ]);
  });

  it('writes nothing on done() when it never drew', () => {
    let written = '';
    const stream = new Writable({ write: (chunk: Buffer, _encoding, callback) => ((written += chunk.toString()), callback()) });
    new ProgressBar(stream).done();
    expect(written).toBe('');
  });
});
