import fs from 'node:fs';
import path from 'node:path';
import { defineConfig, type Plugin } from 'vite';

const here = path.dirname(new URL(import.meta.url).pathname);
const loaderDist = path.resolve(here, '../node_modules/cornerstone-wado-image-loader/dist');

/**
 * The image loader decodes in a web worker. Its bundle would start the worker from a blob: URL,
 * which our Content-Security-Policy forbids (worker-src 'self'); it then falls back to loading
 * index.worker.bundle.min.worker.js from beside the script that loaded it (/assets/). This puts
 * that file there (its WebAssembly codecs are inside it), so nothing is fetched from elsewhere.
 */
function imageLoaderWorker(): Plugin {
  const name = 'index.worker.bundle.min.worker.js';
  return {
    name: 'ft-image-loader-worker',
    configureServer(server) {
      server.middlewares.use(`/assets/${name}`, (_req, res) => {
        res.setHeader('Content-Type', 'text/javascript');
        fs.createReadStream(path.join(loaderDist, name)).pipe(res);
      });
    },
    generateBundle() {
      this.emitFile({ type: 'asset', fileName: `assets/${name}`, source: fs.readFileSync(path.join(loaderDist, name)) });
    },
  };
}

export default defineConfig({
  root: here,
  base: '/',
  plugins: [imageLoaderWorker()],
  build: {
    outDir: path.join(here, 'dist'),
    emptyOutDir: true,
    sourcemap: true,
    chunkSizeWarningLimit: 4000,
    // No inline <script> or style: everything is a file under /assets (strict CSP).
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: {
        main: path.join(here, 'index.html'),
        admin: path.join(here, 'admin.html'),
      },
    },
  },
  server: {
    // `npx vite web` during development: the API runs on 8080.
    proxy: Object.fromEntries(['/api', '/auth', '/dicomweb'].map((p) => [p, 'http://127.0.0.1:8080'])),
  },
});
