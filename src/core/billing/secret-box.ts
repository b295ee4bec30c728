// Provider credentials at rest (provider_data_encrypted): AES-256-GCM with DATA_ENCRYPTION_KEY. A sealed value is
// version (1 byte) ‖ IV (12 random bytes) ‖ auth tag (16) ‖ ciphertext, and is bound to its row by the additional
// authenticated data (e.g. "extensionpay:<user id>"): a blob copied onto another row does not open.
// `fingerprint` finds a credential already stored (an ExtPay key linked to another account) without storing it in
// clear: an HMAC-SHA256 under a key derived from the same secret, so it cannot be tried offline without that secret.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export interface SecretBox {
  seal(plain: string, aad: string): Buffer;
  /** The plain text; throws when the blob was altered, belongs to another row or another key. */
  open(sealed: Buffer, aad: string): string;
  fingerprint(plain: string, purpose: string): string;
}

/** The 32-byte key from its configured form: 64 hex characters, or base64 of 32 bytes. */
export function parseDataKey(text: string): Buffer {
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64');
  if (key.length !== 32) throw new Error('DATA_ENCRYPTION_KEY must be 32 bytes: 64 hex characters or base64');
  return key;
}

export function createSecretBox(keyText: string): SecretBox {
  const key = parseDataKey(keyText);
  const fingerprintKey = Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), 'nostrx provider fingerprint', 32));
  return {
    seal(plain, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      cipher.setAAD(Buffer.from(aad, 'utf8'));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]);
    },
    open(sealed, aad) {
      if (sealed.length < 1 + IV_BYTES + TAG_BYTES || sealed[0] !== VERSION)
        throw new Error('not a sealed value of this version');
      const iv = sealed.subarray(1, 1 + IV_BYTES);
      const tag = sealed.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
      const decipher = createDecipheriv('aes-256-gcm', key, iv);
      decipher.setAAD(Buffer.from(aad, 'utf8'));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(sealed.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    },
    fingerprint(plain, purpose) {
      return createHmac('sha256', fingerprintKey).update(`${purpose}\0${plain}`).digest('hex');
    },
  };
}
