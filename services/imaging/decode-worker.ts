/** Worker-thread side of decode-pool.ts: decodes one instance per message, transfers results back. */
import { parentPort } from 'node:worker_threads';
import { decodeInstance, type DecodeOptions } from './index.js';
import { PixelDataError } from './errors.js';

interface Request {
  id: number;
  bytes: Uint8Array;
  opts?: DecodeOptions;
}

if (!parentPort) throw new Error('decode-worker.ts must run in a worker thread');
const port = parentPort;

port.on('message', async ({ id, bytes, opts }: Request) => {
  try {
    const image = await decodeInstance(bytes, opts);
    port.postMessage({ id, ok: true, image }, [image.stored.buffer as ArrayBuffer, image.display.data.buffer as ArrayBuffer]);
  } catch (e) {
    const error =
      e instanceof PixelDataError
        ? { code: e.code, message: e.message }
        : { code: 'corrupt-pixel-data', message: `decode failed: ${e instanceof Error ? e.message : String(e)}` };
    port.postMessage({ id, ok: false, error });
  }
});
