// One JSON line per event worth logging (pino). Modules take a child logger with their own `mod` field.
import { pino, type Logger } from 'pino';

export type { Logger };

/** `fd` 2 sends the lines to stderr: for command-line tools whose stdout carries their output. */
export function createLogger(level: string, fd: 1 | 2 = 1): Logger {
  const options = { level, base: { svc: 'nostrx' }, timestamp: pino.stdTimeFunctions.isoTime };
  return fd === 2 ? pino(options, pino.destination(2)) : pino(options);
}
