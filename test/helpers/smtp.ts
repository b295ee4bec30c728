// A local SMTP server (the smtp-server package) on 127.0.0.1 that keeps every message it is sent, for the email tests:
// the service sends through nodemailer exactly as it would to a real mail server, and the test reads the real message
// (headers, the quoted-printable text part) to take the link out of it. Stopped at teardown.
import { SMTPServer } from 'smtp-server';

interface Teardown {
  teardown(fn: () => unknown): void;
}

export interface ReceivedMail {
  readonly to: readonly string[];
  readonly raw: string;
  /** The text/plain part, decoded. */
  readonly text: string;
}

export interface MailBox {
  /** smtp://127.0.0.1:<port>, for SMTP_URL. */
  readonly url: string;
  readonly received: ReceivedMail[];
  /** The next message to `address` not yet taken (waits for it); each message is taken once. */
  next(address: string, timeoutMs?: number): Promise<ReceivedMail>;
}

/** Quoted-printable (RFC 2045 6.7): soft line breaks removed, =XX bytes decoded as UTF-8. */
function decodeQuotedPrintable(s: string): string {
  const bytes = s.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_m, hex: string) => `%${hex}`);
  return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, '%25'));
}

/** The decoded text/plain part of a raw RFC 5322 message (single-part or multipart/alternative, as nodemailer writes). */
function textPart(raw: string): string {
  const parts = raw.split(/\r?\n--[^\r\n]+\r?\n/);
  for (const part of parts) {
    const split = part.search(/\r?\n\r?\n/);
    if (split < 0) continue;
    const headers = part.slice(0, split);
    if (!/^content-type:\s*text\/plain/im.test(headers)) continue;
    const body = part
      .slice(split)
      .replace(/^\r?\n\r?\n/, '')
      .replace(/\r?\n--[^\r\n]+--\s*$/, '');
    if (/^content-transfer-encoding:\s*quoted-printable/im.test(headers)) return decodeQuotedPrintable(body);
    if (/^content-transfer-encoding:\s*base64/im.test(headers))
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    return body;
  }
  throw new Error('the message has no text/plain part');
}

export async function startMailBox(t: Teardown): Promise<MailBox> {
  const received: ReceivedMail[] = [];
  const taken = new Set<ReceivedMail>();
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw, text: textPart(raw) });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.server.address() as { port: number }).port;
  return {
    url: `smtp://127.0.0.1:${port}`,
    received,
    async next(address, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const mail = received.find((m) => !taken.has(m) && m.to.includes(address));
        if (mail) {
          taken.add(mail);
          return mail;
        }
        if (Date.now() > deadline) throw new Error(`no email to ${address} within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

/** The verification link in a message's text. */
export function linkIn(mail: ReceivedMail): string {
  const m = /https?:\/\/\S+\/v1\/email\/verify\?token=[A-Za-z0-9_-]+/.exec(mail.text);
  if (!m) throw new Error(`no verification link in: ${mail.text}`);
  return m[0];
}
