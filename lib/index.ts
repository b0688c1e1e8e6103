export { Classifier, PgdSession, setThreads, getThreads, buildInfo } from './classifier.js';
export type { ClassRef, Constraint, Device, LoadOptions, PgdOptions, PgdResult, Progress, SessionOptions } from './classifier.js';
export { RobustSynthError, isRobustSynthError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { ImageBatch, Shape4, Tensor2D } from './tensor.js';
export { listModels, resolveModel, EMBEDDED_MODELS } from './models.js';
export type { ModelCard } from './models.js';
