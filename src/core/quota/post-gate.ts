// Slots for the posts of capped users: at most `slots` posts of one user are past the quota precheck at a time in
// this process, the rest wait their turn. A user at the limit who sends a thousand posts at once then costs
// `slots` signature verifications and counter calls, not a thousand: by the time a waiter's turn comes, the first
// ones have found the limit and the waiter is answered from memory. Slots are taken only by posts that will be
// verified next, and given back as soon as their admission settles (a forged post gives its slot back when its
// signature fails), so nobody can hold another user's slots for longer than one verification.

export interface PostGate {
  /**
   * Waits until the user has fewer than `slots` posts past the gate and takes a slot for this event; resolves
   * false, without a slot, when `open()` says no before or after a wait.
   */
  enter(userId: string, eventId: string, slots: number, open: () => boolean): Promise<boolean>;
  /** Gives back the slot this event took, if it took one, and lets the next waiter of the user in. */
  leave(userId: string, eventId: string): void;
  /** Wakes every waiter of the user, to ask `open()` again (the user reached the limit, or their plan changed). */
  wake(userId: string): void;
}

interface UserSlots {
  active: number;
  readonly holders: Map<string, number>;
  readonly waiters: (() => void)[];
}

export function createPostGate(): PostGate {
  const users = new Map<string, UserSlots>();

  function slotsOf(userId: string): UserSlots {
    let u = users.get(userId);
    if (!u) {
      u = { active: 0, holders: new Map(), waiters: [] };
      users.set(userId, u);
    }
    return u;
  }

  function forgetIfIdle(userId: string, u: UserSlots): void {
    if (u.active === 0 && u.waiters.length === 0) users.delete(userId);
  }

  return {
    async enter(userId, eventId, slots, open) {
      for (;;) {
        // looked up again after every wait: an idle user's entry is dropped, and a new one made on demand
        const u = slotsOf(userId);
        if (!open()) {
          forgetIfIdle(userId, u);
          return false;
        }
        if (u.active < slots) {
          u.active++;
          u.holders.set(eventId, (u.holders.get(eventId) ?? 0) + 1);
          return true;
        }
        await new Promise<void>((resolve) => u.waiters.push(resolve));
      }
    },
    leave(userId, eventId) {
      const u = users.get(userId);
      const held = u?.holders.get(eventId);
      if (!u || !held) return;
      if (held === 1) u.holders.delete(eventId);
      else u.holders.set(eventId, held - 1);
      u.active--;
      u.waiters.shift()?.();
      forgetIfIdle(userId, u);
    },
    wake(userId) {
      const u = users.get(userId);
      if (!u) return;
      for (const resolve of u.waiters.splice(0)) resolve();
    },
  };
}
