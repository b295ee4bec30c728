// The admin's view of the users: a filtered, paginated list and one user with their effective plan.
import type { Knex } from 'knex';
import { getUserSummary, listUsers, type UserFilter, type UserSummary } from '../../store/user-data.js';

export type { UserSummary };

export interface UserDirectory {
  list(f: UserFilter): Promise<UserSummary[]>;
  get(userId: string): Promise<UserSummary | undefined>;
}

export function createUserDirectory(db: Knex): UserDirectory {
  return { list: (f) => listUsers(db, f), get: (userId) => getUserSummary(db, userId) };
}
