/**
 * Frozen-backbone features for training/train_v2.py, computed by TF.js on the wasm backend —
 * the engine and letterbox the worker uses, so the heads are trained on exactly what runs in
 * production. (PyTorch CPU runs the depthwise convolutions of MobileNetV2 far slower here.)
 *
 *   tsx training/extract_features.ts <model dir> <images dir> <ids file> <out.f32> [--flip]
 *
 * ids file: one image file name a line. For each image (and, with --flip, its mirror right
 * after it), the model's outputs are appended to <out.f32> as float32 NHWC, in the order of
 * model.outputs. Progress goes to stderr. An interrupted run resumes where it stopped.
 */
import { closeSync, existsSync, openSync, readFileSync, statSync, truncateSync, writeSync } from 'node:fs';
import path from 'node:path';
import jpeg from 'jpeg-js';
import { letterbox } from '../services/imaging/letterbox.js';
import { fileIOHandler, selectBackend } from '../services/inference/index.js';
import * as tf from '@tensorflow/tfjs';

const [modelDir, imagesDir, idsFile, outFile, ...flags] = process.argv.slice(2);
if (!outFile) {
  console.error('usage: tsx training/extract_features.ts <model dir> <images dir> <ids file> <out.f32> [--flip]');
  process.exit(2);
}
const flip = flags.includes('--flip');
await selectBackend('wasm');
const model = await tf.loadLayersModel(fileIOHandler(path.join(modelDir, 'model.json')));
const S = model.inputs[0].shape[1] as number;
const ids = readFileSync(idsFile, 'utf8').split('\n').filter(Boolean);
// Resumable: whole images already in <out.f32> (an interrupted run) are kept and skipped.
const bytesPerImage = (flip ? 2 : 1) * 4 *
  model.outputs.reduce((sum, o) => sum + o.shape.slice(1).reduce((a: number, b) => a * (b as number), 1), 0);
const done = existsSync(outFile) ? Math.min(ids.length, Math.floor(statSync(outFile).size / bytesPerImage)) : 0;
if (done > 0) {
  truncateSync(outFile, done * bytesPerImage);
  console.error(`  ${path.basename(outFile)}: resuming after ${done} images`);
}
const fd = openSync(outFile, done > 0 ? 'a' : 'w');
const t0 = Date.now();
for (const [i, id] of ids.entries()) {
  if (i < done) continue;
  const img = jpeg.decode(readFileSync(path.join(imagesDir, id)), { useTArray: true, formatAsRGBA: true });
  const grey = new Float32Array(img.width * img.height);
  for (let k = 0; k < grey.length; k++) grey[k] = img.data[4 * k] / 255;
  const x = letterbox({ width: img.width, height: img.height, data: grey }, S).data;
  const views = [x];
  if (flip) {
    const m = new Float32Array(x.length);
    for (let r = 0; r < S; r++) for (let c = 0; c < S; c++) m[r * S + c] = x[r * S + S - 1 - c];
    views.push(m);
  }
  for (const v of views) {
    const outs = tf.tidy(() => {
      const y = model.predict(tf.tensor4d(v, [1, S, S, 1]));
      return Array.isArray(y) ? y : [y];
    });
    for (const o of outs) {
      const d = o.dataSync() as Float32Array;
      writeSync(fd, Buffer.from(d.buffer, d.byteOffset, d.byteLength));
      o.dispose();
    }
  }
  if ((i + 1) % 50 === 0 || i === ids.length - 1) {
    const s = (Date.now() - t0) / 1000, per = s / (i + 1 - done);
    console.error(`  ${path.basename(outFile)}: ${i + 1}/${ids.length} images, ${per.toFixed(2)} s/image, eta ${(per * (ids.length - i - 1) / 60).toFixed(1)} min`);
  }
}
closeSync(fd);
model.dispose();
