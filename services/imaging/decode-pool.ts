/**
 * A small worker_threads pool so a caller (e.g. the upload service) keeps its event loop free while
 * DICOM frames decode. Input bytes are transferred, not copied, when they own their whole
 * ArrayBuffer (the caller's buffer is then detached); results come back transferred too.
 * A decode that runs past `timeoutMs` is rejected with PixelDataError('decode-timeout') and its
 * thread is terminated and replaced; a thread that dies is replaced as well.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PixelDataError, type PixelDataErrorCode } from './errors.js';
import type { DecodedImage, DecodeOptions } from './index.js';

export interface DecodePoolOptions {
  /** Per-decode limit; the thread is killed and replaced past it (default 60 s). */
  timeoutMs?: number;
  /** Reject new work beyond this many queued decodes (default 256). */
  maxQueue?: number;
  /** Transfer the input buffer to the worker when possible (default true); false always copies. */
  transfer?: boolean;
}

export interface DecodePool {
  readonly size: number;
  /** Decodes in a worker thread. `call.timeoutMs` overrides the pool's limit for this decode. */
  decode(bytes: Uint8Array, opts?: DecodeOptions, call?: { timeoutMs?: number }): Promise<DecodedImage>;
  close(): Promise<void>;
}

interface Task {
  id: number;
  bytes: Uint8Array;
  opts?: DecodeOptions;
  timeoutMs: number;
  resolve: (img: DecodedImage) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  task?: Task;
  timer?: NodeJS.Timeout;
}

const fromSource = import.meta.url.endsWith('.ts');
const workerUrl = new URL(fromSource ? './decode-worker.ts' : './decode-worker.js', import.meta.url);

/** Running from TypeScript source (tests, tsx): the worker registers tsx's loader before importing the .ts worker. */
function startWorker(): Worker {
  if (!fromSource) return new Worker(workerUrl);
  const code = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(workerUrl.href)}); })`;
  return new Worker(code, { eval: true });
}

export function createDecodePool(size = Math.max(1, availableParallelism() - 1), options: DecodePoolOptions = {}): DecodePool {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxQueue = options.maxQueue ?? 256;
  const transfer = options.transfer ?? true;
  const queue: Task[] = [];
  const slots: Slot[] = [];
  let nextId = 1;
  let closed = false;

  const spawn = (): Slot => {
    const worker = startWorker();
    worker.unref();
    const slot: Slot = { worker };
    worker.on('message', (msg: { id: number; ok: boolean; image?: DecodedImage; error?: { code: PixelDataErrorCode; message: string } }) => {
      const task = slot.task;
      if (!task || task.id !== msg.id) return;
      finish(slot);
      if (msg.ok) task.resolve(msg.image!);
      else task.reject(new PixelDataError(msg.error!.code, msg.error!.message));
      pump();
    });
    worker.on('error', (err) => replace(slot, new PixelDataError('decode-failed', `decoder thread failed: ${err.message}`)));
    worker.on('exit', () => {
      if (!closed && slots.includes(slot)) replace(slot, new PixelDataError('decode-failed', 'decoder thread exited'));
    });
    return slot;
  };

  const finish = (slot: Slot) => {
    if (slot.timer) clearTimeout(slot.timer);
    slot.timer = undefined;
    slot.task = undefined;
    slot.worker.unref();
  };

  const replace = (slot: Slot, reason: PixelDataError) => {
    const task = slot.task;
    finish(slot);
    const i = slots.indexOf(slot);
    if (i >= 0) slots.splice(i, 1);
    void slot.worker.terminate();
    task?.reject(reason);
    if (!closed) {
      slots.push(spawn());
      pump();
    }
  };

  const pump = () => {
    for (const slot of slots) {
      if (slot.task || queue.length === 0) continue;
      const task = queue.shift()!;
      slot.task = task;
      slot.worker.ref(); // keep the process alive while work is in flight
      slot.timer = setTimeout(
        () => replace(slot, new PixelDataError('decode-timeout', `decode did not finish within ${task.timeoutMs} ms; thread replaced`)),
        task.timeoutMs,
      );
      const { bytes } = task;
      const ownsBuffer =
        transfer && bytes.buffer instanceof ArrayBuffer && bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength;
      try {
        slot.worker.postMessage({ id: task.id, bytes, opts: task.opts }, ownsBuffer ? [bytes.buffer as ArrayBuffer] : []);
      } catch {
        // e.g. a Buffer from Node's pool is not transferable: copy instead.
        slot.worker.postMessage({ id: task.id, bytes, opts: task.opts });
      }
    }
  };

  for (let i = 0; i < size; i++) slots.push(spawn());

  return {
    size,
    decode(bytes, opts, call) {
      if (closed) return Promise.reject(new Error('decode pool is closed'));
      if (queue.length >= maxQueue) return Promise.reject(new Error(`decode pool queue is full (${maxQueue})`));
      return new Promise<DecodedImage>((resolve, reject) => {
        queue.push({ id: nextId++, bytes, opts, timeoutMs: call?.timeoutMs ?? timeoutMs, resolve, reject });
        pump();
      });
    },
    async close() {
      closed = true;
      for (const t of queue.splice(0)) t.reject(new Error('decode pool closed'));
      const all = slots.splice(0);
      for (const s of all) {
        s.task?.reject(new Error('decode pool closed'));
        finish(s);
      }
      await Promise.all(all.map((s) => s.worker.terminate()));
    },
  };
}
