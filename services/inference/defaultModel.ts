/**
 * The model the worker loads when MODEL_DIR is not set (relative to the repository root).
 * v1 stays available: MODEL_DIR=models/fracatlas-heatnet-v1.
 */
export const DEFAULT_MODEL_DIR = 'models/fracatlas-mnv2-v2';
