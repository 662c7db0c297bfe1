/**
 * The model the worker loads when MODEL_DIR is not set (relative to the repository root).
 * v4 = v2's image score + v3's heat map in one graph (models/fracatlas-mnv2-v4/MODEL_CARD.md);
 * v2, v3 and v1 stay available: MODEL_DIR=models/fracatlas-mnv2-v2 (… -v3, fracatlas-heatnet-v1).
 */
export const DEFAULT_MODEL_DIR = 'models/fracatlas-mnv2-v4';
