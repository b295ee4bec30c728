// Small building blocks shared by the pages: loading data with its error, cards, error notes, busy buttons.
import { html } from 'htm/preact';
import type { ComponentChildren, VNode } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure } from '../lib/api.js';

export interface Loaded<T> {
  readonly data: T | undefined;
  readonly error: unknown;
  readonly loading: boolean;
  reload(): void;
}

/** Runs `load` now and whenever `deps` change or reload() is called; keeps the last data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; error: unknown; loading: boolean }>({
    data: undefined,
    error: undefined,
    loading: true,
  });
  const [tick, setTick] = useState(0);
  const latest = useRef(0);
  useEffect(() => {
    const run = ++latest.current;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => run === latest.current && setState({ data, error: undefined, loading: false }),
      (error: unknown) => run === latest.current && setState((s) => ({ data: s.data, error, loading: false })),
    );
    // `load` is a new closure each render: the caller's deps say when it means something new.
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  return { ...state, reload };
}

function messageOf(err: unknown): string {
  if (err instanceof ApiFailure) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}

export function ErrorNote({ error }: { error: unknown }): VNode | null {
  if (!error) return null;
  return html`<p class="error" role="alert">${messageOf(error)}</p>`;
}

export function Card({
  title,
  id,
  children,
  actions,
}: {
  title: string;
  id: string;
  children: ComponentChildren;
  actions?: ComponentChildren;
}): VNode {
  return html`<section class="card" aria-labelledby=${id}>
    <div class="card-head"><h2 id=${id}>${title}</h2>${actions ? html`<div class="card-actions">${actions}</div>` : null}</div>
    ${children}
  </section>`;
}

export function Loading({ what }: { what: string }): VNode {
  return html`<p class="muted" role="status">Loading ${what}…</p>`;
}

/** An action with its own busy state and error: run(fn) disables the button while fn runs. */
export function useAction(): {
  busy: boolean;
  error: unknown;
  run: (fn: () => Promise<unknown>) => Promise<void>;
  clear: () => void;
} {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(undefined);
  const run = useCallback(async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await fn();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }, []);
  return { busy, error, run, clear: () => setError(undefined) };
}

/** The value of an input event's target. */
export const valueOf = (e: Event): string => (e.currentTarget as HTMLInputElement).value;
export const checkedOf = (e: Event): boolean => (e.currentTarget as HTMLInputElement).checked;
