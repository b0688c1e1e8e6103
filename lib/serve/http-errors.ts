/**
 * What the playground tells a client about an error. Only errors whose message is about the
 * request itself reach the client: the server's own refusals (httpError), the library's input
 * checks (ERR_BAD_INPUT, ERR_BAD_IMAGE, ERR_MODEL_NOT_ALLOWED) and fastify's 4xx. Anything else
 * (a model that fails to load, a native error, a bug) becomes a 500 ERR_INTERNAL with a generic
 * message, and its full text goes to the server's stderr: such messages can hold the server's
 * paths and stack traces.
 */
import { RobustSynthError, type ErrorCode } from '../errors.js';

/** A refusal the server words itself: its message is safe to send. */
export function httpError(status: number, code: ErrorCode, message: string): RobustSynthError {
  return Object.assign(new RobustSynthError(code, message), { statusCode: status, expose: true });
}

/** Library codes whose messages describe the request, and the status each maps to. */
const INPUT_STATUS: Partial<Record<ErrorCode, number>> = {
  ERR_BAD_INPUT: 400,
  ERR_BAD_IMAGE: 400,
  ERR_MODEL_NOT_ALLOWED: 400,
};

export const GENERIC_MESSAGE = "internal error; the server's log has the details";

let logged = 0;
/** One line (and the stack) on stderr for an error the client is not told about. */
export function logInternal(where: string, e: unknown): void {
  if (logged++ > 10_000) return; // a flood of failures must not fill the disk
  const err = e as { stack?: unknown; message?: unknown; code?: unknown };
  const text = typeof err?.stack === 'string' ? err.stack : String(err?.message ?? e);
  console.error(`robust-synth serve: ${where}: ${typeof err?.code === 'string' ? `[${err.code}] ` : ''}${text}`);
}

/** Any error as the HTTP status and the `{ code, message }` the client gets. */
export function describe(e: unknown, where = 'request'): { status: number; code: ErrorCode; message: string } {
  const err = e as { statusCode?: unknown; code?: unknown; message?: unknown; expose?: unknown };
  const code = typeof err?.code === 'string' ? err.code : '';
  const given = typeof err?.statusCode === 'number' && err.statusCode >= 400 && err.statusCode <= 599 ? err.statusCode : undefined;
  if (err?.expose === true && given !== undefined) return { status: given, code: code as ErrorCode, message: String(err.message) };
  const input = INPUT_STATUS[code as ErrorCode];
  if (input !== undefined) return { status: given ?? input, code: code as ErrorCode, message: String(err.message) };
  // fastify's own refusals (a bad JSON body, an unknown content type, a body too large): about the request.
  if (code.startsWith('FST_') && given !== undefined && given < 500) return { status: given, code: 'ERR_BAD_INPUT', message: String(err.message) };
  if (code === 'ERR_OUT_OF_MEMORY') {
    logInternal(where, e);
    return { status: 503, code, message: 'the server ran out of memory for this request; try a smaller one' };
  }
  logInternal(where, e);
  return { status: 500, code: 'ERR_INTERNAL', message: GENERIC_MESSAGE };
}

/** What a failed job's status says: the same policy, keeping the library's code. */
export function jobError(e: unknown): { code: ErrorCode; message: string } {
  const err = e as { code?: unknown; message?: unknown };
  const code = (typeof err?.code === 'string' && err.code.startsWith('ERR_') ? err.code : 'ERR_INTERNAL') as ErrorCode;
  if (code === 'ERR_ABORTED' || INPUT_STATUS[code] !== undefined) return { code, message: String(err?.message ?? e) };
  const d = describe(e, 'job');
  return { code, message: d.message };
}
