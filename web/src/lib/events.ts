/** Live events from /api/events (server-sent events), for the caller's sites only. */
export interface LiveEvent {
  type: 'result' | 'study' | 'review';
  siteId: string;
  studyId: number;
  [key: string]: unknown;
}

export interface LiveConnection {
  close(): void;
}

/**
 * Subscribes to the event stream. EventSource reconnects by itself; `onState` reports whether
 * the stream is up so the page can say "live" or "reconnecting".
 */
export function subscribe(onEvent: (event: LiveEvent) => void, onState?: (live: boolean) => void): LiveConnection {
  const source = new EventSource('/api/events', { withCredentials: true });
  const handler = (e: MessageEvent) => {
    try {
      onEvent(JSON.parse(e.data) as LiveEvent);
    } catch { /* ignore malformed */ }
  };
  for (const type of ['result', 'study', 'review']) source.addEventListener(type, handler as EventListener);
  source.addEventListener('hello', () => onState?.(true));
  source.onerror = () => onState?.(false);
  return { close: () => source.close() };
}
