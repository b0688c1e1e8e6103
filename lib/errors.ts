/**
 * Every error robust-synth throws or rejects with is a {@link RobustSynthError} whose `code`
 * is one of {@link ErrorCode}; the native addon uses the same codes (native/src/common.h).
 */
export type ErrorCode =
  | 'ERR_BAD_INPUT'
  | 'ERR_BAD_IMAGE'
  | 'ERR_MODEL_LOAD'
  | 'ERR_MODEL_OUTPUT'
  | 'ERR_MODEL_NOT_FOUND'
  | 'ERR_MODEL_NOT_ALLOWED'
  | 'ERR_DEVICE'
  | 'ERR_ABORTED'
  | 'ERR_DISPOSED'
  | 'ERR_OUT_OF_MEMORY'
  | 'ERR_TORCH'
  | 'ERR_BINDING'
  | 'ERR_LIBTORCH'
  | 'ERR_REDIS'
  | 'ERR_INTERNAL';

export class RobustSynthError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RobustSynthError';
    this.code = code;
  }
}

/** Type guard usable on anything caught. */
export function isRobustSynthError(e: unknown, code?: ErrorCode): e is RobustSynthError {
  return e instanceof RobustSynthError && (code === undefined || e.code === code);
}

/**
 * Rewrites a native rejection as a RobustSynthError whose stack is the one captured when the
 * user called us (sharp does the same), so the trace points at user code, not at a callback.
 */
export function fromNative(e: unknown, callSite: Error): RobustSynthError {
  if (e instanceof RobustSynthError) return e;
  const raw = e as { code?: string; message?: string };
  const code = (typeof raw?.code === 'string' ? raw.code : 'ERR_INTERNAL') as ErrorCode;
  const err = new RobustSynthError(code, raw?.message ?? String(e));
  err.stack = `RobustSynthError: ${err.message}\n${(callSite.stack ?? '').split('\n').slice(1).join('\n')}`;
  return err;
}
