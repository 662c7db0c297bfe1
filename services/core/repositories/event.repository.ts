import type { Redis } from 'ioredis';
import type { AiFlag, AiResultStatus, ReviewDecision } from '../db/schema.js';

/**
 * Every event the processes tell each other about, by name. Each carries the site and study it is
 * about (live screens filter by site and re-read through the site-scoped API); never patient data.
 * To add an event: add one entry here, `emit` it where it happens, and relay it where it is wanted.
 */
export interface EventMap {
  /** The worker stored an image's AI result. */
  result: { siteId: string; studyId: number; instanceId: number; status: AiResultStatus; flag: AiFlag | null; probability: number | null };
  /** A study's AI roll-up changed. */
  study: { siteId: string; studyId: number; aiState: 'pending' | 'complete'; aiFlag: string | null; aiScore: number | null };
  /** A radiologist recorded a decision (reviewed), or undid one (unreviewed, decision null). */
  review: { siteId: string; studyId: number; reviewState: 'reviewed' | 'unreviewed'; decision: ReviewDecision | null };
}

export type EventName = keyof EventMap;
export type AppEvent = { [K in EventName]: { type: K } & EventMap[K] }[EventName];

const EVENT_NAMES: ReadonlySet<string> = new Set<EventName>(['result', 'study', 'review']);

/** Redis pub/sub channel all events travel on. */
export function eventsChannel(prefix: string) {
  return `${prefix}:events`;
}

/**
 * Events over Redis pub/sub. Publishing never fails the caller: events are a convenience for live
 * screens, the database already holds the truth. Subscribing opens one extra connection (a Redis
 * connection in subscriber mode can do nothing else), on the first `subscribe` only.
 */
export class EventRepository {
  private subscriber: Redis | undefined;
  /** Settles once Redis confirmed the subscription (or it failed). */
  private subscribed: Promise<void> = Promise.resolve();
  private readonly listeners = new Set<(event: AppEvent) => void>();

  constructor(
    private readonly publisher: Redis,
    private readonly prefix: string,
    /** Opens the subscriber connection when someone first listens. */
    private readonly connect: () => Redis,
    private readonly onError: (message: string) => void = () => {},
  ) {}

  async emit<K extends EventName>(type: K, payload: EventMap[K]): Promise<void> {
    await this.publisher.publish(eventsChannel(this.prefix), JSON.stringify({ type, ...payload })).catch(() => undefined);
  }

  /**
   * Calls `listener` for every well-formed event; resolves, with the function that stops it, once
   * events published from then on are sure to arrive (at most `waitMs` when Redis is away).
   */
  async subscribe(listener: (event: AppEvent) => void, waitMs = 2_000): Promise<() => void> {
    this.listeners.add(listener);
    if (!this.subscriber) {
      const subscriber = this.connect();
      this.subscriber = subscriber;
      subscriber.on('error', (err: Error) => this.onError(`events subscriber: ${err.message}`));
      this.subscribed = subscriber.subscribe(eventsChannel(this.prefix)).then(() => undefined, (err: Error) => this.onError(`events subscribe failed: ${err.message}`));
      subscriber.on('message', (_channel: string, message: string) => {
        const event = parseEvent(message);
        if (event) for (const l of this.listeners) l(event);
      });
    }
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.subscribed, new Promise((resolve) => { timer = setTimeout(resolve, waitMs); })]);
    clearTimeout(timer);
    return () => { this.listeners.delete(listener); };
  }

  close(): void {
    this.listeners.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}

function parseEvent(message: string): AppEvent | undefined {
  let event: { type?: unknown; siteId?: unknown; studyId?: unknown };
  try {
    event = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof event?.type !== 'string' || !EVENT_NAMES.has(event.type)) return undefined;
  if (typeof event.siteId !== 'string' || typeof event.studyId !== 'number') return undefined;
  return event as AppEvent;
}
