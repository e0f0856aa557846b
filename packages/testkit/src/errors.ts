import { ShoalError, type ErrorCode } from '@shoal/protocol';

/** The error `fn` throws; throws itself (failing the test) when `fn` returns normally. */
export function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected the call to throw, but it returned');
}

/** The ShoalError `fn` throws, checked to carry `code` and (when given) a message matching `message`. */
export function expectShoalError(fn: () => unknown, code: ErrorCode, message?: RegExp): ShoalError {
  const error = thrownBy(fn);
  if (!(error instanceof ShoalError)) throw new Error(`expected a ShoalError ${code}, got ${String(error)}`);
  if (error.code !== code) throw new Error(`expected ShoalError ${code}, got ${error.code}: ${error.message}`);
  if (message && !message.test(error.message)) throw new Error(`ShoalError ${code} message "${error.message}" does not match ${message}`);
  return error;
}
