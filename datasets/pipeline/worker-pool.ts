/**
 * A small pool of worker threads that decode and augment samples off the main thread, so that a synchronous
 * training step (tfjs on WASM or CPU runs on the main thread) and batch preparation really run at the same time.
 * Used by DetectionLoader when `workers > 0`; the results are bit-identical to the in-thread path (same code, same
 * per-sample seeds).
 */
import { Worker } from 'node:worker_threads';
import type { DetectionLoaderOptions } from './loader.js';
import type { Affine, DetectionTarget } from './types.js';

export interface SampleJob {
  imagePath: string;
  target: DetectionTarget;
  options: Pick<DetectionLoaderOptions, 'width' | 'height' | 'resize' | 'augment' | 'normalise'>;
  /** Seed of the sample's Rng, or null for no augmentation. */
  seed: number | null;
}

export type SampleReply =
  | { id: number; pixels: Float32Array; target: DetectionTarget; affine: Affine; error?: undefined }
  | { id: number; error: string };

export interface SampleResult {
  pixels: Float32Array;
  target: DetectionTarget;
  affine: Affine;
}

interface Slot {
  worker: Worker;
  busy: boolean;
}

interface Waiting {
  id: number;
  job: SampleJob;
  resolve: (r: SampleResult) => void;
  reject: (e: Error) => void;
}

export class SampleWorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Waiting[] = [];
  private readonly inFlight = new Map<number, Waiting & { slot: Slot }>();
  private nextId = 0;
  private closed = false;

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`SampleWorkerPool: size must be a positive integer, got ${size}`);
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./sample-worker.js', import.meta.url));
      const slot: Slot = { worker, busy: false };
      worker.unref(); // an idle pool never keeps the process alive; a busy worker is ref'd (see dispatch)
      worker.on('message', (reply: SampleReply) => this.onReply(slot, reply));
      worker.on('error', (err) => this.failAll(err));
      worker.on('exit', (code) => {
        if (!this.closed) this.failAll(new Error(`SampleWorkerPool: a worker exited unexpectedly (code ${code})`));
      });
      this.slots.push(slot);
    }
  }

  run(job: SampleJob): Promise<SampleResult> {
    if (this.closed) return Promise.reject(new Error('SampleWorkerPool: closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ id: this.nextId++, job, resolve, reject });
      this.dispatch();
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

  private dispatch(): void {
    for (const slot of this.slots) {
      if (slot.busy) continue;
      const w = this.queue.shift();
      if (!w) return;
      slot.busy = true;
      slot.worker.ref();
      this.inFlight.set(w.id, { ...w, slot });
      slot.worker.postMessage({ id: w.id, job: w.job });
    }
  }

  private onReply(slot: Slot, reply: SampleReply): void {
    const w = this.inFlight.get(reply.id);
    slot.busy = false;
    slot.worker.unref();
    if (w) {
      this.inFlight.delete(reply.id);
      if (reply.error !== undefined) w.reject(new Error(reply.error));
      else w.resolve({ pixels: reply.pixels, target: reply.target, affine: reply.affine });
    }
    this.dispatch();
  }

  private failAll(err: Error): void {
    for (const w of this.inFlight.values()) w.reject(err);
    this.inFlight.clear();
    for (const w of this.queue.splice(0)) w.reject(err);
    for (const s of this.slots) {
      s.busy = false;
      s.worker.unref();
    }
  }
}
