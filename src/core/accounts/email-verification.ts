// Email verification: when a user sets an email address, a link is sent to it (SMTP, core/accounts/mailer.ts);
// opening it sets users.email_verified. The link carries 32 random bytes; only their SHA-256 is stored, so the link
// cannot be forged or recovered from the database, it works once, for 24 hours, and only while the account's email
// is still the address it was sent to. Sends are rate-limited per account and per address (store/email-verifications.ts).
// Without SMTP_URL nothing is sent: the address is stored unverified, and the API says so.
// Payment receipts go to verified addresses only: receiptAddress is what the billing code asks.
import { createHash, randomBytes } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from '../../log.js';
import {
  reserveVerification,
  useVerificationToken,
  verifiedEmail,
  type SendLimits,
  type VerifyOutcome,
} from '../../store/email-verifications.js';
import type { Mailer } from './mailer.js';
import { escapeHtml } from '../../lib/html.js';

export type { VerifyOutcome };

const EMAIL_TOKEN_PREFIX = 'nxe_';
const LINK_LIFETIME_SECONDS = 24 * 3600;

export type SendResult =
  | { readonly status: 'sent' | 'not_configured' | 'send_failed' | 'no_user' }
  | { readonly status: 'rate_limited'; readonly scope: 'account' | 'address'; readonly retryAfterSeconds: number };

export interface EmailVerificationDeps {
  readonly db: Knex;
  readonly log: Logger;
  /** Absent without SMTP_URL. */
  readonly mailer?: Mailer | undefined;
  /** PUBLIC_URL, read when a link is made. */
  readonly publicUrl: () => string;
  readonly limits: SendLimits;
  /** Seconds since the epoch. */
  readonly now: () => number;
}

export interface EmailVerification {
  /** false without SMTP_URL: addresses are stored unverified. */
  readonly available: boolean;
  /** Sends a verification link to `email`, the account's current address. */
  send(userId: string, email: string): Promise<SendResult>;
  /** Opens a link: sets email_verified if the token is good. */
  verify(token: string): Promise<VerifyOutcome>;
}

/** Where the user's payment receipts may go: their email if it is verified, else undefined (send none). */
export function receiptAddress(db: Knex, userId: string): Promise<string | undefined> {
  return verifiedEmail(db, userId);
}

const tokenHash = (token: string) => createHash('sha256').update(token, 'utf8').digest('hex');

function verificationMail(email: string, link: string) {
  const text =
    `Someone, hopefully you, gave ${email} as the email address of a NostrX account.\n\n` +
    `Open this link within 24 hours to confirm it:\n\n${link}\n\n` +
    `The link works once. If you did not ask for this, ignore this email: the address stays unconfirmed.\n`;
  const html =
    `<p>Someone, hopefully you, gave ${escapeHtml(email)} as the email address of a NostrX account.</p>` +
    `<p>Open this link within 24 hours to confirm it:</p><p><a href="${escapeHtml(link)}">${escapeHtml(link)}</a></p>` +
    `<p>The link works once. If you did not ask for this, ignore this email: the address stays unconfirmed.</p>`;
  return { to: email, subject: 'Confirm your email address for NostrX', text, html };
}

export function createEmailVerification(deps: EmailVerificationDeps): EmailVerification {
  const { mailer } = deps;
  return {
    available: mailer !== undefined,
    async send(userId, email) {
      if (!mailer) return { status: 'not_configured' };
      const token = EMAIL_TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const now = deps.now();
      const reserved = await reserveVerification(
        deps.db,
        {
          userId,
          email,
          tokenHash: tokenHash(token),
          now: new Date(now * 1000),
          expiresAt: new Date((now + LINK_LIFETIME_SECONDS) * 1000),
        },
        deps.limits,
      );
      if (reserved.status !== 'reserved') return reserved;
      const link = `${deps.publicUrl()}/v1/email/verify?token=${token}`;
      try {
        await mailer.send(verificationMail(email, link));
      } catch (err) {
        // The reserved row stays and counts against the limits: a failing mail server is not retried in a loop.
        deps.log.error({ err, userId }, 'sending a verification email failed');
        return { status: 'send_failed' };
      }
      deps.log.info({ userId }, 'verification email sent');
      return { status: 'sent' };
    },
    async verify(token) {
      if (!token.startsWith(EMAIL_TOKEN_PREFIX) || token.length > 128) return { status: 'unknown' };
      return useVerificationToken(deps.db, tokenHash(token), new Date(deps.now() * 1000));
    },
  };
}
