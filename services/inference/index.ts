export * from './fractureModel.js';
export { extractBoxes, type BoxOptions, type BoxLevel } from './boxes.js';
export { selectBackend, wasmDistDir } from './backend.js';
export { DEFAULT_MODEL_DIR } from './defaultModel.js';
