// One JSON line per event worth logging (pino). Modules take a child logger with their own `mod` field.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({ level, base: { svc: 'nostrx' }, timestamp: pino.stdTimeFunctions.isoTime });
}
