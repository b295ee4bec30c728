// Every API request is answered in bounded time: past the deadline it gets 503 `unavailable` (with Retry-After),
// whatever the database or Redis are doing; the handler's own answer, if it comes later, is dropped. (fastify's
// handlerTimeout is not used: it is cleared when a request body has been read, so it never covers a POST.)
import type { FastifyInstance } from 'fastify';
import { apiError, sendApiError } from './errors.js';

/** `onAnswered`: told of every request answered at its deadline (metrics). */
export function answerWithin(http: FastifyInstance, ms: number, onAnswered?: () => void): void {
  http.addHook('onRequest', async (req, reply) => {
    const timer = setTimeout(() => {
      if (reply.sent || reply.raw.headersSent) return;
      req.log.warn({ method: req.method, url: req.url, afterMs: ms }, 'request answered 503 at its deadline');
      onAnswered?.();
      sendApiError(reply, apiError('unavailable', undefined, undefined, { 'retry-after': '1' }));
    }, ms);
    reply.raw.once('close', () => clearTimeout(timer));
  });
}
