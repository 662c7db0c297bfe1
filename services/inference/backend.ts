/**
 * TF.js backend selection: tfjs-node when it loads (optional dependency, native binary), else the
 * wasm backend (SIMD binary read from the package's own dist folder on disk — no URL fetch),
 * else the pure-JS cpu backend. TF.js has one global engine, so the backend is process-wide.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

export type Backend = 'auto' | 'node' | 'wasm' | 'cpu';

const require = createRequire(import.meta.url);
let wasmReady: Promise<boolean> | undefined;
let nodeReady: Promise<boolean> | undefined;

async function tryNode(): Promise<boolean> {
  nodeReady ??= (async () => {
    try {
      // Optional dependency: its native binary is often absent (install script not run).
      const name = '@tensorflow/tfjs-node';
      await import(name);
      return tf.findBackend('tensorflow') !== undefined || tf.engine().registryFactory['tensorflow'] !== undefined;
    } catch {
      return false;
    }
  })();
  return nodeReady;
}

/** Directory (with trailing separator) of the wasm binaries inside node_modules. */
export function wasmDistDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm')) + path.sep;
}

async function tryWasm(): Promise<boolean> {
  wasmReady ??= (async () => {
    try {
      const wasm = await import('@tensorflow/tfjs-backend-wasm');
      wasm.setWasmPaths(wasmDistDir());
      return true;
    } catch {
      return false;
    }
  })();
  return wasmReady;
}

async function use(name: string): Promise<boolean> {
  try {
    return (await tf.setBackend(name)) && tf.getBackend() === name;
  } catch {
    return false;
  }
}

/** Activates a backend and returns the TF.js name of the one actually in use. */
export async function selectBackend(backend: Backend = 'auto'): Promise<string> {
  const order: Backend[] = backend === 'auto' ? ['node', 'wasm', 'cpu'] : [backend];
  for (const b of order) {
    if (b === 'node' && (await tryNode()) && (await use('tensorflow'))) return 'tensorflow';
    if (b === 'wasm' && (await tryWasm()) && (await use('wasm'))) return 'wasm';
    if (b === 'cpu' && (await use('cpu'))) return 'cpu';
  }
  throw new Error(`TF.js backend '${backend}' is not available`);
}

export { tf };
