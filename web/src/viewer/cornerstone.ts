import cornerstone from 'cornerstone-core';
import cornerstoneMath from 'cornerstone-math';
import cornerstoneTools from 'cornerstone-tools';
import Hammer from 'hammerjs';
import cornerstoneWADOImageLoader from 'cornerstone-wado-image-loader';
import dicomParser from 'dicom-parser';

let ready = false;

export const LOADER_WORKER_URL = '/assets/index.worker.bundle.min.worker.js';

/**
 * cornerstone-core + cornerstone-tools + cornerstone-wado-image-loader, wired once. Images load
 * as wadouri:/api/instances/<id>/file (the stored original, with the session cookie); decoding
 * (JPEG 2000, JPEG-LS, JPEG lossless/baseline, RLE, deflate, MONOCHROME1) happens in the loader's
 * web worker, served from /assets with its WebAssembly codecs inside (nothing from a CDN).
 */
export function initCornerstone() {
  if (ready) return { cornerstone, cornerstoneTools };
  cornerstoneTools.external.cornerstone = cornerstone;
  cornerstoneTools.external.cornerstoneMath = cornerstoneMath;
  cornerstoneTools.external.Hammer = Hammer;
  cornerstoneTools.init({ showSVGCursors: false, mouseEnabled: true, touchEnabled: true, globalToolSyncEnabled: false });
  cornerstoneWADOImageLoader.external.cornerstone = cornerstone;
  cornerstoneWADOImageLoader.external.dicomParser = dicomParser;
  cornerstoneWADOImageLoader.configure({
    beforeSend: (xhr: XMLHttpRequest) => { xhr.withCredentials = true; },
  });
  // The loader starts its workers from a blob: URL made from a copy of its worker script; our CSP
  // allows workers only from our own origin, so they are started from the same script served at
  // /assets (copied there by web/vite.config.ts). Workers are all started here, not on demand.
  const NativeWorker = window.Worker;
  window.Worker = class LoaderWorker extends NativeWorker {
    constructor(url: string | URL, options?: WorkerOptions) {
      const href = String(url);
      super(href.startsWith('blob:') || href.startsWith('data:') ? LOADER_WORKER_URL : url, options);
    }
  };
  try {
    cornerstoneWADOImageLoader.webWorkerManager.initialize({
      maxWebWorkers: Math.max(1, Math.min(3, (navigator.hardwareConcurrency || 2) - 1)),
      startWebWorkersOnDemand: false,
      taskConfiguration: { decodeTask: { initializeCodecsOnStartup: false, strict: false } },
    });
  } finally {
    window.Worker = NativeWorker;
  }
  ready = true;
  return { cornerstone, cornerstoneTools };
}

export { cornerstone, cornerstoneTools, cornerstoneWADOImageLoader };
