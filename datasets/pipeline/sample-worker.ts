/**
 * Worker thread body for SampleWorkerPool: decodes one image (sharp) and prepares it (prepareSample), then sends the
 * pixels back as a transferred buffer. Keeps the main thread (where a JS/WASM training step runs) free.
 */
import { parentPort } from 'node:worker_threads';
import { Rng } from '../../src/util/rng.js';
import { decodeImage } from './decode.js';
import { prepareSample } from './sample.js';
import type { SampleJob, SampleReply } from './worker-pool.js';

if (!parentPort) throw new Error('sample-worker.js must run in a worker thread');
const port = parentPort;

port.on('message', (msg: { id: number; job: SampleJob }) => {
  const { id, job } = msg;
  void (async () => {
    try {
      const img = await decodeImage(job.imagePath);
      const pixels = new Float32Array(job.options.width * job.options.height * 3);
      const rng = job.seed === null ? null : new Rng(job.seed);
      const s = prepareSample(img, job.target, job.options, rng, pixels, 0);
      const reply: SampleReply = { id, pixels, target: s.target, affine: s.affine, dropped: s.dropped, width: img.width, height: img.height };
      port.postMessage(reply, [pixels.buffer]);
    } catch (err) {
      const reply: SampleReply = { id, error: err instanceof Error ? err.message : String(err) };
      port.postMessage(reply);
    }
  })();
});
