// Frames sent on one WebSocket in the same run of callbacks leave in one write: a burst of N messages costs one
// syscall instead of N (fan-out to a subscriber, a forwarded batch to an upstream relay). ws has no public cork,
// so the underlying net.Socket is corked when there is one, and uncorked on the next tick.
import type { WebSocket } from 'ws';

interface Corkable {
  cork(): void;
  uncork(): void;
}

const corked = new WeakSet<Corkable>();

export function corkUntilNextTick(ws: WebSocket): void {
  const socket = (ws as unknown as { _socket?: Corkable })._socket;
  if (!socket || corked.has(socket)) return;
  corked.add(socket);
  socket.cork();
  process.nextTick(() => {
    corked.delete(socket);
    socket.uncork();
  });
}
