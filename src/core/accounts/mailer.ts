// Outgoing email, through SMTP with nodemailer (SMTP_URL, MAIL_FROM). One transport per process; each send opens
// its own connection (verification emails are few), with timeouts short enough that a request waiting on a dead
// mail server is answered in seconds rather than minutes.
import { createTransport } from 'nodemailer';

interface Mail {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string;
}

export interface Mailer {
  /** Resolves once the SMTP server accepted the message; rejects with its error otherwise. */
  send(mail: Mail): Promise<void>;
  close(): void;
}

export function createSmtpMailer(url: string, from: string): Mailer {
  const transport = createTransport({ url, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 });
  return {
    async send(mail) {
      await transport.sendMail({ from, to: mail.to, subject: mail.subject, text: mail.text, html: mail.html });
    },
    close: () => transport.close(),
  };
}
