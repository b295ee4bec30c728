// The user's own account: their profile and preferences, the export of everything we hold about them, and
// erasure. Timezone and locale are checked here (IANA names and BCP 47 tags, stored in their canonical form);
// a changed timezone moves the user's quota day, so the cached account is dropped in every process.
import type { Knex } from 'knex';
import { fail, ok, type Result } from '../../nips/result.js';
import type { Reads } from '../../store/read-replica.js';
import {
  eraseUser,
  exportUserRows,
  getProfile,
  updateProfile,
  type ExportBatch,
  type Profile,
  type ProfilePatch,
} from '../../store/user-data.js';
import { RETENTION_SCOPE } from '../../store/user-retention.js';

export type { ExportBatch };
/** What the user's retention period (data_retention_days) erases and what it keeps: for the API and the export. */
export const retentionScope = RETENTION_SCOPE;
import type { CacheInvalidation } from './cache-invalidation.js';

export type { Profile };

export interface ProfileDeps {
  readonly db: Knex;
  /** Where the export reads (the replica when there is one); the profile itself is read back from `db`. */
  readonly reads: Reads;
  readonly invalidation: CacheInvalidation;
}

/** The canonical IANA name of a time zone Intl knows (`europe/paris` → `Europe/Paris`), else undefined. */
function canonicalTimeZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** The canonical BCP 47 form of a locale tag (`en-us` → `en-US`), else undefined. */
function canonicalLocale(tag: string): string | undefined {
  try {
    return Intl.getCanonicalLocales(tag)[0];
  } catch {
    return undefined;
  }
}

export interface ProfileService {
  get(userId: string): Promise<Profile | undefined>;
  /** A rejection names the field: `invalid: timezone …`. */
  update(
    userId: string,
    pubkey: string,
    patch: ProfilePatch,
  ): Promise<Result<Profile | undefined> & { field?: string }>;
  /** Everything we hold about the user, table by table, a batch of rows at a time (see store/user-data.ts). */
  export(userId: string): AsyncIterable<ExportBatch>;
  erase(userId: string, pubkey: string): Promise<boolean>;
}

export function createProfiles(deps: ProfileDeps): ProfileService {
  return {
    get: (userId) => getProfile(deps.db, userId),
    async update(userId, pubkey, patch) {
      let timezone = patch.timezone;
      if (timezone !== undefined) {
        timezone = canonicalTimeZone(timezone);
        if (!timezone || timezone.length > 50)
          return {
            ...fail('invalid', `timezone "${patch.timezone}" is not an IANA time zone name`),
            field: 'timezone',
          };
      }
      let locale = patch.locale;
      if (locale !== undefined) {
        locale = canonicalLocale(locale);
        if (!locale || locale.length > 10)
          return {
            ...fail('invalid', `locale "${patch.locale}" is not a BCP 47 language tag of at most 10 characters`),
            field: 'locale',
          };
      }
      const updated = await updateProfile(deps.db, userId, { ...patch, timezone, locale });
      if (timezone !== undefined) deps.invalidation.account(pubkey, userId);
      return ok(updated);
    },
    export: (userId) => deps.reads.stream((db) => exportUserRows(db, userId)),
    async erase(userId, pubkey) {
      const erased = await eraseUser(deps.db, userId);
      deps.invalidation.account(pubkey, userId);
      deps.invalidation.user(userId);
      return erased;
    },
  };
}
