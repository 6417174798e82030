/**
 * A small pool of worker threads that decode and augment samples off the main thread, so that a synchronous
 * training step (tfjs on WASM or CPU runs on the main thread) and batch preparation really run at the same time.
 * Used by DetectionLoader when `workers > 0`; the results are bit-identical to the in-thread path (same code, same
 * per-sample seeds).
 */
import { Worker } from 'node:worker_threads';
import type { DetectionLoaderOptions } from './loader.js';
import type { PreparedSample } from './sample.js';
import type { DetectionTarget } from './types.js';

export interface SampleJob {
  imagePath: string;
  target: DetectionTarget;
  options: Pick<DetectionLoaderOptions, 'width' | 'height' | 'resize' | 'augment' | 'normalise'>;
  /** Seed of the sample's Rng, or null for no augmentation. */
  seed: number | null;
}

export interface SampleResult extends PreparedSample {
  pixels: Float32Array;
  /** Size of the decoded source image. */
  width: number;
  height: number;
}

export type SampleReply = ({ id: number; error?: undefined } & SampleResult) | { id: number; error: string };

interface Slot {
  worker: Worker;
  /** Jobs posted to this worker and not answered yet. */
  pending: number;
}

interface Waiting {
  id: number;
  job: SampleJob;
  resolve: (r: SampleResult) => void;
  reject: (e: Error) => void;
}

export class SampleWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly inFlight = new Map<number, Waiting>();
  private nextId = 0;
  private closed = false;
  /** Set when a worker failed: the pool is unusable from then on (its jobs would never be answered). */
  private broken: Error | null = null;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`SampleWorkerPool: size must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./sample-worker.js', import.meta.url));
      const slot: Slot = { worker, pending: 0 };
      worker.unref(); // an idle pool never keeps the process alive; a busy worker is ref'd (see run)
      worker.on('message', (reply: SampleReply) => this.onReply(slot, reply));
      worker.on('error', (err) => {
        this.broken ??= err;
        this.failAll(err);
      });
      worker.on('exit', (code) => {
        if (this.closed) return;
        this.broken ??= new Error(`SampleWorkerPool: a worker exited unexpectedly (code ${code})`);
        this.failAll(this.broken);
      });
      this.slots.push(slot);
    }
  }

  run(job: SampleJob): Promise<SampleResult> {
    if (this.closed) return Promise.reject(new Error('SampleWorkerPool: closed'));
    if (this.broken) return Promise.reject(this.broken);
    return new Promise((resolve, reject) => {
      // Posted at once to the least loaded worker: its own message queue holds the backlog, so it keeps working
      // while the main thread is blocked in a training step (dispatching on replies would idle it until then).
      const slot = this.slots.reduce((a, b) => (b.pending < a.pending ? b : a));
      const w: Waiting = { id: this.nextId++, job, resolve, reject };
      slot.pending++;
      slot.worker.ref(); // busy workers keep the process alive; idle ones do not
      this.inFlight.set(w.id, w);
      slot.worker.postMessage({ id: w.id, job });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.failAll(new Error('SampleWorkerPool: closed'));
    // A timer keeps the process alive until the workers have exited: an unref'd worker's terminate() alone does not
    // (observed on Node 20 when a reply was still queued), and the process would end before close() resolves.
    const keepAlive = setInterval(() => {}, 1000);
    try {
      await Promise.all(this.slots.map((s) => s.worker.terminate()));
    } finally {
      clearInterval(keepAlive);
    }
  }

  private onReply(slot: Slot, reply: SampleReply): void {
    const w = this.inFlight.get(reply.id);
    if (!w) return; // failed already (close or worker error)
    this.inFlight.delete(reply.id);
    if (--slot.pending === 0) slot.worker.unref();
    if (reply.error !== undefined) w.reject(new Error(reply.error));
    else w.resolve({ pixels: reply.pixels, target: reply.target, affine: reply.affine, dropped: reply.dropped, width: reply.width, height: reply.height });
  }

  private failAll(err: Error): void {
    for (const w of this.inFlight.values()) w.reject(err);
    this.inFlight.clear();
    for (const s of this.slots) {
      s.pending = 0;
      s.worker.unref();
    }
  }
}
