// The flood scenario's control: the least a Node.js relay can do per refused event — take the WebSocket frame,
// parse the JSON, answer one OK — in a process of its own, with no database, no Redis and no rules. The flood is
// sent here while the bystanders publish to the service, so the machine carries the same load generator and about
// the same refusing work as in the real flood; what the bystanders then lose is what sharing two cores with a
// flood costs them when the refusing is done by another process. Not a strict floor: the service, which refuses
// inside its own event loop with a share per connection, has done as well or better in most runs (README).
// Prints "ready <port>" when it listens.
import { WebSocketServer } from 'ws';

const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2] ?? 0), perMessageDeflate: false });
wss.on('connection', (ws) => {
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString('utf8')) as [string, { id?: string }];
    ws.send(JSON.stringify(['OK', msg[1]?.id ?? '', false, 'rate-limited: the control refuses every event']));
  });
});
wss.on('listening', () => {
  const address = wss.address();
  process.stdout.write(`ready ${typeof address === 'object' && address ? address.port : ''}\n`);
});
process.on('SIGTERM', () => wss.close(() => process.exit(0)));
